"""select and with ... select: one container per execution for each distinct list."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..result import Result
from ..runner import Stream, execute_routed
from ..sql.parse import Statement

if TYPE_CHECKING:
    from ..connection import Connection


def stream(conn: Connection, stmt: Statement, params: Any, batch: int) -> Stream:
    """Open the select on its one container and read it in batches."""
    return Stream(conn, conn.one(stmt), stmt, params, batch)


def execute(conn: Connection, stmt: Statement, params: Any) -> Result:
    """Run the select whole on the one container all its occurrences landed on."""
    return Result.merge([execute_routed(conn, stmt, params, read=True)])
