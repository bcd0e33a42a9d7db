"""select and with ... select: one container per execution for each distinct list."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..dbapi import TypeCode
from ..errors import Error, NotSupportedError
from ..federated import engine as local
from ..result import Result
from ..runner import Stream, execute_on, execute_routed
from ..sql.parse import Statement
from ..sql.render import render

if TYPE_CHECKING:
    from ..session import Session


def _bare_count(stmt: Statement) -> bool:
    """Tell whether the statement is 'select count(*) from ...' (its first tokens)."""
    found = stmt.derived.bare_count
    if found is None:
        sig = stmt.significant()[:6]
        found = stmt.derived.bare_count = (
            [t.value.lower() if not t.is_keyword else t.upper for t in sig]
            == ["SELECT", "count", "(", "*", ")", "FROM"])
    return found


def _plan(conn: Session, stmt: Statement) -> tuple[dict[tuple[str, ...], str], bool]:
    """Choose containers; tell whether the select must be evaluated locally."""
    choice = conn.route(stmt)
    if len(choice) == 1:
        return choice, not conn.router.runs_sql(next(iter(choice.values())))
    distinct = set(choice.values())
    return choice, len(distinct) > 1 or not all(conn.router.runs_sql(a) for a in distinct)


def stream(conn: Session, stmt: Statement, params: Any, batch: int) -> Stream | Result:
    """Open the select on its one container and read it in batches (a local evaluation is
    read whole)."""
    choice, local_ = _plan(conn, stmt)
    if local_:
        return local.evaluate(conn, stmt, params, choice)
    return Stream(conn, next(iter(choice.values())), stmt, params, batch)


_EXPLAINED = tuple((name, TypeCode(kind, category), None, None, None, None, True)
                  for name, kind, category in (("step", "text", "STRING"),
                                               ("container", "text", "STRING"),
                                               ("statement", "text", "STRING"),
                                               ("estimated_rows", "integer", "NUMBER")))


def explain(conn: Session, stmt: Statement, params: Any) -> Result:
    """The plan of a select, nothing fetched: a row per step (step, container, the statement
    sent, the rows the container estimates). Routing takes its turn as an execution would."""
    choice, local_ = _plan(conn, stmt)
    if local_:
        rows = local.explain(conn, stmt, params, choice)
    else:
        alias = next(iter(choice.values()))
        rows = [("run", alias, render(stmt, None).text,
                 local.estimate(conn, alias, stmt, params))]
    return Result(_EXPLAINED, list(rows), len(rows), None, {})


def open_stream(conn: Session, stmt: Statement, params: Any, batch: int) -> Stream:
    """Open a select on its one container in batches (a source of insert ... select)."""
    return Stream(conn, conn.one(stmt), stmt, params, batch)


def execute(conn: Session, stmt: Statement, params: Any) -> Result:
    """Run the select whole on the one container all its occurrences landed on, or locally
    over the containers they landed on."""
    alias = conn.router.direct(stmt)
    if alias is not None:  # one container, nothing to choose (nor to fail over to): run it
        return Result.of(execute_on(conn, alias, stmt, params))
    tried: set[str] = set()
    while True:
        choice, local_ = _plan(conn, stmt)
        if local_ and len(stmt.occurrences) == 1 and _bare_count(stmt):
            try:  # a bare count(*): the service counts ($count) instead of sending keys
                first = next(iter(choice.values()))
                return Result.merge([execute_routed(conn, stmt, params, read=True,
                                                    first=first)])
            except NotSupportedError:
                pass  # a condition $count cannot say: count locally
        if not local_:
            first = next(iter(choice.values()))
            return Result.of(execute_routed(conn, stmt, params, read=True, first=first))
        touched = conn.transaction.touched()
        try:
            return local.evaluate(conn, stmt, params, choice)
        except Error as err:
            # a read: safe to run again where the lost container was not in the transaction
            if not err.connection_failure or err.container in touched or \
                    err.container in tried or err.container is None:
                raise
            tried.add(err.container)
