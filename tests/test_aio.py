"""pooldbapi.aio over real SQLite files and PostgreSQL clusters: the public methods, the
distribution promises, the errors and their fields."""
from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing

import psycopg
import pytest

import pooldbapi
import pooldbapi.aio

FIVE = "{eol1,eol2,eol3,eol4,eol5}"


def run(coro):
    return asyncio.run(coro)


def count(path, table="t"):
    with closing(sqlite3.connect(path)) as raw, raw:
        return raw.execute(f"select count(*) from {table}").fetchone()[0]


def lite_specs(tmp_path, n=5, extra=""):
    return {f"eol{i}": f"driver=sqlite;database={tmp_path / f'eol{i}.db'}{extra}"
            for i in range(1, n + 1)}


def make_tables(tmp_path, n=5, ddl="create table t (id integer primary key, v text)"):
    for i in range(1, n + 1):
        with closing(sqlite3.connect(tmp_path / f"eol{i}.db")) as raw, raw:
            raw.execute(ddl)


def over_two(tmp_path, extra="", autocommit=True, **options):
    """Connecting to eol1 and eol2 (lite_specs; their tables made), both the default, in
    autocommit unless told."""
    make_tables(tmp_path, 2)
    return pooldbapi.aio.connect(lite_specs(tmp_path, 2, extra), default="{eol1,eol2}",
                                 autocommit=autocommit, **options)


def test_connect_takes_connect_arguments_and_async_with_commits(tmp_path):
    make_tables(tmp_path, 1)

    async def main():
        conn = await pooldbapi.aio.connect(lite_specs(tmp_path, 1), default="eol1", seed=3,
                                           strategy="round-robin", autocommit=False)
        assert isinstance(conn, pooldbapi.aio.AsyncConnection)
        assert not conn.autocommit and conn.default == ("eol1",)
        async with conn:
            cur = conn.cursor()
            await cur.execute("insert into t (id, v) values (?, ?)", (1, "a"))
            assert cur.rowcount == 1 and cur.containers == {"eol1": 1}
        assert conn.closed

    run(main())
    assert count(tmp_path / "eol1.db") == 1


def test_connect_takes_every_argument_of_pooldbapi_connect_and_passes_it_on(tmp_path,
                                                                           monkeypatch):
    import inspect
    sync_args = inspect.signature(pooldbapi.connect).parameters
    assert list(inspect.signature(pooldbapi.aio.connect).parameters) == list(sync_args)
    given = {}
    real = pooldbapi.aio._connect

    def recording(*args, **kwargs):
        given.update(kwargs)
        return real(*args, **kwargs)
    monkeypatch.setattr(pooldbapi.aio, "_connect", recording)

    async def main():
        conn = await pooldbapi.aio.connect(lite_specs(tmp_path, 1), read_your_writes=True)
        await conn.close()

    run(main())
    assert given["read_your_writes"] is True
    assert set(given) == set(sync_args) - {"containers"}


def test_async_with_rolls_back_on_an_exception(tmp_path):
    make_tables(tmp_path, 1)

    async def main():
        with pytest.raises(ZeroDivisionError):
            async with await pooldbapi.aio.connect(lite_specs(tmp_path, 1)) as conn:
                await conn.execute("insert into t (id, v) values (1, 'a')")
                1 / 0  # noqa: B018
        assert conn.closed

    run(main())
    assert count(tmp_path / "eol1.db") == 0


def test_fetchone_fetchmany_fetchall_and_async_for(tmp_path):
    make_tables(tmp_path, 1)

    async def main():
        conn = await pooldbapi.aio.connect(lite_specs(tmp_path, 1), autocommit=True)
        cur = conn.cursor()
        await cur.executemany("insert into t (id, v) values (?, ?)",
                              [(i, f"v{i}") for i in range(10)])
        assert cur.rowcount == 10
        await cur.execute("select id, v from t order by id")
        assert [d[0] for d in cur.description] == ["id", "v"]
        assert cur.description[0][1] == pooldbapi.NUMBER
        assert await cur.fetchone() == (0, "v0")
        assert await cur.fetchmany(2) == [(1, "v1"), (2, "v2")]
        cur.arraysize = 3
        assert await cur.fetchmany() == [(3, "v3"), (4, "v4"), (5, "v5")]
        assert [row async for row in cur] == [(6, "v6"), (7, "v7"), (8, "v8"), (9, "v9")]
        assert await cur.fetchall() == []
        assert cur.rowcount == 10 and cur.containers == {"eol1": 1}
        await cur.close()
        with pytest.raises(pooldbapi.aio.InterfaceError, match="cursor is closed"):
            await cur.execute("select 1")
        await conn.close()
        with pytest.raises(pooldbapi.aio.InterfaceError, match="connection is closed"):
            conn.cursor()

    run(main())


def test_fetch_before_a_result_is_a_programming_error(tmp_path):
    async def main():
        conn = await pooldbapi.aio.connect(lite_specs(tmp_path, 1))
        with pytest.raises(pooldbapi.aio.ProgrammingError, match="execute"):
            await conn.cursor().fetchone()
        await conn.close()

    run(main())


def test_unknown_alias_is_a_programming_error_before_anything_runs(tmp_path):
    async def main():
        conn = await over_two(tmp_path)
        with pytest.raises(pooldbapi.aio.ProgrammingError, match="nope"):
            await conn.execute("insert into t@{eol1,nope} (v) values ('x')")
        await conn.close()

    run(main())
    assert count(tmp_path / "eol1.db") == count(tmp_path / "eol2.db") == 0


def test_round_robin_per_execution_over_a_list(tmp_path):
    make_tables(tmp_path)

    async def main():
        conn = await pooldbapi.aio.connect(lite_specs(tmp_path), default=FIVE, seed=1)
        cur = conn.cursor()
        seen: dict[str, int] = {}
        for i in range(10):
            await cur.execute("insert into t (v) values (?)", (f"r{i}",))
            (alias, n), = cur.containers.items()
            seen[alias] = seen.get(alias, 0) + n
        await conn.commit()
        await conn.close()
        return seen

    seen = run(main())
    assert seen == {f"eol{i}": 2 for i in range(1, 6)}
    assert [count(tmp_path / f"eol{i}.db") for i in range(1, 6)] == [2] * 5


def test_executemany_goes_round_robin_per_row(tmp_path):
    make_tables(tmp_path)

    async def main():
        conn = await pooldbapi.aio.connect(lite_specs(tmp_path), default=FIVE)
        cur = conn.cursor()
        await cur.executemany("insert into t (v) values (?)", [(f"r{i}",) for i in range(15)])
        assert cur.rowcount == 15
        assert cur.containers == {f"eol{i}": 3 for i in range(1, 6)}
        await conn.commit()
        await conn.close()

    run(main())
    assert [count(tmp_path / f"eol{i}.db") for i in range(1, 6)] == [3] * 5


def test_multi_row_values_are_regrouped_per_container(tmp_path):
    async def main():
        conn = await over_two(tmp_path)
        cur = await conn.execute(
            "insert into t (v) values ('a'), ('b'), ('c'), ('d'), ('e'), ('f')")
        assert cur.rowcount == 6 and cur.containers == {"eol1": 3, "eol2": 3}
        await conn.close()

    run(main())
    assert count(tmp_path / "eol1.db") == count(tmp_path / "eol2.db") == 3


def test_executemany_error_names_row_and_written_rows_in_autocommit(tmp_path):
    async def main():
        conn = await over_two(tmp_path, seed=0)
        rows = [(i, f"v{i}") for i in range(6)] + [(0, "dup")]
        with pytest.raises(pooldbapi.aio.IntegrityError) as info:
            await conn.cursor().executemany("insert into t (id, v) values (?, ?)", rows)
        await conn.close()
        return info.value

    err = run(main())
    assert err.row == 6 and err.container in ("eol1", "eol2")
    written = {a: len(r) for a, r in err.written.items()}
    assert written == {"eol1": count(tmp_path / "eol1.db"), "eol2": count(tmp_path / "eol2.db")}
    assert sum(written.values()) == 6 and err.unknown is None


def test_failed_transaction_raises_until_rollback(tmp_path):
    make_tables(tmp_path, 1)

    async def main():
        conn = await pooldbapi.aio.connect(lite_specs(tmp_path, 1))
        cur = conn.cursor()
        await cur.execute("insert into t (id, v) values (1, 'a')")
        await conn.commit()
        await cur.execute("insert into t (id, v) values (2, 'b')")
        await conn.rollback()
        await conn.set_autocommit(True)
        assert conn.autocommit
        await cur.execute("select count(*) from t")
        assert await cur.fetchone() == (1,)
        await conn.close()

    run(main())


def test_calls_of_one_connection_from_several_tasks_are_serialised(tmp_path):
    async def main():
        conn = await over_two(tmp_path)

        async def insert(i):
            cur = await conn.execute("insert into t (v) values (?)", (f"r{i}",))
            return cur.containers

        done = await asyncio.wait_for(asyncio.gather(*(insert(i) for i in range(20))), 60)
        await conn.close()
        return done

    done = run(main())
    assert sum(n for c in done for n in c.values()) == 20
    assert count(tmp_path / "eol1.db") == count(tmp_path / "eol2.db") == 10


@pytest.mark.postgresql
def test_postgresql_round_robin_over_two_servers(pg, pg2):
    async def main():
        conn = await pooldbapi.aio.connect({"a": pg.conninfo(), "b": pg2.conninfo()},
                                           default="{a,b}", broadcast_ddl=True,
                                           autocommit=True)
        await conn.execute("drop table if exists aio_rr")
        await conn.execute("create table aio_rr (port int)")
        try:
            for _ in range(10):
                await conn.execute("insert into aio_rr select inet_server_port()")
            counts = {}
            for alias, cluster in (("a", pg), ("b", pg2)):
                cur = await conn.execute(
                    f"select count(*), min(port), max(port) from aio_rr@{alias}")
                counts[alias] = await cur.fetchone()
                assert counts[alias][1] == counts[alias][2] == cluster.port
            assert counts["a"][0] == counts["b"][0] == 5
        finally:
            await conn.execute("drop table aio_rr")
            await conn.close()

    run(main())


@pytest.mark.postgresql
def test_postgresql_stream_cursor_reads_every_row(pg):
    async def main():
        conn = await pooldbapi.aio.connect({"p": pg.conninfo()})
        cur = conn.cursor(stream=True)
        await cur.execute("select g from generate_series(1, 5000) g")
        assert cur.rowcount == -1
        first = await cur.fetchone()
        some = await cur.fetchmany(99)
        rest = [row async for row in cur]
        assert first == (1,) and len(some) == 99 and len(rest) == 4900
        assert rest[-1] == (5000,) and cur.rowcount == 5000
        await cur.close()
        await conn.close()

    run(main())


@pytest.mark.postgresql
def test_postgresql_error_keeps_sqlstate_and_the_transaction_fails(pg):
    async def main():
        conn = await pooldbapi.aio.connect({"p": pg.conninfo()})
        await conn.execute("create table if not exists aio_uq (id int primary key)")
        await conn.commit()
        await conn.execute("insert into aio_uq values (1)")
        with pytest.raises(pooldbapi.aio.IntegrityError) as info:
            await conn.execute("insert into aio_uq values (1)")
        assert info.value.sqlstate == "23505" and info.value.container == "p"
        with pytest.raises(pooldbapi.aio.OperationalError, match="rollback"):
            await conn.execute("select 1")
        with pytest.raises(pooldbapi.aio.OperationalError):
            await conn.commit()
        await conn.execute("drop table aio_uq")
        await conn.commit()
        await conn.close()

    run(main())


@pytest.mark.postgresql
def test_postgresql_two_phase_commit(pg, pg2):
    async def main():
        conn = await pooldbapi.aio.connect({"a": pg.conninfo(), "b": pg2.conninfo()},
                                           two_phase=True, broadcast_ddl=True,
                                           default="{a,b}")
        await conn.execute("create table if not exists aio_tpc (x int)")
        await conn.commit()
        await conn.tpc_begin(conn.xid(1, "aio-tpc", "q"))
        await conn.execute("insert into aio_tpc@a values (1)")
        await conn.execute("insert into aio_tpc@b values (2)")
        await conn.tpc_prepare()
        await conn.tpc_commit()
        await conn.close()

    run(main())
    for cluster, value in ((pg, 1), (pg2, 2)):
        with psycopg.connect(cluster.dsn) as raw:
            assert raw.execute("select x from aio_tpc").fetchall() == [(value,)]
            raw.execute("drop table aio_tpc")



# -- cancellation: treated as Ctrl-C is in the synchronous API ---------------------------------
def _held_by_note(notes):
    """'eol1: 3 rows; eol2: 2 rows' in the note the core adds -> {'eol1': 3, 'eol2': 2}."""
    (note,) = [n for n in notes if "committed before the interruption" in n]
    where = note.split(": ", 2)[2]
    return {part.split(": ")[0]: int(part.split(": ")[1].split()[0])
            for part in where.split("; ")}


async def _cancel_mid_executemany(conn, rows, after):
    cur = conn.cursor()
    task = asyncio.create_task(cur.executemany("insert into t (v) values (?)", rows))
    await asyncio.sleep(after)
    assert not task.done()  # still writing: the throttle spaces its rows
    task.cancel()
    with pytest.raises(asyncio.CancelledError) as info:
        await task
    return info.value


def test_cancelled_executemany_fails_the_transaction_and_rolls_it_back(tmp_path):
    async def main():
        conn = await over_two(tmp_path, ";max-calls-per-second=20", autocommit=False)
        cancelled = await _cancel_mid_executemany(conn, [(f"r{i}",) for i in range(400)], 1.0)
        assert any("interrupted" in n and "failed" in n for n in cancelled.__notes__)
        # rolled back on the containers already: another writer is not kept waiting
        for i in (1, 2):
            with closing(sqlite3.connect(tmp_path / f"eol{i}.db", timeout=0)) as raw, raw:
                raw.execute("insert into t (v) values ('other')")
        assert count(tmp_path / "eol1.db") == count(tmp_path / "eol2.db") == 1
        with pytest.raises(pooldbapi.aio.OperationalError, match="rollback"):
            await conn.execute("select count(*) from t")
        with pytest.raises(pooldbapi.aio.OperationalError, match="interrupted"):
            await conn.commit()
        cur = await conn.execute("select count(*) from t@eol1")  # usable again
        assert await cur.fetchone() == (1,)
        await conn.close()

    run(main())


def test_cancelled_executemany_in_autocommit_reports_the_committed_rows(tmp_path):
    async def main():
        conn = await over_two(tmp_path, ";max-calls-per-second=20")
        cancelled = await _cancel_mid_executemany(conn, [(f"r{i}",) for i in range(400)], 1.0)
        reported = _held_by_note(cancelled.__notes__)
        cur = await conn.execute("select count(*) from t@eol1")
        assert await cur.fetchone() == (reported.get("eol1", 0),)
        await conn.close()
        return reported

    reported = run(main())
    assert 0 < sum(reported.values()) < 400
    assert reported == {a: n for a, n in (("eol1", count(tmp_path / "eol1.db")),
                                          ("eol2", count(tmp_path / "eol2.db"))) if n}


def test_a_task_cancelled_while_waiting_for_the_connection_runs_nothing(tmp_path):
    make_tables(tmp_path, 1)
    specs = lite_specs(tmp_path, 1, ";max-calls-per-second=20")

    async def main():
        conn = await pooldbapi.aio.connect(specs, autocommit=True)
        busy = asyncio.create_task(conn.cursor().executemany(
            "insert into t (v) values (?)", [("a",)] * 20))
        await asyncio.sleep(0.1)
        waiting = asyncio.create_task(conn.execute("insert into t (v) values ('never')"))
        await asyncio.sleep(0.1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await busy
        cur = await conn.execute("select count(*) from t where v = 'never'")
        assert await cur.fetchone() == (0,)
        await conn.close()

    run(main())


@pytest.mark.postgresql
def test_a_connections_calls_run_one_at_a_time_in_order_of_arrival(pg):
    from pooldbapi import waits
    ran = []

    def call(name):
        def fn():
            ran.append(f"{name} in")
            waits.sleep(0.02)
            ran.append(f"{name} out")
            return name
        return fn

    async def main():
        conn = await pooldbapi.aio.connect({"p": pg.conninfo()})
        tasks = [asyncio.create_task(conn.calls.run(call(name))) for name in "abcd"]
        got = await asyncio.gather(*tasks)
        door = (conn.calls.busy, len(conn.calls.waiters))
        await conn.close()
        return got, door

    got, door = run(main())
    assert got == list("abcd")
    assert ran == [f"{n} {w}" for n in "abcd" for w in ("in", "out")]
    assert door == (False, 0)


@pytest.mark.postgresql
def test_a_call_cancelled_as_the_door_is_handed_to_it_hands_it_on_and_runs_nothing(pg):
    from pooldbapi import waits
    ran = []

    async def main():
        conn = await pooldbapi.aio.connect({"p": pg.conninfo()})
        loop = asyncio.get_running_loop()
        later: dict[str, asyncio.Task] = {}

        def first():
            waits.sleep(0.02)
            ran.append("first")
            # runs before the second call's task is woken by the hand-over
            loop.call_soon(later["second"].cancel)

        first_task = asyncio.create_task(conn.calls.run(first))
        await asyncio.sleep(0)
        later["second"] = asyncio.create_task(conn.calls.run(lambda: ran.append("second")))
        third = asyncio.create_task(conn.calls.run(lambda: ran.append("third")))
        await first_task
        with pytest.raises(asyncio.CancelledError):
            await later["second"]
        await third
        door = (conn.calls.busy, len(conn.calls.waiters))
        await conn.close()
        return door

    assert run(main()) == (False, 0)
    assert ran == ["first", "third"]


@pytest.mark.postgresql
def test_postgresql_cancelled_executemany_leaves_no_open_transaction(pg, pg2):
    for cluster in (pg, pg2):
        with psycopg.connect(cluster.dsn, autocommit=True) as raw:
            raw.execute("create table if not exists aio_cancel (v text)")
            raw.execute("truncate aio_cancel")
    specs = {a: c.conninfo(application_name="aio-cancel") + ";max-calls-per-second=20"
             for a, c in (("a", pg), ("b", pg2))}

    async def main():
        conn = await pooldbapi.aio.connect(specs, default="{a,b}")
        cur = conn.cursor()
        task = asyncio.create_task(cur.executemany("insert into aio_cancel (v) values (?)",
                                                   [(f"r{i}",) for i in range(400)]))
        await asyncio.sleep(1.0)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for cluster in (pg, pg2):
            with psycopg.connect(cluster.dsn) as raw:
                assert raw.execute("select count(*) from aio_cancel").fetchone() == (0,)
                assert raw.execute(
                    "select count(*) from pg_stat_activity where application_name ="
                    " 'aio-cancel' and state <> 'idle'").fetchone() == (0,)
        with pytest.raises(pooldbapi.aio.OperationalError):
            await conn.commit()
        await conn.close()

    run(main())


def test_the_task_context_reaches_the_call_and_progress_is_told(tmp_path):
    """contextvars (OpenTelemetry's current span among them) cross into the worker thread."""
    import contextvars
    make_tables(tmp_path, 1)
    request = contextvars.ContextVar("request", default="none")
    told = []

    async def main():
        conn = await pooldbapi.aio.connect(lite_specs(tmp_path, 1), autocommit=True)
        conn.progress = lambda alias, rows: told.append((alias, rows, request.get()))
        request.set("r-42")
        await conn.cursor().executemany("insert into t (v) values (?)", [("a",), ("b",)])
        await conn.close()

    run(main())
    assert told == [("eol1", 2, "r-42")]


def test_callproc_explain_lastrowid_rownumber_and_nextset(tmp_path):
    async def main():
        conn = await over_two(tmp_path)
        cur = conn.cursor()
        await cur.execute("insert into t@eol2 (id, v) values (41, 'x')")
        assert cur.lastrowid == 41
        assert await cur.callproc("abs@eol1", (-3,)) == [-3]
        assert await cur.fetchall() == [(3,)]
        await cur.explain("select v from t@eol1 join t@eol2 using (id)")
        steps = await cur.fetchall()
        assert {s[1] for s in steps if s[1]} == {"eol1", "eol2", "local"}
        await cur.execute("select 1 union all select 2")
        assert cur.rownumber == 0
        await cur.fetchone()
        assert cur.rownumber == 1
        cur.setinputsizes([None])
        cur.setoutputsize(10)
        with pytest.raises(pooldbapi.aio.NotSupportedError):
            cur.nextset()
        cur.default = "eol2"
        await cur.execute("select count(*) from t")
        assert await cur.fetchone() == (1,) and cur.containers == {"eol2": 1}
        await conn.close()

    run(main())


def _in_child(work) -> int:
    """Run the coroutine work in a forked child, on an event loop of the child's own, and
    return the child's exit code: the coroutine's result, 2 where it raised."""
    import os
    child = os.fork()
    if child == 0:
        code = 2
        try:
            code = asyncio.run(work)
        finally:
            os._exit(code)
    work.close()  # (the parent's copy is never run)
    _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.postgresql
def test_a_forked_child_never_uses_the_parents_sessions(pg):
    """The child's own event loop and worker threads; its parent's transaction cannot go on
    there (nothing sent on the parent's session), the parent's does."""
    with psycopg.connect(pg.dsn, autocommit=True) as raw:
        raw.execute("create table if not exists aio_fork (who text)")
        raw.execute("truncate aio_fork")

    async def parent_part():
        conn = await pooldbapi.aio.connect({"p": pg.conninfo()})
        await conn.execute("insert into aio_fork values ('parent')")
        return conn

    async def child_part(conn):
        try:
            await conn.execute("insert into aio_fork values ('child, parent session')")
        except pooldbapi.aio.InterfaceError as err:
            assert "forked" in str(err)
        else:
            return 1
        await conn.rollback()
        await conn.execute("insert into aio_fork values ('child')")
        await conn.commit()
        await conn.close()
        return 0

    loop = asyncio.new_event_loop()
    try:
        conn = loop.run_until_complete(parent_part())
        assert _in_child(child_part(conn)) == 0
        loop.run_until_complete(conn.commit())
        loop.run_until_complete(conn.close())
    finally:
        loop.close()
    with psycopg.connect(pg.dsn) as raw:
        assert sorted(r[0] for r in raw.execute("select who from aio_fork")) == \
            ["child", "parent"]


def test_a_forked_child_connects_and_runs_sqlite_calls_on_threads_of_its_own(tmp_path):
    """connect()'s shared threads and a connection's worker thread are the parent's: a child
    makes its own at its first call."""

    from pooldbapi.aio import calls
    make_tables(tmp_path, 1)
    specs = lite_specs(tmp_path, 1)

    async def insert(conn, who):
        await conn.execute("insert into t (v) values (?)", (who,))
        await conn.commit()

    async def child_part(conn):
        if calls._connects._executor is not None or conn.calls.worker is not None:
            return 3  # the parent's threads, which do not exist here
        await insert(conn, "child, parent's connection")  # (SQLite: a file, no session kept)
        mine = await pooldbapi.aio.connect(specs)
        await insert(mine, "child")
        await mine.close()
        await conn.close()
        return 0

    loop = asyncio.new_event_loop()
    try:
        conn = loop.run_until_complete(pooldbapi.aio.connect(specs))
        loop.run_until_complete(insert(conn, "parent"))
        assert calls._connects._executor is not None and conn.calls.worker is not None
        assert _in_child(child_part(conn)) == 0
        loop.run_until_complete(insert(conn, "parent again"))
        loop.run_until_complete(conn.close())
    finally:
        loop.close()
    with closing(sqlite3.connect(tmp_path / "eol1.db")) as raw:
        assert sorted(r[0] for r in raw.execute("select v from t")) == \
            ["child", "child, parent's connection", "parent", "parent again"]


@pytest.mark.postgresql
def test_postgresql_a_statement_that_ends_after_its_cancellation_says_what_it_committed(
        pg, monkeypatch):
    # the server asked to cancel it finishes it first (here: the request never arrives)
    async def not_arriving(self, *, timeout=30.0):
        return None
    monkeypatch.setattr(psycopg.AsyncConnection, "cancel_safe", not_arriving)
    with psycopg.connect(pg.dsn, autocommit=True) as raw:
        raw.execute("create table if not exists aio_slow (v text)")
        raw.execute("truncate aio_slow")

    async def main():
        conn = await pooldbapi.aio.connect({"p": pg.conninfo()}, autocommit=True)
        task = asyncio.create_task(conn.execute(
            "insert into aio_slow select 'x' from pg_sleep(0.5)"))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as info:
            await task
        await conn.close()
        return info.value.__notes__

    notes = run(main())
    assert notes == [("pooldbapi: the call ended before the cancellation took effect:"
                      " rowcount 1 on p")]
    with psycopg.connect(pg.dsn) as raw:
        assert raw.execute("select count(*) from aio_slow").fetchone() == (1,)


def test_connections_waiting_for_a_full_pool_never_hold_back_the_call_that_frees_it(
        tmp_path, monkeypatch):
    # every worker of a shared executor could be taken by calls waiting for the pool's one
    # session: the commit that gives it back would then wait for a worker until pool-timeout
    from pooldbapi import waits
    from pooldbapi.aio import calls
    monkeypatch.setattr(calls, "_connects", waits.SharedThreads(2, "pooldbapi-aio"))
    make_tables(tmp_path, 1, "create table t (x int)")
    spec = {"eol1": f"driver=sqlite;database={tmp_path / 'eol1.db'};"
                    "maximum-number-of-pooled-connections=1;pool-timeout=5"}

    async def main():
        holder = await pooldbapi.aio.connect(spec)
        await holder.execute("insert into t values (1)")  # holds the one session
        others = [await pooldbapi.aio.connect(spec, autocommit=True) for _ in range(3)]
        waiting = [asyncio.create_task(o.execute("select count(*) from t")) for o in others]
        await asyncio.sleep(0.3)  # every other call is waiting for the session
        await asyncio.wait_for(holder.commit(), 2)
        counts = [(await (await w).fetchone())[0] for w in waiting]
        for conn in [holder, *others]:
            await conn.close()
        return counts

    assert run(main()) == [1, 1, 1]
