"""The databases hold exactly what pooldbapi reported, whatever fails: statement errors at drawn
rows, sessions killed at drawn rows, servers crashed at drawn moments (tests/faultlab.py)."""
from __future__ import annotations

import random

import pytest
from faultlab import CRASH_SCENARIOS, SCENARIOS, Lab


@pytest.fixture(scope="module")
def lab(clusters):
    # synchronous_commit on: a crash must not lose what the server acknowledged
    return Lab([clusters.new(synchronous_commit="on"), clusters.new(synchronous_commit="on")])


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_fault_keeps_the_databases_as_reported(lab, name):
    for trial in range(5):
        rng = random.Random(f"{name}/{trial}")
        assert SCENARIOS[name](lab, rng) == [], f"trial {trial}"


@pytest.mark.parametrize("name", list(CRASH_SCENARIOS))
def test_server_crash_keeps_the_databases_as_reported(lab, name):
    for trial in range(2):
        rng = random.Random(f"{name}/{trial}")
        assert CRASH_SCENARIOS[name](lab, rng) == [], f"trial {trial}"
