"""Placeholders: found only outside literals, rendered into each back-end's style."""
from __future__ import annotations

import pytest

import pooldbapi
from pooldbapi.sql.paramstyle import bind
from pooldbapi.sql.parse import parse
from pooldbapi.sql.render import render

RENDER = [
    # text, target style, rendered text, keys
    ("select * from t where a = ? and b = ?", "format",
     "select * from t where a = %s and b = %s", (0, 1)),
    ("select * from t where a = ? and b = ?", "numeric",
     "select * from t where a = :1 and b = :2", (0, 1)),
    ("select :b, :a, :b", "qmark", "select ?, ?, ?", ("b", "a", "b")),
    ("select :2, :1", "format", "select %s, %s", (1, 0)),
    ("select %s, %(x)s", "qmark", None, None),  # mixed: error
    ("select %(x)s, %(x)s", "numeric", "select :1, :2", ("x", "x")),
    ("select 5 % 2, '10%', ?", "format", "select 5 %% 2, '10%%', %s", (0,)),
    ("select 5 %% 2, '10%%', %s", "qmark", "select 5 % 2, '10%', ?", (0,)),
    ("select 5 %% 2, %s", "format", "select 5 %% 2, %s", (0,)),
    ("select 5 %%%s, 7 %% %s", "qmark", "select 5 %?, 7 % ?", (0, 1)),  # %% right before a marker
    ("select '?', \"?\", x::int, a[1:n], $$ ? :x $$, ? -- ?\n/* :y */", "qmark",
     "select '?', \"?\", x::int, a[1:n], $$ ? :x $$, ? -- ?\n/* :y */", (0,)),
    ("select q'[it's ? :a]', ?", "format", "select q'[it's ? :a]', %s", (0,)),
    ("select q'{:x}', :y from t@a", "qmark", "select q'{:x}', ? from t", ("y",)),
    # in a format / pyformat statement, %s inside a literal or comment is text, and %% is a
    # literal % (inside literals too, as psycopg reads it); psycopg gets every % doubled
    ("select '%s', %s", "format", "select '%%s', %s", (0,)),
    ("select E'%s\\n', $$%s$$, $t$%s$t$, /* %s */ %s", "format",
     "select E'%%s\\n', $$%%s$$, $t$%%s$t$, /* %%s */ %s", (0,)),
    ("select %(id)s, 'ref %(id)s'", "format", "select %s, 'ref %%(id)s'", ("id",)),
    ("select %(id)s, 'ref %(id)s'", "qmark", "select ?, 'ref %(id)s'", ("id",)),
    # a %(name)s name is what psycopg reads as one: anything up to the ')'
    ("select %(user-id)s, %(a.b)s, %(first name)s", "qmark", "select ?, ?, ?",
     ("user-id", "a.b", "first name")),
    ("select 10 %(3)", "format", "select 10 %%(3)", ()),  # no 's' after the ')': an operator
    # nor a name that would open a literal or a comment, or span lines: not a marker
    ("select 10 %(it's)s'", "format", "select 10 %%(it's)s'", ()),
    ("select 10 %(a\nb)s", "format", "select 10 %%(a\nb)s", ()),
    ("select 10 %(a--b)s\n", "format", "select 10 %%(a--b)s\n", ()),
    ("select '%', '%%', 5 %% 2, %s", "format", "select '%%', '%%', 5 %% 2, %s", (0,)),
    ("select '%', '%%', 5 %% 2, %s", "qmark", "select '%', '%', 5 % 2, ?", (0,)),
    ('select "a%s", %s', "format", 'select "a%%s", %s', (0,)),
    ("select '%s %%', ?", "format", "select '%%s %%%%', %s", (0,)),  # qmark: % is literal
    # each marker its own key, counted on past the second
    ("select ?, ?, ?", "format", "select %s, %s, %s", (0, 1, 2)),
    ("select ?, ?, ?", "numeric", "select :1, :2, :3", (0, 1, 2)),
]


@pytest.mark.parametrize("text, style, expected, keys", RENDER)
def test_render(text, style, expected, keys):
    stmt = parse(text)
    if expected is None:
        with pytest.raises(pooldbapi.ProgrammingError, match="mixed"):
            render(stmt, style)
        return
    got = render(stmt, style)
    assert got.text == expected
    assert got.keys == keys


def test_without_parameters_the_text_is_sent_as_written():
    stmt = parse("select '%', ?, :x, %s from t@a")
    assert render(stmt, None).text == "select '%', ?, :x, %s from t"


BIND_ERRORS = [
    ("select ?", [1, 2], "takes 1 parameters, 2 given"),
    ("select ?", {"a": 1}, "must be a sequence"),
    ("select ?", "x", "must be a sequence"),
    ("select :a", (1,), "must be a mapping"),
    ("select :a, :b", {"a": 1}, "no value for parameter"),
    ("select 1", (1,), "no placeholders but 1 parameters were given"),
    ("select 1", 7, "no placeholders but non-sequence parameters were given"),
    ("select ?, :a", (1, 2), "mixed"),
]


@pytest.mark.parametrize("text, params, message", BIND_ERRORS)
def test_bind_errors(text, params, message):
    stmt = parse(text)
    with pytest.raises(pooldbapi.ProgrammingError, match=message):
        bind(stmt, render(stmt, "qmark").keys, params)


def test_repeated_named_binds_the_same_value():
    stmt = parse("select :a, :b, :a")
    assert bind(stmt, render(stmt, "qmark").keys, {"a": 1, "b": 2}) == (1, 2, 1)


def test_all_styles_run_on_sqlite(tmp_path):
    conn = pooldbapi.connect({"s": f"driver=sqlite;database={tmp_path / 'p.db'}"})
    for text, params in [("select ?, ?", (1, 2)), ("select :a, :b", {"a": 1, "b": 2}),
                         ("select :1, :2", (1, 2)), ("select %s, %s", (1, 2)),
                         ("select %(a)s, %(b)s", {"a": 1, "b": 2})]:
        assert tuple(conn.execute(text, params).fetchone()) == (1, 2)
    assert tuple(conn.execute("select :2, :1", ("x", "y")).fetchone()) == ("y", "x")
    assert tuple(conn.execute("select '50%' || ?", ("!",)).fetchone()) == ("50%!",)
    assert tuple(conn.execute("select '50%%' || %s", ("!",)).fetchone()) == ("50%!",)
    conn.close()


STRIP_TEXT = "select * from a@x join c..b@y on true"  # removed: @x, 'c..' and @y


@pytest.mark.parametrize("start, end, pieces", [
    (0, None, [(0, "select * from a"), (17, " join "), (26, "b"), (29, " on true")]),
    (14, 15, [(14, "a")]),                       # a window that ends where a suffix begins
    (0, 16, [(0, "select * from a")]),           # ... and one that ends inside it
    (15, None, [(17, " join "), (26, "b"), (29, " on true")]),  # starts at a suffix
    (17, 27, [(17, " join "), (26, "b")]),        # after the first suffix, before the last
    (23, 28, [(26, "b")]),                       # a catalog then a suffix, back to back
    (29, 31, [(29, " o")]),
])
def test_strip_gives_the_pieces_of_a_window_without_suffixes_and_catalogs(start, end, pieces):
    from pooldbapi.sql.render import strip
    stmt = parse(STRIP_TEXT)
    assert stmt.removed == ((15, 17), (23, 26), (27, 29))
    assert strip(stmt, start, end) == pieces
    # the pieces are the text between the removed ranges, nothing else
    assert all(STRIP_TEXT[at:at + len(text)] == text for at, text in pieces)


def test_strip_of_a_statement_that_ends_with_a_suffix_ends_with_the_name():
    from pooldbapi.sql.render import strip
    assert strip(parse("select * from t@a")) == [(0, "select * from t")]


def test_render_is_cached_per_style_and_each_style_has_its_own():
    stmt = parse("select * from t@a where x = ? and y = ?")
    qmark = render(stmt, "qmark")
    assert render(stmt, "qmark") is qmark  # cached
    numeric = render(stmt, "numeric")
    assert numeric is not qmark and numeric.text == "select * from t where x = :1 and y = :2"
    assert render(stmt, None).text == "select * from t where x = ? and y = ?"
    assert render(stmt, None).keys == ()


@pytest.mark.parametrize("text, params", [
    ("select ?, $1", (1,)), ("select $1", (1,)), ("select :1 + $2", (1, 2)),
    ("select %s, $1", (1,)), ("select $1, :a", {"a": 1}),
])
def test_postgresqls_numbered_markers_are_refused_where_parameters_are_passed(text, params):
    """$1 is not one of pooldbapi's styles: psycopg would bind it to whatever the first
    rendered marker is, so it is refused, naming where it stands."""
    stmt = parse(text)
    at = text.index("$")
    with pytest.raises(pooldbapi.ProgrammingError,
                       match=rf"'\$\d' at position {at} \(line 1, column {at + 1}\): PostgreSQL's"
                             r" numbered markers are not a placeholder style of pooldbapi;"
                             r" write \? or :1 \(or pass no parameters\)$"):
        render(stmt, "format")
    # without parameters the text is sent as written; inside literals it is only text
    assert render(stmt, None).text == text
    assert render(parse("select '$1', $$ $1 $$, ? -- $1"), "format").text == \
        "select '$1', $$ $1 $$, %s -- $1"


def test_a_numbered_placeholder_below_one_is_refused_naming_where_it_stands():
    with pytest.raises(pooldbapi.ProgrammingError) as caught:
        render(parse("select 1, :0"), "format")
    assert str(caught.value) == \
        "placeholder :0 at position 10 (line 1, column 11): numbering starts at 1"


# the same rows through raw psycopg (its own format style, % doubled where it is text) and
# through pooldbapi (a literal is never a placeholder; %% is % in format/pyformat statements)
DIFFERENTIAL = [
    ("select '%s', %s", (1,), "select '%%s', %s", (1,)),
    ("select E'%s\\n', %s", (1,), "select E'%%s\\n', %s", (1,)),
    ("select $$%s$$, $q$%(x)s$q$, %s", (1,), "select $$%%s$$, $q$%%(x)s$q$, %s", (1,)),
    ("select /* %s */ %s", (1,), "select /* %%s */ %s", (1,)),
    ("select /* %s /* %s */ */ %s", (1,), "select /* %%s /* %%s */ */ %s", (1,)),
    ("select %(id)s, 'ref %(id)s'", {"id": 5}, "select %(id)s, 'ref %%(id)s'", {"id": 5}),
    ("select %(user-id)s, %(a.b)s || %(first name)s", {"user-id": 1, "a.b": "x", "first name": "y"},
     "select %(user-id)s, %(a.b)s || %(first name)s", {"user-id": 1, "a.b": "x", "first name": "y"}),
    ("select '100%%', 7 %% 4, %s", (1,), "select '100%%', 7 %% 4, %s", (1,)),
    ("select '100%', %s", (1,), "select '100%%', %s", (1,)),
    ("select '50%' || ?, 7 % 4", ("x",), "select '50%%' || %s, 7 %% 4", ("x",)),
    ("select ':1 %' || :1", ("y",), "select ':1 %%' || %s", ("y",)),
    ("select x.\"a%s\" from (select %s as \"a%s\") x", (3,),
     "select x.\"a%%s\" from (select %s as \"a%%s\") x", (3,)),
]


@pytest.mark.parametrize("text, params, raw, raw_params", DIFFERENTIAL)
def test_postgresql_rows_match_raw_psycopg(pg, text, params, raw, raw_params):
    import psycopg
    with psycopg.connect(pg.dsn) as native:
        expected = native.execute(raw, raw_params).fetchall()
    conn = pooldbapi.connect({"pg1": pg.conninfo()})
    try:
        assert [tuple(r) for r in conn.execute(text, params).fetchall()] == expected
    finally:
        conn.close()


def test_marker_styles_are_paramstyle_members() -> None:
    from pooldbapi.sql.paramstyle import source_style
    from pooldbapi.sql.parse import parse
    from pooldbapi.sql.styles import Paramstyle
    cases = {"select ?": Paramstyle.QMARK, "select :1": Paramstyle.NUMERIC,
             "select :a": Paramstyle.NAMED, "select %s": Paramstyle.FORMAT,
             "select %(a)s": Paramstyle.PYFORMAT}
    for text, style in cases.items():
        stmt = parse(text)
        assert [type(p.style) for p in stmt.placeholders] == [Paramstyle]
        assert stmt.placeholders[0].style is style
        assert source_style(stmt) is style
