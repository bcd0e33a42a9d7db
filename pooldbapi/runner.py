"""Runs work on containers: one worker per container (bounded), in parallel across containers,
in order within one; errors stop the others at a row boundary and say what was written where."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from . import telemetry, waits
from .backends import backend as load_backend
from .dbapi import Description
from .errors import (
    QUERY_CANCELED,
    Error,
    InterfaceError,
    OperationalError,
    ReadFailed,
    rows_per_container,
)
from .pool import Physical
from .result import Part, Result
from .sql.paramstyle import bind, bind_many, source_style
from .sql.parse import DDL, OTHER, SELECT, Statement
from .sql.render import render
from .sql.styles import SEQUENTIAL
from .transaction import wrap_error

if TYPE_CHECKING:
    from .session import Session

log = logging.getLogger("pooldbapi")
_SESSION_KINDS = (DDL, OTHER)
MAX_WORKERS = 16
"""At most this many containers are written at the same time by one process."""
CHUNK = 5000
"""Consecutive single rows of one container sent as one driver batch (unthrottled)."""


def _text(stmt: Statement, backend: Any, params: Any) -> tuple[str, Sequence[Any] | None]:
    """The back-end's text and values of one execution (the text as written without params)."""
    if params is None:
        return render(stmt, None).text, None
    rendered = render(stmt, backend.paramstyle)
    return rendered.text, bind(stmt, rendered.keys, params)


def execute_on(conn: Session, alias: str, stmt: Statement, params: Any) -> Part:
    """Run a statement once on one container and fetch its rows."""
    if telemetry.ON:  # a child span of the statement's (telemetry.py)
        return telemetry.part(_execute_on, conn, alias, stmt, params)
    return _execute_on(conn, alias, stmt, params)


def _execute_on(conn: Session, alias: str, stmt: Statement, params: Any) -> Part:
    spec = conn.specs[alias]
    # rendered and bound before anything is borrowed: bad parameters never take a connection
    text, values = _text(stmt, load_backend(spec.driver, alias), params)
    with conn.transaction.borrow(spec, None if stmt.kind == SELECT else stmt.kind) as phys:
        backend = phys.backend
        throttle = phys.limiter
        if throttle is not None:
            throttle.take()
        with phys.lock:
            cur = phys.cursor()
            if stmt.kind in _SESSION_KINDS and backend.changes_session(stmt.kind, stmt.words):
                phys.session_changed = True
            description, rows = _run(phys, cur, text, values)
            if rows is not None:
                return Part(alias, rows, description, len(rows), None)
            return Part(alias, None, description, *_counted(phys, cur))


def _run(phys: Physical, cur: Any, text: str, values: Sequence[Any] | None
         ) -> tuple[Description | None, list[Any] | None]:
    """Execute on the session's cursor (its lock held) and fetch: the description and the
    rows, or (None, None) for a statement that returns none."""
    cur.execute(text, values) if values is not None else cur.execute(text)
    try:
        if phys.backend.describes_from_values:  # typed by the first row: describe after it
            rows = cur.fetchall() if cur.description is not None else None
            return phys.describe(cur, rows[0] if rows else None, text), rows
        description = phys.describe(cur)
        return description, cur.fetchall() if description is not None else None
    except Exception as exc:  # the statement ran: what it wrote is there (errors.ReadFailed)
        raise ReadFailed(exc) from exc


def _counted(phys: Physical, cur: Any) -> tuple[int, Any]:
    """The rowcount and lastrowid of a statement that returned no rows."""
    rowcount = cur.rowcount
    return rowcount, phys.backend.lastrowid(cur) if rowcount == 1 else None


def answer(phys: Physical, alias: str, cur: Any, description: Description | None,
           rows: list[Any] | None) -> Result:
    """The call's Result of one execution on alias, from its driver cursor's answer: the
    description and the rows fetched (None for a statement that returns none)."""
    if rows is not None:
        return Result(description, rows, len(rows), None, {alias: 1})
    return Result(description, [], *_counted(phys, cur), {alias: 1})


class Direct:
    """A statement that runs whole on one container, prepared once for a router that routes
    it there every time (router.Router.direct): the container, its back-end's text and the
    shape of the parameters bound to it as given, so that a repeated execute is the bind
    check, the session (held, kept or borrowed), the driver's execute and the result. What
    execute_on does, with the same errors and the same sessions."""

    __slots__ = ("alias", "arity", "bare", "keys", "lost_kind", "spec", "stmt", "text")

    def __init__(self, conn: Session, alias: str, stmt: Statement) -> None:
        self.stmt, self.alias = stmt, alias
        self.spec = spec = conn.specs[alias]
        rendered = render(stmt, load_backend(spec.driver, alias).paramstyle)
        self.text, self.keys = rendered.text, rendered.keys
        self.bare = render(stmt, None).text  # executed without parameters: as written
        # a tuple of this many values is bound as it is (bind's first case, -1: never)
        style = source_style(stmt)
        self.arity = len(self.keys) if style in SEQUENTIAL else -1
        self.lost_kind = None if stmt.kind == SELECT else stmt.kind

    def bound(self, params: Any) -> tuple[str, Sequence[Any] | None]:
        """The back-end's text and the values bound to it (as written without parameters; a
        tuple of the right length as it is), checked before anything is borrowed."""
        if params is None:
            return self.bare, None
        return self.text, params if type(params) is tuple and len(params) == self.arity \
            else bind(self.stmt, self.keys, params)

    def run(self, conn: Session, params: Any) -> Result:
        """Run the statement once and fetch its rows (see execute_on)."""
        if telemetry.ON:  # the container's span (telemetry.py)
            return Result.of(execute_on(conn, self.alias, self.stmt, params))
        text, values = self.bound(params)
        tx = conn.transaction
        alias = self.alias
        phys = tx.borrowed.get(alias)  # held by the transaction: its work is there
        touched = phys is not None and phys.backend.transactional
        kept = None
        if phys is None:
            if tx.autocommit:  # the session kept since the last statement, its lock held
                kept = tx.take_kept(alias)
            phys = kept if kept is not None else tx.physical(self.spec, tx.autocommit)
        try:
            if kept is None:  # (a kept session comes with its lock held)
                if phys.limiter is not None:
                    phys.limiter.take()
                # a free lock taken by its built-in acquire (no Python frame, where a
                # LoopLock's `with` costs two); a taken one waited for as `with` waits
                if not phys.lock.acquire(False):
                    phys.lock.__enter__()
            try:
                cur = phys.cursor()
                description, rows = _run(phys, cur, text, values)
                result = answer(phys, alias, cur, description, rows)
                if kept is not None:
                    phys.returned = time.monotonic()  # (under its lock: the reaper reads it)
            except BaseException:
                if kept is not None:
                    tx.kept_failed(alias, phys)
                raise
            finally:
                phys.lock.release()
        except BaseException as exc:
            err = tx.statement_failed(alias, phys, exc, touched, self.lost_kind)
            if err is None:
                raise
            raise err from err.__cause__ or exc
        if kept is not None:
            tx.kept_done(alias, phys)
        elif tx.autocommit:  # (in a transaction the session stays held)
            tx.after_statement(alias)
        return result

    # run()'s steps for a caller that cannot wait in them (pooldbapi.aio's task, which awaits
    # the driver itself): at_hand() up to the driver's execute, then ended() or failed()
    def at_hand(self, conn: Session, params: Any
                ) -> tuple[Direct, Physical, Physical | None, str, Sequence[Any] | None] | None:
        """(self, the session, the session if kept, text, values) with the session's lock
        held, if its session is at hand: held by the open transaction and free, or kept in
        autocommit (take_kept) and taken as alive without a round trip. None, with nothing
        taken, where run() would borrow, wait for a call limit, or ask the server whether the
        session is alive. Bad parameters raise as in run(), before anything is taken."""
        text, values = self.bound(params)
        tx = conn.transaction
        if tx.autocommit:
            kept = tx.take_kept(self.alias, round_trip=False)
            return (self, kept, kept, text, values) if kept is not None else None
        phys = tx.borrowed.get(self.alias)
        if phys is None or phys.limiter is not None or not phys.lock.acquire(False):
            return None
        return self, phys, None, text, values

    @staticmethod
    def ended(conn: Session, phys: Physical, kept: Physical | None) -> bool:
        """After the driver's answer to a statement made ready by at_hand(): the session's lock
        released. False where a kept session is to be given back now (someone waits for it, its
        pool closed or it passed its lifetime: conn.transaction.kept_done, which may wait)."""
        if kept is None:
            phys.lock.release()
            return True
        phys.returned = returned = time.monotonic()  # (under its lock: the reaper reads it)
        phys.lock.release()
        return phys.pool.keeps(phys, returned)

    def failed(self, conn: Session, phys: Physical, kept: Physical | None,
               exc: BaseException) -> BaseException:
        """After the driver raised exc for a statement made ready by at_hand() (its lock still
        held): what run() does then (the session given back or the transaction failed, which
        may wait); returns what to raise (a pooldbapi error from exc, or exc itself)."""
        tx = conn.transaction
        try:
            if kept is not None:
                tx.kept_failed(self.alias, phys)
        finally:
            phys.lock.release()
        err = tx.statement_failed(self.alias, phys, exc,
                                  kept is None and phys.backend.transactional, self.lost_kind)
        if err is None:
            return exc
        if err.__cause__ is None:
            err.__cause__ = exc
        return err


class Stream:
    """A select read in batches from one container: description, then batches of rows."""

    def __init__(self, conn: Session, alias: str, stmt: Statement, params: Any,
                 batch: int, throttled: bool = True) -> None:
        self._conn, self.alias = conn, alias
        self._batch = batch
        self.rows_read = 0
        self.finished = False
        self._closed = False
        spec = conn.specs[alias]
        text, values = _text(stmt, load_backend(spec.driver, alias), params)
        # the connection stays borrowed while the stream is open
        with conn.transaction.borrow(spec, keep=True) as self._phys:
            throttle = self._phys.limiter if throttled else None
            if throttle is not None:
                throttle.take()
            with self._phys.lock:
                self._cur = self._phys.link.open_stream(text, values, batch)
                self.description = self._phys.describe(self._cur, None, text)
            conn.transaction.streams.add(self)
        # the units chosen for this select are in flight until the stream ends
        self._units = conn.router.detach()

    def abandon(self) -> None:
        """Mark the result closed without a word to its session (a child after fork)."""
        self._closed = True
        self._units.settle()

    def check(self, delivered: int | None = None) -> None:
        """Raise InterfaceError if the result was ended (commit, rollback, close) before its
        last row was read; delivered: the rows the application had read (else the rows read
        from the container)."""
        if self._closed and not self.finished:
            read = f"{self.rows_read} rows had been read" if delivered is None else \
                f"{delivered} rows had been read ({self.rows_read} fetched from the container)"
            raise InterfaceError(f"container {self.alias!r}: the streamed result was"
                                 " closed (commit, rollback or close end it) before its"
                                 f" last row; {read}")

    def batches(self) -> Generator[list[Sequence[Any]], None, None]:
        """Yield the rows in batches; the container's connection is given back at the end."""
        try:
            while True:
                self.check()
                with self._phys.lock:
                    rows = self._cur.fetchmany(self._batch)
                if not rows:
                    self.finished = True
                    return
                self.rows_read += len(rows)
                yield rows
        except Exception as exc:
            if isinstance(exc, Error):
                raise
            err = wrap_error(exc, self._phys)
            self._closed = True
            self._units.settle()
            self._conn.transaction.streams.discard(self)
            self._conn.transaction.failed_on(self.alias, self._phys, err, touched=True)
            raise err from exc
        finally:
            self.close()

    def close(self) -> None:
        """Close the driver cursor and give the connection back (in autocommit); idempotent."""
        if self._closed:
            return
        self._closed = True
        self._units.settle()
        with self._phys.lock:
            try:
                self._cur.close()
            except Exception:  # noqa: BLE001, S110 - a broken connection is dropped below
                pass
        self._conn.transaction.streams.discard(self)
        if telemetry.ON:
            telemetry.streamed(self.alias, self.rows_read)
        self._conn.after_statement(self.alias, self._phys.is_broken())


def execute_routed(conn: Session, stmt: Statement, params: Any, read: bool,
                   first: str | None = None) -> Part:
    """Run a statement once on the container routing picks; where it is safe, fail over.

    Safe means: the container failed (not the statement), the open transaction had not touched
    it, and the statement is a read (its rows are read whole, so none was delivered) or
    provably never reached the server (the connection could not be opened)."""
    tried: list[str] = []
    while True:
        alias = first if first is not None and not tried else conn.one(stmt)
        touched = conn.transaction.holds(alias)
        try:
            return execute_on(conn, alias, stmt, params)
        except Error as err:
            if not (err.connection_failure and not touched and (read or err.unsent)) or \
                    alias in tried:
                raise
            listed = {a for lst in (stmt.lists or (None,)) for a in conn.router.resolve(lst, stmt)}
            if len(tried) + 1 >= len(listed):
                raise
            tried.append(alias)
            if telemetry.ON:
                telemetry.retried(alias)
            log.info("container %s failed (%s); trying the next container of the list",
                     alias, err)


@dataclass
class Item:
    """Rows for one container, all of one statement: single rows (sent in batches, each row
    on its own), a page that is written whole and atomically, or rows of a multi-row VALUES
    as one statement of them (row set)."""

    stmt: Statement
    indices: Sequence[int]
    params: Sequence[Any]          # one parameter set per row
    page: bool = False
    copy: tuple[str, tuple[str, ...] | None] | None = None  # (table, columns) for COPY pages
    # rows of a multi-row VALUES sent as one statement (params: its one parameter set): each
    # caller's row index -> its single-row statement and parameters, to replay a failed group
    row: Callable[[int], tuple[Statement, Any]] | None = None


@dataclass
class _Bound:
    item: Item
    text: str
    values: Sequence[Any]
    returning: bool = False  # rows come back: sent one by one, the rows kept by row index


@dataclass
class _Outcome:
    done: list[int] = field(default_factory=list)
    rowcount: int = 0
    error: Error | None = None
    cause: BaseException | None = None
    row: int | None = None
    broken: bool = False
    unknown: list[int] = field(default_factory=list)
    returned: list[tuple[int, list[Sequence[Any]]]] = field(default_factory=list)
    description: Description | None = None
    # the rows of the call under way: an interruption (KeyboardInterrupt between bytecodes)
    # inside it leaves them committed or not
    inflight: Sequence[int] = ()


def _bind(phys: Physical, item: Item) -> _Bound:
    rendered = render(item.stmt, phys.backend.paramstyle)
    values = bind_many(item.stmt, rendered.keys, item.params, item.indices)
    return _Bound(item, "" if item.copy is not None else rendered.text, values,
                  item.copy is None and item.stmt.clause("RETURNING") is not None)


def _call(phys: Physical, bound: _Bound, values: Sequence[Any], out: _Outcome | None = None,
          indices: Sequence[int] = (0,)) -> int:
    """Send rows to the driver, all or nothing: in a transaction under a savepoint (so that an
    error undoes these rows and nothing before them), outside one in a transaction of their own
    (a single row needs none, nor a statement of several rows where the back-end's statements
    are all or nothing). The rows a RETURNING row gives are read before the savepoint
    ends (SQLite finishes such a statement only as its rows are read) and kept in out."""
    if telemetry.ON:
        telemetry.called(phys.spec.alias)
    if bound.item.copy is not None:
        table, columns = bound.item.copy
        copy_rows = phys.link.copy_rows
        assert copy_rows is not None  # (a page has copy only where its back-end has a bulk path)
        with phys.atomic():
            return copy_rows(table, columns, values)
    cur = phys.cursor()
    if len(values) == 1 and not phys.in_transaction and (
            len(indices) == 1 or phys.link.statements_atomic):
        cur.execute(bound.text, values[0])
        alone = True
    else:  # without parameters, made atomic in one call where the back-end can
        alone = len(values) == 1 and not values[0] and phys.link.atomic_execute(cur, bound.text)
    if alone:
        if bound.returning and out is not None:
            _returned_after(phys, cur, out, indices)
        return int(max(cur.rowcount, 0))
    sets: _Outcome | None = None
    with phys.link.atomic_calls() as late:  # late: the results are read after the block
        if len(values) == 1:
            cur.execute(bound.text, values[0])
            if bound.returning and out is not None and not late:
                _returned(phys, cur, out, indices)
        elif bound.returning and out is not None and phys.backend.executemany_returns:
            cur.executemany(bound.text, values, returning=True)
            # every set read in the block (the driver holds them all once executemany
            # returns), into an outcome of its own: a row whose value fails to load undoes
            # the batch like any error of its rows, and nothing of it is kept twice when the
            # batch is replayed
            sets = _returned_sets(phys, cur, indices, out.description)
        else:
            cur.executemany(bound.text, values)
    if sets is not None:
        assert out is not None
        out.description = sets.description
        out.returned.extend(sets.returned)
        return sets.rowcount
    if late and len(values) == 1 and bound.returning and out is not None:
        _returned_after(phys, cur, out, indices)
    return int(max(cur.rowcount, 0))


def _returned_after(phys: Physical, cur: Any, out: _Outcome, indices: Sequence[int]) -> None:
    """_returned() for rows already made to last (committed, or their savepoint released): a
    failure to read them back is a ReadFailed (they count as written, nothing is replayed)."""
    try:
        _returned(phys, cur, out, indices)
    except Exception as exc:
        raise ReadFailed(exc, int(max(cur.rowcount, 0))) from exc


def _returned_sets(phys: Physical, cur: Any, indices: Sequence[int],
                   description: Description | None) -> _Outcome:
    """After executemany(..., returning=True) of the rows of indices (Backend.
    executemany_returns): each parameter set's RETURNING rows at its row's place, as one row
    sent alone gives them, the description (the one given, else the first set's) and the
    rows written (each set's rowcount)."""
    sets = _Outcome(description=description)
    _returned(phys, cur, sets, indices[:1])  # (the description asked of the first set only)
    written = max(cur.rowcount, 0)
    returned = sets.returned
    for index in indices[1:]:
        if not cur.nextset():
            raise InterfaceError(f"container {phys.spec.alias!r}: the driver gave fewer"
                                 f" RETURNING results than the {len(indices)} rows sent")
        returned.append((index, cur.fetchall()))
        written += max(cur.rowcount, 0)
    sets.rowcount = int(written)
    return sets


def _returned(phys: Physical, cur: Any, out: _Outcome, indices: Sequence[int]) -> None:
    """Keep the rows a RETURNING statement gave (and the description, from the first): one
    per row of a row set where each row gave one (the back-ends return them in the order of
    VALUES), else all at the place of its first row."""
    rows = cur.fetchall() if cur.description is not None else []
    if out.description is None:
        out.description = phys.describe(cur, rows[0] if rows else None) \
            if phys.backend.describes_from_values else phys.describe(cur)
    if len(indices) > 1 and len(rows) == len(indices):
        out.returned.extend((index, [row]) for index, row in zip(indices, rows, strict=True))
    else:
        out.returned.append((indices[0], rows))


Progress = Callable[[str, int], None]
"""Told (container alias, rows) as rows are written; called from worker threads."""


def _work(phys: Physical, bounds: list[_Bound], stop: threading.Event, chunk: int,
          progress: Progress | None = None, out: _Outcome | None = None) -> _Outcome:
    out = _Outcome() if out is None else out
    throttle = phys.limiter
    if throttle is not None or not phys.backend.transactional:
        chunk = 1  # every row a call of its own: spaced by the throttle, or not undoable
    for bound in bounds:
        indices, values = bound.item.indices, bound.values
        if bound.item.row is not None:  # a row set: one call for all its rows
            calls: Iterable[tuple[Sequence[Any], Sequence[int]]] = ((values, indices),)
        else:
            step = len(values) if bound.item.page else chunk \
                if not bound.returning or phys.backend.executemany_returns else 1
            calls = ((values[lo:lo + step], indices[lo:lo + step])
                     for lo in range(0, len(values), step))
        for part, rows in calls:
            if stop.is_set():
                return out
            if throttle is not None:
                throttle.take()
            try:
                out.inflight = rows
                with phys.lock:
                    out.rowcount += _call(phys, bound, part, out, rows)
                out.done.extend(rows)
                out.inflight = ()
                if progress is not None:
                    progress(phys.spec.alias, len(rows))
            except Exception as exc:  # noqa: BLE001 - any driver error: the batch is replayed
                if isinstance(exc, ReadFailed):  # there, only their RETURNING rows not read
                    out.rowcount += exc.rowcount
                    out.done.extend(rows)
                    out.row, out.cause = rows[0], exc.cause
                elif len(rows) > 1 and not bound.item.page and not phys.is_broken() and \
                        not (phys.in_transaction and phys.aborted()) and \
                        phys.backend.error_class(exc)[1] != QUERY_CANCELED:
                    # The batch was undone: replay its rows one by one to stop at the bad row
                    # (not where the back-end undid the whole transaction with it: SQLite's OR
                    # ROLLBACK; the rows would be written outside it, and it fails anyway; nor
                    # where the server cancelled it on request: no row of it was bad)
                    _replay(phys, bound, rows, part, out)
                else:
                    out.row, out.cause = rows[0], exc
                out.inflight = ()
                if out.cause is not None:
                    out.error = wrap_error(out.cause, phys)
                    out.broken = phys.is_broken()
                    if out.error.connection_failure and not phys.in_transaction:
                        # in autocommit the rows in flight may or may not have been committed
                        out.unknown = [i for i in rows if i not in out.done]
                    stop.set()
                    return out
    return out


def _replay(phys: Physical, bound: _Bound, indices: Sequence[int], values: Sequence[Any],
            out: _Outcome) -> None:
    row = bound.item.row
    for n, index in enumerate(indices):
        try:
            if row is not None:  # a row set: each row as its own single-row statement
                stmt, params = row(index)
                one = _bind(phys, Item(stmt, (index,), (params,)))
                call, value = one, one.values[0]
            else:
                call, value = bound, values[n]
            with phys.lock:  # RETURNING rows kept: a row set's rows may all pass one by one
                out.rowcount += _call(phys, call, [value], out, (index,))
            out.done.append(index)
        except Exception as exc:  # noqa: BLE001 - any driver error names its row
            if isinstance(exc, ReadFailed):  # there, only its RETURNING rows not read
                out.rowcount += exc.rowcount
                out.done.append(index)
            out.row, out.cause = index, exc.cause if isinstance(exc, ReadFailed) else exc
            return


executor = waits.SharedThreads(MAX_WORKERS, "pooldbapi")
"""The process-wide worker threads that run work on several containers at once."""


def _guarded(stop: threading.Event, work: Callable[..., _Outcome], *args: Any) -> _Outcome:
    """A worker's work: whatever escapes it (an interruption raised by the progress callback)
    stops the other workers at their next row boundary."""
    try:
        return work(*args)
    except BaseException:
        stop.set()
        raise


def run_items(conn: Session, plan: dict[str, list[Item]], chunk: int | None = None
              ) -> Result:
    """Run each container's items in order, containers in parallel; merge the outcome."""
    chunk = CHUNK if chunk is None else chunk
    plan = {alias: items for alias, items in plan.items() if items}
    if not plan:
        return Result(rowcount=0)
    # One order of acquisition (by container definition, as pools are keyed: Borrows), so
    # that connections writing to the same containers never wait for each other in a cycle.
    with conn.transaction.borrow_all(conn.specs[alias] for alias in plan) as borrows:
        physicals = borrows.physicals
        # Bind everything first: bad parameters are raised before any row is written.
        bounds = {alias: [_bind(physicals[alias], item) for item in items]
                  for alias, items in plan.items()}
        stop = threading.Event()
        started = time.monotonic()
        # made before the work starts, so that an interruption still knows what was written
        outcomes: dict[str, _Outcome] = {alias: _Outcome() for alias in bounds}
        work = _work if not telemetry.ON else telemetry.work(_work)  # a child span per container
        try:
            if len(bounds) == 1:
                alias, rows = next(iter(bounds.items()))
                work(physicals[alias], rows, stop, chunk, conn.progress, outcomes[alias])
            elif waits.active():
                # a call of pooldbapi.aio: every share in a greenlet of its own, driven by a
                # task of the event loop (no thread); an interruption stops them at a row
                # boundary
                waits.gather([partial(_guarded, stop, work, physicals[alias], rows, stop,
                                      chunk, conn.progress, outcomes[alias])
                              for alias, rows in bounds.items()], stop.set)
            else:
                # every share on a worker: an interruption of the calling thread then lands
                # between rows (the workers stop at their boundary and record what they wrote),
                # never inside a driver's call
                futures: dict[str, Future[_Outcome]] = {
                    alias: executor().submit(_guarded, stop, work, physicals[alias], rows, stop,
                                             chunk, conn.progress, outcomes[alias])
                    for alias, rows in bounds.items()}
                try:
                    for future in futures.values():
                        future.result()
                except BaseException:
                    # Ctrl-C (or the like) in the caller: the workers stop at a row boundary,
                    # and none may go on writing on a session the caller now rolls back or
                    # gives back
                    stop.set()
                    wait(futures.values())
                    raise
        except BaseException as exc:
            if not isinstance(exc, Exception):
                _interrupted(conn, exc, outcomes)
            raise
        conn.router.settle(time.monotonic() - started)
        for alias, outcome in outcomes.items():
            if outcome.error is not None:
                borrows.failed(alias, outcome.error, bool(outcome.done))
    failed = [(a, o) for a, o in outcomes.items() if o.error is not None]
    if failed:
        alias, outcome = min(failed, key=lambda f: f[1].row or 0)
        err = outcome.error
        assert err is not None
        # nothing of a failed transaction is kept: say so, rather than list rows
        err.transaction_failed = conn.transaction.failed is not None and not conn.autocommit
        err.written = {} if err.transaction_failed else \
            {a: tuple(sorted(o.done)) for a, o in outcomes.items() if o.done}
        err.unknown = {a: tuple(o.unknown) for a, o in outcomes.items() if o.unknown} or None
        err.row = outcome.row
        raise err from outcome.cause
    parts = [Part(a, None, None, o.rowcount, None,
                  units=sum(1 if b.item.page else len(b.item.indices) if b.item.row else
                            len(b.values) for b in bounds[a]))
             for a, o in outcomes.items()]
    result = Result.merge(parts)
    result.written = {a: o.done for a, o in outcomes.items()}
    returned = sorted((r for o in outcomes.values() for r in o.returned), key=lambda r: r[0])
    if returned:  # RETURNING: the rows in the order of the rows written, whatever ran them
        result.rows = [row for _, rows in returned for row in rows]
        result.description = next(o.description for o in outcomes.values()
                                  if o.description is not None)
    return result


def _interrupted(conn: Session, exc: BaseException, outcomes: dict[str, _Outcome]) -> None:
    """An interruption (KeyboardInterrupt, SystemExit) during a write: rows were written that
    the caller was never told of. In a transaction nothing of them may be kept silently: the
    transaction fails. In autocommit they are committed: say which, on the exception (the
    sessions are given back as the borrow ends)."""
    written = {a: o.done for a, o in outcomes.items() if o.done}
    where = rows_per_container(written)
    if conn.autocommit:
        exc.add_note(f"pooldbapi: committed before the interruption: {where}")
        inflight = {a: rows for a, o in outcomes.items()
                    if (rows := [i for i in o.inflight if i not in o.done])}
        if inflight:  # interrupted inside a call on the calling thread
            exc.add_note("pooldbapi: committed or not (in flight at the interruption): "
                         + rows_per_container(inflight))
        return
    if conn.transaction.failed is None:
        conn.transaction.failed = OperationalError(
            f"the transaction was interrupted during a write ({where} written and"
            " never reported), so it cannot commit; call rollback()")
    exc.add_note("pooldbapi: the transaction was interrupted during a write and is failed:"
                 " roll it back")


def run_rounds(conn: Session, rounds: Iterable[dict[str, list[Item]]]) -> Result:
    """Run plans one after another (rows read in batches); an error names all rows written."""
    total = Result(rowcount=0)
    for plan in rounds:
        try:
            total.add(run_items(conn, plan))
        except Error as err:
            if err.written is not None and (conn.autocommit or conn.transaction.failed is None):
                for alias, rows in total.written.items():
                    err.written = {**err.written,
                                   alias: tuple(sorted((*rows, *err.written.get(alias, ()))))}
            raise
    return total
