"""The SQL layer: occurrences, suffix removal, kinds, errors with positions."""
from __future__ import annotations

import re

import pytest

import pooldbapi
from pooldbapi import cache
from pooldbapi.cache import BoundedCache
from pooldbapi.sql.parse import StatementKind, parse
from pooldbapi.sql.render import render

OCCURRENCES = [
    ("select count(*) from Journals@{eol1,eol2,eol3}",
     [("Journals", ("eol1", "eol2", "eol3"))], "select count(*) from Journals"),
    ("select * from Journals@{a, b} j where j.x = 1",
     [("Journals", ("a", "b"))], "select * from Journals j where j.x = 1"),
    ("select * from cat..Journals@a", [("Journals", ("a",))], "select * from Journals"),
    ("select * from s.t@a x join u@{a,b,b} y on x.i = y.i",
     [("s.t", ("a",)), ("u", ("a", "b", "b"))], "select * from s.t x join u y on x.i = y.i"),
    ('select * from "My Table"@a', [('"My Table"', ("a",))], 'select * from "My Table"'),
    ("select * from a@p, b", [("a", ("p",)), ("b", None)], "select * from a, b"),
    ("select * from t where x in (select y from u@q)", [("t", None), ("u", ("q",))],
     "select * from t where x in (select y from u)"),
    ("with c as (select * from t@p) select * from c", [("t", ("p",))],
     "with c as (select * from t) select * from c"),
    ("with c (x) as (select 1) select * from c join d@p on true", [("d", ("p",))],
     "with c (x) as (select 1) select * from c join d on true"),
    ("select * from (select 1 from t@p) sub, u", [("t", ("p",)), ("u", None)],
     "select * from (select 1 from t) sub, u"),
    ("select extract(year from d), substring(s from 2) from t@p", [("t", ("p",))],
     "select extract(year from d), substring(s from 2) from t"),
    ("select * from generate_series(1, 3)", [], "select * from generate_series(1, 3)"),
    ("insert into Tasks@{eol1,eol2,eol2} (description) values (?)",
     [("Tasks", ("eol1", "eol2", "eol2"))], "insert into Tasks (description) values (?)"),
    ("update t@{a,b} set x = 1 where y = 2", [("t", ("a", "b"))],
     "update t set x = 1 where y = 2"),
    ("delete from t@a where y in (select y from u@a)", [("t", ("a",)), ("u", ("a",))],
     "delete from t where y in (select y from u)"),
    ("create table if not exists t@{a,b} (x int)", [("t", ("a", "b"))],
     "create table if not exists t (x int)"),
    ("drop table t@a", [("t", ("a",))], "drop table t"),
    # truncate and drop name several tables, each an occurrence
    ("truncate table t, u@a restart identity", [("t", None), ("u", ("a",))],
     "truncate table t, u restart identity"),
    ("truncate only t@{a,b}, s.u cascade", [("t", ("a", "b")), ("s.u", None)],
     "truncate only t, s.u cascade"),
    ("drop table if exists t, \"U\"@a cascade", [("t", None), ('"U"', ("a",))],
     'drop table if exists t, "U" cascade'),
    ("create table t@a as select x, y from u@a", [("t", ("a",)), ("u", ("a",))],
     "create table t as select x, y from u"),
    ("select 'x@{a}', \"q@b\" from t@a -- t@b\n", [("t", ("a",))],
     "select 'x@{a}', \"q@b\" from t -- t@b\n"),
    ("select a @> b, c <@ d from t@a", [("t", ("a",))], "select a @> b, c <@ d from t"),
    ("select 1", [], "select 1"),
    # CTE names are not occurrences, whatever their case, quoting, columns or position
    ('with "c" as (select 1), d (x) as (select 2) select * from c, D, e@p',
     [("e", ("p",))], 'with "c" as (select 1), d (x) as (select 2) select * from c, D, e'),
    ("with recursive r as (select 1 union all select 1 from r) select * from r", [],
     "with recursive r as (select 1 union all select 1 from r) select * from r"),
    # a quoted CTE name is case-sensitive: "Q" is not q
    ('with "Q" as (select 1) select * from "Q", q', [("q", None)],
     'with "Q" as (select 1) select * from "Q", q'),
    # CTE names that sqlparse lexes as keywords are names all the same
    ("with data as (select 1), result as (select 2) select * from data, result, t@p",
     [("t", ("p",))], ("with data as (select 1), result as (select 2) select * from data,"
                        " result, t")),
    # and those the tokenizer lexes as keywords (first, view)
    ("with first as (select 1), view as (select 2) select * from first, view, t@p",
     [("t", ("p",))], ("with first as (select 1), view as (select 2) select * from first,"
                        " view, t")),
    # a list of names that are not tables (indexes) names no occurrence
    ("drop index i1, i2", [], "drop index i1, i2"),
    # 'name as (' after 'table' creates a table: an occurrence, not a CTE
    ("create table n@p as (select * from o@p)", [("n", ("p",)), ("o", ("p",))],
     "create table n as (select * from o)"),
    # a table with a table alias after 'as': an occurrence, not a CTE
    ("select * from t as x, u@q", [("t", None), ("u", ("q",))], "select * from t as x, u"),
    # qualified names, suffixes on each of several occurrences, joins of every kind
    ("select * from a.b.c@p", [("a.b.c", ("p",))], "select * from a.b.c"),
    ("select * from t1@a left join t2@{b} on 1=1 cross join t3@{a,b}",
     [("t1", ("a",)), ("t2", ("b",)), ("t3", ("a", "b"))],
     "select * from t1 left join t2 on 1=1 cross join t3"),
    ("update t@a set x = (select max(y) from u@a) where z = 1", [("t", ("a",)), ("u", ("a",))],
     "update t set x = (select max(y) from u) where z = 1"),
    ("insert into t@a (x) select y from u@b where y > 0", [("t", ("a",)), ("u", ("b",))],
     "insert into t (x) select y from u where y > 0"),
    ("select x from t@a where x @> '{1}' and y <@ z", [("t", ("a",))],
     "select x from t where x @> '{1}' and y <@ z"),
    ("select * from t@a;", [("t", ("a",))], "select * from t;"),
    ("select * from t@{ a , b }", [("t", ("a", "b"))], "select * from t"),
    ('select * from "s"."t"@a', [('"s"."t"', ("a",))], 'select * from "s"."t"'),
    ("select * from c..s.t@a", [("s.t", ("a",))], "select * from s.t"),
    # what stands before a dot is part of the name only where it is a name
    ("select * from (s).t@{a}", [("t", ("a",))], "select * from (s).t"),
    ("select * from t@a where exists (select 1 from u@a x where x.i = 1)",
     [("t", ("a",)), ("u", ("a",))],
     "select * from t where exists (select 1 from u x where x.i = 1)"),
    # spaces around a qualifying dot: one occurrence, not two
    ("select * from s . t@a", [("s . t", ("a",))], "select * from s . t"),
]


@pytest.mark.parametrize("text, expected, rendered", OCCURRENCES)
def test_occurrences_and_rendering(text, expected, rendered):
    stmt = parse(text)
    assert [(o.name, o.aliases) for o in stmt.occurrences] == expected
    assert render(stmt, None).text == rendered


KINDS = [
    ("select 1", "select"), ("  (select 1)", "select"), ("with x as (select 1) select 1",
                                                         "select"),
    ("with x as (select 1) insert into t select * from x", "insert"),
    ("with x as (select (1), f((2))) insert into t select * from x", "insert"),
    ("insert into t values (1)", "insert"), ("UPDATE t set x=1", "update"),
    ("delete from t", "delete"), ("create table t (x int)", "ddl"), ("drop table t", "ddl"),
    ("alter table t add y int", "ddl"), ("truncate t", "ddl"), ("comment on table t is 'x'",
                                                                "ddl"),
    ("commit", "transaction-control"), ("rollback", "transaction-control"),
    ("begin", "transaction-control"), ("begin; ", "transaction-control"),
    ("begin null; end;", "other"), ("savepoint a", "transaction-control"),
    ("set search_path = x", "other"), ("call p()", "other"), ("merge into t using u on 1=1",
                                                             "other"),
    ("bulk insert into t@a values (?)", "bulk-insert"),
    ("synchronize s@a to t@b with insert identified by id", "synchronize"),
    ("values (1), (2)", "select"), ("table t", "select"), ("", "other"), ("-- only", "other"),
    ("with x as (select 1) update t set y = 1", "update"),
    ("with x as (select 1) delete from t", "delete"),
    ("with x as (select 1) merge into t using x on true when matched then delete", "other"),
    ("with x as (insert into t values (1) returning *) select * from x", "select"),
    ("create or replace view v as select 1", "ddl"), ("release a", "transaction-control"),
    ("start transaction", "transaction-control"), ("abort", "transaction-control"),
    ("end", "transaction-control"), ("begin transaction", "transaction-control"),
    ("begin work", "transaction-control"), ("bulk delete from t", "other"),
    ("BULK INSERT into t@a values (?)", "bulk-insert"), ("Select 1", "select"),
]


@pytest.mark.parametrize("text, kind", KINDS)
def test_kinds(text, kind):
    assert parse(text).kind == kind


@pytest.mark.parametrize("text, kind", KINDS)
def test_every_kind_is_a_member_of_statement_kind_equal_to_its_word(text, kind):
    """Statement.kind is a StatementKind (the word a message shows, a dict key as before)."""
    found = parse(text).kind
    assert type(found) is StatementKind and found is StatementKind(kind)
    assert f"{found}" == str(found) == kind and {kind: 1}[found] == 1


ERRORS = [
    ("select * from t@{}", "empty container list", 15),
    ("select * from t@{a, b", "unclosed", 15),
    ("select * from t@ where 1=1", "stray '@'", 15),
    ("select * from t@", "stray '@'", 15),
    ("select * from t@{a,,b}", "empty entry", 19),
    ("select *\nfrom t@{a,b-c}", "not a container alias", 19),
    ("select * from t@, u", "stray '@'", 15),
    ("select * from t@;", "stray '@'", 15),
    ("select * from (select 1 from t@) x", "stray '@'", 30),
    # a list that follows no table's name: after a keyword, a ')' or a space
    ("select * from t where@{a,b} x = 1",
     ("container list '@{a,b}' at position 21 (line 1, column 22) does not follow a table's"
      " name: write it right after the name, as t@{a,b}"), 21),
    ("select * from (select x from t)@{a,b}", "does not follow a table's name", 31),
    ("select * from t @{a}", "does not follow a table's name", 16),
    ("@{a} select 1", "does not follow a table's name", 0),
    ("select (x)@{a} from t@b", "does not follow a table's name", 10),
    ("select * from t where x = @{a}", "does not follow a table's name", 26),
]


@pytest.mark.parametrize("text, message, position", ERRORS)
def test_syntax_errors_name_problem_and_position(text, message, position):
    with pytest.raises(pooldbapi.ProgrammingError, match=re.escape(message)) as info:
        parse(text)
    assert f"position {position}" in str(info.value)


def test_an_empty_entry_in_a_list_is_called_that():
    with pytest.raises(pooldbapi.ProgrammingError) as info:
        parse("select * from t@{a,,b}")
    assert str(info.value) == ("an empty entry in the container list at position 19"
                               " (line 1, column 20)")


def test_every_alias_of_a_suffix_knows_where_it_is_written():
    text = "select * from t@ab, u@{ c,d_1}"
    t, u = parse(text).occurrences
    assert (t.aliases, t.suffix_position, t.alias_positions) == (("ab",), 15, (16,))
    assert (u.aliases, u.suffix_position, u.alias_positions) == (("c", "d_1"), 21, (24, 26))
    assert [text[p:p + len(a)] for o in (t, u) for a, p in
            zip(o.aliases, o.alias_positions, strict=True)] == ["ab", "c", "d_1"]


def test_line_and_column_in_errors():
    with pytest.raises(pooldbapi.ProgrammingError, match=r"line 2, column 7"):
        parse("select *\nfrom t@{}")


def test_unknown_alias_is_named_with_position_before_anything_runs(tmp_path):
    conn = pooldbapi.connect({"a": f"driver=sqlite;database={tmp_path / 'a.db'}"})
    conn.execute("create table t (x int)")
    conn.commit()
    with pytest.raises(pooldbapi.ProgrammingError, match=r"'zz'.*position 18") as info:
        conn.execute("insert into t@{a, zz} values (1)")
    assert "configured: a" in str(info.value)
    with pytest.raises(pooldbapi.ProgrammingError, match="'nope'"):
        conn.execute("select * from t@nope")
    conn.rollback()
    assert conn.execute("select count(*) from t").fetchone()[0] == 0
    conn.close()


def test_values_rows_are_found_for_multi_row_insert():
    stmt = parse("insert into t@a (x, y) values (1, (2)), (?, 'a)'), (3, 4)")
    rows = [stmt.text[lo:hi] for lo, hi in stmt.values_rows]
    assert rows == ["(1, (2))", "(?, 'a)')", "(3, 4)"]


def test_parse_is_cached_by_text():
    assert parse("select 42 from t@a") is parse("select 42 from t@a")


CLAUSES = [  # (statement, {clause: body}) with literals that look like clauses
    ("update t@{a,b} set note = 'x where y', n = ? where id = ?",
     {"UPDATE": "t@{a,b}", "SET": "note = 'x where y', n = ?", "WHERE": "id = ?"}),
    ("delete from t@a where s = 'a),(b' and k = \"where\";",
     {"DELETE": "", "FROM": "t@a", "WHERE": "s = 'a),(b' and k = \"where\""}),
    ("update t set a = (select max(x) from u where u.y = t.y) -- where in a comment",
     {"UPDATE": "t", "SET": "a = (select max(x) from u where u.y = t.y) -- where in a comment"}),
    ("select a from t@p where b = '@q' group by a order by 1 limit 5",
     {"SELECT": None, "FROM": "t@p", "WHERE": "b = '@q'", "GROUP BY": "a", "ORDER BY": "1",
      "LIMIT": "5"}),
]


@pytest.mark.parametrize(("text", "expected"), CLAUSES)
def test_top_level_clauses_are_read_from_the_tokens(text, expected):
    stmt = parse(text)
    for keyword, body in expected.items():
        span = stmt.clause(keyword)
        if body is None:
            assert span is None
        else:
            assert span is not None and text[slice(*span)].strip() == body


PLACEHOLDER_STYLES = [
    ("""select '{"a":1}'::jsonb ? 'a', %s""", ["format"]),          # jsonb operator
    ("select j ?| array['a','b'] from t where k = :k", ["named"]),
    ("select (j) ?& array['a'] from t where k = %(k)s", ["pyformat"]),
    ("select 1 /* /* nested */ ? */ , :1", ["numeric"]),            # PostgreSQL's nesting
    ("select 1 /* a /* b */ c */ , ?", ["qmark"]),
    ("select ?, ?", ["qmark", "qmark"]),
]


@pytest.mark.parametrize(("text", "styles"), PLACEHOLDER_STYLES)
def test_placeholders_follow_postgresqls_lexical_rules(text, styles):
    assert [p.style for p in parse(text).placeholders] == styles


def test_a_question_mark_where_a_value_stands_is_still_a_mixed_placeholder():
    with pytest.raises(pooldbapi.ProgrammingError, match="mixed"):
        pooldbapi.connect({"a": "driver=sqlite;database=:memory:"}).execute(
            "select ?, :a", {"a": 1})


def test_statements_over_16_kib_are_kept_apart_and_the_largest_not_at_all():
    from pooldbapi.sql import parse as module
    text = "select 1" + " " * (cache.LARGEST + 1)
    parse(text)
    assert text not in module.CACHE.short and text in module.CACHE.long
    huge = "select 2" + " " * cache.LONG_LARGEST
    parse(huge)
    assert huge not in module.CACHE
    assert module.CACHE.short.bytes <= module.CACHE_BYTES


def test_long_statements_are_kept_apart_and_bounded(monkeypatch):
    """A flush's batches repeat one long text and a load its few generated ones: each read
    once; long texts push out only each other (cache.py's long tier: at most LONG_ENTRIES of
    them, LONG_BYTES in all, none over LONG_LARGEST), never ordinary statements."""
    from pooldbapi.sql import parse as module
    monkeypatch.setattr(module.CACHE, "long", BoundedCache(4, 1 << 20, 256 << 10))
    short = "select 1 from t@a where x = ?"
    parse(short)
    rows = ", ".join(["(?, ?, ?)"] * 2000)
    texts = [f"insert into t{i}@a (a, b, c) values {rows}" for i in range(6)]
    assert all(len(t) > cache.LARGEST for t in texts)
    first = parse(texts[0])
    assert parse(texts[0]) is first and len(first.placeholders) == 6000
    for text in texts[1:]:
        parse(text)
    assert list(module.CACHE.long) == texts[2:]            # the 4 seen last
    assert module.CACHE.long.bytes <= 1 << 20 and short in module.CACHE.short
    huge = "select 1" + " " * (256 << 10)
    parse(huge)
    assert huge not in module.CACHE.long


def test_the_long_tier_keeps_the_twenty_statements_of_a_load():
    """20 distinct generated statements of 1,000 literal rows (25 KB each), repeated: each is
    scanned once (sqlite3 keeps them all in its statement cache too)."""
    from pooldbapi.sql import parse as module
    assert (module.CACHE.long.entries, module.CACHE.long.nbytes, module.CACHE.long.largest) == (
        cache.LONG_ENTRIES, cache.LONG_BYTES, cache.LONG_LARGEST) == (64, 4 << 20, 1 << 20)
    module.CACHE.long.clear()
    texts = ["insert into t@{a,b} (a, b, c) values " + ", ".join(
        f"({i}, 'name {i}', {i * 0.5})" for i in range(s * 1000, s * 1000 + 1000))
        for s in range(20)]
    assert all(len(t) > cache.LARGEST for t in texts)
    first = [parse(t) for t in texts]
    assert all(a is b for a, b in zip(first, [parse(t) for t in texts], strict=True))
    assert len(module.CACHE.long) == 20


SYNC_CLAUSES = [
    (('synchronize s@a to t@b with insert or update identified by id, "Other Key"'
     " ignore changes to a, b;"), ({"insert", "update"}, ["id", '"Other Key"'], ["a", "b"])),
    ("synchronize s@a to t@b with delete identified by k", ({"delete"}, ["k"], [])),
    ("synchronize s@a to t@b with update or insert identified by key -- a comment",
     ({"insert", "update"}, ["key"], [])),
]


@pytest.mark.parametrize(("text", "expected"), SYNC_CLAUSES)
def test_the_synchronize_clause_is_read_from_tokens(text, expected):
    from pooldbapi.ops.synchronize import _clause
    stmt = parse(text)
    assert _clause(stmt, text.index(" with")) == expected


@pytest.mark.parametrize(("tail", "message"), [
    (" with insert identified by", "a column name missing"),
    (" with merge identified by k", "insert, update or delete missing"),
    (" with insert by k", "'identified' missing"),
    (" with insert identified by k extra", "unexpected 'extra'"),
    (" with insert identified by k ignore changes to", "a column name missing"),
])
def test_a_bad_synchronize_clause_says_what_is_missing_and_where(tail, message):
    from pooldbapi.ops.synchronize import _clause
    text = "synchronize s@a to t@b" + tail
    with pytest.raises(pooldbapi.ProgrammingError, match=f"{message} at position"):
        _clause(parse(text), len("synchronize s@a to t@b"))


# (text, kind, occurrences, insert column list, where the select of insert ... select
#  begins, placeholders (style, key), VALUES rows): the one scan's structure, pinned
STRUCTURE = [
    ('update t set x = 1 where y = 2',
     'update', [('t', None)], None, None,
     [], 0),
    ('delete from t where y = 2',
     'delete', [('t', None)], None, None,
     [], 0),
    ('truncate t',
     'ddl', [('t', None)], None, None,
     [], 0),
    ('alter table t add column y int',
     'ddl', [('t', None)], None, None,
     [], 0),
    ('insert into t values (1)',
     'insert', [('t', None)], None, None,
     [], 1),
    ('insert into t (a, b) values (1, 2)',
     'insert', [('t', None)], ('a', 'b'), None,
     [], 1),
    ('insert into t (a, "B c") select x, y from u',
     'insert', [('t', None), ('u', None)], ('a', '"B c"'), 'select',
     [], 0),
    ('insert into t with w as (select 1) select * from w',
     'insert', [('t', None)], None, 'with w',
     [], 0),
    ('bulk insert into t (a) values (?)',
     'bulk-insert', [('t', None)], ('a',), None,
     [('qmark', None)], 1),
    ('bulk insert into t select * from u@b',
     'bulk-insert', [('t', None), ('u', ('b',))], None, 'select',
     [], 0),
    ('synchronize s to t with insert identified by a',
     'synchronize', [('s', None), ('t', None)], None, None,
     [], 0),
    ('select * from f(1) x join g(2) y on true join u on true',
     'select', [('u', None)], None, None,
     [], 0),
    ('select a[1:2], b[:n] from t where c = :n',
     'select', [('t', None)], None, None,
     [('named', 'n')], 0),
    ('select a[1:2] from t where c = ?',
     'select', [('t', None)], None, None,
     [('qmark', None)], 0),
    ("select x ? 'k', y from t where z = %s",
     'select', [('t', None)], None, None,
     [('format', None)], 0),
    ("select x ?| array['a'] from t where z = :z",
     'select', [('t', None)], None, None,
     [('named', 'z')], 0),
    ('select * from t, u v, w as z where 1 = 1',
     'select', [('t', None), ('u', None), ('w', None)], None, None,
     [], 0),
    ('select (select max(x) from u) from t',
     'select', [('u', None), ('t', None)], None, None,
     [], 0),
    ('with q as (select * from u) select * from q, t',
     'select', [('u', None), ('t', None)], None, None,
     [], 0),
    ('select * from t order by (select 1 from u)',
     'select', [('t', None), ('u', None)], None, None,
     [], 0),
    ('create table t (x int references u (x))',
     'ddl', [('t', None)], None, None,
     [], 0),
    # context alone (no suffix): update after for/do/on, merge, using, qualified names,
    # functions in from and join, brackets, an unfinished row
    ('select * from t for update',
     'select', [('t', None)], None, None,
     [], 0),
    ('select * from t for no key update of t',
     'select', [('t', None)], None, None,
     [], 0),
    ('insert into t values (1) on conflict (x) do update set y = 1',
     'insert', [('t', None)], None, None,
     [], 1),
    ('insert into t (a) values (1) on conflict (a) do nothing',
     'insert', [('t', None)], ('a',), None,
     [], 1),
    ('create table t (x int references u on update cascade)',
     'ddl', [('t', None)], None, None,
     [], 0),
    ('merge into t using u on t.id = u.id when matched then update set x = u.x',
     'other', [('t', None), ('u', None)], None, None,
     [], 0),
    ('delete from t using u where t.id = u.id',
     'delete', [('t', None), ('u', None)], None, None,
     [], 0),
    ('drop table t',
     'ddl', [('t', None)], None, None,
     [], 0),
    ('select * from s.t, c..s.u, a.b.c',
     'select', [('s.t', None), ('s.u', None), ('a.b.c', None)], None, None,
     [], 0),
    ('select * from generate_series (1, 3) g, t',
     'select', [('t', None)], None, None,
     [], 0),
    ('select * from t join f(2) on true',
     'select', [('t', None)], None, None,
     [], 0),
    ('select a[b[1]], :n from t',
     'select', [('t', None)], None, None,
     [('named', 'n')], 0),
    ('select a[1:2][3:4], :n from t',
     'select', [('t', None)], None, None,
     [('named', 'n')], 0),
    ('insert into t values (1), (2',
     'insert', [('t', None)], None, None,
     [], 1),
    ('bulk insert into t (a) select * from u',
     'bulk-insert', [('t', None), ('u', None)], ('a',), 'select',
     [], 0),
    ('select * from t join u using (id)',
     'select', [('t', None), ('u', None)], None, None,
     [], 0),
    ('select * from t where x in (select y from u) and z = (select 1)',
     'select', [('t', None), ('u', None)], None, None,
     [], 0),
    ('update t set x = 1 from u where t.id = u.id',
     'update', [('t', None), ('u', None)], None, None,
     [], 0),
    ('select t.* from t, lateral (select 1) l',
     'select', [('t', None)], None, None,
     [], 0),
    ('table t', 'select', [('t', None)], None, None, [], 0),
    ('table t union all (table s.u) except table "V"', 'select',
     [('t', None), ('s.u', None), ('"V"', None)], None, None, [], 0),
    ('insert into t (a) values ((select 1), 2), (3, 4)',
     'insert', [('t', None)], ('a',), None,
     [], 2),
]


@pytest.mark.parametrize("text, kind, occurrences, columns, select, placeholders, rows",
                         STRUCTURE)
def test_the_scan_finds_the_statements_structure(text, kind, occurrences, columns, select,
                                                 placeholders, rows):
    stmt = parse(text)
    assert stmt.kind == kind
    assert [(o.name, o.aliases) for o in stmt.occurrences] == occurrences
    assert stmt.columns == columns
    assert (None if stmt.select_start is None else
            text[stmt.select_start:stmt.select_start + 6]) == select
    assert [(p.style, p.key) for p in stmt.placeholders] == placeholders
    assert len(stmt.values_rows) == rows
    for occ in stmt.occurrences:  # every occurrence points at its name in the text
        assert text[occ.position:].startswith(occ.name)


@pytest.mark.parametrize("text, words", [
    ("create temp table x (a int)", ("CREATE", "TEMP", "TABLE")),
    ("create temporary view v as select 1", ("CREATE", "TEMPORARY", "VIEW")),
    ("begin transaction isolation level serializable", ("BEGIN", "TRANSACTION", "ISOLATION")),
    ("start transaction", ("START", "TRANSACTION")),
    ("select 1", ("SELECT",)),
    ("", ()),
])
def test_the_first_three_keywords_are_kept(text, words):
    assert parse(text).words == words


def test_the_parse_cache_is_bounded_in_entries_and_in_bytes_least_recently_used_out_first(
        monkeypatch):
    from pooldbapi.sql import parse as module
    monkeypatch.setattr(module, "CACHE", cache.Tiered(3, 40))
    kept = module.CACHE.short
    texts = [f"select {i}" for i in range(4)]          # 8 characters each
    for text in texts:
        parse(text)
    assert list(kept) == texts[1:]                     # at most 3 entries: the oldest left
    assert kept.bytes == 24
    long = "select 1 from tttttttttttttttttttttt"      # 36 characters: pushes out two more
    parse(long)
    assert list(kept) == [long] and kept.bytes == 36
    exact = "select 123"                               # 36 + 10 > 40: the long one goes
    parse(exact)
    assert list(kept) == [exact] and kept.bytes == 10
    fits = "select 12345678901234567890123"     # 10 + 30 = 40: fits exactly
    parse(fits)
    assert list(kept) == [exact, fits] and kept.bytes == 40
    assert parse(exact) is kept.get(exact)            # now the most recently used
    parse("select 9")                                  # 48 > 40: the least recently used goes
    assert list(kept) == [exact, "select 9"] and kept.bytes == 18


def test_a_statement_that_is_not_text_is_a_programming_error():
    for bad in (None, b"select 1", ["select 1"], 5):
        with pytest.raises(pooldbapi.ProgrammingError) as info:
            parse(bad)
        assert str(info.value) == f"a statement must be a str, not {type(bad).__name__}"


def test_a_statement_of_a_str_subclass_is_parsed_as_its_text():
    class Text(str):
        pass

    stmt = parse(Text("select ? from t@a"))
    assert stmt.text == "select ? from t@a" and len(stmt.placeholders) == 1


@pytest.mark.parametrize("text, position, expected", [
    ("select *", 3, "position 3 (line 1, column 4)"),
    ("a\nbc\ndef", 6, "position 6 (line 3, column 2)"),
    ("\nx", 1, "position 1 (line 2, column 1)"),
    ("ab\n", 2, "position 2 (line 1, column 3)"),
])
def test_positions_are_described_with_line_and_column(text, position, expected):
    from pooldbapi.sql.parse import where
    assert where(text, position) == expected


def test_significant_tokens_skip_whitespace_and_comments_and_keep_literals_whole():
    stmt = parse("select (a, /* ( */ (b)) from t -- )\n where x = ')'")
    assert [t.value for t in stmt.significant()] == [
        "select", "(", "a", ",", "(", "b", ")", ")", "from", "t", "where", "x", "=", "')'"]
    assert stmt.significant() is stmt.significant()  # kept, not scanned again


def test_a_generated_statement_s_markers_are_columns_the_collector_does_not_walk():
    """80,000 markers as objects the garbage collector tracks would set off full collections
    of the whole process within one scan: they are kept as columns, a Placeholder made as
    one is read."""
    import gc

    from pooldbapi.sql import parse as module
    text = "insert into t@{a,b} (a, b, c, d, e) values " + ", ".join(["(?, ?, ?, ?, ?)"] * 16000)
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        stmt = module._scan(text)
        made = len(gc.get_objects()) - before
    finally:
        gc.enable()
    assert type(stmt.placeholders) is module.Markers and len(stmt.placeholders) == 80000
    assert made < 20000  # (the rows' spans, 16,000 plain tuples, the collector untracks)
    second = stmt.placeholders[5]  # the second row's first
    at = stmt.values_rows[1][0] + 1
    assert type(second) is module.Placeholder and second == ("qmark", None, at, at + 1)
    assert stmt.placeholders[-1].start == len(text) - 2
    assert [text[p.start:p.end] for p in stmt.placeholders[:3]] == ["?"] * 3


def test_unquote_takes_the_quotes_off_a_quoted_name_and_leaves_a_plain_one():
    from pooldbapi.sql.parse import unquote
    assert unquote('"We""ird"') == 'We"ird' and unquote('"q"') == "q"
    assert unquote("plain") == "plain" and unquote("Mixed_Case") == "Mixed_Case"


def test_markers_read_as_the_placeholders_they_stand_for():
    from pooldbapi.sql.parse import EMPTY, Markers, Placeholder
    found = [Placeholder("named", "a", 3, 5), Placeholder("qmark", None, 8, 9),
             Placeholder("numeric", 2, 12, 14)]
    markers = Markers.of(found)
    assert list(markers) == found and markers == tuple(found) and len(markers) == 3
    assert markers[1] == found[1] and markers[-1] == found[2]
    assert markers[1:] == tuple(found[1:]) and type(markers[1:]) is Markers
    assert markers.styles() == {"named", "qmark", "numeric"} and markers[1:2].styles() == \
        {"qmark"} and markers[3:].styles() == set() and EMPTY.styles() == set()
    assert markers.pick([2, 0], [10, -1]) == (Placeholder("numeric", 2, 22, 24),
                                             Placeholder("named", "a", 2, 4))
    assert markers[:1] + markers[2:] == (found[0], found[2])
    assert markers[:0] + markers == markers and markers + EMPTY == markers
    same = Markers.of([Placeholder("qmark", None, 1, 2), Placeholder("qmark", None, 4, 5)])
    assert same.styles() == {"qmark"} and same + same[:1] == (*same, same[0])
    # a sum keeps each side's styles and keys: one style or several, keys or none, either way
    named = Markers.of([Placeholder("named", "b", 7, 9)])
    for left, right in ((same, named), (named, same), (markers, markers), (same, markers)):
        assert left + right == (*left, *right)
    assert hash(markers) == hash(tuple(found)) and repr(markers) == repr(tuple(found))
    assert Markers.of([]) is EMPTY
    stmt = parse("select :a, :b")  # a statement made with Placeholders keeps them as columns
    again = type(stmt)(stmt.text, stmt.kind, (), tuple(stmt.placeholders), ())
    assert type(again.placeholders) is Markers and again.placeholders == stmt.placeholders
