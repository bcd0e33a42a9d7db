"""Strategies: round-robin shares, seeds reproducible across processes, skipping, learning."""
from __future__ import annotations

import collections
import random
import subprocess
import sys

import pytest

from pooldbapi.strategy import (
    STRATEGIES,
    Adaptive,
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
    lb = LeastBusy(("a", "b"), random.Random(0))
    first = lb.choose()
    second = lb.choose()
    assert {first, second} == {"a", "b"}
    lb.done(first, 0.01)
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
    lb = LeastBusy(("a", "b", "b"), random.Random(2))
    picks = [lb.choose() for _ in range(6)]
    assert collections.Counter(picks) == {"a": 2, "b": 4}  # b listed twice: twice the load
    for alias in picks:
        lb.done(alias, 0.1)
    lb.done("a", 0.1)                                      # more done than chosen: stays at 0
    assert lb._busy == {"a": 0, "b": 0}
    assert {lb.choose(lambda x: x == "a") for _ in range(3)} == {"a"}
    assert lb.choose(lambda x: False) in ("a", "b")        # none healthy: still an answer


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
