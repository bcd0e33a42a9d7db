"""pooldbapi.aio over psycopg's AsyncConnection: a PostgreSQL connection's calls run the core in
greenlets on the event loop's thread (no worker thread, work over several containers as tasks),
its sessions pooled per event loop; other connections keep their worker thread."""
from __future__ import annotations

import asyncio
import sqlite3
import threading
from contextlib import closing

import psycopg
import pytest

import pooldbapi.aio
from pooldbapi import pool as pool_module
from pooldbapi.backends import pg_async

pytestmark = pytest.mark.postgresql


def run(coro):
    return asyncio.run(coro)


def table(*clusters, name, ddl="(v text)"):
    for cluster in clusters:
        with psycopg.connect(cluster.dsn, autocommit=True) as raw:
            raw.execute(f"drop table if exists {name}")
            raw.execute(f"create table {name} {ddl}")


def test_a_postgresql_connection_runs_on_the_loops_thread_over_async_sessions(pg, no_threads):
    table(pg, name="nat_one")

    async def main():
        conn = await pooldbapi.aio.connect({"p": pg.conninfo()})
        assert conn.calls.native
        cur = conn.cursor()
        await cur.execute("insert into nat_one values (%s)", ("x",))
        phys = conn.sync.transaction.borrowed["p"]
        assert isinstance(phys.link.raw, pg_async.Connection)
        assert isinstance(phys.link.raw.raw, psycopg.AsyncConnection)
        await cur.execute("select v, count(*) over () from nat_one")
        assert await cur.fetchall() == [("x", 1)]
        await conn.commit()
        await conn.close()

    run(main())
    with psycopg.connect(pg.dsn) as raw:
        assert raw.execute("select v from nat_one").fetchall() == [("x",)]


def test_work_over_two_servers_runs_as_tasks_without_a_thread(pg, pg2, no_threads):
    table(pg, pg2, name="nat_many")
    specs = {"a": pg.conninfo() + ";max-calls-per-second=50",
             "b": pg2.conninfo() + ";max-calls-per-second=50"}
    seen_threads = set()

    async def watch(done):
        while not done.is_set():
            seen_threads.update(t.name for t in threading.enumerate())
            await asyncio.sleep(0.02)

    async def main():
        conn = await pooldbapi.aio.connect(specs, default="{a,b}", autocommit=True)
        done = asyncio.Event()
        watcher = asyncio.create_task(watch(done))
        before = {t.name for t in threading.enumerate()}
        told = []
        conn.progress = lambda alias, rows: told.append(alias)
        await conn.cursor().executemany("insert into nat_many values (%s)",
                                        [(f"r{i}",) for i in range(40)])
        done.set()
        await watcher
        await conn.close()
        return before, told

    before, told = run(main())
    # no thread started for the call (the pools' reaper starts with the loop's new pools)
    assert seen_threads - before <= {"pooldbapi-reaper"}
    # each row a call of its own (throttled): the two containers were written at once
    assert sorted(told) == ["a"] * 20 + ["b"] * 20
    assert told.index("b") < len(told) - 1 - told[::-1].index("a")
    for cluster in (pg, pg2):
        with psycopg.connect(cluster.dsn) as raw:
            assert raw.execute("select count(*) from nat_many").fetchone() == (20,)


def test_a_federated_select_over_two_servers_reads_both_as_tasks(pg, pg2, no_threads):
    table(pg, name="nat_l", ddl="(id int, v text)")
    table(pg2, name="nat_r", ddl="(id int, w text)")
    with psycopg.connect(pg.dsn, autocommit=True) as raw:
        raw.execute("insert into nat_l values (1, 'a'), (2, 'b')")
    with psycopg.connect(pg2.dsn, autocommit=True) as raw:
        raw.execute("insert into nat_r values (1, 'x'), (2, 'y')")

    async def main():
        conn = await pooldbapi.aio.connect({"a": pg.conninfo(), "b": pg2.conninfo()},
                                           autocommit=True)
        cur = await conn.execute("select v, w from nat_l@a join nat_r@b using (id)"
                                 " order by v")
        rows = await cur.fetchall()
        await conn.close()
        return rows

    assert run(main()) == [("a", "x"), ("b", "y")]


def test_sessions_are_pooled_per_event_loop(pg):
    async def use():
        conn = await pooldbapi.aio.connect({"p": pg.conninfo()}, autocommit=True)
        cur = await conn.execute("select pg_backend_pid()")
        (pid,) = await cur.fetchone()
        await conn.close()
        return pid

    loop = asyncio.new_event_loop()
    try:
        first, again = loop.run_until_complete(use()), loop.run_until_complete(use())
    finally:
        loop.close()
    other = run(use())
    assert first == again  # the loop's idle session, reused
    assert other != first  # another loop never gets it
    with pooldbapi.connect({"p": pg.conninfo()}, autocommit=True) as sync:
        (pid,) = sync.execute("select pg_backend_pid()").fetchone()
        phys = next(p for p in pool_module._POOLS.values()
                    if p.spec.alias == "p" and p.key == p.spec.key)
        assert pid not in (first, other)
        assert all(not isinstance(ph.link.raw, pg_async.Connection) for ph in phys._idle)


def test_a_call_waiting_for_a_full_pool_awaits_while_the_holder_goes_on(pg, no_threads):
    table(pg, name="nat_wait", ddl="(x int)")
    spec = {"p": pg.conninfo() + ";maximum-number-of-pooled-connections=1;pool-timeout=5"}

    async def main():
        holder = await pooldbapi.aio.connect(spec)
        await holder.execute("insert into nat_wait values (1)")  # holds the one session
        other = await pooldbapi.aio.connect(spec, autocommit=True)
        waiting = asyncio.create_task(other.execute("select count(*) from nat_wait"))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # waiting for the session, the loop going on meanwhile
        await asyncio.wait_for(holder.commit(), 2)
        counted = await (await waiting).fetchone()
        await holder.close()
        await other.close()
        return counted

    assert run(main()) == (1,)


def test_sqlite_connections_keep_their_worker_thread(tmp_path):
    with closing(sqlite3.connect(tmp_path / "a.db")) as raw, raw:
        raw.execute("create table t (x int)")

    async def main():
        conn = await pooldbapi.aio.connect({"a": f"driver=sqlite;database={tmp_path / 'a.db'}"})
        assert not conn.calls.native
        await conn.execute("insert into t values (1)")
        assert conn.calls.worker is not None
        await conn.commit()
        await conn.close()

    run(main())


def test_bulk_pages_go_through_copy_and_a_streamed_source_on_async_sessions(
        pg, pg2, no_threads, monkeypatch):
    table(pg, pg2, name="nat_bulk", ddl="(id int, v text)")
    table(pg, name="nat_src", ddl="(id int, v text)")
    with psycopg.connect(pg.dsn, autocommit=True) as raw:
        raw.execute("insert into nat_src select g, 'v' || g from generate_series(1, 300) g")
    copied = []
    real = pg_async.Copy.write_row

    def write_row(self, row):
        copied.append(row)
        return real(self, row)

    async def main():
        conn = await pooldbapi.aio.connect({"a": pg.conninfo(), "b": pg2.conninfo()})
        cur = conn.cursor()
        await cur.executemany("bulk insert into nat_bulk@{a,b} (id, v) values (?, ?)",
                              [(i, f"r{i}") for i in range(200)])
        await cur.execute("bulk insert into nat_bulk@{a,b} (id, v) select id, v from nat_src@a")
        await conn.commit()
        await conn.close()

    monkeypatch.setattr(pg_async.Copy, "write_row", write_row)
    run(main())
    counts = []
    for cluster in (pg, pg2):
        with psycopg.connect(cluster.dsn) as raw:
            counts.append(raw.execute("select count(*) from nat_bulk").fetchone()[0])
    assert sum(counts) == 500 and all(counts)
    assert len(copied) == 500  # every page through COPY


@pytest.mark.parametrize("autocommit", [False, True], ids=["transaction", "autocommit"])
def test_executemany_returning_over_two_servers_answers_as_the_synchronous_api(pg, pg2,
                                                                              autocommit):
    """Each server's share goes as one executemany(returning=True) over the async session
    (each row's RETURNING row read back set by set): the rows in the caller's order, as the
    synchronous API gives them."""
    specs = {"a": pg.conninfo(), "b": pg2.conninfo()}
    sql = "insert into nat_ret (id, v) values (?, ?) returning id, v || '!'"
    rows = [(i, f"r{i}") for i in (5, 1, 4, 2, 3, 0, 7, 6)]

    def sync_rows():
        table(pg, pg2, name="nat_ret", ddl="(id int primary key, v text)")
        with pooldbapi.connect(specs, default="{a,b}", autocommit=autocommit) as conn:
            cur = conn.cursor()
            cur.executemany(sql, rows)
            return cur.fetchall(), cur.rowcount, cur.containers

    async def aio_rows():
        conn = await pooldbapi.aio.connect(specs, default="{a,b}", autocommit=autocommit)
        cur = conn.cursor()
        await cur.executemany(sql, rows)
        got = await cur.fetchall(), cur.rowcount, cur.containers
        if not autocommit:
            await conn.commit()
        await conn.close()
        return got

    expected = sync_rows()
    table(pg, pg2, name="nat_ret", ddl="(id int primary key, v text)")
    got = run(aio_rows())
    assert got == expected
    assert got[0] == [(i, f"{v}!") for i, v in rows] and got[1] == 8
    held = []
    for cluster in (pg, pg2):
        with psycopg.connect(cluster.dsn) as raw:
            held += [r[0] for r in raw.execute("select id from nat_ret")]
    assert sorted(held) == sorted(i for i, _ in rows)
