"""Physical connection pools against a real PostgreSQL cluster and SQLite files."""
from __future__ import annotations

import itertools
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

import pooldbapi
from pooldbapi.pool import pool_for


def backends(cluster, name):
    with psycopg.connect(cluster.dsn, autocommit=True) as raw:
        return raw.execute("select count(*) from pg_stat_activity where application_name = %s",
                           (name,)).fetchone()[0]


def test_many_threads_never_exceed_the_maximum_and_nothing_leaks(pg):
    spec = {"p": pg.conninfo(application_name="pool-max",
                             maximum_number_of_pooled_connections="3")}
    peak = []
    errors = []

    def worker():
        try:
            conn = pooldbapi.connect(spec)
            for _ in range(20):
                conn.execute("select pg_sleep(0.001)")
                peak.append(backends(pg, "pool-max"))
                conn.commit()
            conn.close()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert max(peak) <= 3
    stats = next(s for s in pooldbapi.pool_stats() if s.alias == "p")
    assert stats.in_use == 0 and stats.open <= 3 and stats.waits > 0
    pooldbapi.close_all()
    deadline = time.monotonic() + 5
    while backends(pg, "pool-max") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert backends(pg, "pool-max") == 0


def test_pool_timeout_is_a_clear_operational_error(pg):
    spec = {"p": pg.conninfo(maximum_number_of_pooled_connections="1", pool_timeout="0.3")}
    first = pooldbapi.connect(spec)
    first.execute("select 1")  # holds the only connection: a transaction is open
    second = pooldbapi.connect(spec)
    start = time.monotonic()
    with pytest.raises(pooldbapi.OperationalError, match="no free physical connection within"):
        second.execute("select 1")
    assert 0.25 < time.monotonic() - start < 5
    first.commit()
    assert second.execute("select 1").fetchone() == (1,)
    first.close()
    second.close()


def test_a_connection_killed_by_the_server_is_replaced_at_checkout(pg):
    spec = {"p": pg.conninfo(application_name="pool-kill")}
    conn = pooldbapi.connect(spec, autocommit=True)
    pid = conn.execute("select pg_backend_pid()").fetchone()[0]
    with psycopg.connect(pg.dsn, autocommit=True) as raw:
        raw.execute("select pg_terminate_backend(%s)", (pid,))
    time.sleep(0.2)
    assert conn.execute("select pg_backend_pid()").fetchone()[0] != pid
    conn.close()


def test_returned_connections_are_reset(pg):
    spec = {"p": pg.conninfo(maximum_number_of_pooled_connections="1")}
    conn = pooldbapi.connect(spec)
    conn.execute("set search_path = nowhere")
    conn.execute("create temp table scratch (x int)")
    conn.commit()
    cur = conn.execute("show search_path")
    assert cur.fetchone()[0] == '"$user", public'
    assert conn.execute("select count(*) from pg_class where relname = 'scratch'"
                        ).fetchone()[0] == 0
    conn.close()


def test_a_sqlite_session_change_is_not_handed_to_the_next_user(tmp_path):
    """SQLite has no DISCARD ALL: a connection whose session was changed (ATTACH, a pragma, a
    temporary table) is closed when given back, so the next user starts as on a new one."""
    spec = {"s": f"driver=sqlite;database={tmp_path / 'main.db'}"}
    other = tmp_path / "other.db"
    for _ in range(2):  # the second round would fail on a reused session: already attached
        conn = pooldbapi.connect(spec, autocommit=True)
        assert [r[1] for r in conn.execute("pragma database_list").fetchall()] == ["main"]
        assert conn.execute("pragma foreign_keys").fetchone()[0] == 0
        conn.execute(f"attach database '{other}' as extra")
        conn.execute("pragma foreign_keys = on")
        conn.execute("create temp table scratch (x int)")
        conn.close()
    conn = pooldbapi.connect(spec, autocommit=True)
    conn.execute("select 1")  # a plain statement: the connection is kept
    conn.close()
    assert pool_for(pooldbapi.connect(spec).specs["s"]).stats().idle == 1


def test_lifetime_and_pooling_off(tmp_path):
    base = f"driver=sqlite;database={tmp_path / 'p.db'}"
    conn = pooldbapi.connect({"s": base + ";connection-lifetime=0"})
    conn.execute("select 1")
    conn.commit()
    assert pool_for(conn.specs["s"]).stats().open == 0  # too old to keep
    conn = pooldbapi.connect({"s": base + ";allow-connection-pooling=false"})
    conn.execute("select 1")
    conn.commit()
    assert pool_for(conn.specs["s"]).stats().open == 0
    conn = pooldbapi.connect({"s": base})
    conn.execute("select 1")
    conn.commit()
    assert pool_for(conn.specs["s"]).stats().idle == 1


def test_minimum_connections_are_kept_open(pg):
    spec = {"p": pg.conninfo(application_name="pool-min",
                             minimum_number_of_pooled_connections="3")}
    conn = pooldbapi.connect(spec, autocommit=True)
    conn.execute("select 1")
    assert backends(pg, "pool-min") == 3
    conn.close()


def test_memory_connections_are_pinned_to_one(tmp_path):
    spec = {"m": "driver=sqlite;database=:memory:"}
    one = pooldbapi.connect(spec, autocommit=True)
    one.execute("create table t (x int)")
    one.execute("insert into t values (1)")
    two = pooldbapi.connect(spec, autocommit=True)
    assert two.execute("select count(*) from t").fetchone()[0] == 1
    assert pool_for(one.specs["m"]).stats().maximum == 1


def test_sqlite_connections_move_between_threads(tmp_path):
    conn = pooldbapi.connect({f"s{i}": f"driver=sqlite;database={tmp_path / f's{i}.db'}"
                              for i in range(3)}, default="{s0,s1,s2}", broadcast_ddl=True)
    conn.execute("create table t (x int)")
    conn.cursor().executemany("insert into t values (?)", [(i,) for i in range(30)])
    conn.commit()
    assert sum(conn.execute(f"select count(*) from t@s{i}").fetchone()[0]
               for i in range(3)) == 30


def test_fork_discards_inherited_pools(tmp_path):
    import os
    conn = pooldbapi.connect({"s": f"driver=sqlite;database={tmp_path / 'f.db'}"})
    conn.execute("select 1")
    conn.commit()
    assert pooldbapi.pool_stats()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write, str(len(pooldbapi.pool_stats())).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 10) == b"0"


def test_bad_parameters_never_take_a_connection(tmp_path):
    """Parameters are bound before a connection is borrowed: a wrong parameter set neither
    opens a connection nor begins a transaction."""
    conn = pooldbapi.connect({"s": f"driver=sqlite;database={tmp_path / 'b.db'}"})
    pool = pool_for(conn.specs["s"])
    with pytest.raises(pooldbapi.ProgrammingError, match="takes 1 parameters, 2 given"):
        conn.execute("select ?", (1, 2))
    assert pool.stats().open == 0 and not conn.transaction.holds("s")
    conn.close()


def _contend(spec, seconds, autocommit, threads=2):
    """Threads with their own connections loop executemany of 3 rows over {a,b} for a while;
    return each one's count of calls and the errors they met."""
    calls = [0] * threads
    errors: list[BaseException] = []
    stop = threading.Event()

    def worker(i):
        conn = pooldbapi.connect(spec, default="{a,b}", autocommit=autocommit)
        try:
            cur = conn.cursor()
            while not stop.is_set():
                cur.executemany("insert into t values (?)", [(i,), (i,), (i,)])
                if not autocommit:
                    conn.commit()
                calls[i] += 1
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            conn.close()

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join()
    return calls, errors


@pytest.mark.parametrize("autocommit", [True, False])
def test_waiters_are_served_in_arrival_order(tmp_path, autocommit):
    """Pools of one, two threads re-taking the same two connections in a tight loop: the one
    that just gave a connection back never takes it again before the thread already waiting
    for it, so neither meets a pool timeout and both progress about equally."""
    spec = {alias: f"driver=sqlite;database={tmp_path / f'{alias}.db'};"
                   "maximum-number-of-pooled-connections=1;pool-timeout=1"
            for alias in "ab"}
    setup = pooldbapi.connect(spec, default="{a,b}", broadcast_ddl=True, autocommit=True)
    setup.execute("create table t (x int)")
    setup.close()
    calls, errors = _contend(spec, 3.0, autocommit)
    assert errors == []
    assert min(calls) > 0 and min(calls) * 3 >= max(calls), calls
    check = pooldbapi.connect(spec, autocommit=True)
    rows = sum(check.execute(f"select count(*) from t@{alias}").fetchone()[0] for alias in "ab")
    assert rows == 3 * sum(calls)
    check.close()
    for stats in pooldbapi.pool_stats():
        assert stats.in_use == 0 and stats.open <= 1


def _cycles(directory, n):
    for i in range(n):
        conn = pooldbapi.connect({"s": f"driver=sqlite;database={directory / f'c{i}.db'}"},
                                 autocommit=True)
        conn.execute("select 1")  # opens the file: a descriptor while the connection is kept
        conn.close()


def _descriptors(under=None):
    """The process's open descriptors; with `under`, only those of files below that directory
    (what other threads of the test process open meanwhile, a probe's socket, is not counted)."""
    import os
    found = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor among them)
        found += under is None or target.startswith(str(under))
    return found


def test_idle_connections_are_bounded_across_pools(tmp_path):
    """1,000 connect()/close() cycles over distinct SQLite files: what idle pools keep open is
    bounded process-wide (IDLE_LIMIT idle connections; a pool left empty is dropped), not one
    descriptor and one pool per file until their idle timeout."""
    from pooldbapi.pool import IDLE_LIMIT
    pooldbapi.close_all()
    before = _descriptors(tmp_path)
    _cycles(tmp_path, 1000)
    assert 0 < _descriptors(tmp_path) - before <= IDLE_LIMIT
    assert len(pooldbapi.pool_stats()) <= IDLE_LIMIT
    assert sum(s.idle for s in pooldbapi.pool_stats()) == IDLE_LIMIT
    # the connections kept are the ones used last
    last = pooldbapi.connect({"s": f"driver=sqlite;database={tmp_path / 'c999.db'}"})
    assert pool_for(last.specs["s"]).stats().idle == 1
    last.close()
    pooldbapi.close_all()
    assert _descriptors(tmp_path) <= before


def test_a_pool_with_a_minimum_keeps_it_past_the_bound(tmp_path):
    from pooldbapi.pool import IDLE_LIMIT
    spec = {"m": f"driver=sqlite;database={tmp_path / 'm.db'};"
                 "minimum-number-of-pooled-connections=2"}
    conn = pooldbapi.connect(spec, autocommit=True)
    conn.execute("select 1")
    conn.close()
    _cycles(tmp_path, IDLE_LIMIT + 10)
    assert pool_for(pooldbapi.connect(spec).specs["m"]).stats().idle == 2


def test_distinct_file_cycles_complete_under_a_low_descriptor_limit(tmp_path):
    """Under RLIMIT_NOFILE=256 (`ulimit -n 256`) 1,000 cycles complete, and an unrelated
    open() afterwards still works."""
    import subprocess
    import sys
    code = f"""
import resource, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_pool import _cycles
_cycles(Path({str(tmp_path)!r}), 1000)
open({str(tmp_path / 'unrelated.txt')!r}, "w").close()
print("done")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "done"


def test_autocommit_keeps_its_session_until_another_borrower_needs_it(pg):
    """Between autocommit statements a connection keeps its session (no checkout, no return);
    a borrower that finds the pool at its maximum takes it at once, never waiting for it."""
    spec = {"p": pg.conninfo(application_name="pool-park",
                             maximum_number_of_pooled_connections="1", pool_timeout="1")}
    one = pooldbapi.connect(spec, autocommit=True)
    pid = one.execute("select pg_backend_pid()").fetchone()[0]
    pool = pool_for(one.specs["p"])
    stats = pool.stats()
    assert (stats.parked, stats.idle, stats.in_use) == (1, 0, 0)
    assert one.execute("select pg_backend_pid()").fetchone()[0] == pid
    two = pooldbapi.connect(spec, autocommit=True)
    # the only session is kept by `one`: `two` takes it (pool-timeout 1 s would raise)
    assert two.execute("select pg_backend_pid()").fetchone()[0] == pid
    assert pool.stats().parked == 1 and not one.transaction.holds("p")
    assert one.execute("select pg_backend_pid()").fetchone()[0] == pid  # and back
    one.autocommit = False  # nothing held in a transaction: allowed
    one.execute("create temp table scratch (x int)")
    one.rollback()
    one.close()
    two.close()
    stats = pool.stats()
    assert (stats.parked, stats.idle, stats.in_use, stats.open) == (0, 1, 0, 1)


@pytest.mark.parametrize("maximum", [1, 2])
def test_a_kept_session_is_never_used_by_two_at_once(tmp_path, maximum):
    """Threads, each with its own transaction in autocommit, borrow and keep sessions of a
    pool of one or two, and run statements on the kept one as a prepared statement does
    (take_kept, no word to the pool) every other time, switching threads every microsecond:
    every session has one user at a time, and nobody times out."""
    from pooldbapi.transaction import Transaction
    conn = pooldbapi.connect({"s": f"driver=sqlite;database={tmp_path / 'k.db'};"
                                   f"maximum-number-of-pooled-connections={maximum};"
                                   "pool-timeout=5"})
    spec = conn.specs["s"]
    users: dict[int, int] = {}
    guard = threading.Lock()
    errors: list[BaseException] = []
    kept_runs = [0]
    deadline = time.monotonic() + 15

    def use(phys, me) -> None:
        with guard:
            assert users.setdefault(id(phys), me) == me, "two users of one session"
        phys.link.first_row("select 1")
        time.sleep(0)  # (another thread's turn while the session is in use)
        with guard:
            del users[id(phys)]

    def worker(me):
        tx = Transaction()
        tx.autocommit = True
        try:
            # 2,000 statements, and on until the kept path ran 20 times in all (it runs only
            # where no other thread took the session meanwhile nor waits for one: how often
            # depends on the scheduling) or 15 s passed
            for i in itertools.count():
                if i >= 2000 and (maximum == 1 or kept_runs[0] >= 20 or
                                  time.monotonic() > deadline):
                    break
                if me and i % 16 == 0:  # (a pause now and then: moments nobody waits)
                    time.sleep(0.0002 * me)
                phys = tx.take_kept("s") if i % 2 else None
                if phys is not None:  # as runner.Direct.run does
                    try:
                        use(phys, me)
                        phys.returned = time.monotonic()
                    finally:
                        phys.lock.release()
                    tx.kept_done("s", phys)
                    kept_runs[0] += 1
                    continue
                phys = tx.physical(spec, True)
                with phys.lock:
                    use(phys, me)
                tx.after_statement("s")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            tx.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(before)
    assert errors == []
    if maximum > 1:  # (with one session for six threads someone nearly always waits, and a
        # kept session is then given back after each statement: the kept path seldom runs)
        assert kept_runs[0] >= 5  # the kept path ran
    stats = pool_for(spec).stats()
    assert stats.open <= 2 and stats.in_use == 0 and stats.parked == 0
    conn.close()


def test_a_kept_session_running_a_statement_goes_to_a_waiter_when_it_ends(pg):
    """A connection runs a prepared statement on the session it keeps (no word to the pool)
    while another borrower waits for the pool's only session: the statement's end gives it
    to the waiter then, not after pool-timeout."""
    spec = {"p": pg.conninfo(application_name="pool-kept-busy",
                             maximum_number_of_pooled_connections="1", pool_timeout="5")}
    one, two = (pooldbapi.connect(spec, autocommit=True) for _ in range(2))
    pid = one.execute("select pg_backend_pid()").fetchone()[0]
    sleep = "select pg_sleep(?), pg_backend_pid()"
    one.execute(sleep, (0,))
    one.execute(sleep, (0,))  # prepared: the next runs on the kept session directly
    assert sleep in one.context.plans and "p" in one.transaction.parked
    done: list[object] = []
    busy = threading.Thread(target=lambda: done.append(one.execute(sleep, (0.6,)).fetchone()))
    busy.start()
    time.sleep(0.2)  # one's statement runs
    started = time.monotonic()
    assert two.execute("select pg_backend_pid()").fetchone()[0] == pid
    waited = time.monotonic() - started
    busy.join()
    assert done and done[0][1] == pid
    assert 0.2 < waited < 3, waited  # after one's statement (0.4 s more), far before 5 s
    assert pool_for(one.specs["p"]).stats().waits == 1
    one.close()
    two.close()


def _kept_and_busy(tmp_path, name):
    """A pool of one SQLite session, kept by `keeper` (a Transaction in autocommit) and its
    lock held as a statement on it would: (spec, pool, keeper, phys)."""
    from pooldbapi.transaction import Transaction
    conn = pooldbapi.connect({"s": f"driver=sqlite;database={tmp_path / name};"
                                   "maximum-number-of-pooled-connections=1;pool-timeout=2"})
    spec = conn.specs["s"]
    keeper = Transaction()
    keeper.autocommit = True
    keeper.physical(spec, True)
    keeper.after_statement("s")
    phys = keeper.take_kept("s")
    assert phys is not None and phys.lock.locked()
    return spec, pool_for(spec), keeper, phys


def _borrow_in_thread(spec, got):
    from pooldbapi.transaction import Transaction

    def borrow():
        tx = Transaction()
        tx.autocommit = True
        try:
            got.append(tx.physical(spec, True))
            tx.close()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            got.append(exc)
    thread = threading.Thread(target=borrow)
    thread.start()
    return thread


def _until(test, seconds=2.0):
    deadline = time.monotonic() + seconds
    while not test() and time.monotonic() < deadline:
        time.sleep(0.005)
    return test()


def test_a_kept_session_the_reaper_closes_gives_its_place_to_a_waiter(tmp_path):
    """A borrower waits while a kept session runs a statement; the statement ends, and
    before its connection looks at the queue the reaper closes the session (past its
    lifetime): its place goes to the waiter, who opens a session at once rather than
    waiting out pool-timeout."""
    from pooldbapi import pool as pool_module
    spec, pool, keeper, phys = _kept_and_busy(tmp_path, "reap.db")
    got: list[object] = []
    thread = _borrow_in_thread(spec, got)
    assert _until(lambda: pool.stats().waiting == 1)
    phys.created = phys.expires = -1e9  # past connection-lifetime
    phys.lock.release()  # the statement ended; its connection has not looked yet
    started = time.monotonic()
    pool_module.reap()
    thread.join(5)
    assert got and isinstance(got[0], pooldbapi.pool.Physical) and got[0] is not phys, got
    assert time.monotonic() - started < 1.5  # not after pool-timeout (2 s)
    keeper.kept_done("s", phys)  # finds it gone: nothing given back twice
    assert pool.stats().open <= 1
    keeper.close()


def test_a_borrower_does_not_take_a_kept_session_before_one_already_waiting(tmp_path):
    """The oldest waiter is served first: a newcomer that finds a kept session free (its
    statement just ended, its connection not yet looking at the queue) queues behind the
    waiter instead of taking it."""
    spec, pool, keeper, phys = _kept_and_busy(tmp_path, "order.db")
    first: list[object] = []
    late: list[object] = []
    one = _borrow_in_thread(spec, first)
    assert _until(lambda: pool.stats().waiting == 1)
    phys.returned = time.monotonic()
    phys.lock.release()  # free now, before its connection looked at the queue
    two = _borrow_in_thread(spec, late)
    assert _until(lambda: pool.stats().waiting == 2)  # the newcomer queued, took nothing
    assert not first and not late
    keeper.kept_done("s", phys)  # sees the queue: given to the oldest waiter
    one.join(5)
    two.join(5)
    assert first and first[0] is phys, first
    assert late and late[0] is phys, late  # after the first gave it back
    keeper.close()


def test_a_ctrl_c_in_a_kept_sessions_check_lets_go_of_its_lock(tmp_path):
    """The liveness check of a kept session (after a pause over pool.KEPT_UNCHECKED) is
    interrupted: the session's lock is let go, so the next statement and other borrowers
    do not hang on it."""
    conn = pooldbapi.connect({"s": f"driver=sqlite;database={tmp_path / 'c.db'};"
                                   "maximum-number-of-pooled-connections=1;pool-timeout=2"},
                             autocommit=True)
    for _ in range(2):  # prepared, then kept
        conn.execute("select ?", (1,)).fetchall()
    phys = conn.transaction.parked["s"]
    real = phys.check

    def interrupted(round_trip: bool = True) -> bool:
        raise KeyboardInterrupt

    phys.check = interrupted
    phys.returned -= 1  # a pause: the check runs
    with pytest.raises(KeyboardInterrupt):
        conn.execute("select ?", (2,))
    phys.check = real
    assert not phys.lock.locked()
    assert conn.execute("select ?", (3,)).fetchall() == [(3,)]
    conn.close()


def test_close_all_while_a_kept_session_runs_and_someone_waits(pg):
    """close_all() while a connection runs a prepared statement on its kept session and
    another borrower waits for the pool's only session: the waiter goes on with the pool's
    successor (no error), and the statement finishes."""
    spec = {"p": pg.conninfo(application_name="pool-kept-close",
                             maximum_number_of_pooled_connections="1", pool_timeout="5")}
    one, two = (pooldbapi.connect(spec, autocommit=True) for _ in range(2))
    sleep = "select pg_sleep(?)"
    one.execute(sleep, (0,))
    one.execute(sleep, (0,))  # prepared: the next runs on the kept session
    results: dict[str, object] = {}

    def run(name, conn, text, args):
        try:
            results[name] = conn.execute(text, args).fetchall()
        except BaseException as exc:  # noqa: BLE001 - asserted below
            results[name] = exc

    busy = threading.Thread(target=run, args=("one", one, sleep, (0.8,)))
    busy.start()
    time.sleep(0.2)
    waiter = threading.Thread(target=run, args=("two", two, "select ?", (7,)))
    waiter.start()
    assert _until(lambda: any(s.waiting for s in pooldbapi.pool_stats()))
    pooldbapi.close_all()
    waiter.join(5)
    busy.join(5)
    assert results.get("two") == [(7,)], results
    assert not isinstance(results.get("one"), BaseException), results
    one.close()
    two.close()


def test_kept_sessions_are_reaped_and_given_back_when_their_connection_is_gone(tmp_path):
    import gc

    from pooldbapi import pool as pool_module
    spec = {"s": f"driver=sqlite;database={tmp_path / 'r.db'};idle-timeout=0.05"}
    conn = pooldbapi.connect(spec, autocommit=True)
    conn.execute("select 1")
    pool = pool_for(conn.specs["s"])
    assert pool.stats().parked == 1
    time.sleep(0.1)
    pool_module.reap()  # kept past idle-timeout: closed like an idle one
    assert (pool.stats().parked, pool.stats().open) == (0, 0)
    assert conn.execute("select 2").fetchone() == (2,)
    conn.close()
    spec = {"s": f"driver=sqlite;database={tmp_path / 'r.db'}"}
    conn = pooldbapi.connect(spec, autocommit=True)
    conn.execute("select 1")
    pool = pool_for(conn.specs["s"])
    del conn
    gc.collect()
    pool_module.reap()  # its connection was dropped without close(): the session goes back
    assert (pool.stats().parked, pool.stats().idle) == (0, 1)
    conn = pooldbapi.connect({"s": f"driver=sqlite;database={tmp_path / 'r.db'};"
                                   "connection-lifetime=0"}, autocommit=True)
    conn.execute("select 1")  # past its lifetime: neither kept nor pooled
    assert pool_for(conn.specs["s"]).stats().open == 0
    conn.close()
    conn = pooldbapi.connect({"s": f"driver=sqlite;database={tmp_path / 'r.db'};"
                                   "allow-connection-pooling=false"}, autocommit=True)
    conn.execute("select 1")  # pooling off: a physical connection per use, none kept
    assert pool_for(conn.specs["s"]).stats().open == 0
    conn.close()


def test_close_all_closes_kept_sessions_and_their_connection_goes_on(pg):
    spec = {"p": pg.conninfo(application_name="pool-park-close")}
    conn = pooldbapi.connect(spec, autocommit=True)
    pid = conn.execute("select pg_backend_pid()").fetchone()[0]
    assert backends(pg, "pool-park-close") == 1
    pooldbapi.close_all()
    deadline = time.monotonic() + 5
    while backends(pg, "pool-park-close") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert backends(pg, "pool-park-close") == 0
    assert conn.execute("select pg_backend_pid()").fetchone()[0] != pid
    conn.close()


def test_a_child_never_uses_a_session_its_parent_kept(pg):
    import os
    conn = pooldbapi.connect({"p": pg.conninfo()}, autocommit=True)
    pid = conn.execute("select pg_backend_pid()").fetchone()[0]
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.write(write, str(conn.execute("select pg_backend_pid()").fetchone()[0]).encode())
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    assert int(os.read(read, 20)) != pid
    assert conn.execute("select pg_backend_pid()").fetchone()[0] == pid  # still sound
    conn.close()


def test_a_borrower_waiting_on_a_pool_close_all_closed_is_served_by_its_successor(tmp_path):
    spec = {"s": f"driver=sqlite;database={tmp_path / 's.db'};"
                 "maximum_number_of_pooled_connections=1;pool_timeout=30"}
    holder = pooldbapi.connect(spec)
    holder.execute("select 1")  # in a transaction: the pool's one connection stays borrowed
    old = pool_for(holder.specs["s"])
    got, errors = [], []

    def wait_for_one() -> None:
        conn = pooldbapi.connect(spec, autocommit=True)
        try:
            got.append(conn.execute("select 2").fetchall())
        except Exception as exc:  # noqa: BLE001 - the assertion below shows it
            errors.append(exc)
        finally:
            conn.close()

    waiter = threading.Thread(target=wait_for_one)
    waiter.start()
    deadline = time.monotonic() + 10
    while old.stats().waiting == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert old.stats().waiting == 1
    pooldbapi.close_all()
    waiter.join(10)
    assert errors == [] and got == [[(2,)]]
    assert pool_for(holder.specs["s"]) is not old
    holder.close()
