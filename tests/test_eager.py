"""Eager aggregation plans: (statement, expected plan) rows, and where there is none, why."""
from __future__ import annotations

import pytest

from pooldbapi.federated.eager import partial_sql, plan

OWN = frozenset({"store_id", "amount", "qty"})  # f: the large occurrence
OTHERS = frozenset({"id", "region"})            # s: the other one
JOIN = "from pooldbapi_t0 AS f join pooldbapi_t1 AS s on s.id = f.store_id"

PLANS = [
    # the benchmark's shape: the join key is the group, the filter goes to the container
    ((f"select s.region, count(*) as n, sum(f.amount) as total {JOIN} where f.amount > 10"
      " group by s.region order by s.region"), ["f.amount > 10"],
     ("store_id",), (("count", None), ("sum", "amount")),
     ("SELECT s.region, COALESCE(SUM(f.pooldbapi_a0), 0) AS n, SUM(f.pooldbapi_a1) AS total"
      " FROM pooldbapi_t0 AS f JOIN pooldbapi_t1 AS s ON s.id = f.store_id GROUP BY s.region"
      " ORDER BY s.region")),
    # every aggregate kind; avg as a sum over a count, shared partials; names as written
    ((f"select s.region, min(f.qty), max(f.qty), avg(f.amount), count(f.amount),"
      f" sum(f.amount) {JOIN} group by s.region"), [],
     ("store_id",), (("min", "qty"), ("max", "qty"), ("sum", "amount"), ("count", "amount")),
     ('SELECT s.region, MIN(f.pooldbapi_a0) AS "min(f.qty)", MAX(f.pooldbapi_a1) AS'
      ' "max(f.qty)", CAST(1.0 * SUM(f.pooldbapi_a2) AS REAL) / SUM(f.pooldbapi_a3) AS'
      ' "avg(f.amount)", COALESCE(SUM(f.pooldbapi_a3), 0) AS "count(f.amount)",'
      ' SUM(f.pooldbapi_a2) AS "sum(f.amount)" FROM pooldbapi_t0 AS f JOIN pooldbapi_t1 AS s'
      ' ON s.id = f.store_id GROUP BY s.region')),
    # a column of f grouped on, and a condition across both: both become keys
    (f"select f.qty, sum(amount) {JOIN} where f.qty < s.id group by f.qty", [],
     ("qty", "store_id"), (("sum", "amount"),),
     ('SELECT f.qty, SUM(f.pooldbapi_a0) AS "sum(amount)" FROM pooldbapi_t0 AS f JOIN'
      " pooldbapi_t1 AS s ON s.id = f.store_id WHERE f.qty < s.id GROUP BY f.qty")),
    # no group by: count of nothing is 0 (coalesce), ordering by an output's name
    (f"select count(*) as n {JOIN} order by n", [],
     ("store_id",), (("count", None),),
     ("SELECT COALESCE(SUM(f.pooldbapi_a0), 0) AS n FROM pooldbapi_t0 AS f JOIN pooldbapi_t1"
      " AS s ON s.id = f.store_id ORDER BY n")),
    # an expression that is not an aggregate keeps its name as written too
    (f"select upper(s.region), count(*) {JOIN} group by upper(s.region)", [],
     ("store_id",), (("count", None),),
     ('SELECT UPPER(s.region) AS "upper(s.region)", COALESCE(SUM(f.pooldbapi_a0), 0) AS'
      ' "count(*)" FROM pooldbapi_t0 AS f JOIN pooldbapi_t1 AS s ON s.id = f.store_id'
      " GROUP BY UPPER(s.region)")),
    # a comma join with the join condition in where stays a comma (SQLite's CROSS JOIN would
    # fix the join order); a parameter stays local
    (("select s.region, count(*) from pooldbapi_t0 AS f, pooldbapi_t1 AS s where s.id ="
      " f.store_id and f.amount > ? and s.region = ? group by s.region"), ["f.amount > ?"],
     ("store_id",), (("count", None),),
     ('SELECT s.region, COALESCE(SUM(f.pooldbapi_a0), 0) AS "count(*)" FROM pooldbapi_t0 AS f,'
      " pooldbapi_t1 AS s WHERE s.id = f.store_id AND s.region = ? GROUP BY s.region")),
]


@pytest.mark.parametrize("local, pushed, keys, aggregates, finish", PLANS)
def test_eager_aggregation_plans(local, pushed, keys, aggregates, finish):
    found = plan(local, "f", OWN, OTHERS, tuple(pushed))
    assert found is not None
    assert (found.keys, found.aggregates, found.local) == (keys, aggregates, finish)


NO_PLAN = [
    (f"select s.region, count(distinct f.qty) {JOIN} group by s.region", "a distinct aggregate"),
    (("select s.region, count(*) from pooldbapi_t0 AS f left join pooldbapi_t1 AS s"
      " on s.id = f.store_id group by s.region"), "an outer join"),
    (("select s.region, count(*) from pooldbapi_t1 AS s left join pooldbapi_t0 AS f"
      " on s.id = f.store_id group by s.region"), "an outer join, the other way"),
    (f"select s.region, sum(f.amount * 2) {JOIN} group by s.region", ("an aggregate of an"
                                                                     " expression")),
    (f"select s.region, max(s.id) {JOIN} group by s.region", ("an aggregate of another's"
                                                              " column")),
    (f"select s.region {JOIN} group by s.region", "no aggregate"),
    (f"select * {JOIN}", "select *"),
    (f"select s.region, count(*) {JOIN} where f.qty in (select 1) group by s.region",
     "a subquery"),
    (f"select s.region, sum(f.qty) over () {JOIN}", "a window"),
    (f"select distinct s.region, count(*) {JOIN} group by s.region", "select distinct"),
    (f"select s.region, sum(id) {JOIN} group by s.region", "a column of the other"),
    (f"select s.region, count(*) {JOIN} where mystery > 1 group by s.region",
     "a column nobody owns"),
    (f"select s.region, count(*) {JOIN} group by s.region union select 'x', 1", "a union"),
]


@pytest.mark.parametrize("local, why", NO_PLAN)
def test_no_eager_plan_where_it_would_not_be_exact(local, why):
    assert plan(local, "f", OWN, OTHERS, ()) is None, why


def test_a_pushed_conjunct_that_is_not_at_the_top_of_the_where_clause_means_no_plan():
    local = (f"select s.region, count(*) {JOIN} where f.amount > 1 or s.id = 2"
             " group by s.region")
    assert plan(local, "f", OWN, OTHERS, ("f.amount > 1",)) is None


def test_a_column_both_own_is_ambiguous_unqualified_and_fine_qualified():
    local = f"select s.region, sum(f.amount) {JOIN} where id > 0 group by s.region"
    assert plan(local, "f", OWN | {"id"}, OTHERS, ()) is None
    local = f"select s.region, sum(f.amount) {JOIN} where s.id > 0 group by s.region"
    assert plan(local, "f", OWN | {"id"}, OTHERS, ()) is not None


def test_the_partial_select_groups_by_the_keys_with_the_containers_names():
    sql = partial_sql("facts", "f", ["Store_Id"], (("count", None), ("sum", "Amount")),
                      ["f.amount > 10", "f.qty < 3"])
    assert sql == ('select "Store_Id", count(*) as pooldbapi_a0, sum("Amount") as pooldbapi_a1'
                   ' from facts f where (f.amount > 10) and (f.qty < 3) group by "Store_Id"')
    assert partial_sql("t", "", [], (("count", None),), []) == \
        "select count(*) as pooldbapi_a0 from t"
