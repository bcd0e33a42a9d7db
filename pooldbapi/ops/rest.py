"""update and delete where the chosen container is a REST service: read the keys of the
affected rows (one read, evaluated like any select), then one PATCH or DELETE per row, each row
to the next REST container of the list."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import NotSupportedError, ProgrammingError
from ..result import Result
from ..runner import run_items
from ..sql.parse import DELETE, Statement, parse, unquote
from ..sql.structure import marked, marker_values, values_for
from . import select
from .writes import spread

if TYPE_CHECKING:
    from ..session import Session

_KEY = "pooldbapi_k"
"""The markers of the key columns in the per-row writes: :pooldbapi_k0, :pooldbapi_k1, ..."""


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
    entity = unquote(occ.name.split(".")[-1])
    with conn.transaction.borrow(conn.specs[entity_alias]) as phys:
        keys = phys.link.entity_keys(entity)  # a REST service knows them ($metadata)
    if not keys:
        raise NotSupportedError(f"{occ.name} has no key: a REST service updates by key")
    # every statement made from this one carries the caller's values by marker: any style
    values = marker_values(stmt, params)
    where = marked(stmt, (), *where_span).strip() if where_span else None
    read = parse(f"select {', '.join(keys)} from {target}" + (f" where {where}" if where else ""))
    conn.router.check(read)
    found = select.execute(conn, read, values_for(values, read))
    # every key is checked before the first row is written: one that cannot be sent as one
    # path segment stops the statement, rather than its row half-way through
    with conn.transaction.borrow(conn.specs[entity_alias]) as phys:
        for row in found.rows:
            why = phys.link.unsafe_key(entity, dict(zip(keys, row, strict=True)))
            if why is not None:
                raise ProgrammingError(f"{entity_alias}: {why}; nothing was written")
    by_key = " and ".join(f"{k} = :{_KEY}{n}" for n, k in enumerate(keys))
    if stmt.kind == DELETE:
        write = parse(f"delete from {target} where {by_key}")
    else:
        assert sets_span is not None
        write = parse(f"update {target} set {marked(stmt, (), *sets_span).strip()}"
                      f" where {by_key}")
    # (a named set takes the values its markers name: the where's are left unused)
    rows = [{**(values or {}), **{f"{_KEY}{n}": v for n, v in enumerate(row)}}
            for row in found.rows]
    conn.router.check(write)
    return run_items(conn, spread(conn, write, rows))
