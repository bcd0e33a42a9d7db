"""Per-row and per-page distribution over real SQLite files and PostgreSQL clusters."""
from __future__ import annotations

import collections
import time

import psycopg
import pytest

import pooldbapi


def sqlite_containers(tmp_path, names, **extra):
    tail = "".join(f";{k}={v}" for k, v in extra.items())
    return {a: f"driver=sqlite;database={tmp_path / a}.db{tail}" for a in names}


def counts(conn, table, aliases):
    return {a: conn.execute(f"select count(*) from {table}@{a}").fetchone()[0] for a in aliases}


@pytest.fixture
def three(tmp_path):
    conn = pooldbapi.connect(sqlite_containers(tmp_path, ("a", "b", "c"), page_size=4),
                             default="{a,b,c}", broadcast_ddl=True, seed=11)
    conn.execute("create table t (id integer primary key, v text)")
    conn.execute("create table s (id integer primary key, v text)")
    conn.commit()
    yield conn
    conn.close()


def test_multi_row_values_are_split_per_row(three):
    cur = three.execute("insert into t@{a,b,b} (id, v) values (1, ?), (2, ?), (3, 'lit?')",
                        ("x", "y"))
    assert cur.rowcount == 3
    assert cur.containers == {"a": 1, "b": 2}
    three.commit()
    rows = {r[0]: r[1] for a in ("a", "b") for r in three.execute(f"select id, v from t@{a}")}
    assert rows == {1: "x", 2: "y", 3: "lit?"}


def test_rows_end_where_on_conflict_begins(three):
    """'on conflict (id)' after the rows is not a row: two rows, two statements, one each."""
    cur = three.execute("insert into t@{a,b} (id, v) values (1, 'x'), (2, 'y')"
                        " on conflict (id) do update set v = excluded.v")
    assert cur.rowcount == 2 and cur.containers == {"a": 1, "b": 1}
    three.commit()
    rows = sorted(tuple(r) for a in ("a", "b") for r in three.execute(f"select id, v from t@{a}"))
    assert rows == [(1, "x"), (2, "y")]


def test_multi_row_values_on_one_container_run_whole(three):
    cur = three.execute("insert into t@{c,c} (id) values (1), (2)")
    assert cur.containers == {"c": 1} and cur.rowcount == 2


@pytest.mark.parametrize("autocommit", [False, True])
def test_returning_rows_come_back_in_the_order_of_the_rows_over_a_list(three, autocommit):
    """A multi-row insert with RETURNING spread over containers returns each row's RETURNING
    row, in the order the rows were written, and they are the rows the databases hold."""
    three.autocommit = autocommit
    cur = three.execute("insert into t@{a,b,c} (v) values (?), (?), (?), (?) returning id, v",
                        ("w", "x", "y", "z"))
    returned = cur.fetchall()
    assert [r[1] for r in returned] == ["w", "x", "y", "z"]
    assert [d[0] for d in cur.description] == ["id", "v"]
    cur.executemany("insert into t@{a,b,c} (v) values (?) returning v, id",
                    [(f"m{i}",) for i in range(5)])
    many = cur.fetchall()
    assert [r[0] for r in many] == [f"m{i}" for i in range(5)]
    if not autocommit:
        three.commit()
    held = {(a, r[0], r[1]) for a in ("a", "b", "c")
            for r in three.execute(f"select id, v from t@{a}")}
    # each returned (id, v) is a row of the container the row went to, and nothing else is held
    assert {(r[0], r[1]) for r in returned} | {(r[1], r[0]) for r in many} == \
        {(i, v) for _, i, v in held}
    assert len(held) == 9


def test_named_placeholders_in_split_rows(three):
    three.execute("insert into t@{a,b} (id, v) values (:x, :v), (:y, :v)",
                  {"x": 1, "y": 2, "v": "same"})
    three.commit()
    got = [tuple(r) for a in ("a", "b") for r in three.execute(f"select id, v from t@{a}")]
    assert sorted(got) == [(1, "same"), (2, "same")]


def test_insert_select_on_one_container_runs_whole(three):
    three.execute("insert into s@a values (1, 'x'), (2, 'y')")
    cur = three.execute("insert into t@a select id, v from s@a")
    assert cur.containers == {"a": 1} and cur.rowcount == 2


def test_insert_select_across_containers_reads_then_writes_per_row(three):
    three.cursor().executemany("insert into s@c values (?, ?)", [(i, f"v{i}") for i in range(9)])
    cur = three.execute("insert into t@{a,b,b} (id, v) select id, v from s@c where id < ?", (6,))
    assert cur.rowcount == 6
    assert cur.containers == {"a": 2, "b": 4}
    three.commit()
    assert counts(three, "t", "ab") == {"a": 2, "b": 4}


def test_bulk_insert_pages_are_whole_and_spread(three):
    cur = three.cursor()
    cur.executemany("bulk insert into t@{a,b,c} (id, v) values (?, ?)",
                    [(i, str(i)) for i in range(22)])  # page-size 4: 6 pages
    assert cur.rowcount == 22
    assert cur.containers == {"a": 2, "b": 2, "c": 2}
    three.commit()
    per = {a: sorted(r[0] for r in three.execute(f"select id from t@{a}")) for a in "abc"}
    assert sorted(i for ids in per.values() for i in ids) == list(range(22))
    for ids in per.values():  # each container holds whole pages of consecutive rows
        pages = {i // 4 for i in ids}
        assert sum(min(4, 22 - 4 * p) for p in pages) == len(ids)


def test_bulk_insert_from_select(three):
    three.cursor().executemany("insert into s@a values (?, ?)", [(i, "s") for i in range(10)])
    cur = three.execute("bulk insert into t@{b,c} select id, v from s@a")
    assert cur.rowcount == 10 and sum(cur.containers.values()) == 3


def test_failing_row_names_row_and_container_and_nothing_is_left_after_rollback(three):
    three.execute("insert into t@a (id, v) values (100, 'taken')")
    three.execute("insert into t@b (id, v) values (100, 'taken')")
    three.commit()
    rows = [(i, "r") for i in range(20)] + [(100, "dup")] + [(i, "r") for i in range(20, 40)]
    with pytest.raises(pooldbapi.IntegrityError) as info:
        three.cursor().executemany("insert into t@{a,b} (id, v) values (?, ?)", rows)
    err = info.value
    assert err.row == 20
    assert err.container in ("a", "b")
    assert "row 20" in str(err) and f"container {err.container}" in str(err)
    written = err.written
    assert set(written) <= {"a", "b"}
    assert all(i < len(rows) and i != 20 for ids in written.values() for i in ids)
    three.rollback()
    assert counts(three, "t", "ab") == {"a": 1, "b": 1}


def test_failure_in_autocommit_reports_exactly_what_was_written(tmp_path):
    conn = pooldbapi.connect(sqlite_containers(tmp_path, ("a", "b")), default="{a,b}",
                             broadcast_ddl=True, seed=1, autocommit=True)
    conn.execute("create table t (id integer primary key)")
    conn.execute("insert into t@a values (7)")
    rows = [(i,) for i in range(6)] + [(7,)] + [(i,) for i in range(8, 12)]
    with pytest.raises(pooldbapi.IntegrityError) as info:
        conn.cursor().executemany("insert into t@{a,b} values (?)", rows)
    stored = {a: {r[0] for r in conn.execute(f"select id from t@{a}")} for a in "ab"}
    stored["a"].discard(7)
    assert {a: set(ids) for a, ids in info.value.written.items()} == \
        {a: {rows[i][0] for i in ids} for a, ids in stored.items() if ids} or \
        {a: {rows[i][0] for i in ids} for a, ids in info.value.written.items()} == stored
    conn.close()


def test_bad_parameters_are_raised_before_anything_is_written(three):
    with pytest.raises(pooldbapi.ProgrammingError, match="takes 2 parameters"):
        three.cursor().executemany("insert into t@{a,b} (id, v) values (?, ?)",
                                   [(1, "x"), (2, "y"), (3,)])
    assert counts(three, "t", "ab") == {"a": 0, "b": 0}


def test_synchronize_inserts_updates_deletes_and_ignores(three):
    cur = three.cursor()
    cur.executemany("insert into s@a (id, v) values (?, ?)", [(1, "one"), (2, "two"), (3, "3")])
    cur.executemany("insert into t@b (id, v) values (?, ?)", [(2, "old"), (3, "3"), (9, "gone")])
    three.commit()
    cur.execute("synchronize s@a to t@b with insert or update or delete identified by id")
    assert cur.rowcount == 3  # insert 1, update 2, delete 9
    three.commit()
    assert sorted(tuple(r) for r in three.execute("select id, v from t@b")) == \
        [(1, "one"), (2, "two"), (3, "3")]
    cur.execute("update s@a set v = 'changed' where id = 3")
    cur.execute("synchronize s@a to t@b with update identified by id ignore changes to v")
    assert cur.rowcount == 0


def test_synchronize_writes_each_row_to_the_next_target_container(three):
    cur = three.cursor()
    cur.executemany("insert into s@a (id, v) values (?, ?)", [(i, "x") for i in range(12)])
    cur.execute("synchronize s@a to t@{b,c} with insert identified by id")
    assert cur.rowcount == 12 and cur.containers == {"b": 6, "c": 6}


@pytest.mark.parametrize("rows, message", [
    ([(1, "a"), (1, "b")], "more than once"),
    ([(None, "a")], "null key"),
])
def test_synchronize_refuses_bad_source_keys_before_writing(tmp_path, rows, message):
    conn = pooldbapi.connect(sqlite_containers(tmp_path, ("a", "b")), broadcast_ddl=True,
                             default="{a,b}")
    conn.execute("create table s (id int, v text)")
    conn.execute("create table t (id int, v text)")
    conn.cursor().executemany("insert into s@a values (?, ?)", rows)
    with pytest.raises(pooldbapi.ProgrammingError, match=message):
        conn.execute("synchronize s@a to t@b with insert identified by id")
    assert conn.execute("select count(*) from t@b").fetchone()[0] == 0
    conn.close()


def test_synchronize_between_sqlite_and_postgresql(tmp_path, pg):
    conn = pooldbapi.connect({"lite": f"driver=sqlite;database={tmp_path / 'l.db'}",
                              "pg": pg.conninfo()}, autocommit=True)
    conn.execute("create table items@lite (id int, name text, price numeric)")
    conn.execute("create table items@pg (id int primary key, name text, price numeric)")
    try:
        conn.cursor().executemany("insert into items@lite values (?, ?, ?)",
                                  [(1, "a", 1.5), (2, "b", 2), (3, "c", 3.25)])
        conn.execute("insert into items@pg values (2, 'b', 2.0), (4, 'd', 4)")
        cur = conn.execute("synchronize items@lite to items@pg with insert or update or delete"
                           " identified by id")
        assert cur.rowcount == 3  # insert 1 and 3, delete 4; 2 equal (2 == 2.0)
        got = conn.execute("select id, name, price from items@pg order by id").fetchall()
        assert [(r[0], r[1], float(r[2])) for r in got] == [(1, "a", 1.5), (2, "b", 2.0),
                                                            (3, "c", 3.25)]
    finally:
        conn.execute("drop table items@pg")
        conn.close()


def test_bulk_insert_into_postgresql_uses_copy(tmp_path, pg, pg2):
    conn = pooldbapi.connect({"p1": pg.conninfo(page_size="100"),
                              "p2": pg2.conninfo(page_size="100"),
                              "lite": f"driver=sqlite;database={tmp_path / 'src.db'}"},
                             broadcast_ddl=True, autocommit=True)
    conn.execute("create table bulk@{p1,p2} (id int primary key, label text)")
    conn.execute("create table src@lite (id int, label text)")
    try:
        with pg.statement_log() as log1, pg2.statement_log() as log2:
            conn.cursor().executemany("insert into src@lite values (?, ?)",
                                      [(i, f"l{i}") for i in range(1000)])
            cur = conn.execute("bulk insert into bulk@{p1,p2} (id, label) select id, label"
                               " from src@lite")
            assert cur.rowcount == 1000 and cur.containers == {"p1": 5, "p2": 5}
            for cluster, log in ((pg, log1), (pg2, log2)):
                with psycopg.connect(cluster.dsn) as raw:
                    assert raw.execute("select count(*) from bulk").fetchone() == (500,)
                assert log().count("COPY bulk (id, label) FROM STDIN") == 5
    finally:
        conn.execute("drop table bulk@{p1,p2}")
        conn.close()


def test_executemany_over_two_postgresql_servers_and_unique_violation(pg, pg2):
    conn = pooldbapi.connect({"p1": pg.conninfo(), "p2": pg2.conninfo()}, broadcast_ddl=True,
                             default="{p1,p2}", seed=5)
    conn.autocommit = True
    conn.execute("create table em (id int primary key)")
    conn.autocommit = False
    try:
        cur = conn.cursor()
        cur.executemany("insert into em values (?)", [(i,) for i in range(100)])
        assert cur.rowcount == 100 and cur.containers == {"p1": 50, "p2": 50}
        conn.commit()
        conn.execute("insert into em@p1 values (1000)")
        conn.execute("insert into em@p2 values (1000)")
        conn.commit()
        with pytest.raises(pooldbapi.IntegrityError) as info:
            cur.executemany("insert into em values (?)", [(i,) for i in range(100, 110)] +
                            [(1000,)] + [(i,) for i in range(110, 120)])
        assert info.value.sqlstate == "23505" and info.value.row == 10
        conn.rollback()
        total = sum(conn.execute(f"select count(*) from em@{a}").fetchone()[0]
                    for a in ("p1", "p2"))
        assert total == 102
    finally:
        conn.rollback()
        conn.autocommit = True
        conn.execute("drop table em")
        conn.close()


def test_throttled_containers_share_the_rate(tmp_path):
    conn = pooldbapi.connect(sqlite_containers(tmp_path, ("a", "b"), max_calls_per_second=40),
                             default="{a,b}", broadcast_ddl=True, autocommit=True)
    conn.execute("create table t (id int)")
    start = time.monotonic()
    conn.cursor().executemany("insert into t values (?)", [(i,) for i in range(40)])
    both = time.monotonic() - start
    start = time.monotonic()
    conn.cursor().executemany("insert into t@a values (?)", [(i,) for i in range(40)])
    one = time.monotonic() - start
    # 40 rows at 40 calls/s: about 1 s on one container, about half over two in parallel
    assert one > 0.9
    assert both < one * 0.8
    assert collections.Counter(counts(conn, "t", "ab")) == {"a": 60, "b": 20}
    conn.close()


def test_insert_and_bulk_insert_from_select_stream_the_source(tmp_path, pg):
    conn = pooldbapi.connect({"pg": pg.conninfo(),
                              **sqlite_containers(tmp_path, ("a", "b"), page_size=100)},
                             broadcast_ddl=True, autocommit=True)
    conn.execute("create table src@pg (id int, label text)")
    conn.execute("create table dst@{a,b} (id int, label text)")
    with psycopg.connect(pg.dsn, autocommit=True) as raw:
        raw.execute("insert into src select i, 'l' || i from generate_series(0, 999) i")
    try:
        with pg.statement_log() as log:
            cur = conn.execute("bulk insert into dst@{a,b} select id, label from src@pg")
            assert cur.rowcount == 1000 and cur.containers == {"a": 5, "b": 5}
            # read in rounds of one page per target container: 200 rows a fetch, never all
            fetches = log().count("FETCH FORWARD 200 FROM")  # the last, empty one may lag
            assert 5 <= fetches <= 6 and "FETCH ALL" not in log()
        cur = conn.execute("insert into dst@{a,b} select id, label from src@pg where id < 10")
        assert cur.rowcount == 10 and cur.containers == {"a": 5, "b": 5}
        assert sum(conn.execute(f"select count(*) from dst@{a}").fetchone()[0]
                   for a in "ab") == 1010
    finally:
        conn.execute("drop table src@pg")
        conn.close()


def test_work_for_one_container_runs_on_the_callers_thread(tmp_path, monkeypatch):
    """No hand-off where there is nothing to run in parallel: one container's rows are written
    on the calling thread; several containers' go to the worker pool."""
    from pooldbapi import runner
    submitted = []
    real = runner.executor

    def counting():
        pool = real()

        class Counting:
            def submit(self, *args, **kwargs):
                submitted.append(args[0])
                return pool.submit(*args, **kwargs)
        return Counting()

    monkeypatch.setattr(runner, "executor", counting)
    conn = pooldbapi.connect({a: f"driver=sqlite;database={tmp_path / a}.db" for a in "ab"},
                             default="{a,b}", broadcast_ddl=True, autocommit=True)
    conn.execute("create table t (x int)")
    conn.cursor().executemany("insert into t@a values (?)", [(i,) for i in range(50)])
    conn.execute("select count(*) from t@a").fetchall()
    assert submitted == []
    conn.cursor().executemany("insert into t values (?)", [(i,) for i in range(50)])
    assert len(submitted) == 2  # one worker per container
    conn.close()


def test_an_error_in_a_later_round_names_every_row_written_in_earlier_ones(three, monkeypatch):
    """insert ... select read in rounds: the error of round 2 reports (and .written holds) the
    rows of round 1 too, exactly what the databases keep in autocommit."""
    from pooldbapi.ops import dml
    monkeypatch.setattr(dml, "READ_BATCH", 2)
    three.autocommit = True
    three.execute("insert into s@a (id, v) values (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'),"
                  " (5, 'e')")
    for alias in ("a", "b"):
        three.execute(f"insert into t@{alias} (id, v) values (4, 'taken')")
    with pytest.raises(pooldbapi.IntegrityError) as info:
        three.execute("insert into t@{a,b} (id, v) select id, v from s@a order by id")
    err = info.value
    assert err.row == 3 and not err.transaction_failed
    held = {a: sorted(r[0] for r in three.execute(f"select id from t@{a} where v <> 'taken'"))
            for a in ("a", "b")}
    assert {a: sorted(i + 1 for i in rows) for a, rows in err.written.items()} == \
        {a: ids for a, ids in held.items() if ids}
    # rounds 1 (rows 0, 1) whole; of round 2, row 2 runs on the other container at the same
    # time as the failing row 3 and is written or stopped at its row boundary
    assert sum(len(r) for r in err.written.values()) in (2, 3)
    summary = "; ".join(f"{a}: {len(ids)} rows" for a, ids in sorted(held.items()) if ids)
    assert f"(row 3 on container {err.container}; written before the error: {summary})" \
        in str(err)
    # the message is built from the fields when shown: args keep the reason alone
    assert err.args == (err.reason,) and "written before" not in err.reason
    assert str(err).startswith(err.reason)
