"""Limits and health shared through a Redis store (a real redis-server), and the in-process
arithmetic they fall back to."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from unittest import mock

import pytest

import pooldbapi
from pooldbapi.state.local import Spacing, Window
from pooldbapi.throttle import throttle_for

pytest.importorskip("redis")


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_spacing_reserves_one_slot_per_interval():
    clock = Clock()
    spacing = Spacing(4, clock)  # 0.25 s apart
    assert [spacing.reserve() for _ in range(3)] == [0.0, 0.25, 0.5]
    clock.now += 2
    assert spacing.reserve() == 0.0  # idle time is not saved up: no burst
    assert spacing.reserve(2) == 0.25 and spacing.reserve() == 0.75


def test_windows_count_calls_and_say_when_the_next_one_starts():
    clock = Clock(120.5)  # 0.5 s into a minute
    minute = Window(2, 60, clock=clock)
    assert [minute.take(), minute.take()] == [0.0, 0.0]
    assert minute.take() == pytest.approx(59.5)
    clock.now = 180.0  # the next minute
    assert minute.take() == 0.0
    day = Window(1, 86400, offset=3600, clock=Clock(86400 * 10 + 82800 - 1))  # 22:59:59 UTC
    assert day.take() == 0.0
    assert day.take() == pytest.approx(1.0)  # midnight at UTC+1 is one second away


def _container(tmp_path, name, **keys):
    extra = "".join(f";{k}={v}" for k, v in keys.items())
    return f"driver=sqlite;database={tmp_path / name}.db{extra}"


CALLS = """
import json, sys, time, pooldbapi
containers = json.loads(sys.argv[1])
conn = pooldbapi.connect(containers, autocommit=True)
alias = sorted(containers)[0]
conn.execute(f"create table if not exists t@{alias} (x int)")
stamps = []
for i in range(int(sys.argv[2])):
    conn.execute(f"insert into t@{alias} values (?)", (i,))
    stamps.append(time.time())
print(json.dumps(stamps))
"""


def _run_processes(containers, calls, processes=2):
    procs = [subprocess.Popen([sys.executable, "-c", CALLS, json.dumps(containers), str(calls)],
                              stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    return sorted(s for p in procs for s in json.loads(p.communicate(timeout=120)[0]))


def _most_in_one_second(stamps):
    return max(sum(1 for t in stamps if s <= t < s + 1) for s in stamps)


def test_processes_sharing_a_store_share_one_rate(tmp_path, redis_server):
    redis_server.flush()
    shared = {"a": _container(tmp_path, "a", **{"max-calls-per-second": 10,
                                               "shared-state": redis_server.url})}
    stamps = _run_processes(shared, 12)
    # 24 calls at 10 a second, slots 0.1 s apart whatever the processes: 10 + 1 slots in any
    # second. A stamp is taken when a call has ended, after its slot: where the two processes
    # wait on the file's lock, one call's end can be a slot late, so allow one more.
    assert _most_in_one_second(stamps) <= 12
    assert stamps[-1] - stamps[0] >= 2.0
    alone = {"a": _container(tmp_path, "b", **{"max-calls-per-second": 10})}
    stamps = _run_processes(alone, 12)
    # without the store, each process has its own 10 a second: about 20 in a second
    assert _most_in_one_second(stamps) >= 16


def test_a_rate_limit_group_shares_one_allowance_between_containers(tmp_path):
    group = {"max-calls-per-second": 10, "rate-limit-group": "acme"}
    conn = pooldbapi.connect({"a": _container(tmp_path, "a", **group),
                              "b": _container(tmp_path, "b", **group)},
                             default="{a,b}", broadcast_ddl=True, autocommit=True)
    assert throttle_for(conn.specs["a"]) is throttle_for(conn.specs["b"])
    conn.execute("create table t (x int)")
    started = time.monotonic()
    conn.cursor().executemany("insert into t values (?)", [(i,) for i in range(12)])
    assert time.monotonic() - started >= 1.0  # 12 calls at 10 a second, not 2 x 10
    conn.close()


def test_a_used_up_day_is_an_error_in_every_process(tmp_path, redis_server):
    redis_server.flush()
    containers = {"a": _container(tmp_path, "day", **{"max-calls-per-day": 3,
                                                     "shared-state": redis_server.url,
                                                     "rate-limit-timezone": "Europe/Amsterdam"})}
    conn = pooldbapi.connect(containers, autocommit=True)
    conn.execute("create table t (x int)")
    conn.execute("insert into t values (1)")
    conn.execute("insert into t values (2)")
    with pytest.raises(pooldbapi.OperationalError, match=r"max-calls-per-day \(3\) is used up"):
        conn.execute("insert into t values (3)")
    conn.close()
    other = subprocess.run([sys.executable, "-c", CALLS, json.dumps(containers), "1"],
                           capture_output=True, text=True, timeout=60, check=False)
    assert "max-calls-per-day (3) is used up" in other.stderr  # the store counted for all


def test_the_servers_clock_rules_whatever_the_clients_say(redis_server):
    from pooldbapi.state.redis import RedisStore
    redis_server.flush()
    one, two = RedisStore(redis_server.url), RedisStore(redis_server.url)
    assert one.spacing("k", 0.5) == 0.0
    real = time.time
    with mock.patch("time.time", lambda: real() + 3600):  # a client an hour ahead
        assert two.spacing("k", 0.5) == pytest.approx(0.5, abs=0.1)
        assert [two.window("w", 2, 2.0, 0) for _ in range(2)] == [0.0, 0.0]
    assert 0 < one.window("w", 2, 2.0, 0) <= 2.0


def test_health_is_shared_a_container_down_for_one_process_is_skipped_by_all(
        tmp_path, redis_server, pg):
    redis_server.flush()
    containers = {"dead": f"driver=postgresql;host=127.0.0.1;port=9;user=x;connect_timeout=2;"
                          f"shared-state={redis_server.url}",
                  "good": pg.conninfo(**{"shared-state": redis_server.url})}
    conn = pooldbapi.connect({"dead": containers["dead"]}, autocommit=True)
    with pytest.raises(pooldbapi.OperationalError):
        conn.execute("select 1")
    conn.close()
    # past the first back-offs (0.25 s, 0.5 s): the mark stays while this process's probes fail
    time.sleep(1.0)
    script = """
import json, sys, pooldbapi
conn = pooldbapi.connect(json.loads(sys.argv[1]), default="{dead,good}", autocommit=True)
ran = {}
for _ in range(6):
    for alias, n in conn.execute("select 1").containers.items():
        ran[alias] = ran.get(alias, 0) + n
print(json.dumps([ran, "dead" in pooldbapi.health()]))
"""
    done = subprocess.run([sys.executable, "-c", script, json.dumps(containers)],
                          capture_output=True, text=True, timeout=60, check=True)
    ran, tried_dead = json.loads(done.stdout)
    assert ran == {"good": 6}
    assert not tried_dead  # skipped from what the store said, not from a failure of its own


def test_a_store_that_goes_away_costs_one_warning_and_no_statement(tmp_path, caplog):
    from redisserver import RedisServer
    server = RedisServer()
    conn = pooldbapi.connect({"a": _container(tmp_path, "gone", **{
        "max-calls-per-second": 50, "shared-state": server.url.replace("redis://",
                                                                       "redis://:pw@")})},
                             autocommit=True)
    try:
        conn.execute("create table t (x int)")
        server.stop()
        with caplog.at_level(logging.WARNING, logger="pooldbapi"):
            started = time.monotonic()
            for i in range(20):
                conn.execute("insert into t values (?)", (i,))
            elapsed = time.monotonic() - started
        assert conn.execute("select count(*) from t").fetchone()[0] == 20
        warnings = [r.getMessage() for r in caplog.records if "cannot be reached" in
                    r.getMessage()]
        assert len(warnings) == 1
        assert "pw" not in warnings[0] and "***" in warnings[0]  # the password is a secret
        assert elapsed < 10  # bounded: one short timeout, then in-process limits
    finally:
        conn.close()


def test_rate_limit_resets_in_seconds_epoch_seconds_and_epoch_milliseconds():
    from pooldbapi.backends.odata.client import Hold, reset_seconds
    now = 1_750_000_000.0
    assert reset_seconds("30", now) == 30
    assert reset_seconds(str(now + 12), now) == pytest.approx(12)
    assert reset_seconds(str((now + 45) * 1000), now) == pytest.approx(45)
    assert reset_seconds("soon", now) is None
    hold = Hold()
    assert hold.heard({"X-RateLimit-Remaining": "4", "X-RateLimit-Reset": "30"}) == 0
    assert hold.heard({"X-RateLimit-Minutely-Remaining": "0",
                       "X-RateLimit-Minutely-Reset": "2"}) == pytest.approx(2)


def test_a_hold_heard_by_one_process_holds_them_all(tmp_path, redis_server):
    from pooldbapi.settings import make_spec
    from pooldbapi.throttle import Limiter
    redis_server.flush()
    spec = make_spec("a", _container(tmp_path, "h", **{"max-calls-per-second": 100,
                                                       "shared-state": redis_server.url}))
    one, two = Limiter(spec, spec.key), Limiter(spec, spec.key)  # as in two processes
    one.hold_until(time.monotonic() + 0.6)
    started = time.monotonic()
    two.take()
    assert time.monotonic() - started >= 0.5


def test_the_adaptive_rate_cuts_on_429_and_climbs_back():
    from pooldbapi.backends.odata.client import AdaptiveRate
    rate = AdaptiveRate()
    for _ in range(10):
        rate.before_call()  # ten calls in the last second
    rate.throttled()
    assert rate.rate == pytest.approx(7.0)
    rate.throttled()
    assert rate.rate == pytest.approx(4.9)
    for _ in range(20):
        rate.succeeded()
    assert rate.rate == pytest.approx(4.9 * 1.05 ** 20)  # climbing back, 5% a success
    for _ in range(5):
        rate.succeeded()
    assert rate.rate is None  # past twice the last cut: no limit of its own any more


def _refused_container(redis_server, monkeypatch):
    """A shared-health container whose every connect is refused (and recorded), with the
    probes run by hand: its spec, the connects made, and the store's key of its health."""
    from pooldbapi.backends.postgresql import PostgreSQLBackend
    from pooldbapi.health import Health
    from pooldbapi.settings import make_spec
    from pooldbapi.state import store_key
    redis_server.flush()
    spec = make_spec("dead", "driver=postgresql;host=127.0.0.1;port=9;user=x;"
                             f"shared-state={redis_server.url}")
    connects = []
    connect = PostgreSQLBackend.connect

    def refuse(self, opened, limiter=None):
        if opened.key != spec.key:  # (the process-wide prober still probing another test's)
            return connect(self, opened, limiter)
        connects.append(opened.alias)
        raise OSError("refused")

    monkeypatch.setattr(PostgreSQLBackend, "connect", refuse)
    monkeypatch.setattr(Health, "_start_prober", lambda self: None)
    return spec, connects, store_key(spec.key)


def test_one_process_probes_a_container_at_a_time(redis_server, monkeypatch):
    from pooldbapi.health import Health
    from pooldbapi.state.redis import store_for
    spec, connects, key = _refused_container(redis_server, monkeypatch)
    one, two = Health(), Health()  # two processes' views
    one.failed(spec, "refused")
    two.failed(spec, "refused")
    one._probe(spec)
    two._probe(spec)
    assert connects == ["dead"]  # the lease holder probed; the other did not
    assert not two.is_healthy(spec)
    store_for(redis_server.url).mark_healthy(key)  # the holder re-admits it
    two._probe(spec)
    assert connects == ["dead"] and two.snapshot()["dead"].healthy


def test_the_probe_lease_is_renewed_by_its_holder_and_refused_to_others(redis_server):
    from pooldbapi.state.redis import RedisStore
    redis_server.flush()
    store = RedisStore(redis_server.url)
    assert store.lease("c", 5.0, "holder") is True
    assert store.lease("c", 5.0, "holder") is True   # its next probe: still its own
    assert store.lease("c", 5.0, "other") is False
    store.release("c")
    assert store.lease("c", 5.0, "other") is True


def test_the_lease_holder_probes_again_rather_than_readmit_an_expired_mark(redis_server,
                                                                          monkeypatch):
    """The process holding a container's probe lease probes it at its next turn, even when
    the store's mark has expired meanwhile (its back-off ends as the next probe is due):
    it is not another process re-admitting the container."""
    from pooldbapi.health import Health
    from pooldbapi.state.redis import store_for
    spec, connects, key = _refused_container(redis_server, monkeypatch)
    one = Health()
    one.failed(spec, "refused")
    one._probe(spec)  # takes the lease; refused again
    store_for(redis_server.url).send(lambda io: io.client.delete(key + ":down"))  # (expired)
    one._probe(spec)
    assert connects == ["dead", "dead"]
    assert not one.snapshot()["dead"].healthy
