"""The structure of a statement from sqlglot's syntax tree of its suffix-free text: for a
federated select, the name each occurrence goes by, whether an outermost select reads it and
may filter it, the columns the statement uses, the where-conjuncts and the columns each
touches, and the ordering and limit a lone table's container may apply. Parsed once per text.

The tree is read from a marked text: each occurrence written as pooldbapi_t<n>, each marker
the scan found as :pooldbapi_p<j> (a '?' inside a literal or a comment is none), so that every
dialect reads the same markers and a conjunct carries its own values wherever it goes."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlglot import TokenType, exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, SqlglotError

from ..cache import cached
from ..errors import ProgrammingError
from .paramstyle import bind
from .parse import Occurrence, Statement
from .render import render

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
    bound = bind(stmt, render(stmt, "qmark").keys, params)
    return {f"{PARAM}{j}": v for j, v in enumerate(bound)}


def values_for(values: dict[str, Any] | None, stmt: Statement) -> dict[str, Any] | None:
    """The values a statement made of marked text takes (None: it has no markers)."""
    if values is None or not stmt.placeholders:
        return None
    return {str(p.key): values[str(p.key)] for p in stmt.placeholders}


def span(stmt: Statement, occ: Occurrence) -> tuple[int, int]:
    """An occurrence's span in the text, from its catalog.. to its @ suffix."""
    start, end = occ.position, occ.position + len(occ.name)
    for lo, hi in stmt.removed:
        if hi == occ.position:
            start = lo                       # catalog..
        if occ.suffix_position is not None and lo == occ.suffix_position:
            end = hi                         # @alias / @{...}
    return start, end


def of_select(stmt: Statement, read: str | None) -> Shape:
    """The shape of a select whose occurrences are evaluated apart (pooldbapi_t<n>: the n-th
    occurrence of the scan)."""
    return shape(_marked_select(stmt), len(stmt.occurrences), read)


def _marked_select(stmt: Statement) -> str:
    return marked(stmt, [(*span(stmt, occ), f"{TABLE}{n}")
                         for n, occ in enumerate(stmt.occurrences)])


def unresolved(stmt: Statement, read: str | None, columns: Sequence[Sequence[str]]
               ) -> str | None:
    """The first double-quoted, unqualified name of a federated select that is neither a
    column of an occurrence (`columns`: each one's, from its container) nor a name the
    statement defines (an alias, a CTE's or derived table's column), else None. SQLite would
    read such a name as a string (its double-quoted-string fallback); a database raises.
    None also where a table function or a table other than an occurrence or a CTE is read:
    its columns are not known here. Once per (text, dialect, columns)."""
    return _unresolved(_marked_select(stmt), read, tuple(tuple(c) for c in columns))


@cached(256)
def _unresolved(text: str, read: str | None, columns: tuple[tuple[str, ...], ...]
                ) -> str | None:
    root = tree(text, read)
    ctes = {cte.alias.lower() for cte in root.find_all(exp.CTE)}
    for table in root.find_all(exp.Table):
        name = table.name.lower()
        if not isinstance(table.this, exp.Identifier) or not (
                name in ctes or name.startswith(TABLE) and name[len(TABLE):].isdigit()):
            return None
    if any(isinstance(n, exp.UDTF | exp.Values) for n in root.walk()):
        return None
    known = {c.lower() for cols in columns for c in cols} | {"rowid", "oid", "_rowid_"}
    known |= {a.alias.lower() for a in root.find_all(exp.Alias)}
    known |= {c.name.lower() for t in root.find_all(exp.TableAlias) for c in t.columns}
    for col in root.find_all(exp.Column):
        ident = col.this
        if isinstance(ident, exp.Identifier) and ident.quoted and not col.table and \
                ident.name.lower() not in known:
            return ident.name
    return None


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
            nots = 0
        elif kind is TokenType.R_PAREN and enclosing:
            nots = enclosing.pop()
        nots = nots + 1 if kind is TokenType.NOT else 0 if kind is not TokenType.L_PAREN \
            else nots
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


@dataclass(frozen=True)
class Source:
    """One occurrence as the statement uses it."""

    alias: exp.Identifier | None    # its table alias, None: none written
    scope: int | None               # the outermost select reading it (index), None: a nested one
    filterable: bool                # no outer join null-extends its rows


@dataclass(frozen=True)
class Conjunct:
    """One top-level where-conjunct of an outermost select."""

    node: exp.Expr
    scope: int
    columns: tuple[tuple[str | None, str], ...] | None  # (qualifier, name); None: a subquery


@dataclass(frozen=True)
class Shape:
    """What a federated select reads (names are lower case)."""

    sources: tuple[Source, ...]
    bare: frozenset[str]                     # columns used unqualified
    qualified: frozenset[tuple[str, str]]    # (qualifier, column)
    stars: frozenset[str]                    # qualifiers used with .*
    star: bool                               # a bare * (or a natural join)
    conjuncts: tuple[Conjunct, ...]
    tail: str                                # 'order by ... limit n' for a lone table

    def owner(self, conj: Conjunct, refs: Sequence[str], columns: Sequence[set[str]]
              ) -> int | None:
        """The one occurrence a conjunct touches (refs: how each is referred to; columns:
        each one's columns), else None."""
        if conj.columns is None:
            return None
        mine = [n for n, s in enumerate(self.sources) if s.scope == conj.scope]
        owners = set()
        for table, name in conj.columns:
            found = [n for n in mine if (refs[n] == table if table is not None
                                         else name in columns[n])]
            if len(found) != 1:
                return None
            owners.add(found[0])
        return owners.pop() if len(owners) == 1 else None


def _outermost(node: exp.Expr) -> list[exp.Select]:
    if isinstance(node, exp.Subquery):
        return _outermost(node.this)
    if isinstance(node, exp.SetOperation):
        return [*_outermost(node.this), *_outermost(node.expression)]
    return [node] if isinstance(node, exp.Select) else []


def conjuncts(where: exp.Expr | None) -> list[exp.Expr]:
    """The top-level 'and'-ed conditions of a where clause (parentheses around one taken off)."""
    if where is None:
        return []
    node = where.this if isinstance(where, exp.Where) else where
    if isinstance(node, exp.And):
        return [*conjuncts(node.left), *conjuncts(node.right)]
    return [node.unnest() if isinstance(node, exp.Paren) else node]


def _columns(node: exp.Expr) -> tuple[tuple[str | None, str], ...] | None:
    if any(isinstance(n, exp.Select | exp.Subquery) for n in node.walk()):
        return None
    return tuple((col.table.lower() or None, col.name.lower())
                 for col in node.find_all(exp.Column))


@cached(256)
def shape(text: str, count: int, read: str | None) -> Shape:
    """The shape of a marked federated select whose occurrences are pooldbapi_t0 ..
    pooldbapi_t<count-1>, read in a dialect. ProgrammingError where sqlglot cannot read it."""
    try:
        root = tree(text, read)
    except SqlglotError as exc:
        raise ProgrammingError(f"the statement cannot be read as {read or 'SQL'}: {exc}"
                               ) from None
    scopes = _outermost(root)
    tables: dict[int, exp.Table] = {}
    for table in root.find_all(exp.Table):
        if table.name.startswith(TABLE) and table.name[len(TABLE):].isdigit() and \
                not table.args.get("db"):
            tables.setdefault(int(table.name[len(TABLE):]), table)
    sources = []
    for n in range(count):
        if n not in tables:
            raise ProgrammingError(f"the statement cannot be read as {read or 'SQL'}: occurrence"
                                   f" {n} is not where a table is read")
        table = tables[n]
        select = table.find_ancestor(exp.Select)
        scope = next((k for k, s in enumerate(scopes) if s is select), None)
        nullable = False
        node: exp.Expr | None = table
        while node is not None and node is not select:
            if isinstance(node, exp.Join) and node.side == "LEFT":
                nullable = True
            node = node.parent
        if select is not None and any(j.side in ("RIGHT", "FULL")
                                      for j in select.args.get("joins") or []):
            nullable = True
        alias = table.args.get("alias")
        sources.append(Source(alias.this if alias is not None and alias.this else None, scope,
                              not nullable))
    bare, qualified, stars, star = set(), set(), set(), False
    for node in root.walk():
        if isinstance(node, exp.Column):
            if isinstance(node.this, exp.Star):
                stars.add(node.table.lower())
            elif node.table:
                qualified.add((node.table.lower(), node.name.lower()))
            else:
                bare.add(node.name.lower())
        elif isinstance(node, exp.Star) and not isinstance(node.parent, exp.Column | exp.Count):
            star = True
        elif isinstance(node, exp.Join):
            bare.update(ident.name.lower() for ident in node.args.get("using") or [])
            star = star or node.method == "NATURAL"
    found = tuple(Conjunct(c, k, _columns(c)) for k, select in enumerate(scopes)
                  for c in conjuncts(select.args.get("where")))
    return Shape(tuple(sources), frozenset(bare), frozenset(qualified), frozenset(stars), star,
                 found, _tail(root))


def _tail(root: exp.Expr) -> str:
    """'order by ... limit n' where a lone table's rows, filtered by every conjunct, are the
    result's rows in its order: no grouping, distinct, join, offset, window or subquery, every
    ordering item one of its columns, the limit a number. '' where not."""
    if not isinstance(root, exp.Select) or any(root.args.get(k) for k in (
            "distinct", "group", "having", "joins", "offset", "qualify", "windows", "with")):
        return ""
    if any(isinstance(n, exp.AggFunc | exp.Window | exp.Subquery | exp.Fetch) or
           (isinstance(n, exp.Select) and n is not root) for n in root.walk()):
        return ""
    outputs = {item.alias.lower() for item in root.expressions
               if isinstance(item, exp.Alias) and not (isinstance(item.this, exp.Column) and
                                                       item.this.name == item.alias)}
    items = []
    order = root.args.get("order")
    for item in order.expressions if order is not None else []:
        col = item.this
        if not isinstance(col, exp.Column) or isinstance(col.this, exp.Star) or \
                (not col.table and col.name.lower() in outputs):
            return ""  # an expression, a position or an output's name: ordered locally
        items.append(col.sql() + (" desc" if item.args.get("desc") else ""))
    out = f"order by {', '.join(items)}" if items else ""
    limit = root.args.get("limit")
    if limit is not None:
        value = limit.expression
        if not (isinstance(value, exp.Literal) and value.is_int):
            return ""  # all rows, limited locally
        out = f"{out} limit {value.name}".strip()
    return out
