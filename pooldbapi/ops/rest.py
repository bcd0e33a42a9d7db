"""update and delete where the chosen container is a REST service: read the keys of the
affected rows (one read, evaluated like any select), then one PATCH or DELETE per row, each row
to the next REST container of the list."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ..errors import NotSupportedError
from ..result import Result
from ..runner import run_items
from ..sql.paramstyle import source_style
from ..sql.parse import DELETE, Statement, parse, unquote
from . import select
from .dml import spread

if TYPE_CHECKING:
    from ..connection import Connection

_UPDATE = re.compile(r"^\s*update\s+(?P<target>\S+)\s+set\s+(?P<sets>.+?)"
                     r"(?:\s+where\s+(?P<where>.+?))?\s*;?\s*$", re.I | re.S)
_DELETE = re.compile(r"^\s*delete\s+from\s+(?P<target>\S+)(?:\s+where\s+(?P<where>.+?))?"
                     r"\s*;?\s*$", re.I | re.S)


def _params_in(stmt: Statement, params: Any, lo: int, hi: int) -> Any:
    if params is None or source_style(stmt) in ("named", "pyformat"):
        return params
    if source_style(stmt) == "numeric":
        raise NotSupportedError("updates and deletes on REST containers take ?, %s or named"
                                " placeholders, not :1")
    return [params[j] for j, p in enumerate(stmt.placeholders) if lo <= p.start < hi]


def execute(conn: Connection, stmt: Statement, params: Any, entity_alias: str) -> Result:
    """Write an update or delete row by row, by key, over the list's REST containers."""
    match = (_DELETE if stmt.kind == DELETE else _UPDATE).match(stmt.text)
    if match is None or len(stmt.occurrences) != 1:
        raise NotSupportedError(f"{stmt.kind} on a REST container takes one table: "
                                f"{stmt.kind} t@{{...}} ... [where ...]")
    occ = stmt.occurrences[0]
    target = match["target"]
    phys = conn.transaction.physical(conn.specs[entity_alias], conn.autocommit)
    try:
        raw: Any = phys.raw  # a REST connection knows its entity sets' keys ($metadata)
        keys = raw.keys(unquote(occ.name.split(".")[-1]))
    finally:
        conn.after_statement(entity_alias)
    if not keys:
        raise NotSupportedError(f"{occ.name} has no key: a REST service updates by key")
    where = match["where"]
    read = parse(f"select {', '.join(keys)} from {target}" + (f" where {where}" if where else ""))
    conn.check(read)
    where_at = match.start("where") if where else len(stmt.text)
    found = select.execute(conn, read, _params_in(stmt, params, where_at, len(stmt.text)))
    by_key = " and ".join(f"{k} = ?" for k in keys)
    if stmt.kind == DELETE:
        write = parse(f"delete from {target} where {by_key}")
        rows = [tuple(row) for row in found.rows]
    else:
        write = parse(f"update {target} set {match['sets']} where {by_key}")
        sets = _params_in(stmt, params, match.start("sets"), match.end("sets"))
        if isinstance(sets, dict):
            raise NotSupportedError("updates on REST containers take positional placeholders")
        rows = [(*(sets or ()), *row) for row in found.rows]
    conn.check(write)
    return run_items(conn, spread(conn, write, rows))
