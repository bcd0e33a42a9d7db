"""The marked text of a statement and sqlglot's syntax tree of it: each occurrence written as
pooldbapi_t<n>, each marker the scan found as :pooldbapi_p<j> (a '?' inside a literal or a
comment is none), so that every dialect reads the same markers and a conjunct carries its own
values wherever it goes; the tree parsed once per (text, dialect), its nesting bounded; the
top-level conjuncts of a where clause. What a federated select reads of the tree is
federated/shape.py's."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlglot import TokenType, exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError

from ..cache import cached
from ..errors import ProgrammingError
from .paramstyle import bind
from .parse import Statement
from .render import render
from .styles import QMARK

TABLE = "pooldbapi_t"
"""How an occurrence is written in a marked text: pooldbapi_t0, pooldbapi_t1, ..."""
PARAM = "pooldbapi_p"
"""How a marker is written in a marked text: :pooldbapi_p0, :pooldbapi_p1, ..."""


def marked(stmt: Statement, tables: Sequence[tuple[int, int, str]] = (), start: int = 0,
           end: int | None = None) -> str:
    """The statement's text (or its span start:end) with each marker as :pooldbapi_p<j> (j:
    its number in the scan) and each (start, end, text) of `tables` replaced by its text; a
    final ';' and what follows it left out."""
    end = stmt.end if end is None else end
    cuts = sorted([*tables, *((p.start, p.end, f":{PARAM}{j}")
                              for j, p in enumerate(stmt.placeholders))])
    pieces, pos = [], start
    for lo, hi, text in cuts:
        if lo >= start and (end is None or hi <= end):
            pieces += [stmt.text[pos:lo], text]
            pos = hi
    pieces.append(stmt.text[pos:end])
    return "".join(pieces)


def marker_values(stmt: Statement, params: Any) -> dict[str, Any] | None:
    """The caller's values by marker name (pooldbapi_p<j>), checked against the statement;
    None without parameters."""
    if params is None:
        return None
    bound = bind(stmt, render(stmt, QMARK).keys, params)
    return {f"{PARAM}{j}": v for j, v in enumerate(bound)}


def values_for(values: dict[str, Any] | None, stmt: Statement) -> dict[str, Any] | None:
    """The values a statement made of marked text takes (None: it has no markers)."""
    if values is None or not stmt.placeholders:
        return None
    return {str(p.key): values[str(p.key)] for p in stmt.placeholders}


def marker_number(node: exp.Expr) -> int | None:
    """The number j of a :pooldbapi_p<j> marker node, else None."""
    if isinstance(node, exp.Placeholder) and str(node.this).startswith(PARAM):
        return int(str(node.this)[len(PARAM):])
    return None


NESTING = 32
"""Levels of parentheses (function calls, subqueries) and `not` a statement read into a tree
may nest, at most: sqlglot's parser descends recursively, some 20 Python frames a level, and
past the recursion limit it fails with a bare RecursionError."""


def read_tree(text: str, read: str | None = None) -> exp.Expr:
    """Parse a text in a dialect (None: sqlglot's own), uncached. A text nested deeper than
    NESTING is a ProgrammingError saying so, before the parser is asked; SqlglotError where
    sqlglot cannot read it."""
    dialect = Dialect.get_or_raise(read)
    toks = dialect.tokenize(text)
    enclosing: list[int] = []  # per open parenthesis, the 'not's in a row before it
    nots = deepest = 0
    for tok in toks:
        kind = tok.token_type
        if kind is TokenType.L_PAREN:
            enclosing.append(nots)
        elif kind is TokenType.R_PAREN and enclosing:
            enclosing.pop()
        # a run of 'not's ends at any other token ('(' keeps its count in enclosing)
        nots = nots + 1 if kind is TokenType.NOT else 0
        deepest = max(deepest, len(enclosing) + sum(enclosing) + nots)
    if deepest > NESTING:
        raise ProgrammingError(_too_deep(f"{deepest} levels of parentheses, function calls,"
                                         " subqueries and 'not'"))
    try:
        for found in dialect.parser().parse(toks, text):
            if found is not None:
                return found
    except RecursionError:
        raise ProgrammingError(_too_deep("more than the Python stack holds")) from None
    raise ParseError(f"No expression was parsed from '{text}'")


def _too_deep(what: str) -> str:
    return (f"the statement nests too deeply to be read into a syntax tree ({what}; at most"
            f" {NESTING} levels are read where a statement is evaluated locally or translated,"
            " as for OData)")


@cached(1024)
def tree(text: str, read: str | None = None) -> exp.Expr:
    """The syntax tree of a (marked) text in a dialect (None: sqlglot's own), parsed once per
    (text, dialect) under the cache policy; callers read it and never change it. SqlglotError
    where it cannot."""
    return read_tree(text, read)


def conjuncts(where: exp.Expr | None) -> list[exp.Expr]:
    """The top-level 'and'-ed conditions of a where clause (parentheses around one taken off)."""
    if where is None:
        return []
    node = where.this if isinstance(where, exp.Where) else where
    if isinstance(node, exp.And):
        return [*conjuncts(node.left), *conjuncts(node.right)]
    return [node.unnest() if isinstance(node, exp.Paren) else node]


