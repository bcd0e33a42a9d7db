"""The structure of federated selects, read from sqlglot's tree of the marked statement:
(statement, expected) tables for the occurrences, the columns used, the where-conjuncts with
the columns each touches, and the ordering and limit a lone table's container may apply.
Literals and comments hold 'where', '),(', ';', '@', quotes and '?'."""
from __future__ import annotations

import pytest

import pooldbapi
from pooldbapi.federated.shape import of_select, span
from pooldbapi.sql.parse import parse
from pooldbapi.sql.structure import marked


def shape_of(sql: str, read: str = "postgres"):  # type: ignore[no-untyped-def]
    return of_select(parse(sql), read)


@pytest.mark.parametrize(("sql", "sources"), [
    # (alias, outermost select, filterable) per occurrence
    ("select c.name from customers@lite c join orders@pg o on o.cust_id = c.id",
     [("c", 0, True), ("o", 0, True)]),
    ("select c.name from customers@lite as c left join orders@pg o on o.cust_id = c.id",
     [("c", 0, True), ("o", 0, False)]),
    ("select * from customers@lite c right join orders@pg o on o.cust_id = c.id",
     [("c", 0, False), ("o", 0, False)]),
    ("select * from a@x left join (b@y join c@z on b.k = c.k) on a.k = b.k",
     [(None, 0, True), (None, 0, False), (None, 0, False)]),
    ("select name from customers@lite where id in (select cust_id from orders@pg)",
     [(None, 0, True), (None, None, True)]),
    ("with q as (select * from orders@pg) select * from q, customers@lite \"C\"",
     [(None, None, True), ("C", 0, True)]),
    ("select a from t@x where a > 1 union all (select a from u@y where a < 5)",
     [(None, 0, True), (None, 1, True)]),
    ("select s.x from (select x from t@{a,b}) s, u@c", [(None, None, True), (None, 0, True)]),
])
def test_each_occurrence_has_its_alias_scope_and_whether_it_may_be_filtered(sql, sources):
    found = shape_of(sql)
    assert [(s.alias.name if s.alias else None, s.scope, s.filterable)
            for s in found.sources] == sources


@pytest.mark.parametrize(("sql", "bare", "qualified", "stars", "star"), [
    ("select c.name, amount from customers@lite c join orders@pg o on o.cust_id = c.id",
     {"amount"}, {("c", "name"), ("o", "cust_id"), ("c", "id")}, set(), False),
    ("select o.*, count(*) from orders@pg o group by o.id", set(), {("o", "id")}, {"o"}, False),
    ("select * from a@x join b@y using (k, \"K2\")", {"k", "k2"}, set(), set(), True),
    ("select x from a@x natural join b@y", {"x"}, set(), set(), True),
    ("select 'c.name', \"Mixed\" from t@x -- o.y\n where t.z = '*' /* u.* */",
     {"mixed"}, {("t", "z")}, set(), False),
])
def test_the_columns_used_are_read_from_the_tree_not_from_literals_or_comments(
        sql, bare, qualified, stars, star):
    found = shape_of(sql)
    assert (set(found.bare), set(found.qualified), set(found.stars), found.star) == \
        (bare, qualified, stars, star)


TRICKY = "'x where y),(; @{a} ?'"


@pytest.mark.parametrize(("sql", "conjuncts"), [
    ((f"select t.v from t@a t, u@b u where t.note = {TRICKY} /* and where ? */ and u.k = t.k"
     " and u.v = ?"),
     [(0, f"t.note = {TRICKY}", (("t", "note"),)),
      (0, "u.k = t.k", (("u", "k"), ("t", "k"))),
      (0, "u.v = :pooldbapi_p0", (("u", "v"),))]),
    ("select * from t@a t, u@b u where t.a = 1 or t.b = 2 and u.c = %s",
     [(0, "t.a = 1 OR t.b = 2 AND u.c = :pooldbapi_p0",
       (("t", "a"), ("t", "b"), ("u", "c")))]),
    (("select * from t@a t, u@b u where (t.a between %(lo)s and 3) and exists"
     " (select 1 from v@c where v.k = t.k); -- trailing ; where"),
     [(0, "t.a BETWEEN :pooldbapi_p0 AND 3", (("t", "a"),)),
      (0, "EXISTS(SELECT 1 FROM pooldbapi_t2 WHERE v.k = t.k)", None)]),
    ("select a from t@x where a > :1 union select a from u@y where a < :2 and b = ';'",
     [(0, "a > :pooldbapi_p0", ((None, "a"),)),
      (1, "a < :pooldbapi_p1", ((None, "a"),)), (1, "b = ';'", ((None, "b"),))]),
])
def test_where_conjuncts_and_their_columns(sql, conjuncts):
    found = shape_of(sql)
    assert [(c.scope, c.node.sql(comments=False), c.columns) for c in found.conjuncts] == \
        conjuncts


def test_a_conjunct_belongs_to_the_one_occurrence_whose_columns_it_touches():
    found = shape_of("select * from t@a t, u@b u where t.a = 1 and b = 2 and c = 3 and"
                     " t.a = u.a and d = 4 and 1 = 1")
    refs, columns = ["t", "u"], [{"a", "b", "d"}, {"a", "c", "d"}]
    assert [found.owner(c, refs, columns) for c in found.conjuncts] == \
        [0, 0, 1, None, None, None]  # d: both have it; 1 = 1: neither


@pytest.mark.parametrize(("sql", "tail"), [
    ("select name from People@r where age > 3 order by name desc limit 5",
     "order by name desc limit 5"),
    ("select upper(name) from People@r p order by p.name", "order by p.name"),
    ("select name from People@r limit 2", "limit 2"),
    ("select name as n from People@r order by n", ""),   # an output's name
    ("select name from People@r order by 1", ""),        # a position
    ("select name from People@r order by lower(name)", ""),
    ("select count(*) from People@r", ""),
    ("select distinct name from People@r limit 3", ""),
    ("select name from People@r limit ?", ""),
    ("select name from People@r limit 3 offset 1", ""),
    ("select name from People@r where id in (select id from People@r) limit 3", ""),
    ("select name as name from People@r order by name", "order by name"),  # its own column
    # each clause that makes the rows other than the table's own, with nothing else that does
    ("select name from People@r group by name limit 3", ""),
    ("select name from People@r having name > 'a' limit 3", ""),
    ("select p.name from People@r p join Pets@r q on p.id = q.owner limit 3", ""),
    ("select name from People@r, Pets@s limit 3", ""),
    ("select name from People@r window w as (order by name) limit 3", ""),
    ("with q as (values (1)) select name from People@r limit 3", ""),
])
def test_a_lone_tables_ordering_and_limit(sql, tail):
    assert shape_of(sql).tail == tail


def test_a_qualify_clause_keeps_the_ordering_and_limit_local():
    assert of_select(parse("select name from People@r qualify name > 'a' limit 3"),
                     "duckdb").tail == ""


def test_marked_text_numbers_the_scanned_markers_and_replaces_the_occurrences():
    stmt = parse("select a, '?' from db..t@{x,y} /* ? */ where a = ? and b = ?")
    occ = stmt.occurrences[0]
    assert stmt.text[slice(*span(stmt, occ))] == "db..t@{x,y}"
    assert marked(stmt, [(*span(stmt, occ), "pooldbapi_t0")]) == \
        "select a, '?' from pooldbapi_t0 /* ? */ where a = :pooldbapi_p0 and b = :pooldbapi_p1"


def test_a_statement_sqlglot_cannot_read_is_a_programming_error_naming_the_dialect():
    with pytest.raises(pooldbapi.ProgrammingError, match="cannot be read as postgres"):
        shape_of("select a from t@x where a >")
