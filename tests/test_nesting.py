"""A statement nested too deeply for the SQL parser (sqlglot, recursive descent) is a
ProgrammingError naming the limit, raised before anything is sent, never a bare RecursionError;
one within the limit is evaluated as ever."""
from __future__ import annotations

import pytest

import pooldbapi
from pooldbapi.sql.structure import NESTING

DEEP = [
    "select " + "(" * 60 + "1" + ")" * 60 + " from t@s1, t@s2 u",
    "select 1 from t@s1, t@s2 u where " + "not " * 200 + "t.x = 1",
    "select " + "coalesce(" * 100 + "t.x" + ")" * 100 + " from t@s1, t@s2 u",
    "select 1 from t@s1 where t.x in (" + "select x from t@s2 where x in (" * 70 + "1"
    + ")" * 70 + ")",
]


@pytest.fixture
def federated(tmp_path):
    specs = {}
    for alias in ("s1", "s2"):
        path = tmp_path / f"{alias}.db"
        specs[alias] = f"driver=sqlite;database={path}"
        setup = pooldbapi.connect({alias: specs[alias]}, autocommit=True)
        setup.execute("create table t (x int)")
        setup.execute("insert into t values (1)")
        setup.close()
    conn = pooldbapi.connect(specs)
    yield conn
    conn.close()


@pytest.mark.parametrize("text", DEEP, ids=["parentheses", "not", "coalesce", "subqueries"])
def test_a_too_deep_federated_select_is_a_programming_error_naming_the_limit(federated, text):
    with pytest.raises(pooldbapi.ProgrammingError,
                       match=f"nests too deeply.*{NESTING} levels") as info:
        federated.execute(text)
    assert not isinstance(info.value.__cause__, RecursionError) or \
        "RecursionError" not in str(info.value)


def test_a_federated_select_within_the_limit_is_evaluated(federated):
    text = "select " + "(" * 30 + "t.x + u.x" + ")" * 30 + " from t@s1 t, t@s2 u"
    assert federated.execute(text).fetchall() == [(2,)]
    text = "select 1 from t@s1 t, t@s2 u where " + "not " * 31 + "t.x = 2"
    assert federated.execute(text).fetchall() == [(1,)]


def test_a_too_deep_odata_select_is_refused_before_anything_is_sent(gateways):
    gateway = gateway_ = gateways()
    conn = pooldbapi.connect({"o1": f"driver=odata;url={gateway.url};token=tok-deep"})
    before = len(gateway_.calls())
    for text in ("select ID from Tasks@o1 where " + "(" * 60 + "ID = 1" + ")" * 60,
                 "select count(*) from Tasks@o1 where " + "not " * 200 + "ID = 1"):
        with pytest.raises(pooldbapi.ProgrammingError, match="nests too deeply"):
            conn.execute(text)
    assert len(gateway.calls()) == before
    conn.close()
