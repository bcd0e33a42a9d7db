"""Planning writes: rows spread over the containers of a list, and the rows of a select
written in rounds as a planner says (insert ... select, bulk insert ... select,
synchronize)."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ProgrammingError
from ..result import Result
from ..runner import Item, run_rounds
from ..sql.parse import Statement, parse
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


Planner = Callable[[Statement, Sequence[Sequence[Any]], int], dict[str, list[Item]]]


def write_from_select(conn: Session, stmt: Statement, params: Any, batch: int,
                      plan: Planner) -> Result:
    """Stream the select part of `insert ... select` and write each batch as `plan` says."""
    assert stmt.select_start is not None
    # a target of standbys only is refused before the source is read
    conn.router.writable(stmt, list(conn.router.resolve(stmt.occurrences[0].aliases, stmt)))
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
