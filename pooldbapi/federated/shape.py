"""The shape of a federated select, read from sqlglot's syntax tree of its marked text
(sql/structure.py): the name each occurrence goes by, whether an outermost select reads it and
may filter it, the columns the statement uses, the where-conjuncts and the columns each
touches, the ordering and limit a lone table's container may apply, and the double-quoted
names no occurrence has. Read once per text."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.errors import SqlglotError

from ..cache import cached
from ..errors import ProgrammingError
from ..sql.parse import Occurrence, Statement
from ..sql.structure import TABLE, conjuncts, marked, tree


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
    result's rows in its order: no grouping (nor having, nor an aggregate), distinct, join,
    offset, fetch, window, qualify, CTE or subquery, every ordering item one of its columns,
    the limit a number. '' where not."""
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
