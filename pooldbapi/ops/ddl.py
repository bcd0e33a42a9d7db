"""DDL and other statements: one distinct container, or every one with broadcast_ddl."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ProgrammingError
from ..result import Result
from ..runner import execute_on, execute_routed
from ..sql.parse import DDL, Statement

if TYPE_CHECKING:
    from ..session import Session


def execute(conn: Session, stmt: Statement, params: Any) -> Result:
    """Run on the one distinct container of the statement's lists (or each, when broadcast)."""
    lists = stmt.lists or (None,)
    distinct = list(dict.fromkeys(a for lst in lists for a in conn.router.resolve(lst)))
    if len(distinct) == 1:
        return Result.merge([execute_on(conn, distinct[0], stmt, params)])
    if stmt.kind == DDL and conn.broadcast_ddl:
        return Result.merge([execute_on(conn, alias, stmt, params) for alias in distinct])
    what = "DDL" if stmt.kind == DDL else "this statement"
    hint = " or connect with broadcast_ddl=True" if stmt.kind == DDL else ""
    raise ProgrammingError(f"{what} must resolve to one container, but its lists name"
                           f" {', '.join(distinct)}: name one container{hint}")


def execute_other(conn: Session, stmt: Statement, params: Any) -> Result:
    """Run a statement of any other kind on the container chosen for this execution."""
    choice = conn.route(stmt)
    distinct = set(choice.values())
    if len(distinct) > 1:
        raise ProgrammingError("this statement must resolve to one container per execution,"
                               f" but it landed on {', '.join(sorted(distinct))}")
    return Result.merge([execute_routed(conn, stmt, params, read=False, first=distinct.pop())])
