"""The SQL that pooldbapi sends to a container (pushed-down selects, single-row writes) as
OData requests: entity set, $select, $filter, $orderby, $top, key predicates and bodies.
Statements are read from sqlglot's syntax tree, parsed once per text. The literals of $filter
are v4's unless a v2 literal function (v2.py, typed by the property compared) is given."""
from __future__ import annotations

import datetime
import decimal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp

from ...cache import cached
from ...errors import NotSupportedError
from ...sql.parse import parse
from ...sql.structure import conjuncts, marked, marker_number, tree

_OPS: dict[type, str] = {exp.EQ: "eq", exp.NEQ: "ne", exp.LT: "lt", exp.LTE: "le", exp.GT: "gt", exp.GTE: "ge"}
_FLIP = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le", "eq": "eq", "ne": "ne"}


def unquote(name: str) -> str:
    """Return an identifier without its double quotes."""
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def literal(value: Any) -> str:
    """Return a Python value as an OData literal (ValueError for NaN and infinities, which
    have none: a filter holding one is evaluated locally)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | decimal.Decimal):
        if not decimal.Decimal(value).is_finite():
            raise ValueError(f"{value!r} is no finite number")
        return str(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat() + ("Z" if value.tzinfo is None else "")
    if isinstance(value, datetime.date):
        return value.isoformat()
    return "'" + str(value).replace("'", "''") + "'"


def json_value(value: Any) -> Any:
    """Return a Python value as it goes into a JSON body."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


@dataclass
class Request:
    """One OData call: what to do, on which entity set, with which options or body."""

    method: str
    entity: str
    columns: list[str] = field(default_factory=list)
    filter: str | None = None
    orderby: str | None = None
    top: int | None = None
    body: dict[str, Any] = field(default_factory=dict)
    key: dict[str, Any] = field(default_factory=dict)
    empty: bool = False               # a select known to return nothing (where 1 = 0)
    # every name the statement uses as a property: checked against $metadata before the
    # call, so that no other text (a quoted "a eq 1 or b") reaches $filter, $orderby or a path
    names: frozenset[str] = field(default=frozenset(), compare=False)


Literal = Callable[[str, Any], str]  # (property, value) -> the literal of $filter


def _v4(column: str, value: Any) -> str:
    return literal(value)


class _Values:
    """The values of a statement's markers, by their number in the text."""

    def __init__(self, params: Sequence[Any] | None, lit: Literal = _v4,
                 starts: str = "startswith({}, {})") -> None:
        self.params = list(params or ())
        self.lit = lit
        self.starts = starts  # v2's startswith is a function to compare: '... eq true'

    def of(self, node: exp.Expression) -> Any:
        """The Python value of a literal or a marker; raises ValueError for anything else."""
        number = marker_number(node)
        if number is not None:
            return self.params[number]
        if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
            return -self.of(node.this)
        if isinstance(node, exp.Null):
            return None
        if isinstance(node, exp.Boolean):
            return bool(node.this)
        if isinstance(node, exp.Literal):
            if node.is_string:
                return str(node.this)
            text = str(node.this)
            return decimal.Decimal(text) if "." in text or "e" in text.lower() else int(text)
        raise ValueError(node.sql())


def _column(node: exp.Expression) -> str | None:
    return node.name if isinstance(node, exp.Column) else None


def filter_of(node: Any, values: _Values) -> str | None:
    """Return the $filter of one conjunct, or None where OData cannot say it."""
    try:
        if isinstance(node, exp.Paren):
            return filter_of(node.unnest(), values)
        if isinstance(node, exp.Or | exp.And):  # both sides or nothing
            left, right = filter_of(node.left, values), filter_of(node.right, values)
            if left is None or right is None:
                return None
            return f"({left} {'or' if isinstance(node, exp.Or) else 'and'} {right})"
        op = _OPS.get(type(node))
        if op is not None:
            left, right = node.this, node.expression
            if _column(left) is None and _column(right) is not None:
                left, right, op = right, left, _FLIP[op]
            col = _column(left)
            if col is None:
                return None
            return f"{col} {op} {values.lit(col, values.of(right))}"
        if isinstance(node, exp.Between) and _column(node.this) is not None:
            col = _column(node.this)
            low, high = values.of(node.args["low"]), values.of(node.args["high"])
            assert col is not None
            return f"({col} ge {values.lit(col, low)} and {col} le {values.lit(col, high)})"
        if isinstance(node, exp.In) and _column(node.this) is not None and \
                node.expressions and not node.args.get("query"):
            col = _column(node.this)
            assert col is not None
            return "(" + " or ".join(f"{col} eq {values.lit(col, values.of(i))}"
                                     for i in node.expressions) + ")"
        if isinstance(node, exp.Like) and _column(node.this) is not None:
            pattern = values.of(node.expression)
            if isinstance(pattern, str) and pattern.endswith("%") and \
                    not any(c in pattern[:-1] for c in "%_"):
                col = _column(node.this)
                assert col is not None
                return values.starts.format(col, values.lit(col, pattern[:-1]))
            return None
        if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null) and \
                _column(node.this) is not None:
            return f"{_column(node.this)} eq null"
        if isinstance(node, exp.Not) and isinstance(node.this, exp.Is) and \
                isinstance(node.this.expression, exp.Null) and _column(node.this.this):
            return f"{_column(node.this.this)} ne null"
    except ValueError:
        return None
    return None


def _tree(text: str) -> Any:
    """The syntax tree of a statement, its markers numbered as pooldbapi's scan found them
    (a '?' inside a literal or comment is none); parsed once per text."""
    try:
        return tree(marked(parse(text)))
    except sqlglot.errors.SqlglotError as exc:
        raise NotSupportedError(f"odata: cannot read {text.strip()[:60]!r}: {exc}") from None


def _entity(tree: exp.Expression) -> str:
    table = tree.this if isinstance(tree, exp.Update | exp.Insert | exp.Delete) else None
    if isinstance(table, exp.Schema):
        table = table.this
    if not isinstance(table, exp.Table):
        raise NotSupportedError("odata: one entity set per statement")
    return table.name


def _single_table(select: exp.Select) -> str:
    source = select.args.get("from_") or select.args.get("from")  # renamed in sqlglot 26
    if source is None or select.args.get("joins") or not isinstance(source.this, exp.Table):
        raise NotSupportedError("odata: a request reads one entity set")
    return str(source.this.name)


def _select(tree: exp.Select, values: _Values) -> Request:
    entity = _single_table(tree)
    projections = tree.expressions
    if len(projections) == 1 and isinstance(projections[0], exp.Count) and \
            isinstance(projections[0].this, exp.Star) and not tree.args.get("group"):
        filters = []
        for conjunct in conjuncts(tree.args.get("where")):
            found = filter_of(conjunct, values)
            if found is None:
                raise NotSupportedError(f"odata: $count cannot say {conjunct.sql()!r}")
            filters.append(found)
        return Request("COUNT", entity, filter=" and ".join(filters) or None)
    if any(tree.args.get(k) for k in ("group", "having", "distinct", "offset")):
        raise NotSupportedError("odata: the service returns rows, not groups")
    if len(projections) == 1 and isinstance(projections[0], exp.Star):
        columns: list[str] = []
    elif all(isinstance(p, exp.Column) for p in projections):
        columns = [p.name for p in projections]
    else:
        raise NotSupportedError(f"odata: the service returns columns, not"
                                f" {', '.join(p.sql() for p in projections)!r}")
    request = Request("GET", entity, columns)
    filters = []
    for conjunct in conjuncts(tree.args.get("where")):
        if isinstance(conjunct, exp.EQ) and conjunct.this == exp.Literal.number(1) and \
                conjunct.expression == exp.Literal.number(0):
            request.empty = True  # where 1 = 0: nothing to fetch
            continue
        found = filter_of(conjunct, values)
        if found is not None:
            filters.append(found)  # what OData cannot say is evaluated locally
    request.filter = " and ".join(filters) or None
    order = tree.args.get("order")
    if order is not None:
        items = []
        for item in order.expressions:
            if _column(item.this) is None:
                raise NotSupportedError(f"odata: $orderby cannot say {order.sql()!r}")
            items.append(f"{_column(item.this)} {'desc' if item.args.get('desc') else 'asc'}")
        request.orderby = ",".join(items)
    limit = tree.args.get("limit")
    if limit is not None:
        try:
            request.top = int(values.of(limit.expression))
        except (ValueError, TypeError):
            raise NotSupportedError(f"odata: $top cannot say {limit.sql()!r}") from None
    return request


def _key(where: Any, values: _Values) -> dict[str, Any]:
    key = {}
    for conjunct in conjuncts(where):
        col = _column(conjunct.this) if isinstance(conjunct, exp.EQ) else None
        try:
            if col is None:
                raise ValueError(conjunct.sql())
            key[col] = values.of(conjunct.expression)
        except ValueError:
            raise NotSupportedError(f"odata: updates and deletes go by key, not"
                                    f" {conjunct.sql()!r}") from None
    if not key:
        raise NotSupportedError("odata: updates and deletes go by key: a where clause is needed")
    return key


def translate(text: str, params: Sequence[Any] | None, lit: Literal = _v4,
              starts: str = "startswith({}, {})") -> Request:
    """Turn one statement that pooldbapi sends into an OData request; `lit` and `starts`
    give the literals and the startswith of the service's OData version."""
    request = _translate(_tree(text), _Values(params, lit, starts), text)
    request.names = _names(text) | request.body.keys()
    return request


@cached(256)
def _names(text: str) -> frozenset[str]:
    """The names a statement uses as columns (once per text: a row-by-row load sends one
    text many times)."""
    return frozenset(c.name for c in _tree(text).find_all(exp.Column)
                     if not isinstance(c.this, exp.Star))


def _translate(tree: Any, values: _Values, text: str) -> Request:
    try:
        if isinstance(tree, exp.Select):
            return _select(tree, values)
        if isinstance(tree, exp.Insert):
            schema = tree.this
            rows = tree.expression
            if not isinstance(schema, exp.Schema) or not isinstance(rows, exp.Values) or \
                    len(rows.expressions) != 1:
                raise NotSupportedError("odata: insert takes a column list and one row")
            cols = [c.name for c in schema.expressions]
            items = rows.expressions[0].expressions
            if len(cols) != len(items):
                raise NotSupportedError("odata: insert needs one value per column")
            return Request("POST", _entity(tree),
                           body={c: values.of(v) for c, v in zip(cols, items, strict=True)})
        if isinstance(tree, exp.Update):
            body: dict[str, Any] = {}
            for assignment in tree.expressions:
                if not isinstance(assignment, exp.EQ) or _column(assignment.this) is None:
                    raise NotSupportedError(f"odata: cannot set {assignment.sql()!r}")
                body[assignment.this.name] = values.of(assignment.expression)
            return Request("PATCH", _entity(tree), body=body,
                           key=_key(tree.args.get("where"), values))
        if isinstance(tree, exp.Delete):
            return Request("DELETE", _entity(tree), key=_key(tree.args.get("where"), values))
    except ValueError as exc:
        raise NotSupportedError(f"odata: a value must be a literal or a marker, not"
                                f" {exc}") from None
    raise NotSupportedError(
        "the odata back-end runs single-table selects, single-row inserts, and updates and"
        f" deletes by key; not {text.strip()[:60]!r} (selects over OData are evaluated locally)")
