"""The OData services hold exactly what pooldbapi reported when one of them is killed (nginx
answers 502) or stalls (nginx answers 504) during executemany, and no row is POSTed twice
(tests/faultlab_odata.py)."""
from __future__ import annotations

import random

import pytest
from faultlab_odata import SCENARIOS, ODataLab


@pytest.fixture(scope="module")
def odata_lab(tmp_path_factory):
    lab = ODataLab(tmp_path_factory.mktemp("odata-lab"))
    yield lab
    lab.close()


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_odata_fault_keeps_the_services_as_reported(odata_lab, name):
    for trial in range(3):
        rng = random.Random(f"{name}/{trial}")
        assert SCENARIOS[name](odata_lab, rng) == [], f"trial {trial}"
