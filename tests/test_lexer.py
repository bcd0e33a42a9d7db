"""The lexer under the one scan: every character lands in exactly one token at its offset,
PostgreSQL's nested block comments are one comment, and binding names what is wrong."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlparse import tokens

import pooldbapi
from pooldbapi.sql.paramstyle import bind, bind_many
from pooldbapi.sql.parse import lex, parse
from pooldbapi.sql.render import render

FRAGMENTS = ("select", " ", "\n", "t@{a,b}", "x", ",", "(", ")", "?", ":n", "%s", "'a''b'",
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
])
def test_block_comments_nest_as_postgresql_reads_them(text, comments, after):
    toks = lex(text)
    found = [t.value for t in toks if t.ttype in tokens.Comment.Multiline]
    assert found == comments
    rest = [t.value for t in toks if t.ttype not in tokens.Comment
            and t.ttype not in tokens.Whitespace]
    assert (rest[-1] if rest else None) == after
    assert "".join(t.value for t in toks) == text


def test_what_follows_a_nested_comment_that_ends_inside_a_token_is_read_again():
    """sqlparse ends the comment at the first '*/' and reads on: here a string starting in the
    comment. What follows the comment's real end is read again, in its own context."""
    text = "/* a /* b */ 'c */ x 'y' z ?"
    toks = lex(text)
    assert [(t.ttype, t.value, t.start) for t in toks] == [
        (tokens.Comment.Multiline, "/* a /* b */ 'c */", 0), (tokens.Whitespace, " ", 18),
        (tokens.Name, "x", 19), (tokens.Whitespace, " ", 20),
        (tokens.String.Single, "'y'", 21), (tokens.Whitespace, " ", 24),
        (tokens.Name, "z", 25), (tokens.Whitespace, " ", 26), (tokens.Name.Placeholder, "?", 27)]
    assert [p.start for p in parse(text).placeholders] == [27]


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
