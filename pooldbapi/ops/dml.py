"""insert, update, delete: one container per execution, or per parameter set in executemany."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import NotSupportedError, ProgrammingError
from ..result import Result
from ..runner import execute_on, executemany_on
from ..sql.parse import Statement

if TYPE_CHECKING:
    from ..connection import Connection


def _one(conn: Connection, stmt: Statement, choice: dict[tuple[str, ...], str]) -> str:
    distinct = set(choice.values())
    if len(distinct) > 1:
        landed = ", ".join(f"{{{','.join(k)}}} -> {v}" for k, v in choice.items())
        raise NotSupportedError(f"the occurrences of this {stmt.kind} landed on different"
                                f" containers ({landed}); give them one list")
    return distinct.pop()


def execute(conn: Connection, stmt: Statement, params: Any) -> Result:
    """Run the statement once on the container chosen for this execution."""
    if len(stmt.values_rows) > 1 and any(len(set(conn.resolve(lst))) > 1 for lst in stmt.lists):
        raise NotSupportedError("a multi-row insert over a list of several containers is not"
                                " supported yet: use executemany")
    return Result.merge([execute_on(conn, _one(conn, stmt, conn.route(stmt)), stmt, params)])


def executemany(conn: Connection, stmt: Statement, seq: Sequence[Any]) -> Result:
    """Give each parameter set the next container; rows of one container go as one batch."""
    groups: dict[str, list[tuple[int, Any]]] = {}
    for index, params in enumerate(seq):
        if params is None:
            raise ProgrammingError(f"executemany: parameter set {index} is None")
        groups.setdefault(_one(conn, stmt, conn.route(stmt)), []).append((index, params))
    if not groups:
        return Result(rowcount=0)
    return Result.merge([executemany_on(conn, alias, stmt, rows) for alias, rows in groups.items()])
