"""Large results through a streaming cursor: flat memory, server-side cursors, clean endings."""
from __future__ import annotations

import re
import tracemalloc

import pytest

import pooldbapi
from pooldbapi.pool import pool_for

BIG = "select i, 'row ' || i as label from generate_series(1, 200000) i"


def peak_while(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_iterating_a_streamed_select_keeps_memory_flat(pg):
    conn = pooldbapi.connect({"pg": pg.conninfo()})

    def streamed():
        total = 0
        for row in conn.cursor(stream=True).execute(BIG):
            total += row[0]
        assert total == 200000 * 200001 // 2

    def whole():
        assert len(conn.cursor().execute(BIG).fetchall()) == 200000

    conn.cursor(stream=True).execute("select 1, 'x'").fetchall()  # connections, type caches
    flat, full = peak_while(streamed), peak_while(whole)
    assert flat * 10 < full
    conn.close()


def test_a_server_side_cursor_is_used_and_fetchmany_honours_arraysize(pg):
    conn = pooldbapi.connect({"pg": pg.conninfo()})
    cur = conn.cursor(stream=True)
    cur.arraysize = 3
    cur.execute(BIG)
    assert [d[0] for d in cur.description] == ["i", "label"]
    assert cur.description[0][1] == pooldbapi.NUMBER
    assert [r[0] for r in cur.fetchmany()] == [1, 2, 3]
    assert cur.rowcount == -1 and cur.rownumber == 3
    names = conn.execute("select count(*) from pg_cursors where name like 'pooldbapi_%'")
    assert names.fetchone()[0] == 1
    assert len(cur.fetchall()) == 199997
    assert cur.rowcount == 200000
    conn.close()


def test_closing_midway_leaves_the_transaction_usable(pg):
    conn = pooldbapi.connect({"pg": pg.conninfo()})
    cur = conn.cursor(stream=True)
    cur.execute(BIG)
    assert cur.fetchone()[0] == 1
    cur.close()
    assert conn.execute("select 41 + 1").fetchone() == (42,)
    conn.commit()
    conn.close()


def test_autocommit_keeps_the_connection_until_the_stream_ends(pg):
    conn = pooldbapi.connect({"pg": pg.conninfo()}, autocommit=True)
    pool = pool_for(conn.specs["pg"])
    cur = conn.cursor(stream=True)
    cur.execute("select generate_series(1, 5000)")
    assert pool.stats().in_use == 1
    conn.execute("select 1")  # another statement on the same container meanwhile
    assert pool.stats().in_use == 1
    assert len(cur.fetchall()) == 5000
    assert pool.stats().in_use == 0
    conn.close()


def test_commit_ends_a_streamed_result_loudly(pg, tmp_path):
    conn = pooldbapi.connect({"pg": pg.conninfo()})
    cur = conn.cursor(stream=True)
    cur.execute(BIG)
    cur.fetchmany(10)
    conn.commit()
    with pytest.raises(pooldbapi.InterfaceError, match="closed .* before its last row"):
        cur.fetchall()
    conn.close()


@pytest.mark.parametrize("end", ["commit", "rollback"])
@pytest.mark.parametrize("fetch", [lambda c: c.fetchone(), lambda c: c.fetchmany(5),
                                   lambda c: c.fetchall(), lambda c: next(c)],
                         ids=["fetchone", "fetchmany", "fetchall", "next"])
def test_the_first_fetch_after_commit_or_rollback_raises_though_rows_were_buffered(
        tmp_path, end, fetch):
    conn = pooldbapi.connect({"s": f"driver=sqlite;database={tmp_path / 's.db'}"})
    conn.execute("create table t (x int)")
    conn.cursor().executemany("insert into t values (?)", [(i,) for i in range(5000)])
    conn.commit()
    cur = conn.cursor(stream=True)
    cur.execute("select x from t order by x")
    assert cur.fetchmany(500) == [(i,) for i in range(500)]  # 1,500 more of the batch in hand
    getattr(conn, end)()
    with pytest.raises(pooldbapi.InterfaceError, match=re.escape(
            "before its last row; 500 rows had been read (2000 fetched from the container)")):
        fetch(cur)
    with pytest.raises(pooldbapi.InterfaceError):
        fetch(cur)
    conn.close()


def test_streaming_on_sqlite(tmp_path):
    conn = pooldbapi.connect({"s": f"driver=sqlite;database={tmp_path / 's.db'}"})
    conn.execute("create table t (x int)")
    conn.cursor().executemany("insert into t values (?)", [(i,) for i in range(5000)])
    cur = conn.cursor(stream=True)
    cur.execute("select x from t order by x")
    assert cur.fetchone() == (0,)
    assert sum(r[0] for r in cur) == sum(range(1, 5000))
    assert cur.rowcount == 5000
    conn.close()


@pytest.mark.parametrize("arraysize, fetched", [(1, 2000), (500, 2000), (3000, 3000)])
def test_a_stream_fetches_the_larger_of_arraysize_and_2000_rows_at_a_time(pg, arraysize,
                                                                          fetched):
    """README: rows are fetched max(arraysize, 2000) at a time, as the server sees it."""
    conn = pooldbapi.connect({"pg": pg.conninfo()})
    with pg.statement_log() as log:
        cur = conn.cursor(stream=True)
        cur.arraysize = arraysize
        cur.execute("select i from generate_series(1, 7000) i")
        assert sum(1 for _ in cur) == 7000
        conn.commit()
        sizes = [int(line.split("FETCH FORWARD ")[1].split()[0])
                 for line in log().splitlines() if "FETCH FORWARD" in line]
    # 7000 rows then the empty fetch that ends the result
    assert sizes == [fetched] * (-(-7000 // fetched) + 1)
    conn.close()


@pytest.mark.parametrize("autocommit", [True, False])
def test_the_server_side_cursor_is_with_hold_in_autocommit_only(pg, autocommit):
    """README: a server-side cursor on PostgreSQL, WITH HOLD in autocommit (where it must
    outlive the DECLARE's own transaction), a plain one inside the caller's transaction."""
    conn = pooldbapi.connect({"pg": pg.conninfo()}, autocommit=autocommit)
    with pg.statement_log() as log:
        cur = conn.cursor(stream=True)
        cur.execute(BIG)
        assert cur.fetchone() == (1, "row 1")
        assert len(cur.fetchall()) == 199999
        declared = [line for line in log().splitlines() if "DECLARE" in line]
    assert len(declared) == 1
    assert ("CURSOR WITH HOLD FOR" in declared[0]) is autocommit
    assert "CURSOR FOR" in declared[0] or autocommit
    conn.close()
