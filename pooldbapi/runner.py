"""Runs work on containers: one worker per container (bounded), in parallel across containers,
in order within one; errors stop the others at a row boundary and say what was written where."""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import Error, wrap
from .pool import Physical
from .result import Part, Result
from .sql.paramstyle import bind
from .sql.parse import DDL, OTHER, Statement
from .sql.render import render
from .throttle import throttle_for

if TYPE_CHECKING:
    from .connection import Connection

_SESSION_KINDS = (DDL, OTHER)
MAX_WORKERS = 16
"""At most this many containers are written at the same time by one process."""
CHUNK = 500
"""Consecutive single rows of one container sent as one driver batch (unthrottled)."""


def _wrap(exc: BaseException, phys: Physical) -> Error:
    cls, state = phys.backend.error_class(exc)
    return wrap(exc, phys.spec.alias, phys.spec.secrets, state, cls)


def execute_on(conn: Connection, alias: str, stmt: Statement, params: Any) -> Part:
    """Run a statement once on one container and fetch its rows."""
    phys = conn.transaction.physical(conn.specs[alias], conn.autocommit)
    backend = phys.backend
    throttle = throttle_for(phys.spec)
    try:
        if params is None:
            text, values = render(stmt, None).text, None
        else:
            rendered = render(stmt, backend.paramstyle)
            text, values = rendered.text, bind(stmt, rendered.keys, params)
        if throttle is not None:
            throttle.take()
        with phys.lock:
            cur = phys.cursor()
            if stmt.kind in _SESSION_KINDS:
                phys.session_changed = True
            cur.execute(text, values) if values is not None else cur.execute(text)
            description = backend.describe(cur)
            if description is not None:
                rows = cur.fetchall()
                rowcount = len(rows)
                lastrowid = None
                if rows and backend.describes_from_values:
                    description = backend.describe(cur, rows[0])
            else:
                rows = None
                rowcount = cur.rowcount
                lastrowid = backend.lastrowid(cur) if rowcount == 1 else None
    except Error:
        conn.after_statement(alias)
        raise
    except Exception as exc:
        err = _wrap(exc, phys)
        conn.after_statement(alias, backend.is_broken(phys.raw))
        raise err from exc
    conn.after_statement(alias)
    return Part(alias, rows, description, rowcount, lastrowid)


@dataclass
class Item:
    """Rows for one container: one row, or a page that is written whole (atomically)."""

    indices: tuple[int, ...]
    stmt: Statement
    params: Sequence[Any]          # one parameter set per row
    copy: tuple[str, tuple[str, ...] | None] | None = None  # (table, columns) for COPY pages

    @property
    def page(self) -> bool:
        return self.copy is not None or len(self.indices) > 1


@dataclass
class _Bound:
    item: Item
    text: str
    values: list[Any]


@dataclass
class _Outcome:
    done: list[int] = field(default_factory=list)
    rowcount: int = 0
    error: Error | None = None
    cause: BaseException | None = None
    row: int | None = None
    broken: bool = False


def _bind(phys: Physical, item: Item) -> _Bound:
    rendered = render(item.stmt, phys.backend.paramstyle)
    values = [bind(item.stmt, rendered.keys, p) for p in item.params]
    return _Bound(item, "" if item.copy is not None else rendered.text, values)


def _call(phys: Physical, group: list[_Bound]) -> int:
    """Send a group to the driver; a group of more than one row is atomic."""
    backend = phys.backend
    first = group[0]
    cur = phys.cursor()
    if first.item.copy is not None:
        table, columns = first.item.copy
        with backend.atomic(phys.raw):
            return backend.copy_rows(phys.raw, table, columns, first.values)
    values = [v for b in group for v in b.values]
    if len(values) == 1:
        cur.execute(first.text, values[0])
        return int(max(cur.rowcount, 0))
    with backend.atomic(phys.raw):
        cur.executemany(first.text, values)
        return int(max(cur.rowcount, 0))


def _work(phys: Physical, bounds: list[_Bound], stop: threading.Event, chunk: int) -> _Outcome:
    out = _Outcome()
    throttle = throttle_for(phys.spec)
    if throttle is not None:
        chunk = 1  # every row is a call of its own, spaced by the throttle
    i = 0
    while i < len(bounds) and not stop.is_set():
        first = bounds[i]
        j = i + 1
        if not first.item.page:
            while (j < len(bounds) and j - i < chunk and not bounds[j].item.page
                   and bounds[j].text == first.text):
                j += 1
        group = bounds[i:j]
        if throttle is not None:
            throttle.take()
        try:
            with phys.lock:
                out.rowcount += _call(phys, group)
            for bound in group:
                out.done.extend(bound.item.indices)
        except Exception as exc:
            if len(group) > 1 and not first.item.page:
                # The batch was undone: replay its rows one by one to stop at the failing row.
                _replay(phys, group, out)
            else:
                out.row, out.cause = first.item.indices[0], exc
            if out.cause is not None:
                out.error = _wrap(out.cause, phys)
                out.broken = phys.backend.is_broken(phys.raw)
                stop.set()
                return out
        i = j
    return out


def _replay(phys: Physical, group: list[_Bound], out: _Outcome) -> None:
    for bound in group:
        try:
            with phys.lock:
                out.rowcount += _call(phys, [bound])
            out.done.extend(bound.item.indices)
        except Exception as exc:
            out.row, out.cause = bound.item.indices[0], exc
            return


_EXECUTOR: ThreadPoolExecutor | None = None
_EXECUTOR_LOCK = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _EXECUTOR
    if _EXECUTOR is None:
        with _EXECUTOR_LOCK:
            if _EXECUTOR is None:
                _EXECUTOR = ThreadPoolExecutor(MAX_WORKERS, thread_name_prefix="pooldbapi")
    return _EXECUTOR


def _forget_executor() -> None:
    global _EXECUTOR, _EXECUTOR_LOCK
    _EXECUTOR, _EXECUTOR_LOCK = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_executor)


def run_items(conn: Connection, plan: dict[str, list[Item]], chunk: int = CHUNK) -> Result:
    """Run each container's items in order, containers in parallel; merge the outcome."""
    plan = {alias: items for alias, items in plan.items() if items}
    if not plan:
        return Result(rowcount=0)
    physicals = {alias: conn.transaction.physical(conn.specs[alias], conn.autocommit)
                 for alias in plan}
    try:
        # Bind everything first: bad parameters are raised before any row is written.
        bounds = {alias: [_bind(physicals[alias], item) for item in items]
                  for alias, items in plan.items()}
    except BaseException:
        for alias in plan:
            conn.after_statement(alias)
        raise
    stop = threading.Event()
    started = time.monotonic()
    outcomes: dict[str, _Outcome] = {}
    if len(bounds) == 1:
        alias, rows = next(iter(bounds.items()))
        outcomes[alias] = _work(physicals[alias], rows, stop, chunk)
    else:
        futures: dict[str, Future[_Outcome]] = {
            alias: _executor().submit(_work, physicals[alias], rows, stop, chunk)
            for alias, rows in bounds.items()}
        outcomes = {alias: future.result() for alias, future in futures.items()}
    conn.settle(time.monotonic() - started)
    for alias, outcome in outcomes.items():
        conn.after_statement(alias, outcome.broken)
    failed = [(a, o) for a, o in outcomes.items() if o.error is not None]
    written = {a: tuple(sorted(o.done)) for a, o in outcomes.items() if o.done}
    if failed:
        alias, outcome = min(failed, key=lambda f: f[1].row or 0)
        err = outcome.error
        assert err is not None
        where = "; ".join(f"{a}: {len(rows)} rows" for a, rows in sorted(written.items()))
        err.args = (f"{err.args[0]} (row {outcome.row} on container {alias}; written before"
                    f" the error: {where or 'nothing'})",)
        err.row, err.written = outcome.row, written
        raise err from outcome.cause
    parts = [Part(a, None, None, o.rowcount, None, units=len(bounds[a]))
             for a, o in outcomes.items()]
    return Result.merge(parts)
