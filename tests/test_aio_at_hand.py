"""pooldbapi.aio's prepared statements whose session is at hand (held by the open transaction,
or kept in autocommit): run from the task itself, psycopg's AsyncCursor awaited directly with
no greenlet (Calls.at_hand), with the answers, errors, cancellations and sessions of the
greenlet path they stand in for."""
from __future__ import annotations

import asyncio

import psycopg
import pytest

import pooldbapi
import pooldbapi.aio
from pooldbapi import pool as pool_module
from pooldbapi import waits
from pooldbapi.aio import calls as calls_module
from pooldbapi.cursor import Cursor

pytestmark = pytest.mark.postgresql


def run(coro):
    return asyncio.run(coro)


def table(cluster, name, ddl="(id int primary key, v text)"):
    with psycopg.connect(cluster.dsn, autocommit=True) as raw:
        raw.execute(f"drop table if exists {name}")
        raw.execute(f"create table {name} {ddl}")


def rows_of(cluster, sql):
    with psycopg.connect(cluster.dsn) as raw:
        return raw.execute(sql).fetchall()


@pytest.fixture
def greenlet_calls(monkeypatch):
    """Counts the calls pooldbapi.aio runs in a greenlet (waits.drive)."""
    counted = []
    drive = waits.drive

    def counting(fn, args=(), shield=None):
        counted.append(getattr(fn, "__name__", fn))
        return drive(fn, args, shield)
    monkeypatch.setattr(waits, "drive", counting)
    return counted


@pytest.fixture
def at_hand_runs(monkeypatch):
    """The statements pooldbapi.aio ran at hand (Calls.at_hand took them: its entries that
    did not answer False), in order."""
    ran = []
    at_hand = calls_module.Calls.at_hand

    async def counting(self, cursor, operation, parameters):
        try:
            taken = await at_hand(self, cursor, operation, parameters)
        except BaseException:
            ran.append(operation)
            raise
        if taken:
            ran.append(operation)
        return taken
    monkeypatch.setattr(calls_module.Calls, "at_hand", counting)
    return ran


@pytest.mark.parametrize("autocommit", [True, False])
def test_a_repeated_statement_at_hand_runs_from_the_task_with_no_greenlet(
        pg, no_threads, greenlet_calls, autocommit):
    table(pg, "hand_one")

    async def main():
        conn = await pooldbapi.aio.connect({"p": pg.conninfo()}, autocommit=autocommit)
        cur = conn.cursor()
        await cur.execute("insert into hand_one values (%s, %s)", (0, "first"))  # prepares it
        before = len(greenlet_calls)
        for i in range(1, 4):
            await cur.execute("insert into hand_one values (%s, %s)", (i, f"v{i}"))
            assert (cur.rowcount, cur.containers) == (1, {"p": 1})
        await cur.execute("select count(*) from hand_one")  # (not prepared yet: a greenlet)
        await cur.execute("select count(*) from hand_one")
        counted = await cur.fetchall()
        during = greenlet_calls[before:]
        if not autocommit:
            await conn.commit()
        await conn.close()
        return during, counted

    during, counted = run(main())
    assert during == ["execute"]  # only the select's first execute went through a greenlet
    assert counted == [(4,)]
    assert rows_of(pg, "select id, v from hand_one order by id") == \
        [(0, "first"), (1, "v1"), (2, "v2"), (3, "v3")]


def test_statements_at_hand_answer_as_the_greenlet_path_and_psycopg_do(pg, no_threads,
                                                                      at_hand_runs):
    table(pg, "hand_same", "(id int primary key, v text, n numeric, t timestamptz)")
    with psycopg.connect(pg.dsn, autocommit=True) as raw:
        raw.execute("insert into hand_same select i, 'v' || i, i / 3.0, '2026-01-01'::timestamptz"
                    " + i * interval '1 hour' from generate_series(1, 20) i")
    statements = [("select id, v, n, t from hand_same where id <= %s order by id", (5,)),
                  ("select id, v, n, t from hand_same where id <= %s order by id", (9,)),
                  ("select v from hand_same where id = %s", (99,)),
                  ("update hand_same set v = v where id <= %s", (7,)),
                  ("update hand_same set v = v where id <= %s", (3,)),
                  ("select count(*), sum(n) from hand_same", None),
                  ("select count(*), sum(n) from hand_same", None)]

    async def through(direct, autocommit):
        conn = await pooldbapi.aio.connect({"p": pg.conninfo()}, autocommit=autocommit)
        conn.calls.direct = direct
        cur = conn.cursor()
        seen = []
        for sql, params in statements:
            await cur.execute(sql, params)
            seen.append((cur.description, await cur.fetchall() if cur.description else None,
                         cur.rowcount, cur.lastrowid, cur.containers, cur.rownumber))
        await conn.rollback()
        await conn.close()
        return seen

    async def native():
        async with await psycopg.AsyncConnection.connect(pg.dsn) as raw:
            seen = []
            for sql, params in statements:
                cur = await raw.execute(sql, params)
                seen.append((await cur.fetchall() if cur.description else None,
                             cur.rowcount))
            return seen

    expected = run(native())
    for autocommit in (True, False):
        greenlet = run(through(False, autocommit))
        assert at_hand_runs == []
        at_hand = run(through(True, autocommit))
        # the repeats ran at hand (a transaction's first statement borrows its session)
        assert at_hand_runs == [statements[i][0] for i in (1, 4, 6)]
        at_hand_runs.clear()
        assert at_hand == greenlet
        assert [(rows, rowcount) for _, rows, rowcount, *_ in at_hand] == expected


def test_an_error_at_hand_in_a_transaction_fails_it_as_the_greenlet_path_does(pg, no_threads,
                                                                            at_hand_runs):
    table(pg, "hand_err")
    sql = "insert into hand_err values (%s, %s)"

    async def main():
        conn = await pooldbapi.aio.connect({"p": pg.conninfo()})
        cur = conn.cursor()
        await cur.execute(sql, (1, "a"))
        await cur.execute(sql, (2, "b"))  # at hand
        with pytest.raises(pooldbapi.IntegrityError) as info:
            await cur.execute(sql, (1, "again"))  # at hand: a duplicate key
        assert len(at_hand_runs) == 2
        with pytest.raises(pooldbapi.OperationalError) as later:
            await cur.execute(sql, (3, "c"))
        with pytest.raises(pooldbapi.OperationalError):
            await conn.commit()
        await conn.rollback()
        await cur.execute(sql, (4, "after"))
        await conn.commit()
        stats = await waits.drive(lambda: pool_module.pool_for(conn.sync.specs["p"]).stats())
        await conn.close()
        return info.value, later.value, stats

    err, later, stats = run(main())
    assert (err.container, err.sqlstate) == ("p", "23505")
    assert isinstance(err.__cause__, psycopg.errors.UniqueViolation)
    assert "p" in str(later)
    assert stats.in_use == 0 and stats.open == 1
    assert rows_of(pg, "select id, v from hand_err") == [(4, "after")]


def test_an_error_at_hand_in_autocommit_gives_the_session_back_alive(pg, no_threads,
                                                                    at_hand_runs):
    table(pg, "hand_err_auto")
    sql = "insert into hand_err_auto values (%s, %s)"

    async def main():
        conn = await pooldbapi.aio.connect({"p": pg.conninfo()}, autocommit=True)
        cur = conn.cursor()
        await cur.execute(sql, (1, "a"))
        await cur.execute(sql, (2, "b"))
        with pytest.raises(pooldbapi.IntegrityError) as info:
            await cur.execute(sql, (2, "again"))
        assert len(at_hand_runs) == 2  # the second insert and the failing one
        assert cur.rowcount == -1 and cur.description is None  # (no result of the call)
        await cur.execute(sql, (3, "c"))
        await cur.execute(sql, (4, "d"))
        stats = await waits.drive(lambda: pool_module.pool_for(conn.sync.specs["p"]).stats())
        await conn.close()
        return info.value, stats

    err, stats = run(main())
    assert (err.container, err.sqlstate) == ("p", "23505")
    assert stats.in_use == 0 and stats.open == 1  # the one session, alive and kept
    assert len(at_hand_runs) == 4
    assert rows_of(pg, "select id from hand_err_auto order by id") == [(1,), (2,), (3,), (4,)]


def test_bad_parameters_at_hand_raise_before_anything_runs(pg, no_threads, at_hand_runs):
    table(pg, "hand_bad")
    sql = "insert into hand_bad values (%s, %s)"

    async def main():
        conn = await pooldbapi.aio.connect({"p": pg.conninfo()}, autocommit=True)
        cur = conn.cursor()
        await cur.execute(sql, (1, "a"))
        await cur.execute("select id from hand_bad")
        await cur.execute("select id from hand_bad")
        with pytest.raises(pooldbapi.ProgrammingError) as info:
            await cur.execute(sql, (2, "b", "extra"))
        assert at_hand_runs == ["select id from hand_bad", sql]  # (raised there)
        with pytest.raises(pooldbapi.ProgrammingError, match="no result"):
            await cur.fetchall()  # the failed call left no result, as execute() leaves it
        with pooldbapi.connect({"p": pg.conninfo()}, autocommit=True) as sync, \
                pytest.raises(pooldbapi.ProgrammingError) as synchronous:
            sync.cursor().execute(sql, (2, "b", "extra"))
        assert str(info.value) == str(synchronous.value)
        await cur.close()
        with pytest.raises(pooldbapi.InterfaceError, match="cursor is closed"):
            await cur.execute(sql, (3, "c"))
        await conn.close()

    run(main())
    assert rows_of(pg, "select id from hand_bad") == [(1,)]


def test_a_cancelled_statement_at_hand_fails_the_transaction_and_rolls_it_back(pg, no_threads,
                                                                            greenlet_calls):
    table(pg, "hand_cancel")
    sql = "insert into hand_cancel select %s, 'x' from pg_sleep(%s)"

    async def main():
        conn = await pooldbapi.aio.connect({"p": pg.conninfo()})
        cur = conn.cursor()
        await cur.execute(sql, (1, 0))
        await cur.execute(sql, (2, 0))
        before = len(greenlet_calls)
        task = asyncio.create_task(cur.execute(sql, (3, 0.4)))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as info:
            await task
        settled_in = greenlet_calls[before:]
        with pytest.raises(pooldbapi.OperationalError,
                           match="canceling statement due to user request"):
            await cur.execute(sql, (4, 0))  # (cancelled on the server: the statement failed)
        await conn.rollback()
        stats = await waits.drive(lambda: pool_module.pool_for(conn.sync.specs["p"]).stats())
        await conn.close()
        return info.value.__notes__, settled_in, stats

    notes, settled_in, stats = run(main())
    # the statement itself ran from the task; its error (cancelled on the server) and the
    # settling in greenlets
    assert settled_in == ["failed", "_after_cancel"]
    assert notes == [("pooldbapi: the transaction was interrupted and is failed (every"
                      " container was rolled back): call rollback()")]
    assert stats.in_use == 0 and stats.open == 1
    assert rows_of(pg, "select count(*) from hand_cancel") == [(0,)]


@pytest.mark.parametrize("request_arrives", [True, False])
def test_a_cancelled_statement_at_hand_in_autocommit_says_what_it_committed(
        pg, no_threads, greenlet_calls, monkeypatch, request_arrives):
    """The server asked to cancel the statement cancels it (nothing committed), or finishes it
    first (here: the request never arrives), and the note says which."""
    if not request_arrives:
        async def not_arriving(self, *, timeout=30.0):
            return None
        monkeypatch.setattr(psycopg.AsyncConnection, "cancel_safe", not_arriving)
    table(pg, "hand_cancel_auto")
    sql = "insert into hand_cancel_auto select %s, 'x' from pg_sleep(%s)"

    async def main():
        conn = await pooldbapi.aio.connect({"p": pg.conninfo()}, autocommit=True)
        cur = conn.cursor()
        await cur.execute(sql, (1, 0))
        before = len(greenlet_calls)
        task = asyncio.create_task(cur.execute(sql, (2, 0.4)))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as info:
            await task
        # the statement ran at hand; the error of one cancelled on the server is handled,
        # and the cancellation settled, in greenlets
        assert greenlet_calls[before:] == (["failed", "_after_cancel"] if request_arrives
                                           else ["_after_cancel"])
        await cur.execute(sql, (3, 0))  # the session is fit for the next statement
        await conn.close()
        return info.value.__notes__

    if request_arrives:
        assert run(main()) == [("pooldbapi: the statement was cancelled on p: nothing of it"
                                " was committed")]
        assert rows_of(pg, "select id from hand_cancel_auto order by id") == [(1,), (3,)]
    else:
        assert run(main()) == [("pooldbapi: the call ended before the cancellation took"
                                " effect: rowcount 1 on p")]
        assert rows_of(pg, "select id from hand_cancel_auto order by id") == [(1,), (2,), (3,)]


def test_a_kept_session_someone_waits_for_is_handed_over_after_a_statement_at_hand(
        pg, no_threads, monkeypatch):
    table(pg, "hand_over")
    spec = {"p": pg.conninfo() + ";maximum-number-of-pooled-connections=1;pool-timeout=5"}
    handed = []
    hand_back = Cursor.hand_back

    def counting(self, ready):
        handed.append(ready[0].alias)
        return hand_back(self, ready)
    monkeypatch.setattr(Cursor, "hand_back", counting)
    slow = "select pg_backend_pid() from pg_sleep(%s)"

    async def main():
        keeper = await pooldbapi.aio.connect(spec, autocommit=True)
        other = await pooldbapi.aio.connect(spec, autocommit=True)
        cur = keeper.cursor()
        await cur.execute(slow, (0,))
        (pid,) = await cur.fetchone()
        running = asyncio.create_task(cur.execute(slow, (0.3,)))  # at hand, kept session
        await asyncio.sleep(0.1)
        waiting = asyncio.create_task(other.execute("select pg_backend_pid()"))
        await asyncio.wait_for(running, 3)
        (got,) = await (await asyncio.wait_for(waiting, 3)).fetchone()
        kept_after = dict(keeper.sync.transaction.parked)
        await keeper.close()
        await other.close()
        return pid, got, kept_after

    pid, got, kept_after = run(main())
    assert handed == ["p"]  # given back at the statement's end, the waiter took it
    assert got == pid and kept_after == {}


def test_calls_at_hand_of_tasks_sharing_a_connection_run_one_at_a_time(pg, no_threads,
                                                                      monkeypatch,
                                                                      at_hand_runs):
    table(pg, "hand_tasks", "(task int, i int)")
    sql = "insert into hand_tasks select %s, %s from pg_sleep(0.001)"
    inside, most = [0], [0]  # statements of the connection under way: now, at most
    shielded, drive = waits.shielded, waits.drive

    async def entered(awaitable):
        inside[0] += 1
        most[0] = max(most[0], inside[0])
        try:
            return await awaitable
        finally:
            inside[0] -= 1

    def tracked_shielded(coro, shield):  # a statement at hand's driver calls
        return entered(shielded(coro, shield))

    def tracked_drive(fn, args=(), shield=None):  # a statement in a greenlet
        return entered(drive(fn, args, shield)) if fn is Cursor.execute else \
            drive(fn, args, shield)
    monkeypatch.setattr(waits, "shielded", tracked_shielded)
    monkeypatch.setattr(waits, "drive", tracked_drive)

    async def main():
        conn = await pooldbapi.aio.connect({"p": pg.conninfo()}, autocommit=True)
        await conn.execute(sql, (0, 0))

        async def writer(task):
            cur = conn.cursor()
            for i in range(20):
                await cur.execute(sql, (task, i))
                await asyncio.sleep(0)
        await asyncio.gather(*(writer(t) for t in range(1, 5)))
        await conn.close()

    run(main())
    assert most == [1]  # never two of the connection's statements at once
    assert at_hand_runs  # (some found the door free and ran at hand)
    assert rows_of(pg, "select task, count(*), count(distinct i) from hand_tasks group by task"
                   " order by task") == [(0, 1, 1)] + [(t, 20, 20) for t in range(1, 5)]


def test_a_kept_session_the_server_ended_is_not_taken_at_hand(pg, no_threads, at_hand_runs,
                                                              greenlet_calls):
    # past pool.KEPT_UNCHECKED the kept session's check polls its socket: readable (the
    # server ended it) is in doubt, which only a round trip (in a greenlet) settles
    async def main():
        conn = await pooldbapi.aio.connect({"p": pg.conninfo()}, autocommit=True)
        cur = conn.cursor()
        await cur.execute("select pg_backend_pid()")
        await cur.execute("select pg_backend_pid()")
        (pid,) = await cur.fetchone()
        assert len(at_hand_runs) == 1
        with psycopg.connect(pg.dsn, autocommit=True) as raw:
            raw.execute("select pg_terminate_backend(%s)", (pid,))
        await asyncio.sleep(0.05)
        before = len(greenlet_calls)
        await cur.execute("select pg_backend_pid()")
        (again,) = await cur.fetchone()
        during = greenlet_calls[before:]
        await conn.close()
        return pid, again, during

    pid, again, during = run(main())
    assert again != pid  # on a new session
    assert len(at_hand_runs) == 1 and during == ["execute"]  # not at hand: in a greenlet


@pytest.mark.parametrize("autocommit", [True, False])
def test_a_result_not_readable_at_hand_counts_the_statement_written(pg, no_threads,
                                                                   at_hand_runs, autocommit):
    # a value psycopg cannot load (a date past year 10,000): the insert ran, its RETURNING
    # row cannot be read; the error says the statement was written, as the greenlet path does
    table(pg, "hand_unread")
    sql = ("insert into hand_unread values (%s, %s) returning id,"
           " (case when v = 'bad' then 'infinity' else '2000-01-01' end)::date")

    async def main():
        conn = await pooldbapi.aio.connect({"p": pg.conninfo()}, autocommit=autocommit)
        cur = conn.cursor()
        await cur.execute(sql, (1, "ok"))
        errors = []
        for direct, row in ((True, 2), (False, 3)):
            conn.calls.direct = direct
            with pytest.raises(pooldbapi.DataError) as info:
                await cur.execute(sql, (row, "bad"))
            errors.append(info.value)
        await cur.execute(sql, (4, "ok"))
        if not autocommit:
            await conn.commit()
        await conn.close()
        return errors

    at_hand, greenlet = run(main())
    assert at_hand_runs == [sql]  # the first bad one ran at hand, the second in a greenlet
    for err in (at_hand, greenlet):
        assert err.written == {"p": (0,)} and isinstance(err.__cause__, psycopg.DataError)
    assert str(at_hand) == str(greenlet)
    assert rows_of(pg, "select id from hand_unread order by id") == [(1,), (2,), (3,), (4,)]
