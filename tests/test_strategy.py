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
