"""Runs work on containers: one statement (or one batch of rows) on one container's connection."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .errors import Error, wrap
from .result import Part
from .sql.paramstyle import bind
from .sql.parse import DDL, OTHER, Statement
from .sql.render import render

if TYPE_CHECKING:
    from .connection import Connection

_SESSION_KINDS = (DDL, OTHER)


def _fail(conn: Connection, alias: str, exc: BaseException, phys: Any, index: int | None = None
          ) -> Error:
    backend = phys.backend
    cls, state = backend.error_class(exc)
    err = wrap(exc, alias, phys.spec.secrets, state, cls)
    if index is not None:
        err.args = (f"{err.args[0]} (row {index})",)
    return err


def execute_on(conn: Connection, alias: str, stmt: Statement, params: Any) -> Part:
    """Run a statement once on one container and fetch its rows."""
    spec = conn.specs[alias]
    tx = conn.transaction
    phys = tx.physical(spec, conn.autocommit)
    backend = phys.backend
    try:
        if params is None:
            text, values = render(stmt, None).text, None
        else:
            rendered = render(stmt, backend.paramstyle)
            text, values = rendered.text, bind(stmt, rendered.keys, params)
        with phys.lock:
            cur = phys.cursor()
            if stmt.kind in _SESSION_KINDS:
                phys.session_changed = True
            cur.execute(text, values) if values is not None else cur.execute(text)
            description = backend.describe(cur)
            if description is not None:
                rows = cur.fetchall()
                rowcount = len(rows)
                lastrowid = None
                if rows and backend.describes_from_values:
                    description = backend.describe(cur, rows[0])
            else:
                rows = None
                rowcount = cur.rowcount
                lastrowid = backend.lastrowid(cur) if rowcount == 1 else None
    except Error:
        conn.after_statement(alias)
        raise
    except Exception as exc:
        err = _fail(conn, alias, exc, phys)
        conn.after_statement(alias, backend.is_broken(phys.raw))
        raise err from exc
    conn.after_statement(alias)
    return Part(alias, rows, description, rowcount, lastrowid)


def executemany_on(conn: Connection, alias: str, stmt: Statement,
                   rows: Sequence[tuple[int, Any]]) -> Part:
    """Run a statement for each (index, parameters) pair on one container, as one driver batch."""
    spec = conn.specs[alias]
    phys = conn.transaction.physical(spec, conn.autocommit)
    backend = phys.backend
    rendered = render(stmt, backend.paramstyle)
    try:
        batch = [bind(stmt, rendered.keys, params) for _, params in rows]
        with phys.lock:
            cur = phys.cursor()
            cur.executemany(rendered.text, batch)
            rowcount = cur.rowcount
    except Error:
        conn.after_statement(alias)
        raise
    except Exception as exc:
        err = _fail(conn, alias, exc, phys)
        conn.after_statement(alias, backend.is_broken(phys.raw))
        raise err from exc
    conn.after_statement(alias)
    return Part(alias, None, None, rowcount, None, units=len(rows))
