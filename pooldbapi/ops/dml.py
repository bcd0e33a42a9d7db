"""insert, update, delete: per execution; executemany per row; multi-row values per row, the
rows of one container sent together;
insert ... select whole where it lands on one container, else read and written per row."""
from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..backends import backend as load_backend
from ..errors import NotSupportedError
from ..result import Result
from ..runner import Item, execute_routed, run_items
from ..sql.paramstyle import bind
from ..sql.parse import DELETE, UPDATE, Statement
from ..sql.render import render
from ..sql.styles import QMARK
from ..sql.values import group_rows, split_rows
from ..throttle import throttle_for
from . import rest
from .writes import READ_BATCH, spread, write_from_select

if TYPE_CHECKING:
    from ..session import Session


def _check_params(stmt: Statement, params: Any) -> None:
    if params is not None:
        # a list as a tuple: the same checks, on bind's path for tuples (no copy per value)
        bind(stmt, render(stmt, QMARK).keys, tuple(params) if type(params) is list else params)


def execute(conn: Session, stmt: Statement, params: Any) -> Result:
    """Run the statement on the container chosen for this execution (or per row)."""
    # the lists first: on one container the rows are never read (see parse.Rows)
    if any(len(set(conn.router.resolve(lst, stmt))) > 1 for lst in stmt.lists) and \
            len(stmt.values_rows) > 1:
        return _regrouped(conn, stmt, params)
    choice = conn.route(stmt)
    if stmt.select_start is not None and len(set(choice.values())) > 1:
        return insert_select(conn, stmt, params)
    if stmt.kind in (UPDATE, DELETE):
        alias = conn.one(stmt, choice)
        if not load_backend(conn.specs[alias].driver, alias).runs_sql:
            return rest.execute(conn, stmt, params, alias)
    return Result.merge([execute_routed(conn, stmt, params, read=False,
                                        first=conn.one(stmt, choice))])


def _regrouped(conn: Session, stmt: Statement, params: Any) -> Result:
    """Multi-row VALUES over a list: each row goes to the container its turn picks (one choice
    per row, in order), and the rows of one container go there as one statement of them, in
    their order (split where the back-end's limits on parameters or text require). REST
    containers, throttled ones (a call per row) and those without transactions get a
    statement per row."""
    _check_params(stmt, params)
    picks = conn.assign(stmt, len(stmt.values_rows))  # the turns one choice per row takes
    rows: Mapping[str, Sequence[int]]
    if isinstance(picks, str):
        rows = {picks: range(len(stmt.values_rows))}
    else:
        rows = _rows_by_container(picks)
    single: list[tuple[Statement, Any]] | None = None
    plan: dict[str, list[Item]] = {}
    for alias, indices in rows.items():
        spec = conn.specs[alias]
        backend = load_backend(spec.driver, alias)
        if not backend.runs_sql or not backend.transactional or throttle_for(spec) is not None:
            single = split_rows(stmt, params) if single is None else single
            plan[alias] = [Item(single[i][0], [i], [single[i][1]]) for i in indices]
            continue
        plan[alias] = []
        for part in _within_limits(stmt, indices, backend.max_parameters,
                                   backend.max_statement_bytes):
            group, group_params = group_rows(stmt, params, part)
            plan[alias].append(Item(group, part, [group_params],
                                    row=lambda i: group_rows(stmt, params, [i], keep=False)))
    return run_items(conn, plan)


def _rows_by_container(picks: list[str]) -> Mapping[str, Sequence[int]]:
    """Each container's rows (indices, in order) from the container each row picked; where
    the picks go round the containers in turn (a round-robin's), without a step per row:
    every k-th row from the j-th, as a range."""
    try:
        k = picks.index(picks[0], 1)  # the turn's length, if the picks go round
    except ValueError:
        k = len(picks)
    turn = picks[:k]
    if len(set(turn)) == k and picks[k:] == picks[:-k]:
        return {alias: range(j, len(picks), k) for j, alias in enumerate(turn)}
    each: dict[str, list[int]] = {}
    for index, alias in enumerate(picks):
        each.setdefault(alias, []).append(index)
    return each


def _within_limits(stmt: Statement, indices: Sequence[int], max_parameters: int | None,
                   max_bytes: int | None) -> list[Sequence[int]]:
    """Cut a container's rows (in order) into runs whose statements stay within the limits:
    a row's placeholders and text counted, and those outside the rows once per statement
    (4 bytes a character: the longest UTF-8 encoding)."""
    if (max_parameters is None or len(stmt.placeholders) <= max_parameters) and \
            (max_bytes is None or len(stmt.text) <= max_bytes // 4):
        return [indices]  # the common case: even the whole statement fits
    spans, starts = tuple(stmt.values_rows), stmt.placeholders.starts
    first, last = spans[0][0], spans[-1][1]
    fixed_params = len(starts) - (bisect.bisect_left(starts, last) -
                                  bisect.bisect_left(starts, first))
    fixed_chars = len(stmt.text) - (last - first)
    params_left = None if max_parameters is None else max_parameters - fixed_params
    chars_left = None if max_bytes is None else max_bytes // 4 - fixed_chars
    out: list[Sequence[int]] = []
    run: list[int] = []
    used_params = used_chars = 0
    for index in indices:
        lo, hi = spans[index]
        n = bisect.bisect_left(starts, hi) - bisect.bisect_left(starts, lo)
        chars = hi - lo + 2
        if run and ((params_left is not None and used_params + n > params_left) or
                    (chars_left is not None and used_chars + chars > chars_left)):
            out.append(run)
            run, used_params, used_chars = [], 0, 0
        run.append(index)
        used_params += n
        used_chars += chars
    out.append(run)
    return out


def insert_select(conn: Session, stmt: Statement, params: Any) -> Result:
    """Read the select part from its containers, then insert its rows one by one."""
    assert stmt.select_start is not None
    if any(p.start < stmt.select_start for p in stmt.placeholders) and params is not None:
        raise NotSupportedError("placeholders before the select of an insert ... select that"
                                " spans containers are not supported")
    return write_from_select(conn, stmt, params, READ_BATCH,
                             lambda target, rows, first: spread(conn, target, rows, first))


def executemany(conn: Session, stmt: Statement, seq: Sequence[Any]) -> Result:
    """Give each parameter set the next container; rows of one container go in batches."""
    return run_items(conn, spread(conn, stmt, seq))
