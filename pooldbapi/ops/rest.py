"""update and delete where the chosen container is a REST service: read the keys of the
affected rows (one read, evaluated like any select), then one PATCH or DELETE per row, each row
to the next REST container of the list."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import NotSupportedError
from ..result import Result
from ..runner import run_items
from ..sql.paramstyle import source_style
from ..sql.parse import DELETE, Statement, parse, unquote
from . import select
from .dml import spread

if TYPE_CHECKING:
    from ..session import Session



def _params_in(stmt: Statement, params: Any, lo: int, hi: int) -> Any:
    if params is None or source_style(stmt) in ("named", "pyformat"):
        return params
    if source_style(stmt) == "numeric":
        raise NotSupportedError("updates and deletes on REST containers take ?, %s or named"
                                " placeholders, not :1")
    return [params[j] for j, p in enumerate(stmt.placeholders) if lo <= p.start < hi]


def execute(conn: Session, stmt: Statement, params: Any, entity_alias: str) -> Result:
    """Write an update or delete row by row, by key, over the list's REST containers."""
    # the clauses as the scan found them (a 'where' inside a literal is no clause)
    target_span = stmt.clause("FROM" if stmt.kind == DELETE else "UPDATE")
    sets_span = stmt.clause("SET")
    where_span = stmt.clause("WHERE")
    clauses = [c[0] for c in stmt.clauses]
    expected = ["DELETE", "FROM"] if stmt.kind == DELETE else ["UPDATE", "SET"]
    if target_span is None or len(stmt.occurrences) != 1 or \
            [c for c in clauses if c != "WHERE"] != expected or \
            (stmt.kind != DELETE and sets_span is None):
        raise NotSupportedError(f"{stmt.kind} on a REST container takes one table: "
                                f"{stmt.kind} t@{{...}} ... [where ...]")
    occ = stmt.occurrences[0]
    target = stmt.text[slice(*target_span)].strip()
    with conn.transaction.borrow(conn.specs[entity_alias]) as phys:
        raw: Any = phys.raw  # a REST connection knows its entity sets' keys ($metadata)
        keys = raw.keys(unquote(occ.name.split(".")[-1]))
    if not keys:
        raise NotSupportedError(f"{occ.name} has no key: a REST service updates by key")
    where = stmt.text[slice(*where_span)].strip() if where_span else None
    read = parse(f"select {', '.join(keys)} from {target}" + (f" where {where}" if where else ""))
    conn.router.check(read)
    where_at = where_span[0] if where_span else len(stmt.text)
    found = select.execute(conn, read, _params_in(stmt, params, where_at, len(stmt.text)))
    by_key = " and ".join(f"{k} = ?" for k in keys)
    if stmt.kind == DELETE:
        write = parse(f"delete from {target} where {by_key}")
        rows = [tuple(row) for row in found.rows]
    else:
        assert sets_span is not None
        write = parse(f"update {target} set {stmt.text[slice(*sets_span)].strip()}"
                      f" where {by_key}")
        sets = _params_in(stmt, params, *sets_span)
        if isinstance(sets, dict):
            raise NotSupportedError("updates on REST containers take positional placeholders")
        rows = [(*(sets or ()), *row) for row in found.rows]
    conn.router.check(write)
    return run_items(conn, spread(conn, write, rows))
