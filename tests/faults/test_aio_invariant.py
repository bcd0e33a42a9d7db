"""The fault scenarios of tests/faultlab.py, faultlab_sqlite.py and faultlab_odata.py through
pooldbapi.aio: the databases hold exactly what it reported (fewer draws than the synchronous
run: the core under both is one)."""
from __future__ import annotations

import random

import faultlab_sqlite
import pytest
from faultlab import CRASH_SCENARIOS, SCENARIOS, Lab
from faultlab_odata import SCENARIOS as ODATA_SCENARIOS
from faultlab_odata import ODataLab
from faultlab_sqlite import CONFLICT_SCENARIOS, FULL_SCENARIOS, LOCK_SCENARIOS, SqliteLab


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


@pytest.mark.parametrize("which", ["lab", "sqlite_lab", "odata_lab"])
def test_the_lab_connects_through_aio(request, which):
    conn = request.getfixturevalue(which).connect()
    try:
        assert type(conn._target).__name__ == "AsyncConnection"
        assert type(conn.cursor()._target).__name__ == "AsyncCursor"
    finally:
        conn.close()



@pytest.fixture
def sqlite_lab(tmp_path):
    lab = SqliteLab(tmp_path, api="aio")
    yield lab
    lab.close()


@pytest.fixture(scope="module")
def full_sqlite_lab(tmp_path_factory):
    with faultlab_sqlite.full_lab(tmp_path_factory.mktemp("full-lab"), api="aio") as lab:
        if isinstance(lab, str):
            pytest.skip(lab)
        yield lab


@pytest.fixture(scope="module")
def odata_lab(tmp_path_factory):
    lab = ODataLab(tmp_path_factory.mktemp("odata-lab"), api="aio")
    yield lab
    lab.close()


@pytest.mark.parametrize("name", list(LOCK_SCENARIOS))
def test_a_locked_sqlite_file_through_aio_keeps_the_files_as_reported(sqlite_lab, name):
    for trial in range(3):
        rng = random.Random(f"aio/{name}/{trial}")
        assert LOCK_SCENARIOS[name](sqlite_lab, rng) == [], f"trial {trial}"


@pytest.mark.parametrize("name", list(CONFLICT_SCENARIOS))
def test_a_sqlite_conflict_through_aio_keeps_the_files_as_reported(sqlite_lab, name):
    for trial in range(4):
        rng = random.Random(f"aio/{name}/{trial}")
        assert CONFLICT_SCENARIOS[name](sqlite_lab, rng) == [], f"trial {trial}"


@pytest.mark.parametrize("name", list(FULL_SCENARIOS))
def test_a_full_file_system_through_aio_keeps_the_files_as_reported(full_sqlite_lab, name):
    for trial in range(3):
        rng = random.Random(f"aio/{name}/{trial}")
        assert FULL_SCENARIOS[name](full_sqlite_lab, rng) == [], f"trial {trial}"


@pytest.mark.parametrize("name", list(ODATA_SCENARIOS))
def test_odata_fault_through_aio_keeps_the_services_as_reported(odata_lab, name):
    for trial in range(2):
        rng = random.Random(f"aio/{name}/{trial}")
        assert ODATA_SCENARIOS[name](odata_lab, rng) == [], f"trial {trial}"
