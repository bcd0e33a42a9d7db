"""pooldbapi.aio's cancellations and loop ends, bounded and tidy: a cancelled statement is
cancelled on its PostgreSQL server (as psycopg's AsyncConnection cancels it), a hung server's
wait ends within the grace, a commit that ended anyway says so, an event loop's sessions close
with it, no task's exception is left unretrieved, a closed connection's calls start no thread.
Compared with psycopg's AsyncConnection where it stands in for it."""
from __future__ import annotations

import asyncio
import gc
import os
import signal
import sqlite3
import threading
import time
from contextlib import closing

import psycopg
import pytest

import pooldbapi
import pooldbapi.aio
from pooldbapi.aio import calls


def _timed(coro_fn, timeout):
    """Seconds until wait_for(coro_fn(), timeout) raised TimeoutError, and its notes."""
    async def main():
        started = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            await asyncio.wait_for(coro_fn(), timeout)
        return time.monotonic() - started, getattr(info.value.__context__, "__notes__", None)
    return main()


@pytest.mark.parametrize("autocommit", [True, False])
def test_a_cancelled_statement_is_cancelled_on_the_server_as_psycopg_cancels_it(pg,
                                                                               autocommit):
    async def main():
        native = await psycopg.AsyncConnection.connect(pg.dsn, autocommit=autocommit)
        took_native, _ = await _timed(lambda: native.execute("select pg_sleep(30)"), 0.5)
        await native.rollback()
        assert (await (await native.execute("select 1")).fetchall()) == [(1,)]
        await native.close()
        conn = await pooldbapi.aio.connect({"p": pg.conninfo()}, autocommit=autocommit)
        cur = conn.cursor()
        took, notes = await _timed(lambda: cur.execute("select pg_sleep(30)"), 0.5)
        await conn.rollback()  # (in a transaction, failed by the cancellation)
        # the same statement prepared, run from the task with its session at hand
        await cur.execute("select pg_sleep(?)", (0,))
        await cur.execute("select pg_sleep(?)", (0,))
        took_at_hand, _ = await _timed(lambda: cur.execute("select pg_sleep(?)", (30,)), 0.5)
        await conn.rollback()
        await cur.execute("select 2")
        after = await cur.fetchall()
        await conn.close()
        return took_native, took, took_at_hand, notes, after

    took_native, took, took_at_hand, notes, after = asyncio.run(main())
    assert took_native < 5 and took < 5 and took_at_hand < 5  # (the statement: 30 s)
    assert after == [(2,)]
    if autocommit:
        assert notes == [("pooldbapi: the statement was cancelled on p: nothing of it was"
                          " committed")]
    assert sum(s.in_use for s in pooldbapi.pool_stats()) == 0


def test_a_hung_server_s_statement_ends_within_the_grace_after_a_cancellation(
        pg, monkeypatch):
    """The session's server process stopped (SIGSTOP): the cancel request cannot take effect,
    so once the grace has passed the session's socket is shut and the call ends, its session
    lost; the connection goes on with another."""
    monkeypatch.setattr(calls, "CANCEL_GRACE", 1.0)

    async def main():
        conn = await pooldbapi.aio.connect({"p": pg.conninfo()})
        cur = conn.cursor()
        await cur.execute("select pg_backend_pid()")
        pid = (await cur.fetchone())[0]
        os.kill(pid, signal.SIGSTOP)
        resume = threading.Timer(20, os.kill, (pid, signal.SIGCONT))
        resume.start()
        try:
            took, _ = await _timed(lambda: cur.execute("select 1"), 0.5)
        finally:
            resume.cancel()
            os.kill(pid, signal.SIGCONT)
        await conn.rollback()
        await cur.execute("select 3")
        after = await cur.fetchall()
        await conn.close()
        return took, after

    took, after = asyncio.run(main())
    assert took < 5  # 0.5 s, the cancel request (answered at once), then 1 s of grace
    assert after == [(3,)]


def test_a_commit_that_ended_despite_its_cancellation_says_it_committed(tmp_path):
    files = {a: str(tmp_path / f"{a}.db") for a in ("s1", "s2")}
    for path in files.values():
        with closing(sqlite3.connect(path)) as raw:
            raw.execute("create table t (k int)")

    async def main():
        conn = await pooldbapi.aio.connect(
            {a: f"driver=sqlite;database={p}" for a, p in files.items()}, default="{s1,s2}")
        await conn.cursor().executemany("insert into t (k) values (?)",
                                        [(i,) for i in range(10)])
        task = asyncio.ensure_future(conn.commit())
        await asyncio.sleep(0)  # the commit has started on the connection's worker
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as info:
            await task
        await conn.close()
        return getattr(info.value, "__notes__", None)

    notes = asyncio.run(main())
    held = {}
    for alias, path in files.items():
        with closing(sqlite3.connect(path)) as raw:
            held[alias] = raw.execute("select count(*) from t").fetchone()[0]
    if notes == [("pooldbapi: the commit ended before the cancellation took effect: the"
                  " transaction is committed")]:
        assert held == {"s1": 5, "s2": 5}
    else:  # (cancelled before the worker began it: failed and rolled back, and it says so)
        assert held == {"s1": 0, "s2": 0} and notes and "rolled back" in notes[-1]


def test_an_event_loop_s_sessions_close_with_it(pg):
    """Each asyncio.run() opens sessions of its own (a session belongs to its loop); they are
    closed as the loop ends, not left open on the server until the reaper's idle timeout."""
    conninfo = pg.conninfo(application_name="aio_loop_end")

    async def once():
        conn = await pooldbapi.aio.connect({"p": conninfo}, autocommit=True)
        await conn.execute("select 1")
        await conn.close()

    for _ in range(5):
        asyncio.run(once())
    with psycopg.connect(pg.dsn) as raw:
        left = raw.execute("select count(*) from pg_stat_activity"
                           " where application_name = 'aio_loop_end'").fetchone()[0]
    assert left == 0
    assert not [s for s in pooldbapi.pool_stats() if s.alias == "p"]


def test_a_cancelled_write_over_two_servers_leaves_no_exception_unretrieved(pg, pg2):
    for cluster in (pg, pg2):
        with psycopg.connect(cluster.dsn, autocommit=True) as raw:
            raw.execute("drop table if exists aio_many")
            raw.execute("create table aio_many (k int, v text)")
    logged = []

    async def main():
        asyncio.get_running_loop().set_exception_handler(
            lambda loop, context: logged.append(context["message"]))
        conn = await pooldbapi.aio.connect({"p1": pg.conninfo(), "p2": pg2.conninfo()},
                                           default="{p1,p2}", autocommit=True)
        task = asyncio.ensure_future(conn.cursor().executemany(
            "insert into aio_many (k, v) values (?, ?)", [(j, "x") for j in range(20000)]))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await conn.close()
        gc.collect()
        await asyncio.sleep(0.1)

    asyncio.run(main())
    gc.collect()
    assert logged == []


def test_calls_on_a_closed_connection_start_no_thread(tmp_path):
    def threads():
        return sum(t.name.startswith("pooldbapi-aio") and t.is_alive()
                   for t in threading.enumerate())

    async def main():
        before = threads()
        for i in range(10):
            conn = await pooldbapi.aio.connect({"s": f"driver=sqlite;database={tmp_path / 'c.db'}"})
            cur = conn.cursor()
            await cur.execute("select 1")
            await conn.close()
            with pytest.raises(pooldbapi.InterfaceError):
                await conn.commit()
            await cur.close()
            assert i >= 0
        gc.collect()
        await asyncio.sleep(0.2)
        return before, threads()

    before, after = asyncio.run(main())
    assert after <= before + 1  # (the shared pool's thread that answered them)


def test_cancelled_writes_over_two_servers_say_what_each_committed_and_leave_sessions_fit(
        pg, pg2):
    """executemany over two PostgreSQL servers in autocommit, its task cancelled at drawn
    moments (a server may cancel the batch in hand on request): the notes say what each
    container committed, as the servers hold it, and the next statement runs (no session
    left in a transaction, no cancel request landing on a later statement)."""
    import random
    import re
    clusters = {"p1": pg, "p2": pg2}
    rng = random.Random(20261204)

    def held():
        out = {}
        for alias, cluster in clusters.items():
            with psycopg.connect(cluster.dsn) as raw:
                out[alias] = raw.execute("select count(*) from aio_fuzz").fetchone()[0]
        return out

    async def trial(delay):
        # (p2 gets three rows for p1's one: p1 may be done while p2's batch is in flight)
        conn = await pooldbapi.aio.connect({a: c.conninfo() for a, c in clusters.items()},
                                           default="{p1,p2,p2,p2}", autocommit=True)
        task = asyncio.ensure_future(conn.cursor().executemany(
            "insert into aio_fuzz (k) values (?)", [(j,) for j in range(6000)]))
        await asyncio.sleep(delay)
        task.cancel()
        try:
            await task
            notes = None  # (it ended first: every row written)
        except asyncio.CancelledError as info:
            notes = getattr(info, "__notes__", [])
        after = await (await conn.execute("select 1 from aio_fuzz@p1 limit 1")).fetchall()
        after += await (await conn.execute("select 1 from aio_fuzz@p2 limit 1")).fetchall()
        await conn.close()
        return notes, after

    for _ in range(10):
        for cluster in clusters.values():
            with psycopg.connect(cluster.dsn, autocommit=True) as raw:
                raw.execute("drop table if exists aio_fuzz")
                raw.execute("create table aio_fuzz (k int)")
        notes, _ = asyncio.run(trial(rng.uniform(0.0, 0.3)))
        got = held()
        if notes is None:
            assert got == {"p1": 1500, "p2": 4500}
            continue
        said = {a: 0 for a in clusters}
        for note in notes:
            assert "in flight" not in note, note  # (a batch's outcome is known here)
            said.update({a: int(n) for a, n in re.findall(r"(p\d): (\d+) rows", note)})
        assert said == got, notes
    assert sum(s.in_use for s in pooldbapi.pool_stats()) == 0
