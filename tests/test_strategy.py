"""Strategies: round-robin shares, seeds reproducible across processes, skipping, learning."""
from __future__ import annotations

import collections
import random
import subprocess
import sys
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pooldbapi
from pooldbapi.strategy import (
    IN_FLIGHT,
    STRATEGIES,
    Adaptive,
    InFlight,
    LeastBusy,
    RoundRobin,
    WeightedRandom,
    seeded_random,
)


def test_ten_executions_over_five_containers_give_two_each():
    rr = RoundRobin(("e1", "e2", "e3", "e4", "e5"), random.Random())
    assert collections.Counter(rr.choose() for _ in range(10)) == {f"e{i}": 2 for i in
                                                                   range(1, 6)}


def test_a_container_listed_twice_gets_twice_the_share():
    rr = RoundRobin(("eol1", "eol2", "eol2"), random.Random(1))
    assert collections.Counter(rr.choose() for _ in range(300)) == {"eol1": 100, "eol2": 200}


def test_unhealthy_containers_are_skipped_while_one_is_healthy():
    rr = RoundRobin(("a", "b", "c"), random.Random(0))
    picks = [rr.choose(lambda alias: alias != "b") for _ in range(20)]
    assert "b" not in picks and set(picks) == {"a", "c"}
    assert rr.choose(lambda alias: False) in ("a", "b", "c")


SCRIPT = ("from pooldbapi.strategy import RoundRobin, seeded_random;"
          "l=('a','b','c','d');"
          "r=RoundRobin(l, seeded_random(42, 'select 1', l));"
          "print(''.join(r.choose() for _ in range(6)))")


def test_seed_is_reproducible_across_processes():
    runs = {subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                           check=True, env={"PYTHONHASHSEED": str(seed)}).stdout
            for seed in (1, 2, 3)}
    assert len(runs) == 1
    aliases = ("a", "b", "c", "d")
    rr = RoundRobin(aliases, seeded_random(42, "select 1", aliases))
    assert runs.pop().strip() == "".join(rr.choose() for _ in range(6))


def test_without_seed_the_start_varies():
    aliases = tuple("abcdefgh")
    starts = {RoundRobin(aliases, seeded_random(None, "s", aliases)).choose() for _ in range(80)}
    assert len(starts) > 3


def test_weighted_random_follows_multiplicity():
    wr = WeightedRandom(("a", "b", "b"), random.Random(5))
    counts = collections.Counter(wr.choose() for _ in range(6000))
    assert 0.6 < counts["b"] / 6000 < 0.73


def test_least_busy_picks_the_container_with_fewest_in_flight():
    lb = LeastBusy(("a", "b"), random.Random(0), in_flight=InFlight())
    first = lb.choose()
    second = lb.choose()
    assert {first, second} == {"a", "b"}
    lb.done(first, 0.01, 1)
    assert lb.choose() == first


def test_adaptive_prefers_the_faster_container():
    ad = Adaptive(("fast", "slow"), random.Random(3))
    ad.done("fast", 0.01, 10)
    ad.done("slow", 1.0, 10)
    counts = collections.Counter(ad.choose() for _ in range(1000))
    assert counts["fast"] > 900


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_uses_only_listed_containers(name):
    strategy = STRATEGIES[name](("x", "y"), random.Random(1))
    assert {strategy.choose() for _ in range(50)} <= {"x", "y"}


def test_adaptive_learns_a_moving_average_of_each_containers_rate():
    ad = Adaptive(("a", "b"), random.Random(0))
    assert {ad.choose() for _ in range(40)} == {"a", "b"}  # unmeasured: each tried at random
    ad.done("a", 1.0, 10)
    assert ad.choose() == "b"                             # the unmeasured one first
    ad.done("a", 2.0, 40)                                 # 20 units/s: 0.8 * 10 + 0.2 * 20
    ad.done("b", 0.0, 1)                                  # no time at all: counted as 1 us
    assert ad._rate == {"a": pytest.approx(12.0), "b": pytest.approx(1e6)}
    ad.done("b", 1.0, 1)
    assert ad._rate["b"] == pytest.approx(0.8 * 1e6 + 0.2)


def test_adaptive_shares_follow_the_measured_rates_over_healthy_containers():
    ad = Adaptive(("a", "b", "c"), random.Random(4))
    ad.done("a", 1.0, 30)
    ad.done("b", 1.0, 10)
    ad.done("c", 1.0, 1000)
    counts = collections.Counter(ad.choose(lambda x: x != "c") for _ in range(4000))
    assert set(counts) == {"a", "b"} and 0.7 < counts["a"] / 4000 < 0.8
    assert {ad.choose(lambda x: False) for _ in range(200)} <= {"a", "b", "c"}


def test_least_busy_weighs_by_multiplicity_breaks_ties_in_turn_and_skips_the_unhealthy():
    lb = LeastBusy(("a", "b", "b"), random.Random(2), in_flight=InFlight())
    picks = [lb.choose() for _ in range(6)]
    assert collections.Counter(picks) == {"a": 2, "b": 4}  # b listed twice: twice the load
    for alias in picks:
        lb.done(alias, 0.1, 1)
    lb.done("a", 0.1, 1)                                   # more done than chosen: stays at 0
    assert lb.busy("a") == lb.busy("b") == 0 and not lb._in_flight.counts
    assert {lb.choose(lambda x: x == "a") for _ in range(3)} == {"a"}
    assert lb.choose(lambda x: False) in ("a", "b")        # none healthy: still an answer


def test_least_busy_one_unit_at_a_time_goes_round_the_list():
    lb = LeastBusy(("a", "b", "c"), random.Random(0), in_flight=InFlight())
    picks = []
    for _ in range(9):
        picks.append(lb.choose())
        lb.done(picks[-1], 0.01, 1)
    assert collections.Counter(picks) == {"a": 3, "b": 3, "c": 3}
    # in the list's order, from wherever it started
    start = "abc".index(picks[0])
    assert "".join(picks) == ("abc" * 4)[start:start + 9]


def test_in_flight_ends_one_unit_unless_told():
    in_flight = InFlight()
    lb = LeastBusy(("a",), random.Random(0), in_flight=in_flight)
    lb.choose(), lb.choose(), lb.choose()
    in_flight.end("a")
    assert in_flight.count("a") == 2
    in_flight.end("a", 2)
    assert in_flight.count("a") == 0 and in_flight.counts == {}


def test_least_busy_counts_per_container_definition_across_strategies():
    """Two strategies (two connections, two statements) over the same definitions see each
    other's units; an alias is only a name: two aliases of one definition share a count."""
    shared = InFlight()
    one = LeastBusy(("sa", "sb"), random.Random(0), ("defA", "defB"), shared)
    other = LeastBusy(("x", "y"), random.Random(1), ("defA", "defB"), shared)
    held = [one.choose() for _ in range(4)]                # two in flight on each
    assert shared.counts == {"defA": 2, "defB": 2}
    for alias in held:
        if alias == "sb":
            one.done(alias, 0.1, 1)                        # defB's units end, defA's go on
    assert [other.choose() for _ in range(2)] == ["y", "y"]
    assert other.busy("x") == 2 and other.busy("y") == 2


@given(st.lists(st.tuples(st.sampled_from("abc"), st.booleans()), min_size=1, max_size=60),
       st.lists(st.sampled_from("abc"), min_size=1, max_size=5), st.integers(0, 2**16))
@settings(max_examples=200)
def test_least_busy_always_picks_a_least_loaded_healthy_container_and_ends_at_zero(
        steps, aliases, seed):
    in_flight = InFlight()
    lb = LeastBusy(tuple(aliases), random.Random(seed), in_flight=in_flight)
    weight = collections.Counter(aliases)
    held: list[str] = []
    for sick, end_one in steps:
        healthy = [a for a in aliases if a != sick]
        load = {a: in_flight.count(a) / weight[a] for a in set(aliases)}
        alias = lb.choose(lambda a, sick=sick: a != sick)
        if healthy:
            assert alias in healthy and load[alias] == min(load[a] for a in healthy)
        held.append(alias)
        if end_one and held:
            lb.done(held.pop(0), 0.01, 1)
        assert sum(in_flight.counts.values()) == len(held)
    for alias in held:
        lb.done(alias, 0.01, 1)
    assert in_flight.counts == {}


def test_weighted_random_skips_the_unhealthy_and_answers_when_none_is_healthy():
    wr = WeightedRandom(("a", "b", "c"), random.Random(9))
    assert {wr.choose(lambda x: x != "b") for _ in range(300)} == {"a", "c"}
    assert {wr.choose(lambda x: False) for _ in range(300)} == {"a", "b", "c"}


def test_seeded_generators_differ_by_statement_and_list_and_never_use_hash():
    one = seeded_random(7, "select 1", ("a", "b")).random()
    assert one == seeded_random(7, "select 1", ("a", "b")).random()
    assert one != seeded_random(7, "select 2", ("a", "b")).random()
    assert one != seeded_random(7, "select 1", ("a", "c")).random()
    assert one != seeded_random(8, "select 1", ("a", "b")).random()
    assert seeded_random(None, "s", ("a",)).random() != seeded_random(None, "s", ("a",)).random()


# -- units of real statements: every one ends, and least-busy sees other connections' -------

def sqlite_pair(tmp_path, strategy, **kw):
    conn = pooldbapi.connect({name: f"driver=sqlite;database={tmp_path / name}.db"
                              for name in ("a", "b")}, default="{a,b}", strategy=strategy,
                             broadcast_ddl=True, **kw)
    conn.execute("create table t (x int)")
    conn.cursor().executemany("insert into t values (?)", [(i,) for i in range(3000)])
    conn.commit()
    return conn


def in_flight(conn):
    return {alias: IN_FLIGHT.count(spec.key) for alias, spec in conn.specs.items()}


@pytest.mark.parametrize("strategy", ["least-busy", "adaptive"])
def test_twenty_thousand_selects_leave_nothing_pending(tmp_path, strategy):
    conn = sqlite_pair(tmp_path, strategy)
    cur = conn.cursor()
    seen = collections.Counter()
    for _ in range(20_000):
        cur.execute("select 1 from t@{a,b} limit 1")
        seen.update(cur.containers)
    assert conn.router._pending == []
    assert in_flight(conn) == {"a": 0, "b": 0}
    assert seen["a"] > 5000 and seen["b"] > 5000  # least-busy alone: strictly in turn
    conn.close()


def _interrupt(alias, rows):
    raise KeyboardInterrupt


CALLS = {
    "select": lambda conn: conn.execute("select count(*) from t").fetchall(),
    "federated select": lambda conn: conn.execute(
        "select count(*) from t@{a,b} p join t@{b,a} q on p.x = q.x").fetchall(),
    "executemany": lambda conn: conn.cursor().executemany(
        "insert into t values (?)", [(i,) for i in range(100)]),
    "bulk insert": lambda conn: conn.cursor().executemany(
        "bulk insert into t values (?)", [(i,) for i in range(100)]),
    "multi-row values": lambda conn: conn.execute("insert into t values (1), (2), (3)"),
    "insert select": lambda conn: conn.execute("insert into t select x from t@{a,b}"),
    "statement error": lambda conn: conn.execute("select nothing from t"),
    "interrupted write": lambda conn: (setattr(conn, "progress", _interrupt),
                                       conn.cursor().executemany(
                                           "insert into t values (?)",
                                           [(i,) for i in range(100)])),
    "explain": lambda conn: conn.cursor().explain("select x from t"),
}


@pytest.mark.parametrize("strategy", ["least-busy", "adaptive"])
@pytest.mark.parametrize("call", sorted(CALLS))
def test_every_unit_ends_with_its_call_however_it_ends(tmp_path, strategy, call):
    conn = sqlite_pair(tmp_path, strategy)
    for _ in range(3):
        try:
            CALLS[call](conn)
        except (pooldbapi.Error, KeyboardInterrupt):
            conn.rollback()
        conn.progress = None
        assert conn.router._pending == [] and in_flight(conn) == {"a": 0, "b": 0}
    conn.close()


@pytest.mark.parametrize("end", ["read to the end", "commit", "rollback", "cursor close",
                                 "connection close", "next execute"])
def test_a_streamed_selects_unit_is_in_flight_until_the_stream_ends(tmp_path, end):
    conn = sqlite_pair(tmp_path, "least-busy")
    cur = conn.cursor(stream=True)
    cur.execute("select x from t")
    cur.fetchmany(10)
    assert sorted(in_flight(conn).values()) == [0, 1]  # its container is busy while it reads
    assert conn.router._pending == []                  # the stream holds the unit
    if end == "read to the end":
        cur.fetchall()
    elif end == "next execute":
        cur.execute("select 1 from t@a")  # one container: nothing chosen, nothing counted
    elif end == "cursor close":
        cur.close()
    elif end == "connection close":
        conn.close()
    else:
        getattr(conn, end)()
    assert in_flight(conn) == {"a": 0, "b": 0}
    conn.close()


SLOW = ("create view t as with recursive c(i) as (select 1 union all select i + 1 from c"
        " where i < 100000) select max(i) as x from c")


def test_least_busy_steers_away_from_a_slow_container_across_connections_and_threads(
        tmp_path):
    """Six threads, each with its own connection over {sa,sb}; a select on sa takes ~1,000
    times as long as on sb. Least-busy counts in flight per container process-wide, so
    while threads wait on sa the others are sent to sb: sb does most of the work."""
    containers = {"sa": f"driver=sqlite;database={tmp_path / 'sa.db'}",
                  "sb": f"driver=sqlite;database={tmp_path / 'sb.db'}"}
    setup = pooldbapi.connect(containers, autocommit=True)
    setup.execute(SLOW.replace("create view t", "create view t@sa"))
    setup.execute("create table t@sb (x int)")
    setup.execute("insert into t@sb values (1)")
    setup.close()
    counts: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work():
        try:
            conn = pooldbapi.connect(containers, default="{sa,sb}", strategy="least-busy",
                                     autocommit=True)
            cur = conn.cursor()
            for _ in range(100):
                cur.execute("select x from t")
                cur.fetchall()
                with lock:
                    counts.update(cur.containers)
            conn.close()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sum(counts.values()) == 600
    assert counts["sb"] / 600 > 0.8, counts
