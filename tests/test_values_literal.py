"""Multi-row VALUES of literals: rows of plain values (numbers, standard strings, null, true,
false, default) are not read at all on one container (the text goes with its annotation cut),
and over a list their boundaries come from one pass over the text. Checked on real SQLite
files (what each file was sent, by sqlite3's trace, and what it holds) and on two PostgreSQL
clusters (E'' strings, dollar quotes, casts, comments, nested parentheses: rows the scan reads
one by one, sent to the right server in their order)."""
from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pooldbapi
from pooldbapi.backends import sqlite as sqlite_backend
from pooldbapi.sql import parse as scan
from pooldbapi.strategy import RoundRobin, seeded_random

ALIASES = ("a", "b", "c")
# string contents that look like structure: row and statement ends, annotations, comments,
# quotes, markers
TRICKY = ("),(", "), (", ";", "; drop table t", "@{a,b}", "@b", "-- c", "/* c */", "it''s",
          "''", "(", ")", "?", "%s", ":x", "$$", "E'x", "values (1)", "\\", "é ü")


class Traced:
    def __init__(self) -> None:
        self.sent: dict[str, list[str]] = {}

    def of(self, path: str) -> list[str]:
        return [s for s in self.sent.get(path, ()) if s.lower().startswith("insert")]


@pytest.fixture(scope="module")
def traced() -> Iterator[Traced]:
    trace = Traced()
    original = sqlite_backend.SQLiteBackend.connect

    def connect(self, spec, limiter=None):  # type: ignore[no-untyped-def]
        link = original(self, spec, limiter)
        path = spec.param("database")
        link.raw.set_trace_callback(lambda s: trace.sent.setdefault(path, []).append(s))
        return link

    pooldbapi.close_all()
    sqlite_backend.SQLiteBackend.connect = connect  # type: ignore[method-assign]
    try:
        yield trace
    finally:
        sqlite_backend.SQLiteBackend.connect = original  # type: ignore[method-assign]
        pooldbapi.close_all()


@pytest.fixture(scope="module")
def files(tmp_path_factory, traced) -> dict[str, str]:
    base = tmp_path_factory.mktemp("literal")
    paths = {a: str(base / f"{a}.db") for a in ALIASES}
    for path in paths.values():
        raw = sqlite3.connect(path)
        raw.execute("create table t (id integer primary key, n int, s text, x)")
        raw.close()
    return paths


def quoted(value: str) -> str:
    return "'" + value.replace("''", "'").replace("'", "''") + "'"


@st.composite
def literal_rows(draw, nested: bool = False):
    """Rows (n, s, x) written as literals, and the values they hold; nested adds rows the
    scan reads one by one (nested parentheses, a cast, a call, a comment)."""
    n = draw(st.integers(1, 12))
    texts, held = [], []
    for i in range(n):
        s = draw(st.sampled_from(TRICKY)) + str(i)
        x = draw(st.sampled_from(("null", "1.5", "-2", "true", "'x'")))
        kind = draw(st.sampled_from(("plain", "nested", "cast", "call", "comment"))) \
            if nested else "plain"
        cell = {"plain": str(i), "nested": f"({i})", "cast": f"cast({i} as int)",
                "call": f"abs({-i})", "comment": f"/* ), ( */ {i}"}[kind]
        texts.append(f"({cell}, {quoted(s)}, {x})")
        held.append((i, s.replace("''", "'"),
                     {"null": None, "1.5": 1.5, "-2": -2, "true": 1, "'x'": "x"}[x]))
    sep = draw(st.sampled_from((", ", ",", ",\n  ", " , ")))
    return sep.join(texts), held


def turns(seed: int, text: str, lst: tuple[str, ...], n: int) -> list[str]:
    strategy = RoundRobin(lst, seeded_random(seed, text, lst))
    return [strategy.choose() for _ in range(n)]


@settings(max_examples=60, deadline=None)
@given(literal_rows(nested=True), st.sampled_from((("a", "b"), ("a", "b", "c"), ("c", "a"))),
       st.integers(0, 10**6), st.booleans())
def test_each_container_gets_its_literal_rows_as_one_statement_in_their_order(
        files, traced, rows, lst, seed, autocommit):
    body, held = rows
    text = f"insert into t@{{{','.join(lst)}}} (n, s, x) values {body}"
    conn = pooldbapi.connect({a: f"driver=sqlite;database={p}" for a, p in files.items()},
                             seed=seed, autocommit=autocommit)
    try:
        for alias in ALIASES:
            conn.execute(f"delete from t@{alias}")
        conn.commit()
        traced.sent.clear()
        cur = conn.execute(text)
        conn.commit()
        picked = turns(seed, text, lst, len(held))
        assert cur.rowcount == len(held)
        for alias in ALIASES:
            mine = [r for r, t in zip(held, picked, strict=True) if t == alias]
            got = conn.execute(f"select n, s, x from t@{alias} order by id").fetchall()
            assert [tuple(r) for r in got] == mine
            assert len(traced.of(files[alias])) == (1 if mine else 0)
    finally:
        conn.close()


@settings(max_examples=40, deadline=None)
@given(literal_rows(), st.sampled_from(("", " ", "\n")))
def test_plain_literal_rows_on_one_container_go_as_written_and_are_never_read(
        files, traced, rows, pad):
    body, held = rows
    text = f"insert into t@a (n, s, x) values {body}{pad}"
    scan.CACHE.clear()  # (an example may come again)
    stmt = scan.parse(text)
    assert isinstance(stmt.values_rows, scan.Rows)
    with pooldbapi.connect({a: f"driver=sqlite;database={p}" for a, p in files.items()}) \
            as conn:
        conn.execute("delete from t@a")
        conn.commit()
        traced.sent.clear()
        conn.execute(text)
        conn.commit()
        assert traced.of(files["a"]) == [text.replace("t@a ", "t ", 1)]
        assert stmt.values_rows._spans is None  # no row was read on the way
        got = conn.execute("select n, s, x from t@a order by id").fetchall()
        assert [tuple(r) for r in got] == held
    assert len(stmt.values_rows) == len(held)  # read when asked for, and right


# values that may stand in a row: plain ones (the rows are taken unread) and the others
PLAIN_VALUES = ("1", "-1", "- 2", "+3", "1.5", ".5", "1e10", "'a'", "''", "'it''s'",
                "'),('", "'(x)'", "'a;b'", "'@{a,b}'", "'--'", "'/*'", "'\\'", "null", "NULL",
                "True", "false", "default", "1 + 2", "'é'")
OTHER_VALUES = ("E'x'", "e'\\''", "$$x$$", "$t$ ' $t$", "'a'::text", "cast(1 as int)",
                "(1)", "abs(1)", "x", "nulls", "?", "%s", ":a", "$1", "/* c */ 1", "1 -- c\n",
                "--1", "N'x'", "x'1F'", "q'[x]'", "u&'x'", "'a' 'b'", "1e5x", "@a", "'x",
                "1null")
DECLINED = frozenset(OTHER_VALUES) - {"'a' 'b'", "'x"}
"""Values whose rows are never taken unread (the others there may be: '(\'a\' \'b\')' is two
strings to both readings)."""


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(st.sampled_from(PLAIN_VALUES + OTHER_VALUES), min_size=0,
                         max_size=4), min_size=1, max_size=8),
       st.sampled_from((", ", ",", "", " ", ",\n ", " , ,")),
       st.sampled_from(("", " ", ",", ";", " returning id", " on conflict do nothing", ")",
                        "(", "'")),
       st.sampled_from(("insert into t@{a,b} (n) values ", "bulk insert into t values",
                        "insert into t values\n", "INSERT INTO t VALUES",
                        "insert into t select * from (values ")))
def test_rows_taken_unread_are_what_the_scan_that_reads_them_gives(rows, sep, tail, head):
    """Where the rows are taken without reading them the statement is the one the scan that
    reads every row gives (spans included, once asked for); where they are not, nothing
    changes."""
    text = head + sep.join("(" + ", ".join(r) + ")" for r in rows) + tail
    try:
        full = scan._read(text, scan.lex(text))
    except pooldbapi.ProgrammingError as exc:
        with pytest.raises(pooldbapi.ProgrammingError) as info:
            scan._scan(text)
        assert str(info.value) == str(exc)
        return
    fast = scan._scan(text)
    assert full is not None
    fields = ("kind", "occurrences", "placeholders", "removed", "words", "select_start",
              "columns", "clauses", "end", "dollar_markers")
    assert {f: getattr(fast, f) for f in fields} == {f: getattr(full, f) for f in fields}
    assert tuple(fast.values_rows) == tuple(full.values_rows)
    assert fast.values_rows == full.values_rows and hash(fast.values_rows) == \
        hash(tuple(full.values_rows))
    plain = all(v in PLAIN_VALUES for r in rows for v in r) and \
        sep in (", ", ",", "", " ", ",\n ") and tail in ("", " ", ",") and \
        head.startswith(("insert into t@", "bulk", "insert into t values\n", "INSERT"))
    if plain:
        assert isinstance(fast.values_rows, scan.Rows), text
    if any(v in DECLINED for r in rows for v in r) or tail in (";", ")", "(", "'") or \
            "returning" in tail or "conflict" in tail:
        assert not isinstance(fast.values_rows, scan.Rows), text


def _fields(stmt):
    return (stmt.kind, stmt.occurrences, stmt.placeholders, stmt.removed,
            tuple(stmt.values_rows), stmt.words, stmt.select_start, stmt.columns,
            stmt.clauses, stmt.end, stmt.dollar_markers)


def test_plain_rows_are_declined_where_anything_but_plain_values_stands():
    take = "insert into t values (1, 'a'), (2, 'b')"
    assert scan._plain_rows(take) is not None
    for text in ("insert into t values (1, E'a\\''), (2, 'b')",
                 "insert into t values (1, $$a'$$), (2, 'b')",
                 "insert into t values (1, 'a'::text), (2, 'b')",
                 "insert into t values ((1), 'a'), (2, 'b')",
                 "insert into t values (1, 'a') -- c",
                 "insert into t values (1, 'a'); select 1",
                 "insert into t values (1, 'a') returning id",
                 "insert into t values (1, 'a'), (2, 'b",
                 "insert into t values (1, ?), (2, 'b')",
                 "insert into t values (1, x), (2, 'b')",
                 "insert into t values (1, 'a') (2, 'b') 3",
                 "insert into t values 1",
                 "insert into t values ('1), (2)",
                 "insert into t values (--1)\n",
                 "insert into t values (1, --2\n 3)",
                 "select 1 from t where x in (values (1))",
                 "insert /* values (1) */ into t select 1"):
        assert scan._plain_rows(text) is None, text
    toks = scan._plain_rows(take + " ")
    assert toks is not None and "".join(t.value for t in toks) == take + " "
    assert [(t.ttype, t.value, t.start) for t in toks[-3:]] == [
        (scan.KEYWORD, "values", 14), (scan.WHITESPACE, " ", 20),
        (scan.ROWS, "(1, 'a'), (2, 'b') ", 21)]
    toks = scan._plain_rows("insert into t values(1)")
    assert toks is not None and toks[-1].start == 20 and all(t.value for t in toks)
    for text in ("insert into t values ('1), (2)", "insert into t values (--1)\n",
                 "insert into t values X (1)", "insert into t values\t\r\n(1)"):
        assert _fields(scan._scan(text)) == _fields(scan._read(text, scan.lex(text))), text
    stmt = scan._scan(take)
    assert stmt.values_rows == ((21, 29), (31, 39))
    assert repr(stmt.values_rows) == "((21, 29), (31, 39))"
    assert list(stmt.values_rows) == [(21, 29), (31, 39)] and stmt.values_rows[1] == (31, 39)
    assert stmt.values_rows != "x" and stmt.values_rows != ((21, 29),)


@pytest.fixture
def two_servers(pg, pg2):
    conn = pooldbapi.connect({"p1": pg.conninfo(), "p2": pg2.conninfo()}, default="{p1,p2}",
                             broadcast_ddl=True, seed=7)
    conn.execute("drop table if exists lit")
    conn.execute("create table lit (id serial primary key, n int, s text)")
    conn.commit()
    yield conn
    conn.rollback()
    conn.execute("drop table lit")
    conn.commit()
    conn.close()


def test_postgresql_gets_each_server_s_literal_rows_in_order(two_servers):
    """Rows the scan reads one by one (E'' strings, dollar quotes, casts, comments, nested
    parentheses) and plain ones, over two servers: each holds the rows its turns picked, in
    their order."""
    cells = ["(0, E'it\\'s ),( 0')", "(1, $$ '), (' $$)", "(2, 'a;b'::text)",
             "((3), /* ), ( */ 'c')", "(4, 'd @{p1,p2}')", "(5, E'\\\\')", "(6, $q$;$q$)",
             "(7, '')"]
    held = [(0, "it's ),( 0"), (1, " '), (' "), (2, "a;b"), (3, "c"), (4, "d @{p1,p2}"),
            (5, "\\"), (6, ";"), (7, "")]
    text = "insert into lit (n, s) values " + ", ".join(cells)
    cur = two_servers.execute(text)
    two_servers.commit()
    assert cur.rowcount == len(held)
    picked = turns(7, text, ("p1", "p2"), len(held))
    for alias in ("p1", "p2"):
        got = [tuple(r) for r in two_servers.execute(f"select n, s from lit@{alias}"
                                                      " order by id")]
        assert got == [r for r, t in zip(held, picked, strict=True) if t == alias]
    plain = "insert into lit (n, s) values " + ", ".join(
        f"({i}, 'x''{i}), (')" for i in range(10))
    assert isinstance(scan.parse(plain).values_rows, scan.Rows)
    for alias in ("p1", "p2"):
        two_servers.execute(f"delete from lit@{alias}")
    two_servers.execute(plain)
    two_servers.commit()
    picked = turns(7, plain, ("p1", "p2"), 10)
    for alias in ("p1", "p2"):
        got = [tuple(r) for r in two_servers.execute(f"select n, s from lit@{alias}"
                                                      " order by id")]
        assert got == [(i, f"x'{i}), (") for i in range(10) if picked[i] == alias]


def test_qmarks_of_a_long_list_are_each_row_s_in_place_and_none_inside_strings():
    """Rows whose only marker is '?' get their placeholders from one pass over the text (the
    '?' inside strings blanked): every marker at its place, none from a literal."""
    rows = [f"(?, '?{i}', ?, 'a''?', {i})" if i % 3 else "(?, ?)" for i in range(3000)]
    text = "insert into t@{a,b} (x, y, z, w, v) values " + ", ".join(rows)
    found = scan._literal_rows(text)
    assert found is not None and len(found[1]) == 3000
    expected = [i for i in range(len(text)) if text[i] == "?" and
                text.count("'", 0, i) % 2 == 0]
    markers = found[2]
    assert [(p.style, p.key, p.start, p.end) for p in markers] == \
        [("qmark", None, i, i + 1) for i in expected]
    assert all(type(p) is scan.Placeholder for p in markers)
    assert scan.parse(text).placeholders == tuple(markers)
    mixed = "insert into t values (?, :a), ('?', ?)"
    assert [p.style for p in scan.parse(mixed).placeholders] == ["qmark", "named", "qmark"]
    only_inside = scan._literal_rows("insert into t values ('?', 1), ('??', 2)")
    assert only_inside is not None and list(only_inside[2]) == []


def test_rows_without_markers_or_with_qmarks_only_are_not_read_one_by_one(monkeypatch):
    """Markers are looked for row by row only where another style than '?' is in the rows;
    rows after a gap that is no separator are not the list's."""
    def per_row(body: str) -> list:
        raise AssertionError(f"read row by row: {body}")

    monkeypatch.setattr(scan, "_row_markers", per_row)
    for text in ("insert into t values (1, 'a'), (2, '?')",
                 "insert into t values (?, 'a'), (?, '?')",
                 "insert into t values (1, 'a'), (2, 'b') returning id"):
        assert scan._literal_rows(text) is not None
    text = "insert into t values (1), (2) on conflict do update set x = (3)"
    found = scan._literal_rows(text)
    assert found is not None and found[1] == [(21, 24), (26, 29)]
    assert "".join(t.value for t in found[0]) == text


def test_the_row_expression_s_tokens_stand_where_their_text_does():
    toks, _, _ = scan._literal_rows("insert into t values (1), (2) returning x")
    at = [t.ttype for t in toks].index(scan.ROWS)
    assert [(t.ttype, t.value, t.start) for t in toks[at - 2:at + 1]] == [
        (scan.KEYWORD, "values", 14), (scan.WHITESPACE, " ", 20), (scan.ROWS, "(1), (2)", 21)]
    toks, _, _ = scan._literal_rows("insert into t values(1)")
    assert [(t.ttype, t.value, t.start) for t in toks[-2:]] == [
        (scan.KEYWORD, "values", 14), (scan.ROWS, "(1)", 20)]
    assert all(t.value for t in toks)


def test_long_lists_the_rows_are_read_from_are_never_lexed_whole(monkeypatch):
    """Rows the row expression reads, and repeated rows it does not (an E'' string), are read by
    their shortcuts: the tokenizer never lexes the whole text."""
    def whole(text: str) -> list:
        raise AssertionError("lexed whole")

    monkeypatch.setattr(scan, "lex", whole)
    distinct = "insert into t@{a,b} (x, y) values " + ", ".join(
        f"(?, {i})" for i in range(2000)) + " returning x"
    stmt = scan._scan(distinct)
    assert len(stmt.values_rows) == 2000 and len(stmt.placeholders) == 2000
    assert stmt.clause("RETURNING") is not None
    repeated = "insert into t@{a,b} (x, y) values " + ", ".join(["(?, E'x')"] * 2000)
    stmt = scan._scan(repeated)
    assert len(stmt.values_rows) == 2000 and len(stmt.placeholders) == 2000


# Python 3.11 before 3.11.5 (Debian 12 ships 3.11.2) let a possessive quantifier match where
# the greedy one does not (CPython gh-106052, gh-100061): the scan's expressions must give the
# same answers there, so none of them may rely on possessive quantifiers.
@pytest.mark.parametrize("rows", ["()(", "(1)(", "(1), (2)(", "('a')(", "(1) , (2) ,("])
def test_rows_with_something_after_them_are_never_taken_unread(rows):
    text = "insert into t@{a,b} (n) values " + rows
    assert scan._plain_rows(text) is None
    assert not isinstance(scan._scan(text).values_rows, scan.Rows)


@pytest.mark.parametrize(("row", "plain"), [
    ("(1)", True), ("(1, 'a''b', null, -2.5e3, ?)", True), ("(1, )", False), ("(, 1)", False),
    ("(1 2)", False), ("('a)", False), ("(1.)", False), ("(1, %(k)s, :n)", True),
    ("(1, %()s)", False), ("(1e)", False), ("(+ 1)", True), ("(x)", False)])
def test_the_row_expression_reads_only_whole_rows_of_plain_values(row, plain):
    assert (scan._ROW.fullmatch(row) is not None) is plain


def test_the_scan_expressions_use_no_possessive_quantifier():
    import re
    for expr in (scan._ROW, scan._PLAIN_ROWS, scan._SEPARATOR, scan._MARKER):
        assert re.search(r"[*+?}][+]", expr.pattern.replace("\\+", "")) is None, expr.pattern
