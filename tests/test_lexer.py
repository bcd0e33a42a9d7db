"""The lexer under the one scan (sqlglot's tokenizer): every character lands in exactly one
token at its offset, PostgreSQL's nested block comments are one comment, and binding names what
is wrong."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pooldbapi
from pooldbapi.sql.paramstyle import bind, bind_many
from pooldbapi.sql.parse import (
    BLOCK_COMMENT,
    GAP,
    NAME,
    OPERATOR,
    PLACEHOLDER,
    PUNCT,
    STRING,
    WHITESPACE,
    lex,
    parse,
)
from pooldbapi.sql.render import render

FRAGMENTS = ("select", " ", "\n", "t@{a,b}", "x", ",", "(", ")", "?", ":n", "%s", "%(a-b c)s",
             "%(", ")s", "'a''b'",
             "E'\\''", "/* c */", "/* a /* b */ c */", "/* /* */ ? */", "/* a /* b */ 'c */",
             "-- line\n", "1.5", '"Q x"', "::int", "<@", "@>", "$$ ? $$", "[1]", ";")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=25))
def test_every_character_is_in_one_token_at_its_offset(parts):
    text = "".join(parts)
    toks = lex(text)
    assert "".join(t.value for t in toks) == text
    offset = 0
    for tok in toks:
        assert tok.start == offset and tok.value
        offset += len(tok.value)


@pytest.mark.parametrize("text, comments, after", [
    ("/* a /* b */ c */ ?", ["/* a /* b */ c */"], "?"),
    ("x /* /* */ */ y", ["/* /* */ */"], "y"),
    ("/* 1 /* 2 /* 3 */ 2 */ 1 */z", ["/* 1 /* 2 /* 3 */ 2 */ 1 */"], "z"),
    ("/* a */ /* b /* c */ d */ e", ["/* a */", "/* b /* c */ d */"], "e"),
    ("/* open /* inner */ still open", ["/* open /* inner */ still open"], None),
    ("/* /**/ ? */ ?", ["/* /**/ ? */"], "?"),  # an empty comment inside
    ("/**/ /* ? */ x", ["/**/", "/* ? */"], "x"),  # an empty one, then another
])
def test_block_comments_nest_as_postgresql_reads_them(text, comments, after):
    toks = lex(text)
    found = [t.value for t in toks if t.ttype == BLOCK_COMMENT]
    assert found == comments
    rest = [t.value for t in toks if t.ttype not in GAP]
    assert (rest[-1] if rest else None) == after
    assert "".join(t.value for t in toks) == text


def test_what_follows_a_nested_comment_that_ends_inside_a_token_is_read_again():
    """A lexer that ended the comment at the first '*/' would read on into a string starting
    in the comment. What follows the comment's real end is read in its own context."""
    text = "/* a /* b */ 'c */ x 'y' z ?"
    toks = lex(text)
    assert [(t.ttype, t.value, t.start) for t in toks] == [
        (BLOCK_COMMENT, "/* a /* b */ 'c */", 0), (WHITESPACE, " ", 18),
        (NAME, "x", 19), (WHITESPACE, " ", 20),
        (STRING, "'y'", 21), (WHITESPACE, " ", 24),
        (NAME, "z", 25), (WHITESPACE, " ", 26), (PLACEHOLDER, "?", 27)]
    assert [p.start for p in parse(text).placeholders] == [27]


@pytest.mark.parametrize("text, starts", [
    ("select ?::int, (?::text)", [7, 16]),          # sqlglot reads '?::' as one operator
    ("select ??", [7, 8]),
    ("select x ?| :a, y ?& :b", [12, 21]),  # jsonb operators beside :a, :b
    ("select a[?:?], ?", [9, 11, 15]),
])
def test_a_question_mark_joined_to_an_operator_is_still_read_as_itself(text, starts):
    assert [p.start for p in parse(text).placeholders] == starts


@pytest.mark.parametrize("text, kinds", [
    # operators sqlglot gives kinds of their own (no word, no punctuation): each an operator
    ("select a || b, ~x, 2 ^ 3, !x, a # b, j ->> 1, a != b",
     {"||": OPERATOR, "~": OPERATOR, "^": OPERATOR, "!": OPERATOR, "#": OPERATOR,
      "->>": OPERATOR, "!=": OPERATOR}),
    # a cast after a marker is the same punctuation as after a value
    ("select ?::int, 1::int", {"::": PUNCT}),
])
def test_each_token_is_of_its_kind(text, kinds):
    toks = lex(text)
    for value, kind in kinds.items():
        found = {t.ttype for t in toks if t.value == value}
        assert found == {kind}, value


@pytest.mark.parametrize("text, literal", [
    ("select 1,'abc ?", "'abc ?"),      # right after a token: the quote is the literal's
    ("select 1, 'abc ?", "'abc ?"),
    ("select x from t where y = $$a ?", "$$a ?"),
])
def test_an_unclosed_literal_is_one_literal_from_its_quote_to_the_end(text, literal):
    """The back-end names the error; the scan reads no marker inside."""
    toks = lex(text)
    assert (toks[-1].ttype, toks[-1].value) == (STRING, literal)
    assert "".join(t.value for t in toks) == text
    assert not parse(text).placeholders


def test_a_placeholder_inside_a_nested_comment_is_no_placeholder():
    assert [p.start for p in parse("select /* /* ? */ ? */ ?").placeholders] == [23]


@pytest.mark.parametrize("text, params, message", [
    ("select ?", [1, 2], "the statement takes 1 parameters, 2 given"),
    ("select :2", [1], "the statement takes 2 parameters, 1 given"),
    ("select ?", {"a": 1}, ("the statement uses qmark placeholders: parameters must be a"
                           " sequence, not dict")),
    ("select %s", "x", ("the statement uses format placeholders: parameters must be a"
                       " sequence, not str")),
    ("select ?", 5, ("the statement uses qmark placeholders: parameters must be a sequence,"
                    " not int")),
    ("select :a", (1,), ("the statement uses named placeholders: parameters must be a mapping,"
                        " not tuple")),
    ("select %(a)s", [1], ("the statement uses pyformat placeholders: parameters must be a"
                          " mapping, not list")),
    ("select :a, :b, :c", {"b": 1}, "no value for parameter(s) a, c"),
    ("select 1", (1,), "the statement has no placeholders but 1 parameters were given"),
    ("select 1", "ab", "the statement has no placeholders but 2 parameters were given"),
])
def test_bind_says_exactly_what_is_wrong(text, params, message):
    stmt = parse(text)
    with pytest.raises(pooldbapi.ProgrammingError) as info:
        bind(stmt, render(stmt, "qmark").keys, params)
    assert str(info.value) == message


@pytest.mark.parametrize("text, params, values", [
    ("select 1", (), ()),
    ("select 1", [], ()),
    ("select 1", {}, ()),
    ("select ?, ?", [1, 2], (1, 2)),
    ("select ?, ?", (1, 2), (1, 2)),
    ("select :2, :1, :2", [7, 8], (8, 7, 8)),
    ("select :1", (7,), (7,)),
    ("select %(b)s, %(a)s", {"a": 1, "b": 2, "c": 3}, (2, 1)),
])
def test_bind_gives_the_values_in_marker_order(text, params, values):
    stmt = parse(text)
    assert tuple(bind(stmt, render(stmt, "qmark").keys, params)) == values


def test_bind_copies_a_list_of_positional_values_as_a_tuple():
    """A generated statement's list of values (3,000 of them) is taken whole: the values,
    in order, as a tuple of their own (the caller's list may change afterwards)."""
    stmt = parse("insert into t values " + ", ".join(["(?, ?, ?)"] * 1000))
    values = list(range(3000))
    got = bind(stmt, render(stmt, "qmark").keys, values)
    assert type(got) is tuple and got == tuple(values)
    with pytest.raises(pooldbapi.ProgrammingError, match="takes 3000 parameters, 2999 given"):
        bind(stmt, render(stmt, "qmark").keys, values[1:])
    fmt = parse("select %s, %s")
    assert bind(fmt, render(fmt, "qmark").keys, [1, 2]) == (1, 2)


def test_bind_many_names_the_bad_set_by_the_callers_index():
    stmt = parse("insert into t values (?, ?)")
    keys = render(stmt, "qmark").keys
    rows = [(1, 2), [3, 4], (5,)]
    assert list(bind_many(stmt, keys, rows[:2])) == [(1, 2), (3, 4)]
    with pytest.raises(pooldbapi.ProgrammingError) as info:
        bind_many(stmt, keys, rows)
    assert str(info.value) == "parameter set 2: the statement takes 2 parameters, 1 given"
    with pytest.raises(pooldbapi.ProgrammingError) as info:
        bind_many(stmt, keys, [(1,)], indices=[41])
    assert str(info.value) == "parameter set 41: the statement takes 2 parameters, 1 given"
    named = parse("insert into t values (:a, :b)")
    assert list(bind_many(named, render(named, "qmark").keys, [{"a": 1, "b": 2}])) == [(1, 2)]
    numeric = parse("insert into t values (:2, :1)")
    assert list(bind_many(numeric, render(numeric, "qmark").keys, [(1, 2)])) == [(2, 1)]


HEADS = ("insert into t@{a,b} (a, b) values ", "bulk insert into t@a values ",
         "INSERT INTO s.t VALUES", "/* c */ insert into cat..t@{a} (x) values\n")
ROW_PARTS = ("?", "%s", ":1", ":a", "%(a)s", "'a,b)'", "'it''s'", "$$x), ($$", "E'\\')'", "1",
             "-1.5", "null", "default", "(?)", "? + 1", "$1", "'?'", "q'[?)]'")
TAILS = ("", " on conflict do nothing", " returning *", ";", "; -- done", ", (1, 2)",
         " on conflict (id) do update set x = ?", " /* ) */", ", (?, ?), ((select 1), 2)")


def _fields(stmt):
    return (stmt.kind, stmt.occurrences, stmt.placeholders, stmt.removed, stmt.values_rows,
            stmt.words, stmt.select_start, stmt.columns, stmt.clauses, stmt.end,
            stmt.dollar_markers)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(HEADS), st.lists(st.sampled_from(ROW_PARTS), min_size=1, max_size=6),
       st.sampled_from((", ", ",", ",\n  ", " , ")), st.integers(2, 600),
       st.sampled_from(TAILS))
def test_repeated_rows_read_without_lexing_each_read_as_lexing_each(head, parts, sep, count,
                                                                     tail):
    """A long VALUES list of identical rows is lexed once per row shape: the scan reads the
    same statement from it as from lexing every row."""
    from pooldbapi.sql import parse as module
    text = head + sep.join(["(" + ", ".join(parts) + ")"] * count) + tail
    try:
        plain = module.Statement  # the scan with every row lexed, for comparison
        full = _scan_without_shortcut(module, text)
    except pooldbapi.ProgrammingError as exc:
        with pytest.raises(pooldbapi.ProgrammingError) as info:
            module._scan(text)
        assert str(info.value) == str(exc)
        return
    fast = module._scan(text)
    assert isinstance(fast, plain)
    assert _fields(fast) == _fields(full)


def _scan_without_shortcut(module, text):
    saved = module._repeated_rows
    module._repeated_rows = lambda text: None
    try:
        return module._scan(text)
    finally:
        module._repeated_rows = saved


def test_the_shortcut_is_taken_for_generated_rows_and_not_where_rows_differ():
    from pooldbapi.sql import parse as module
    rows = ", ".join(["(?, ?, ?, ?, ?)"] * 2000)
    found = module._repeated_rows("insert into t@{a,b} (a, b, c, d, e) values " + rows)
    assert found is not None and found[2] == 1999 and found[1] == len(", (?, ?, ?, ?, ?)")
    assert "".join(t.value for t in found[0]) == \
        "insert into t@{a,b} (a, b, c, d, e) values " + rows
    literal = ", ".join(f"({i}, 'x')" for i in range(2000))
    assert module._repeated_rows("insert into t values " + literal) is None
    commented = " /* c */, ".join(["(?, ?)"] * 2000)
    assert module._repeated_rows("insert into t values " + commented) is None
    assert module._repeated_rows("select " + ", ".join(["(?, ?)"] * 2000)) is None
    subquery = ", ".join(["((select 1 from u@b), ?)"] * 500)
    assert module._repeated_rows("insert into t values " + subquery) is None
    stmt = parse("insert into t values " + subquery)
    assert len(stmt.occurrences) == 501 and len(stmt.values_rows) == 500


def test_the_shortcut_is_dropped_where_its_rows_do_not_follow_a_first_values_row():
    from pooldbapi.sql import parse as module
    toks = module.lex("select (1)") + [module.Token(module.REPEATED, ", (1)", 10)]
    assert module._read("select (1), (1)", toks, 5, 1) is None
    text = "insert into t values (1)"
    toks = module.lex(text) + [module.Token(module.REPEATED, ", (1)", len(text))]
    stmt = module._read(text + ", (1)", toks, 5, 1)
    assert stmt is not None and stmt.values_rows == ((21, 24), (26, 29))
    # a statement that only holds 'insert' further on is never read by the shortcut
    tail = ", ".join(["(?, ?)"] * 2000)
    assert module._repeated_rows("explain insert into t values " + tail) is None
    assert len(parse("explain insert into t values " + tail).values_rows) == 0


def _shortcut(text):
    """What the repeated-row shortcut makes of a text: None, or (tokens, unit, count) after
    checking that its tokens give back the text."""
    from pooldbapi.sql import parse as module
    found = module._repeated_rows(text)
    if found is not None:
        assert "".join(t.value for t in found[0]) == text
    return found


def _columns_of(width):
    """A column list 'c000, c001, ...' of at least `width` characters."""
    return ", ".join(f"c{k:03d}" for k in range(width // 6 + 1))


def test_the_shortcut_reads_bulk_insert_and_rows_of_null_true_false_default():
    rows = ", ".join(["(?, ?)"] * 2000)
    found = _shortcut("bulk insert into t@a values " + rows)
    assert found is not None and found[2] == 1999
    words = ", ".join(["(?, null, true, false, default)"] * 1000)
    found = _shortcut("insert into t values " + words)
    assert found is not None and found[2] == 999
    # a row holding a subquery is read whole, even one that names no table
    assert _shortcut("insert into t values " + ", ".join(["((select 1), ?)"] * 1000)) is None


def test_the_shortcut_reads_past_a_short_first_head():
    """Where the short head (512 characters) holds no VALUES, ends just after it, or ends
    within 64 characters of the first row's end, the long head reads the rows."""
    rows = ", ".join(["(?, ?)"] * 2000)
    long_columns = f"insert into t ({_columns_of(600)}) values "
    found = _shortcut(long_columns + rows)
    assert found is not None and found[2] == 1999
    head = "insert into t ("
    ends_at_values = head + _columns_of(505 - len(head))
    ends_at_values = ends_at_values[:505 - len(head + ") values")].rstrip(", ")
    ends_at_values += ") values"
    ends_at_values += " " * (505 - len(ends_at_values))
    assert 505 - 20 < len(ends_at_values.rstrip()) <= 505
    found = _shortcut(ends_at_values + " " * 20 + rows)
    assert found is not None and found[2] == 1999
    near_the_cut = head + _columns_of(490 - len(head))
    near_the_cut = near_the_cut[:490 - len(head + ") values ")].rstrip(", ") + ") values "
    spaced = ("," + " " * 30).join(["(?, ?)"] * 2000)
    assert 448 < len(near_the_cut) + len("(?, ?)") <= 512 - 30
    found = _shortcut(near_the_cut + spaced)
    assert found is not None and found[2] == 1999 and found[1] == len("," + " " * 30 + "(?, ?)")


def test_rows_further_apart_than_the_short_head_are_left_to_the_tokenizer():
    """Blanks from the first row's end to the end of the short head (512 characters): no
    second row in sight, the rows are lexed one by one."""
    from pooldbapi.sql import parse as module
    text = "insert into t values " + ("," + " " * 600).join(["(?, ?)"] * 100)
    assert _shortcut(text) is None
    assert len(parse(text).values_rows) == 100
    assert _fields(module._scan(text)) == _fields(_scan_without_shortcut(module, text))


def test_a_jsonb_question_mark_in_repeated_rows_is_an_operator_in_every_row():
    """With %s markers in the statement, '?' after an operand is PostgreSQL's jsonb operator,
    in the repeats as in the first row."""
    from pooldbapi.sql import parse as module
    text = "insert into t values " + ", ".join(["(%s, '{}' ? 'a')"] * 600)
    assert _shortcut(text) is not None
    stmt = module._scan(text)
    assert len(stmt.placeholders) == 600
    assert {p.style for p in stmt.placeholders} == {"format"}
    assert _fields(stmt) == _fields(_scan_without_shortcut(module, text))


# values a row of a VALUES list may hold: what the row expression reads (numbers, standard
# strings with '' escapes, null, true, false, default, markers) and what it must leave to the
# tokenizer (E'' strings, casts, comments, dollar quotes, calls, PostgreSQL's $1, ...)
VALUE_PARTS = ("1", "-1", "- 2", "+3", "1.5", "-0.25", ".5", "1e10", "2.5E-3", "1.", "0x1F",
               "1abc", "'a'", "''", "'it''s'", "'a,b)'", "'?'", "':x'", "'%s'", "'\\'",
               "'x''", "'(1), (2)'", "'-- no'", "'/* no */'", "E'\\''", "e'a\\nb'",
               "'2020-01-01'::date", "cast(1 as int)", "null", "NULL", "True", "false",
               "default", "nulls", "?", "%s", "%(a)s", ":a", ":1", ":b2", "$1", "$$x), ($$",
               "$t$ ' $t$", "/* c */ 1", "1 -- c\n", "--1", "'a' 'b'", "N'x'", "x'1F'",
               "q'[?)]'", "u&'x'", "(1)", "? + 1", "?::int", "array[1]", "@a", "'é'", "é")
VALUE_HEADS = ("insert into t@{a,b} (a, b) values ", "bulk insert into t@a values",
               "INSERT INTO s.t VALUES(", "/* values */ insert into t values ",
               "insert into t values\n\t", "insert into cat..t@{a} (x) Values ",
               "insert into t select * from (values ", "explain insert into t values ",
               "-- values\ninsert into \"values\" values ", "insert into t(values) values ",
               "insert into t values$x values ", "with v as (select 1) insert into t values ",
               "insert into t (a) values /* c */ ", "select ", "insert into t@ values ")
VALUE_TAILS = ("", " on conflict do nothing", " returning *", ";", "; -- done",
               "; select 1", " on conflict (id) do update set x = ?", " /* ) */", ")",
               ", ((select 1 from u@b), 2)", " returning id@{a}", "'")


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(VALUE_HEADS),
       st.lists(st.lists(st.sampled_from(VALUE_PARTS), min_size=0, max_size=5),
                min_size=1, max_size=12),
       st.sampled_from((", ", ",", ",\n  ", " , ", " ,\t")),
       st.sampled_from(("", " ", "\n")), st.sampled_from(VALUE_TAILS))
def test_rows_read_by_the_row_expression_read_as_the_tokenizer_reads_them(head, rows, sep,
                                                                          pad, tail):
    """The row expression of the scan reads the same statement as the tokenizer does, row
    for row, and where it does not recognise a row the tokenizer reads from there: the
    same answer, or the same error."""
    from pooldbapi.sql import parse as module
    text = head + sep.join("(" + pad + ", ".join(parts) + pad + ")" for parts in rows) + tail
    try:
        full = module._read(text, module.lex(text))
    except pooldbapi.ProgrammingError as exc:
        with pytest.raises(pooldbapi.ProgrammingError) as info:
            module._scan(text)
        assert str(info.value) == str(exc)
        return
    assert full is not None
    assert _fields(module._scan(text)) == _fields(full)


def test_the_row_expression_reads_plain_rows_and_leaves_the_rest_to_the_tokenizer():
    from pooldbapi.sql import parse as module
    text = "insert into t@{a,b} (x, y) values " + ", ".join(
        f"({i}, 'a''{i}')" for i in range(1000)) + " returning x"
    found = module._literal_rows(text)
    assert found is not None
    toks, spans, markers = found
    assert len(spans) == 1000 and len(markers) == 0
    assert [t.ttype for t in toks if t.ttype == module.ROWS] == [module.ROWS]
    assert "".join(t.value for t in toks) == text
    assert spans[0] == (text.index("(0,"), text.index("(0,") + len("(0, 'a''0')"))
    # a row it does not recognise ends its rows: the tokenizer reads that row and the rest
    cast = "insert into t values (1, 'a'), (2, 'b'::text), (3, 'c')"
    toks, spans, _ = module._literal_rows(cast)
    assert spans == [(21, 29)] and "".join(t.value for t in toks) == cast
    assert parse(cast).values_rows == ((21, 29), (31, 45), (47, 55))
    # markers of every style, at their places
    marked = "insert into t values (?, '?', %s), (:a, %(b)s, :1)"
    _, _, markers = module._literal_rows(marked)
    assert [(p.style, p.key, marked[p.start:p.end]) for p in markers] == [
        ("qmark", None, "?"), ("format", None, "%s"), ("named", "a", ":a"),
        ("pyformat", "b", "%(b)s"), ("numeric", 1, ":1")]
    # no insert, no plain first row, or VALUES inside a comment: not taken
    assert module._literal_rows("select 1 from t where x in (values (1))") is None
    assert module._literal_rows("insert into t values (E'x')") is None
    assert module._literal_rows("insert /* values (1) */ into t select 1") is None
    assert module._literal_rows("insert into t values ") is None  # no row after VALUES
    assert module._literal_rows("insert into t values\n") is None
    bulk = module._literal_rows("bulk insert into t@a values (1), (2)")
    assert bulk is not None and bulk[1] == [(28, 31), (33, 36)]


def test_the_row_expression_is_dropped_where_its_rows_are_not_an_inserts_values():
    from pooldbapi.sql import parse as module
    text = "insert into t select * from (values (1), (2)) v"
    toks = module.lex("insert into t select * from (values ") + [
        module.Token(module.ROWS, "(1), (2)", 36)]
    module._lex(text, 44, toks)
    assert module._read(text, toks, rows=([(36, 39), (41, 44)], [])) is None
    assert parse(text).values_rows == ()


def test_the_row_expression_reads_every_kind_of_plain_value_itself():
    """Each plain value, and the spacing around it, is read by the row expression (not left to
    the tokenizer): the rows of the list are all among its spans."""
    from pooldbapi.sql import parse as module
    plain = ("1", "-1", "- 2", "+3", "1.5", ".5", "1e10", "2.5E-3", "-4.5e+2", "'a'", "''",
             "'it''s'", "'a, (b)'", "'\\'", "null", "NULL", "True", "false", "DEFAULT",
             "?", "%s", "%(a)s", ":a", ":1")
    for value in plain:
        for row in (f"({value})", f"( {value} )", f"(\t{value},\n{value}\r)", f"(1,{value})"):
            text = f"insert into t values {row},{row} ,\n{row}"
            found = module._literal_rows(text)
            assert found is not None, text
            assert len(found[1]) == 3, text
            assert "".join(t.value for t in found[0]) == text
            assert _fields(module._scan(text)) == _fields(module._read(text, module.lex(text)))
    found = module._literal_rows("INSERT INTO t VALUES(1)")
    assert found is not None and found[1] == [(20, 23)]
