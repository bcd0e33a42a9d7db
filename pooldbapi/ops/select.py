"""select and with ... select: one container per execution for each distinct list."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import NotSupportedError
from ..result import Result
from ..runner import Stream, execute_on
from ..sql.parse import Statement

if TYPE_CHECKING:
    from ..connection import Connection


def stream(conn: Connection, stmt: Statement, params: Any, batch: int) -> Stream:
    """Open the select on its one container and read it in batches."""
    return Stream(conn, _one(conn, stmt), stmt, params, batch)


def _one(conn: Connection, stmt: Statement) -> str:
    choice = conn.route(stmt)
    distinct = set(choice.values())
    if len(distinct) > 1:
        landed = ", ".join(f"{','.join(k)} -> {v}" for k, v in choice.items())
        raise NotSupportedError(f"the occurrences of this select landed on different containers"
                                f" ({landed}); evaluating such a select locally is not supported"
                                " yet: give the occurrences one list")
    return distinct.pop()


def execute(conn: Connection, stmt: Statement, params: Any) -> Result:
    """Run the select whole on the one container all its occurrences landed on."""
    return Result.merge([execute_on(conn, _one(conn, stmt), stmt, params)])
