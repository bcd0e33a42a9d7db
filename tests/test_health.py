"""Health and fail-over with real faults: PostgreSQL clusters stopped and restarted mid-run."""
from __future__ import annotations

import threading
import time

import psycopg
import pytest

import pooldbapi
from pooldbapi.health import HEALTH
from pooldbapi.sql.parse import parse


@pytest.fixture(autouse=True)
def _forget_health():
    HEALTH.reset()
    yield
    HEALTH.reset()


@pytest.fixture
def trio(clusters):
    """Three clusters of its own (this module stops and starts them), each with table t."""
    # commits must survive an immediate stop: synchronous_commit on
    servers = [clusters.new(synchronous_commit="on") for _ in range(3)]
    for server in servers:
        with psycopg.connect(server.dsn, autocommit=True) as raw:
            raw.execute("create table t (id int primary key, v text)")
    return servers


def connect(servers, **kwargs):
    names = ("a", "b", "c")[:len(servers)]
    return pooldbapi.connect({n: s.conninfo(connect_timeout="2") for n, s in zip(names, servers)},
                             default="{" + ",".join(names) + "}", **kwargs)


def wait_until(predicate, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_reads_never_fail_while_another_container_is_healthy(trio):
    conn = connect(trio, autocommit=True)
    ran = {"a": 0, "b": 0, "c": 0}
    for i in range(60):
        if i == 20:
            trio[1].stop("immediate")
        cur = conn.execute("select count(*) from t@{a,b,c}")
        assert cur.fetchone() == (0,)
        for alias in cur.containers:
            ran[alias] += 1
    assert not pooldbapi.health()["b"].healthy
    assert ran["a"] > 20 and ran["c"] > 20
    trio[1].start()
    # re-admitted by the probe, without the application's traffic
    assert wait_until(lambda: pooldbapi.health()["b"].healthy, 10)
    seen = set()
    for _ in range(6):
        seen.update(conn.execute("select 1 from t@{a,b,c}").containers)
    assert seen == {"a", "b", "c"}
    conn.close()


def test_no_row_is_lost_or_written_twice_when_a_container_stops(trio):
    conn = connect(trio[:2], autocommit=True)
    uncertain, done = [], []
    for i in range(120):
        if i == 40:
            trio[0].stop("immediate")
        if i == 80:
            trio[0].start()
        try:
            conn.execute("insert into t@{a,b} (id, v) values (?, 'x')", (i,))
            done.append(i)
        except pooldbapi.OperationalError:
            uncertain.append(i)  # the server went away mid-statement: unknown, not retried
    assert wait_until(lambda: pooldbapi.health().get("a") is None or
                      pooldbapi.health()["a"].healthy, 10)
    stored = []
    for server in trio[:2]:
        with psycopg.connect(server.dsn) as raw:
            stored += [r[0] for r in raw.execute("select id from t")]
    assert len(stored) == len(set(stored))               # nothing twice
    assert set(done) <= set(stored)                       # nothing reported written is lost
    assert set(stored) <= set(done) | set(uncertain)
    assert len(uncertain) <= 2
    conn.close()


def test_a_failure_inside_a_transaction_fails_it_until_rollback(trio):
    conn = connect(trio[:2])
    conn.execute("insert into t@a values (1, 'x')")
    conn.execute("insert into t@b values (1, 'x')")
    trio[0].stop("immediate")
    with pytest.raises(pooldbapi.OperationalError):
        conn.execute("insert into t@a values (2, 'x')")
    with pytest.raises(pooldbapi.OperationalError, match="call rollback"):
        conn.execute("select 1 from t@b")
    with pytest.raises(pooldbapi.OperationalError,
                       match="commit failed, every container was rolled back"):
        conn.commit()  # (nothing is left open: no rollback() to call)
    assert conn.execute("select count(*) from t@b").fetchone() == (0,)
    trio[0].start()
    conn.close()


def test_a_refused_login_and_statement_errors_never_mark_a_container_unhealthy(pg):
    """The throwaway clusters trust every login, so the refusal here is an unknown database:
    the server answered, and refused the caller, which is the caller's to fix."""
    conn = pooldbapi.connect({"p": pg.conninfo(dbname="no_such_database")})
    with pytest.raises(pooldbapi.OperationalError, match="no_such_database"):
        conn.execute("select 1")
    assert "p" not in pooldbapi.health()
    conn = pooldbapi.connect({"p": pg.conninfo()})
    with pytest.raises(pooldbapi.ProgrammingError):
        conn.execute("select * from no_such_table")
    assert "p" not in pooldbapi.health()
    conn.close()


def test_exclude_unhealthy_false_never_skips(trio):
    conn = pooldbapi.connect({"a": trio[0].conninfo(exclude_unhealthy="false"),
                              "b": trio[1].conninfo()}, default="{a,b}", autocommit=True)
    trio[0].stop("immediate")
    for _ in range(4):  # reads still succeed: a read on a lost container fails over
        assert conn.execute("select 1 from t@{a,b}").containers == {"b": 1}
    assert not pooldbapi.health()["a"].healthy
    stmt = parse("select 1 from t@{a,b}")
    picks = [conn.context.one(stmt) for _ in range(6)]
    assert picks.count("a") == 3  # never skipped: chosen in its turn
    skipping = pooldbapi.connect({"a": trio[0].conninfo(), "b": trio[1].conninfo()})
    with pytest.raises(pooldbapi.OperationalError):
        skipping.execute("select 1 from t@a")  # the same server, excluded by default
    assert "a" not in [skipping.context.one(stmt) for _ in range(6)]
    skipping.close()
    trio[0].start()
    conn.close()


def test_concurrent_readers_survive_a_restart(trio):
    """Four readers over {a,b,c} while c is crashed and started again: no reader sees an
    error, and once c is back (re-admitted by the probe) reads land on it again."""
    errors: list[BaseException] = []
    landed: list[tuple[float, str]] = []
    stop = threading.Event()

    def reader():
        conn = connect(trio, autocommit=True)
        try:
            while not stop.is_set():
                cur = conn.execute("select count(*) from t@{a,b,c}")
                cur.fetchone()
                landed.append((time.monotonic(), next(iter(cur.containers))))
                time.sleep(0.005)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        conn.close()

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    trio[2].stop("immediate")
    time.sleep(0.3)
    trio[2].start()
    back = time.monotonic()
    deadline = back + 20
    while time.monotonic() < deadline and not (
            pooldbapi.health().get("c") and pooldbapi.health()["c"].healthy):
        time.sleep(0.05)
    readmitted = time.monotonic()
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join(30)
    assert not errors
    assert pooldbapi.health()["c"].healthy
    assert any(alias == "c" for when, alias in landed if when > readmitted)

def test_the_last_error_says_why_after_the_prober_s_failures_too(tmp_path):
    """A container that cannot be reached: health() keeps saying why (the driver's message,
    redacted) after the background prober failed on it too, not the error's class alone."""
    from pgcluster import free_port
    port = free_port()  # nothing listens there
    conn = pooldbapi.connect({"p": f"driver=postgresql;host=127.0.0.1;port={port};"
                                   "user=postgres;password=s3cr3t-pw;connect_timeout=2"})
    try:
        with pytest.raises(pooldbapi.OperationalError):
            conn.execute("select 1")
        first = pooldbapi.health()["p"].failures
        assert wait_until(lambda: pooldbapi.health()["p"].failures >= first + 2, 10)
        state = pooldbapi.health()["p"]
        assert not state.healthy and "connection" in state.last_error.lower()
        assert "refused" in state.last_error.lower() and "s3cr3t-pw" not in state.last_error
    finally:
        conn.close()
