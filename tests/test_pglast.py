"""The scan against PostgreSQL's own parser (pglast): for generated statements full of nested
literals, comments, dollar quotes and quoted identifiers, the kind pooldbapi reads, the tables
it takes for occurrences and the one-statement rule agree with what PostgreSQL reads."""
from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import pooldbapi
from pooldbapi.sql.parse import parse

pglast = pytest.importorskip("pglast", reason="pglast (the test extra) is not installed")

LITERALS = ("'a;b'", "'it''s ; --'", "E'\\\\';'", "E'\\';'", "$$;$$", "$t$ ; $ $t$",
            "'/* ; */'", "$x$ $y$ ; $x$", "'('", "1", "'?'", "$$ ' $$", "U&'\\0061;'")
COMMENTS = ("/* ; */", "/* a /* ; */ b */", "-- ; 'x\n", "/* ' */", "/**/", "-- $$\n")
NAMES = ('"we;ird"', '"a""b"', "t", "s.t", '"T"', "u", '"$$"', '"--x"')
TEMPLATES = (
    ("select {l} as {n} from {t}", "select"),
    ("select * from {t} where x = {l} order by 1", "select"),
    ("values ({l}), ({l})", "select"),
    ("table {t}", "select"),
    ("with c as (select {l} as {n}) select * from c, {t}", "select"),
    ("insert into {t} values ({l})", "insert"),
    ("with c as (select {l}) insert into {t} select * from c", "insert"),
    ("update {t} set x = {l} where y = {l}", "update"),
    ("delete from {t} where x = {l}", "delete"),
    ("create table {t} (x text default {l})", "ddl"),
    ("drop table {t}", "ddl"),
    ("alter table {t} add column {n} int", "ddl"),
    ("truncate {t}", "ddl"),
    ("comment on table {t} is {l}", "ddl"),
    ("begin", "transaction-control"),
    ("commit", "transaction-control"),
    ("savepoint a", "transaction-control"),
    ("set search_path = {n}", "other"),
    ("call p({l})", "other"),
)
_KINDS = {"SelectStmt": "select", "InsertStmt": "insert", "UpdateStmt": "update",
          "DeleteStmt": "delete", "TransactionStmt": "transaction-control",
          "TruncateStmt": "ddl", "CommentStmt": "ddl"}


def _pg_kind(node) -> str:
    name = type(node).__name__
    if name in _KINDS:
        return _KINDS[name]
    if name.startswith(("Create", "Drop", "Alter")):
        return "ddl"
    return "other"


def _tables(node) -> set[str]:
    """The tables a statement names, as PostgreSQL folds them, CTE names left out."""
    from pglast.visitors import Visitor

    class Tables(Visitor):
        def __init__(self) -> None:
            self.found: set[str] = set()
            self.ctes: set[str] = set()

        def visit_RangeVar(self, ancestors, var) -> None:
            self.found.add(".".join(p for p in (var.schemaname, var.relname) if p))

        def visit_CommonTableExpr(self, ancestors, cte) -> None:
            self.ctes.add(cte.ctename)

        def visit_DropStmt(self, ancestors, drop) -> None:  # names, not RangeVars
            self.found.update(".".join(p.sval for p in name) for name in drop.objects)

        def visit_CommentStmt(self, ancestors, comment) -> None:
            self.found.add(".".join(p.sval for p in comment.object))

    tables = Tables()
    tables(node)
    return tables.found - tables.ctes


def _folded(name: str) -> str:
    return ".".join(part[1:-1].replace('""', '"') if part.startswith('"') else part.lower()
                    for part in _parts(name))


def _parts(name: str) -> list[str]:
    parts, current, quoted = [], "", False
    for char in name:
        if char == '"':
            quoted = not quoted
        if char == "." and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


@st.composite
def statement(draw) -> tuple[str, str]:
    template, kind = draw(st.sampled_from(TEMPLATES))
    text = template.format(l="{l}", n="{n}", t="{t}")
    while "{" in text:
        at = text.index("{")
        pool = {"l": LITERALS, "n": NAMES, "t": NAMES}[text[at + 1]]
        text = text[:at] + draw(st.sampled_from(pool)) + text[at + 3:]
    words = text.split(" ")
    for _ in range(draw(st.integers(0, 3))):  # comments where whitespace stands
        at = draw(st.integers(0, len(words) - 1))
        words[at] += " " + draw(st.sampled_from(COMMENTS))
    return " ".join(words), kind


@settings(max_examples=400, deadline=None)
@given(st.lists(statement(), min_size=1, max_size=3),
       st.sampled_from(("", ";", " ;  ", "; -- end\n", ";/* end */")))
def test_kind_tables_and_one_statement_agree_with_postgresqls_parser(statements, end):
    text = ";\n".join(s for s, _ in statements) + end
    try:
        parsed = pglast.parse_sql(text)
    except pglast.parser.ParseError:
        assume(False)  # not PostgreSQL: nothing to compare with
    if len(parsed) > 1:
        with pytest.raises(pooldbapi.ProgrammingError, match="one statement") as info:
            parse(text)
        second = parsed[1].stmt_location
        position = int(str(info.value).split("another begins at position ")[1].split()[0])
        assert second <= position, (text, second, position)
        assert not text[second:position].strip(" \n;") or \
            text[second:position].lstrip(" \n").startswith(("/*", "--"))
        return
    stmt = parse(text)
    assert stmt.kind == _pg_kind(parsed[0].stmt) == statements[0][1], text
    assert {_folded(o.name) for o in stmt.occurrences} == _tables(parsed[0].stmt), text


@pytest.mark.parametrize("text", [
    "select 1; commit", "select $$;$$; delete from victim", "select E'\\';'; drop table t",
    "select 1 /* ; */ ; -- ;\n drop table victim", "create table z (x int); drop table victim",
])
def test_where_postgresql_reads_two_statements_pooldbapi_refuses_the_text(text):
    assert len(pglast.parse_sql(text)) == 2
    with pytest.raises(pooldbapi.ProgrammingError, match="one statement"):
        parse(text)
