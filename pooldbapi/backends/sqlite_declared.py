"""SQLite's declared column types for a result: sqlite3 gives none, so the result columns that are
plain table columns are found in the statement's syntax tree (sqlglot, once per text) and their
types read from `pragma table_info`. Used where the rows cannot tell: no row, or a NULL."""
from __future__ import annotations

from typing import Any

import sqlglot
from sqlglot import exp

from ..cache import cached
from ..dbapi import BINARY_NAME, DATETIME_NAME, NUMBER_NAME, STRING_NAME

Source = tuple[str, str] | None  # (table, column) a result column reads as it is, or None


def category(declared: str) -> str | None:
    """The PEP 249 category of a declared type, by SQLite's affinity rules (dates first: a
    column declared DATE, TIME or TIMESTAMP holds dates, whether sqlite3 returns them as text or
    through the application's converters)."""
    name = declared.upper()
    if any(word in name for word in ("DATE", "TIME")):
        return DATETIME_NAME
    if "INT" in name:
        return NUMBER_NAME
    if any(word in name for word in ("CHAR", "CLOB", "TEXT")):
        return STRING_NAME
    if "BLOB" in name:
        return BINARY_NAME
    return NUMBER_NAME if name else None  # REAL, FLOAT, DOUBLE, NUMERIC, DECIMAL, BOOLEAN


@cached(1024)
def _sources(text: str) -> tuple[Source | str, ...] | None:
    """Per projection: (table, column) for a plain column, a table name for `t.*` / `*` (one
    table), None for anything else; None overall where the statement is not a plain select."""
    try:
        tree = sqlglot.parse_one(text, read="sqlite")
    except sqlglot.errors.ParseError:
        return None
    if not isinstance(tree, exp.Select):
        return None
    tables = {t.alias_or_name: t.name for t in tree.find_all(exp.Table)
              if t.find_ancestor(exp.Select) is tree}
    only = next(iter(tables.values())) if len(set(tables.values())) == 1 else None
    out: list[Source | str] = []
    for projection in tree.expressions:
        node = projection.this if isinstance(projection, exp.Alias) else projection
        if isinstance(node, exp.Star):
            if only is None:
                return None  # '*' over several tables: the column order is the engine's
            out.append(only)
        elif isinstance(node, exp.Column) and isinstance(node.this, exp.Star):
            table = tables.get(node.table)
            if table is None:
                return None
            out.append(table)
        elif isinstance(node, exp.Column):
            table = tables.get(node.table) if node.table else only
            out.append((table, node.name) if table is not None else None)
        else:
            out.append(None)
    return tuple(out)


def declared(raw: Any, text: str, width: int) -> list[str | None] | None:
    """The declared type of each of the result's `width` columns (None where unknown), or None
    where the statement's columns cannot be matched to tables."""
    sources = _sources(text)  # once per text, under the cache policy
    if sources is None:
        return None
    columns: dict[str, list[tuple[str, str]]] = {}

    def info(table: str) -> list[tuple[str, str]]:
        if table not in columns:
            columns[table] = [(r[1], r[2]) for r in
                              raw.execute(f'pragma table_info("{table.replace(chr(34), "")}")')]
        return columns[table]

    out: list[str | None] = []
    for source in sources:
        if isinstance(source, str):
            out.extend(t for _, t in info(source))
        elif source is None:
            out.append(None)
        else:
            types = {c.lower(): t for c, t in info(source[0])}
            out.append(types.get(source[1].lower()))
    return out if len(out) == width else None
