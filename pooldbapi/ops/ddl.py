"""DDL and other statements: one distinct container, or every one with broadcast_ddl."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..backends import backend as load_backend
from ..errors import ProgrammingError
from ..result import Result
from ..runner import execute_on, execute_routed
from ..sql.parse import DDL, Statement, parse

if TYPE_CHECKING:
    from ..session import Session


def execute(conn: Session, stmt: Statement, params: Any) -> Result:
    """Run on the one distinct container of the statement's lists (or each, when broadcast)."""
    lists = stmt.lists or (None,)
    distinct = list(dict.fromkeys(a for lst in lists for a in conn.router.resolve(lst)))
    distinct = conn.router.writable(stmt, distinct)
    if len(distinct) == 1:
        return Result.merge([execute_on(conn, distinct[0], stmt, params)])
    if stmt.kind == DDL and conn.broadcast_ddl:
        parts = []
        creates = _creates_table(stmt)
        for n, alias in enumerate(distinct):
            parts.append(execute_on(conn, alias, stmt, params))
            if creates is not None:
                _spread_keys(conn, alias, creates, n + 1, len(distinct))
        return Result.merge(parts)
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


def _creates_table(stmt: Statement) -> str | None:
    """The table a plain `create table` makes (as written), else None. Not `if not exists`:
    a table that was there keeps its keys."""
    words = stmt.words
    if not words or words[0] != "CREATE" or "TABLE" not in words or \
            any(w.startswith("IF") for w in words) or \
            not stmt.occurrences:
        return None
    return stmt.occurrences[0].name


def _spread_keys(conn: Session, alias: str, table: str, start: int, step: int) -> None:
    """Give the table's generated keys (serial, identity) on this container the residue class
    start, start + step, ...: the n containers of a broadcast never hand out the same key."""
    backend = load_backend(conn.specs[alias].driver, alias)
    text = backend.key_range_text(table, start, step)
    if text is not None:
        execute_on(conn, alias, parse(text), None)
