"""insert, update, delete: per execution; multi-row values and executemany per row;
insert ... select whole where it lands on one container, else read and written per row."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import NotSupportedError, ProgrammingError
from ..result import Result
from ..runner import Item, execute_on, run_items
from ..sql.paramstyle import bind, source_style
from ..sql.parse import Statement, parse
from ..sql.render import render
from . import select

if TYPE_CHECKING:
    from ..connection import Connection


def one_container(stmt: Statement, choice: dict[tuple[str, ...], str]) -> str:
    """Return the one container a unit of work landed on, or raise NotSupportedError."""
    distinct = set(choice.values())
    if len(distinct) > 1:
        landed = ", ".join(f"{{{','.join(k)}}} -> {v}" for k, v in choice.items())
        raise NotSupportedError(f"the occurrences of this {stmt.kind} landed on different"
                                f" containers ({landed}); give them one list")
    return distinct.pop()


def _check_params(stmt: Statement, params: Any) -> None:
    if params is not None:
        bind(stmt, render(stmt, "qmark").keys, params)


def split_values(stmt: Statement, params: Any) -> list[tuple[Statement, Any]]:
    """Return one single-row insert (and its parameters) per row of a multi-row values list."""
    text = stmt.text
    lo_all, hi_all = stmt.values_rows[0][0], stmt.values_rows[-1][1]
    style = source_style(stmt) if params is not None else None
    out = []
    for lo, hi in stmt.values_rows:
        row = parse(text[:lo_all] + text[lo:hi] + text[hi_all:])
        if params is None or style in ("named", "pyformat") or style is None:
            row_params = params
        elif style == "numeric":
            row_params = params[:max((p.key for p in row.placeholders
                                      if isinstance(p.key, int)), default=0)]
        else:
            row_params = [params[j] for j, p in enumerate(stmt.placeholders)
                          if p.start < lo_all or lo <= p.start < hi or p.start >= hi_all]
        out.append((row, row_params))
    return out


def execute(conn: Connection, stmt: Statement, params: Any) -> Result:
    """Run the statement on the container chosen for this execution (or per row)."""
    if len(stmt.values_rows) > 1 and any(len(set(conn.resolve(lst, stmt))) > 1
                                         for lst in stmt.lists):
        _check_params(stmt, params)
        plan: dict[str, list[Item]] = {}
        for index, (row, row_params) in enumerate(split_values(stmt, params)):
            alias = one_container(stmt, conn.route(stmt))
            plan.setdefault(alias, []).append(Item((index,), row, [row_params]))
        return run_items(conn, plan)
    choice = conn.route(stmt)
    if stmt.select_start is not None and len(set(choice.values())) > 1:
        return insert_select(conn, stmt, params)
    return Result.merge([execute_on(conn, one_container(stmt, choice), stmt, params)])


def insert_select(conn: Connection, stmt: Statement, params: Any) -> Result:
    """Read the select part from its containers, then insert its rows one by one."""
    assert stmt.select_start is not None
    if any(p.start < stmt.select_start for p in stmt.placeholders) and params is not None:
        raise NotSupportedError("placeholders before the select of an insert ... select that"
                                " spans containers are not supported")
    source = parse(stmt.text[stmt.select_start:])
    conn.check(source)
    read = select.execute(conn, source, params)
    if read.description is None:
        raise ProgrammingError("the select of insert ... select returned no columns")
    markers = ", ".join("?" * len(read.description))
    target = parse(f"{stmt.text[:stmt.select_start]}values ({markers})")
    conn.check(target)
    plan: dict[str, list[Item]] = {}
    for index, row in enumerate(read.rows):
        alias = one_container(target, conn.route(target))
        plan.setdefault(alias, []).append(Item((index,), target, [tuple(row)]))
    return run_items(conn, plan)


def executemany(conn: Connection, stmt: Statement, seq: Sequence[Any]) -> Result:
    """Give each parameter set the next container; rows of one container go in batches."""
    plan: dict[str, list[Item]] = {}
    for index, params in enumerate(seq):
        if not isinstance(params, Sequence | Mapping) or isinstance(params, str | bytes):
            raise ProgrammingError(f"executemany: parameter set {index} is a"
                                   f" {type(params).__name__}, not a sequence or mapping")
        alias = one_container(stmt, conn.route(stmt))
        plan.setdefault(alias, []).append(Item((index,), stmt, [params]))
    return run_items(conn, plan)
