"""The structure of federated selects, read from sqlglot's tree of the marked statement:
(statement, expected) tables for the occurrences, the columns used, the where-conjuncts with
the columns each touches, and the ordering and limit a lone table's container may apply.
Literals and comments hold 'where', '),(', ';', '@', quotes and '?'."""
from __future__ import annotations

import inspect
import sys

import pytest
from sqlglot import exp
from sqlglot.errors import ParseError

import pooldbapi
from pooldbapi.federated.shape import of_select, span, unresolved
from pooldbapi.sql.parse import parse
from pooldbapi.sql.structure import NESTING, marked, read_tree, values_for


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
    ("select name, age from People@r order by name, age desc limit 2",
     "order by name, age desc limit 2"),
    ("select name from People@r limit '3'", ""),  # a string, not a number
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


def _nested(levels: int) -> str:
    return "select " + "(1 + " * levels + "1" + ")" * levels


@pytest.mark.parametrize(("text", "levels"), [
    (_nested(NESTING + 1), NESTING + 1),                                      # parentheses
    ("select 1 where " + "not " * (NESTING + 1) + "x = 1", NESTING + 1),       # 'not's in a row
    ("select 1 where " + "not (" * 17 + "x = 1" + ")" * 17, 34),  # each 'not (' two levels
])
def test_a_text_one_level_too_deep_is_refused_naming_its_levels(text, levels):
    with pytest.raises(pooldbapi.ProgrammingError) as info:
        read_tree(text)
    assert str(info.value) == (
        f"the statement nests too deeply to be read into a syntax tree ({levels} levels of"
        " parentheses, function calls, subqueries and 'not'; at most 32 levels are read where"
        " a statement is evaluated locally or translated, as for OData)")


@pytest.mark.parametrize("text", [
    _nested(NESTING), "select 1 where " + "not " * NESTING + "x = 1",
    "select 1 where " + "not (" * 16 + "x = 1" + ")" * 16, "not " * NESTING + "x",
    "select " + "(1) + " * 200 + "1",  # parentheses closed again count no deeper
])
def test_a_text_within_the_levels_is_read(text):
    assert isinstance(read_tree(text), exp.Expr)


def test_a_parser_out_of_python_stack_is_a_programming_error_saying_so():
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 120)
    try:
        with pytest.raises(pooldbapi.ProgrammingError) as info:
            read_tree(_nested(20))
    finally:
        sys.setrecursionlimit(limit)
    assert "(more than the Python stack holds; at most 32 levels" in str(info.value)
    assert info.value.__cause__ is None


def test_a_tree_is_read_in_the_dialect_named_and_an_empty_text_is_no_tree():
    assert isinstance(read_tree('select "a"', "mysql").expressions[0], exp.Literal)
    assert isinstance(read_tree('select "a"').expressions[0], exp.Column)
    with pytest.raises(ParseError, match="No expression was parsed from ';'"):
        read_tree(";")
    with pytest.raises(ParseError, match="select a from t where a"):
        read_tree("select a from t where a >")


def test_marked_text_of_a_span_holds_the_markers_within_it_and_no_final_semicolon():
    stmt = parse("select ?, ? from t where a = ?;")
    assert marked(stmt) == "select :pooldbapi_p0, :pooldbapi_p1 from t where a = :pooldbapi_p2"
    second = stmt.text.index("?", 8)
    assert marked(stmt, start=second) == ":pooldbapi_p1 from t where a = :pooldbapi_p2"
    assert marked(stmt, start=second + 1) == " from t where a = :pooldbapi_p2"
    assert marked(stmt, end=stmt.text.index("from")) == "select :pooldbapi_p0, :pooldbapi_p1 "


def test_a_statement_without_values_or_markers_takes_none():
    assert values_for(None, parse("select a from t where a = ?")) is None
    assert values_for({"pooldbapi_p0": 1}, parse("select a from t")) is None
    assert values_for({"pooldbapi_p0": 1, "pooldbapi_p1": 2},
                      parse("select a from t where a = :pooldbapi_p1")) == {"pooldbapi_p1": 2}


def test_an_occurrence_without_a_suffix_spans_its_name():
    stmt = parse("select a from t")
    assert span(stmt, stmt.occurrences[0]) == (14, 15)


def test_a_double_quoted_name_is_unresolved_only_where_the_dialect_reads_it_as_a_name():
    stmt = parse('select "nope" from t@a')
    assert unresolved(stmt, "postgres", [["a"]]) == "nope"
    assert unresolved(stmt, "mysql", [["a"]]) is None  # a string there
