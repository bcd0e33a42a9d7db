"""The fault scenarios of tests/faultlab.py through pooldbapi.aio: the databases hold exactly
what it reported (fewer draws than the synchronous run: the core under both is one)."""
from __future__ import annotations

import random

import pytest
from faultlab import CRASH_SCENARIOS, SCENARIOS, Lab


@pytest.fixture(scope="module")
def lab(clusters):
    return Lab([clusters.new(synchronous_commit="on"), clusters.new(synchronous_commit="on")],
               api="aio")


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_fault_through_aio_keeps_the_databases_as_reported(lab, name):
    for trial in range(2):
        rng = random.Random(f"aio/{name}/{trial}")
        assert SCENARIOS[name](lab, rng) == [], f"trial {trial}"


@pytest.mark.parametrize("name", list(CRASH_SCENARIOS))
def test_server_crash_through_aio_keeps_the_databases_as_reported(lab, name):
    rng = random.Random(f"aio/{name}")
    assert CRASH_SCENARIOS[name](lab, rng) == []


def test_the_lab_connects_through_aio(lab):
    conn = lab.connect()
    try:
        assert type(conn._target).__name__ == "AsyncConnection"
        assert type(conn.cursor()._target).__name__ == "AsyncCursor"
    finally:
        conn.close()
