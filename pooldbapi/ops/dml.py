"""insert, update, delete: per execution; multi-row values and executemany per row;
insert ... select whole where it lands on one container, else read and written per row."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..backends import backend as load_backend
from ..errors import NotSupportedError, ProgrammingError
from ..result import Result
from ..runner import Item, execute_routed, run_items, run_rounds
from ..sql.paramstyle import bind
from ..sql.parse import DELETE, UPDATE, Statement, parse
from ..sql.render import render
from ..sql.values import split_rows
from . import select

if TYPE_CHECKING:
    from ..session import Session


READ_BATCH = 5000
"""Rows read from a source select per round of writes (memory stays bounded by it)."""


def spread(conn: Session, stmt: Statement, seq: Sequence[Any], first: int = 0,
           plan: dict[str, list[Item]] | None = None) -> dict[str, list[Item]]:
    """Plan one row per parameter set, each row on the next container of the list."""
    plan = {} if plan is None else plan
    picks = conn.assign(stmt, len(seq))
    if isinstance(picks, str):
        plan.setdefault(picks, []).append(Item(stmt, range(first, first + len(seq)), seq))
        return plan
    groups: dict[str, list[int]] = {}
    for index, alias in enumerate(picks):
        groups.setdefault(alias, []).append(index)
    for alias, rows in groups.items():
        plan.setdefault(alias, []).append(Item(stmt, [first + i for i in rows],
                                               [seq[i] for i in rows]))
    return plan


def _check_params(stmt: Statement, params: Any) -> None:
    if params is not None:
        bind(stmt, render(stmt, "qmark").keys, params)


def execute(conn: Session, stmt: Statement, params: Any) -> Result:
    """Run the statement on the container chosen for this execution (or per row)."""
    if len(stmt.values_rows) > 1 and any(len(set(conn.router.resolve(lst, stmt))) > 1
                                         for lst in stmt.lists):
        _check_params(stmt, params)
        plan: dict[str, list[Item]] = {}
        for index, (row, row_params) in enumerate(split_rows(stmt, params)):
            plan.setdefault(conn.one(stmt), []).append(Item(row, [index], [row_params]))
        return run_items(conn, plan)
    choice = conn.route(stmt)
    if stmt.select_start is not None and len(set(choice.values())) > 1:
        return insert_select(conn, stmt, params)
    if stmt.kind in (UPDATE, DELETE):
        alias = conn.one(stmt, choice)
        if not load_backend(conn.specs[alias].driver, alias).runs_sql:
            from . import rest
            return rest.execute(conn, stmt, params, alias)
    return Result.merge([execute_routed(conn, stmt, params, read=False,
                                        first=conn.one(stmt, choice))])


def insert_select(conn: Session, stmt: Statement, params: Any) -> Result:
    """Read the select part from its containers, then insert its rows one by one."""
    assert stmt.select_start is not None
    if any(p.start < stmt.select_start for p in stmt.placeholders) and params is not None:
        raise NotSupportedError("placeholders before the select of an insert ... select that"
                                " spans containers are not supported")
    return write_from_select(conn, stmt, params, READ_BATCH,
                             lambda target, rows, first: spread(conn, target, rows, first))


Planner = Callable[[Statement, Sequence[Sequence[Any]], int], dict[str, list[Item]]]


def write_from_select(conn: Session, stmt: Statement, params: Any, batch: int,
                      plan: Planner) -> Result:
    """Stream the select part of `insert ... select` and write each batch as `plan` says."""
    assert stmt.select_start is not None
    source = parse(stmt.text[stmt.select_start:])
    conn.router.check(source)
    stream = select.open_stream(conn, source, params, batch)
    try:
        if stream.description is None:
            raise ProgrammingError(f"the select of {stmt.kind} ... select returned no columns")
        markers = ", ".join("?" * len(stream.description))
        target = parse(f"{stmt.text[:stmt.select_start]}values ({markers})")
        conn.router.check(target)

        def rounds() -> Iterator[dict[str, list[Item]]]:
            first = 0
            for rows in stream.batches():
                yield plan(target, rows, first)
                first += len(rows)

        return run_rounds(conn, rounds())
    finally:
        stream.close()


def executemany(conn: Session, stmt: Statement, seq: Sequence[Any]) -> Result:
    """Give each parameter set the next container; rows of one container go in batches."""
    return run_items(conn, spread(conn, stmt, seq))
