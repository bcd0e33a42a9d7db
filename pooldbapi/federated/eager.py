"""Eager aggregation for federated selects: where a grouped statement's aggregates all read one
occurrence, that occurrence's container groups its rows by the columns the rest of the
statement needs and sends one partial row per group; the statement finishes the aggregate
locally over the partial rows. Read from sqlglot's syntax tree of the local statement.

It is exact because every column of the occurrence that is used outside an aggregate is a
grouping key of the partial rows: whatever the join or the remaining conditions do with a row
of the occurrence, they do with every row of its group alike. count(*) over the join becomes
the sum of the partial counts, sum the sum of sums, min and max of minima and maxima, avg the
sum of sums over the sum of counts. Outside that shape (distinct aggregates, outer joins,
subqueries, windows, aggregates over expressions or over other occurrences) there is no plan
and the statement runs as before."""
from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from ..cache import cached
from ..sql.structure import conjuncts, read_tree
from .dialect import keep_names

_AGGREGATES = (exp.Count, exp.Sum, exp.Min, exp.Max, exp.Avg)
PREFIX = "pooldbapi_a"
"""Local column names of the partial aggregates: pooldbapi_a0, pooldbapi_a1, ..."""


@dataclass(frozen=True)
class Partial:
    """What the occurrence's container is asked, and what runs locally over its answer."""

    keys: tuple[str, ...]                         # its columns the partial rows group by
    aggregates: tuple[tuple[str, str | None], ...]  # (count|sum|min|max, column or None: *)
    removed: tuple[str, ...]                      # where-conjuncts it evaluates (not locally)
    local: str                                    # the statement over the partial rows


def _key(node: exp.Expr) -> str:
    return node.sql(dialect="sqlite", normalize=True)


@cached(256)
def plan(local: str, ref: str, own: frozenset[str], others: frozenset[str],
         pushed: tuple[str, ...], read: str = "sqlite") -> Partial | None:
    """Return the eager-aggregation plan of a local statement for the occurrence referred to
    as `ref`, whose columns are `own` (lower case; `others`: every other occurrence's), whose
    container evaluates the where-conjuncts `pushed` (texts, in the dialect `read`; the local
    statement is SQLite's). None where the statement has not the shape that makes it exact.
    Cached: the same statement over the same tables plans once."""
    try:
        tree = read_tree(local, "sqlite")
        wanted = [_key(read_tree(text, read)) for text in pushed]
    except sqlglot.errors.SqlglotError:
        return None
    if not isinstance(tree, exp.Select) or tree.args.get("distinct") or \
            not keep_names(tree, local):
        return None
    if any(isinstance(n, exp.Window | exp.Subquery) or
           (isinstance(n, exp.Star) and not isinstance(n.parent, exp.Count)) or
           (isinstance(n, exp.Select) and n is not tree) for n in tree.walk()):
        return None
    for join in tree.args.get("joins") or []:
        if join.side or join.kind not in ("", "INNER", "CROSS") or join.args.get("using"):
            return None
        if join.kind == "CROSS":  # a comma: in SQLite, CROSS JOIN would fix the join order
            join.set("kind", None)
    ref = ref.lower()
    outputs = {item.alias.lower() for item in tree.expressions if item.alias}

    def mine(col: exp.Column) -> bool | None:
        """True: the occurrence's column; False: another's (or an output's name); None:
        cannot tell."""
        table, name = col.table.lower(), col.name.lower()
        if table:
            return table == ref
        if name in own:
            return None if name in others else True
        return False if name in others or name in outputs else None

    aggregates: list[exp.Expr] = []
    for node in tree.walk():
        if isinstance(node, exp.AggFunc):
            if not isinstance(node, _AGGREGATES) or node.find(exp.Distinct):
                return None
            arg = node.this
            if isinstance(node, exp.Count) and isinstance(arg, exp.Star):
                aggregates.append(node)
                continue
            if not isinstance(arg, exp.Column) or mine(arg) is not True:
                return None
            aggregates.append(node)
    if not aggregates:
        return None
    # the where-conjuncts the container evaluates leave the local statement
    where = tree.args.get("where")
    kept: list[exp.Expr] = []
    for conj in conjuncts(where):
        if _key(conj) in wanted:
            wanted.remove(_key(conj))
        else:
            kept.append(conj)
    if wanted:
        return None  # a pushed conjunct that is not at the top of the where clause
    if where is not None:
        if kept:
            tree.set("where", exp.Where(this=exp.and_(*kept)))
        else:
            tree.set("where", None)
    # what is left of the occurrence outside the aggregates is what the groups must keep
    keys: list[str] = []
    for col in tree.find_all(exp.Column):
        if col.find_ancestor(exp.AggFunc) is not None:
            continue
        owner = mine(col)
        if owner is None:
            return None
        if owner and col.name.lower() not in keys:
            keys.append(col.name.lower())
    partials: list[tuple[str, str | None]] = []

    def column(kind: str, arg: exp.Expr) -> exp.Column:
        entry = (kind, arg.name.lower() if isinstance(arg, exp.Column) else None)
        if entry not in partials:
            partials.append(entry)
        return exp.column(f"{PREFIX}{partials.index(entry)}", table=ref)

    for node in aggregates:
        arg = node.this
        finish: exp.Expr
        if isinstance(node, exp.Count):
            finish = exp.func("coalesce", exp.Sum(this=column("count", arg)), exp.Literal.number(0))
        elif isinstance(node, exp.Avg):
            finish = exp.Div(this=exp.Mul(this=exp.Literal.number("1.0"),
                                          expression=exp.Sum(this=column("sum", arg))),
                             expression=exp.Sum(this=column("count", arg)))
        else:
            kind = type(node).__name__.lower()
            finish = type(node)(this=column("sum" if kind == "sum" else kind, arg))
        node.replace(finish)
    return Partial(tuple(keys), tuple(partials), tuple(pushed), tree.sql(dialect="sqlite"))


def partial_sql(table: str, alias: str, keys: list[str], aggregates: tuple[tuple[str, str | None],
                ...], conjuncts: list[str]) -> str:
    """Return what the occurrence's container is asked: its groups and partial aggregates.
    `keys` and the aggregated columns are the names the container described (quoted)."""
    def quoted(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    items = [quoted(k) for k in keys]
    for n, (kind, col) in enumerate(aggregates):
        items.append(f"{kind}({'*' if col is None else quoted(col)}) as {PREFIX}{n}")
    text = f"select {', '.join(items)} from {table}"
    if alias:
        text += f" {alias}"
    if conjuncts:
        text += " where " + " and ".join(f"({c})" for c in conjuncts)
    if keys:
        text += " group by " + ", ".join(quoted(k) for k in keys)
    return text
