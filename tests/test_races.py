"""A connection shared by threads: a close() in one thread and a call in another never leave
the caller told one thing while the database holds another (every method checks state under
the connection's lock)."""
from __future__ import annotations

import sqlite3
import threading
import time

import pytest

import pooldbapi

ROWS = 100_000


def sqlite_conn(path, **kw):
    conn = pooldbapi.connect({"s": f"driver=sqlite;database={path}"}, **kw)
    conn.autocommit = True
    conn.execute("create table if not exists t (x int)")
    conn.autocommit = False
    return conn


def rows_in(path):
    raw = sqlite3.connect(path)
    try:
        return raw.execute("select count(*) from t").fetchone()[0]
    finally:
        raw.close()


def close_while_waiting(conn, call):
    """Run call in another thread while this one holds the connection's lock, then close
    (the lock is reentrant: this thread closes while call waits for it); what call did."""
    outcome: dict[str, object] = {}
    with conn.lock:
        def run():
            try:
                call()
                outcome["returned"] = True
            except pooldbapi.Error as err:
                outcome["error"] = err
        thread = threading.Thread(target=run)
        thread.start()
        time.sleep(0.1)  # call is now past any check and waits for the lock
        conn.close()
    thread.join()
    return outcome


def test_a_commit_racing_another_threads_close_raises_and_the_database_agrees(tmp_path):
    """executemany of 100,000 rows then commit() in one thread; close() in another while
    the rows are written: commit must not return as if it had kept them."""
    path = tmp_path / "race.db"
    for attempt in range(3):
        conn = sqlite_conn(path)
        outcome: dict[str, object] = {}
        started = threading.Event()

        def rows(conn=conn, started=started):
            for i in range(ROWS):
                if i == 1000:  # inside the executemany: let close() begin, then go on
                    started.set()
                    deadline = time.monotonic() + 10
                    while conn.usable and time.monotonic() < deadline:
                        time.sleep(0.001)
                yield (i,)

        def writer(conn=conn, outcome=outcome, rows=rows):
            cur = conn.cursor()
            cur.executemany("insert into t values (?)", rows())
            try:
                conn.commit()
                outcome["committed"] = True
            except pooldbapi.Error as err:
                outcome["error"] = err

        thread = threading.Thread(target=writer)
        thread.start()
        started.wait(10)
        conn.close()  # waits for the executemany's lock; commit() comes after it
        thread.join()
        assert isinstance(outcome.get("error"), pooldbapi.InterfaceError), (attempt, outcome)
        assert rows_in(path) == 0


def test_a_commit_waiting_for_the_lock_raises_after_a_close_took_it_first(tmp_path):
    """The check-then-lock race made certain: commit() is past any check and waits for the
    lock while close() (holding it) rolls back; commit must raise, not commit nothing."""
    path = tmp_path / "race.db"
    conn = sqlite_conn(path)
    conn.execute("insert into t values (1)")
    outcome = close_while_waiting(conn, conn.commit)
    assert isinstance(outcome.get("error"), pooldbapi.InterfaceError), outcome
    assert rows_in(path) == 0


@pytest.mark.parametrize("call", [
    lambda c: c.commit(), lambda c: c.rollback(), lambda c: c.cursor(),
    lambda c: c.execute("select 1"), lambda c: c.tpc_begin(c.xid(1, "g", "b")),
    lambda c: c.tpc_prepare(), lambda c: c.tpc_commit(), lambda c: c.tpc_rollback(),
    lambda c: c.tpc_recover(), lambda c: setattr(c, "autocommit", True),
    lambda c: c.__enter__(),
], ids=["commit", "rollback", "cursor", "execute", "tpc_begin", "tpc_prepare", "tpc_commit",
        "tpc_rollback", "tpc_recover", "autocommit", "enter"])
def test_every_connection_method_waiting_for_the_lock_raises_after_a_close(tmp_path, call):
    conn = sqlite_conn(tmp_path / "m.db")
    outcome = close_while_waiting(conn, lambda: call(conn))
    assert isinstance(outcome.get("error"), pooldbapi.InterfaceError), outcome


@pytest.mark.parametrize("call", [
    lambda cur: cur.execute("select 1"),
    lambda cur: cur.executemany("insert into t values (?)", [(1,)]),
    lambda cur: cur.fetchone(), lambda cur: cur.fetchall(), lambda cur: cur.fetchmany(2),
    lambda cur: cur.callproc("abs", [1]),
], ids=["execute", "executemany", "fetchone", "fetchall", "fetchmany", "callproc"])
def test_every_cursor_method_waiting_for_the_lock_raises_after_a_close(tmp_path, call):
    conn = sqlite_conn(tmp_path / "c.db")
    conn.cursor().executemany("insert into t values (?)", [(i,) for i in range(5000)])
    cur = conn.cursor(stream=True)
    cur.execute("select x from t")
    cur.fetchone()  # a batch of rows is in hand
    outcome = close_while_waiting(conn, lambda: call(cur))
    assert isinstance(outcome.get("error"), pooldbapi.InterfaceError), outcome
    assert rows_in(tmp_path / "c.db") == 0
