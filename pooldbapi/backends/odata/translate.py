"""The SQL that pooldbapi sends to a container (pushed-down selects, single-row writes) as
OData v4 requests: entity set, $select, $filter, key predicates and bodies."""
from __future__ import annotations

import datetime
import decimal
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ...errors import NotSupportedError

_NAME = r'(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*)'
_QUAL = rf"(?:{_NAME}\.)?({_NAME})"
_VALUE = r"(\?|'(?:[^']|'')*'|-?\d+(?:\.\d+)?|null|true|false)"
_COUNT = re.compile(rf"^\s*select\s+count\(\s*\*\s*\)\s+from\s+(?P<entity>{_NAME})"
                    rf"(?:\s+(?P<alias>{_NAME}))?(?:\s+where\s+(?P<where>.+?))?\s*;?\s*$",
                    re.I | re.S)
_SELECT = re.compile(rf"^\s*select\s+(?P<cols>.+?)\s+from\s+(?P<entity>{_NAME})"
                     rf"(?:\s+(?P<alias>{_NAME}))?(?:\s+where\s+(?P<where>.+?))?"
                     r"(?:\s+order\s+by\s+(?P<order>[^()]+?))?(?:\s+limit\s+(?P<limit>\d+))?"
                     r"\s*;?\s*$", re.I | re.S)
_ORDER_ITEM = re.compile(rf"^\s*{_QUAL}(?:\s+(asc|desc))?\s*$", re.I)
_INSERT = re.compile(rf"^\s*insert\s+into\s+(?P<entity>{_NAME})\s*\((?P<cols>[^)]*)\)\s*"
                     r"values\s*\((?P<values>.*)\)\s*;?\s*$", re.I | re.S)
_UPDATE = re.compile(rf"^\s*update\s+(?P<entity>{_NAME})\s+set\s+(?P<sets>.+?)\s+where\s+"
                     r"(?P<where>.+?)\s*;?\s*$", re.I | re.S)
_DELETE = re.compile(rf"^\s*delete\s+from\s+(?P<entity>{_NAME})\s+where\s+(?P<where>.+?)"
                     r"\s*;?\s*$", re.I | re.S)
_OPS = {"=": "eq", "<>": "ne", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
_COMPARE = re.compile(rf"^\s*{_QUAL}\s*(=|<>|!=|<=|>=|<|>)\s*{_VALUE}\s*$", re.I | re.S)
_BETWEEN = re.compile(rf"^\s*{_QUAL}\s+between\s+{_VALUE}\s+and\s+{_VALUE}\s*$", re.I | re.S)
_IN = re.compile(rf"^\s*{_QUAL}\s+in\s*\((?P<items>[^()]*)\)\s*$", re.I | re.S)
_LIKE = re.compile(rf"^\s*{_QUAL}\s+like\s+'((?:[^'%_]|'')*)%'\s*$", re.I | re.S)
_NULL = re.compile(rf"^\s*{_QUAL}\s+is\s+(not\s+)?null\s*$", re.I | re.S)
_FALSE = re.compile(r"^\s*1\s*=\s*0\s*$")


def unquote(name: str) -> str:
    """Return an identifier without its double quotes."""
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def literal(value: Any) -> str:
    """Return a Python value as an OData literal."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | decimal.Decimal):
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


class _Values:
    def __init__(self, params: Sequence[Any] | None) -> None:
        self.params = list(params or ())
        self.used = 0

    def take(self, token: str) -> Any:
        if token == "?":
            value = self.params[self.used]
            self.used += 1
            return value
        if token.startswith("'"):
            return token[1:-1].replace("''", "'")
        low = token.lower()
        if low in ("null", "true", "false"):
            return {"null": None, "true": True, "false": False}[low]
        return decimal.Decimal(token) if "." in token else int(token)


def _split_and(text: str) -> list[str]:
    parts = re.split(r"\)\s+and\s+\(", text.strip(), flags=re.I)
    if len(parts) == 1:
        return [text.strip()[1:-1] if text.strip().startswith("(") else text.strip()]
    parts[0], parts[-1] = parts[0].lstrip()[1:], parts[-1].rstrip()[:-1]
    return parts


def filter_of(conjunct: str, values: _Values) -> str | None:
    """Return the $filter of one conjunct, or None where OData cannot say it."""
    if m := _COMPARE.match(conjunct):
        return f"{unquote(m[1])} {_OPS[m[2]]} {literal(values.take(m[3]))}"
    if m := _BETWEEN.match(conjunct):
        col = unquote(m[1])
        low, high = values.take(m[2]), values.take(m[3])
        return f"({col} ge {literal(low)} and {col} le {literal(high)})"
    if m := _IN.match(conjunct):
        items = [i.strip() for i in m["items"].split(",")]
        if not all(re.fullmatch(_VALUE, i, re.I) for i in items):
            return None
        col = unquote(m[1])
        return "(" + " or ".join(f"{col} eq {literal(values.take(i))}" for i in items) + ")"
    if m := _LIKE.match(conjunct):
        return f"startswith({unquote(m[1])}, {literal(m[2].replace(chr(39) * 2, chr(39)))})"
    if m := _NULL.match(conjunct):
        return f"{unquote(m[1])} {'ne' if m[2] else 'eq'} null"
    return None


def _skip_markers(conjunct: str, values: _Values) -> None:
    values.used += len(re.findall(r"\?(?=(?:[^']*'[^']*')*[^']*$)", conjunct))


def translate(text: str, params: Sequence[Any] | None) -> Request:
    """Turn one statement that pooldbapi sends into an OData request."""
    values = _Values(params)
    if (m := _COUNT.match(text)) and (m["alias"] or "").lower() != "where":
        filters = []
        for conjunct in _split_and(m["where"]) if m["where"] else []:
            found = filter_of(conjunct, values)
            if found is None:
                raise NotSupportedError(f"odata: $count cannot say {conjunct!r}")
            filters.append(found)
        return Request("COUNT", unquote(m["entity"]), filter=" and ".join(filters) or None)
    if m := _SELECT.match(text):
        cols = [] if m["cols"].strip() == "*" else [c.strip() for c in m["cols"].split(",")]
        if not all(re.fullmatch(_NAME, c) for c in cols):
            raise NotSupportedError(f"odata: the service returns columns, not {m['cols']!r}")
        cols = [unquote(c) for c in cols]
        request = Request("GET", unquote(m["entity"]), cols)
        filters = []
        for conjunct in _split_and(m["where"]) if m["where"] else []:
            if _FALSE.match(conjunct):
                request.empty = True
                continue
            found = filter_of(conjunct, values)
            if found is None:
                _skip_markers(conjunct, values)  # evaluated locally instead
            else:
                filters.append(found)
        request.filter = " and ".join(filters) or None
        if m["order"]:
            items = [_ORDER_ITEM.match(i) for i in m["order"].split(",")]
            if not all(items):
                raise NotSupportedError(f"odata: $orderby cannot say {m['order']!r}")
            request.orderby = ",".join(f"{unquote(i[1])} {(i[2] or 'asc').lower()}"
                                       for i in items if i)
        if m["limit"]:
            request.top = int(m["limit"])
        return request
    if m := _INSERT.match(text):
        cols = [unquote(c.strip()) for c in m["cols"].split(",")]
        tokens = [t.strip() for t in m["values"].split(",")]
        if len(cols) != len(tokens):
            raise NotSupportedError("odata: insert needs one value per column")
        return Request("POST", unquote(m["entity"]),
                       body={c: values.take(t) for c, t in zip(cols, tokens, strict=True)})
    if m := _UPDATE.match(text):
        body = {}
        for assignment in m["sets"].split(","):
            col, _, token = assignment.partition("=")
            body[unquote(col.strip())] = values.take(token.strip())
        return Request("PATCH", unquote(m["entity"]), body=body,
                       key=_key(m["where"], values))
    if m := _DELETE.match(text):
        return Request("DELETE", unquote(m["entity"]), key=_key(m["where"], values))
    raise NotSupportedError(
        "the odata back-end runs single-table selects, single-row inserts, and updates and"
        f" deletes by key; not {text.strip()[:60]!r} (selects over OData are evaluated locally)")


def _key(where: str, values: _Values) -> dict[str, Any]:
    key = {}
    for part in re.split(r"\s+and\s+", where.strip(), flags=re.I):
        m = re.fullmatch(rf"\s*\(?\s*{_QUAL}\s*=\s*{_VALUE}\s*\)?\s*", part, re.I)
        if m is None:
            raise NotSupportedError(f"odata: updates and deletes go by key, not {where!r}")
        key[unquote(m[1])] = values.take(m[2])
    return key
