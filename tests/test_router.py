"""The Router on its own (no connection, no back-end is opened): lists resolved, shares in
turn from a seeded start, one container per unit, affinity pins, unknown aliases."""
from __future__ import annotations

import pytest

import pooldbapi
from pooldbapi.router import Router
from pooldbapi.settings import make_spec
from pooldbapi.sql.parse import parse


def router(default=("a", "b", "c"), **kwargs) -> Router:
    specs = {a: make_spec(a, f"driver=sqlite;database=/nonexistent/{a}.db") for a in "abcd"}
    return Router(specs, default, seed=3, **kwargs)


def test_round_robin_over_a_list_gives_each_container_its_share_in_turn():
    r = router()
    stmt = parse("select 1 from t@{a,b,b}")
    seen = [r.route(stmt)[("a", "b", "b")] for _ in range(9)]
    assert sorted(seen) == ["a"] * 3 + ["b"] * 6
    assert seen[:3] * 3 == seen  # one turn repeated, from the seeded start


def test_a_list_of_one_container_and_the_default_list():
    r = router()
    stmt = parse("select * from t@d join u on true")
    choice = r.route(stmt)
    assert choice[("d",)] == "d" and choice[("a", "b", "c")] in "abc"
    assert not r._strategies.get(("select * from t@d join u on true", ("d",)))


def test_one_refuses_occurrences_that_landed_apart_and_assign_spreads_rows():
    r = router()
    with pytest.raises(pooldbapi.NotSupportedError, match="landed on different containers"):
        r.one(parse("update t@a set x = (select 1 from u@b)"))
    assert sorted(r.assign(parse("insert into t@{a,b} values (?)"), 4)) == ["a", "a", "b", "b"]
    assert r.assign(parse("insert into t@{c,c} values (?)"), 4) == "c"


def test_pins_keep_a_list_on_its_first_container():
    r = router()
    pins: dict[tuple[str, ...], str] = {}
    stmt = parse("select 1 from t@{a,b,c}")
    first = r.route(stmt, pins)[("a", "b", "c")]
    assert pins == {("a", "b", "c"): first}
    assert {r.route(stmt, pins)[("a", "b", "c")] for _ in range(5)} == {first}
    assert r.assign(parse("insert into t@{a,b,c} values (?)"), 3, pins) == [first] * 3


def test_an_unknown_alias_and_a_missing_default_are_named():
    with pytest.raises(pooldbapi.ProgrammingError, match=r"container 'x' at position 19 \(line 1, column 20\)"):
        router().check(parse("select 1 from t@{a,x}"))
    with pytest.raises(pooldbapi.ProgrammingError, match="no default container list: 't'"):
        router(default=None).check(parse("select 1 from t"))
    with pytest.raises(pooldbapi.InterfaceError, match="unknown strategy 'fastest'"):
        router(strategy="fastest")


def test_a_fixed_choice_is_kept_until_the_default_list_changes():
    r = router(default=("d",))
    stmt = parse("select 1 from t")
    assert r.route(stmt) == {("d",): "d"}
    assert r.route(stmt) is r.route(stmt)  # every list has one container: kept
    r.default = ("c",)
    assert r.route(stmt) == {("c",): "c"}


def test_direct_names_the_one_container_a_routed_statement_runs_on_whole():
    r = router(default=("d",))
    one, joined = parse("select 1 from t"), parse("select 1 from t@c join u@d on true")
    listed = parse("select 1 from t@{a,b}")
    assert r.direct(one) is None  # not routed yet
    for stmt in (one, joined, listed):
        r.route(stmt)
    assert r.direct(one) == "d"
    assert r.direct(joined) is None  # two containers: evaluated locally
    assert r.direct(listed) is None  # a list to choose from: routed each time
    r.default = ("c",)
    assert r.direct(one) is None  # the default changed: routed afresh
    r.route(one)
    assert r.direct(one) == "c"


def test_direct_leaves_a_rest_container_to_the_local_engine():
    specs = {"o": make_spec("o", "driver=odata;url=http://localhost:1/svc")}
    r = Router(specs, ("o",))
    stmt = parse("select 1 from t")
    assert r.route(stmt) == {("o",): "o"}
    assert r.direct(stmt) is None
