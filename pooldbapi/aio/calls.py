"""Calls of the shared core made for a task: one at a time per connection, each either in a
greenlet on the event loop's thread, its waits awaited (waits.py; sessions of drivers with an
async API: NATIVE), or in a worker thread, so that the event loop never blocks on a driver; a
cancelled task is treated as Ctrl-C is in the synchronous API (its call stops at the next row boundary, an open transaction is
failed and rolled back on its containers, autocommit says which rows were committed)."""
from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from .. import waits
from ..errors import QUERY_CANCELED, Error, OperationalError, ReadFailed, rows_per_container
from ..runner import answer

if TYPE_CHECKING:
    from ..connection import Connection
    from ..cursor import Cursor

log = logging.getLogger("pooldbapi")
T = TypeVar("T")

NATIVE = frozenset({"postgresql", "odata", "oracle"})
"""Drivers a call drives from the event loop's thread: PostgreSQL through psycopg's
AsyncConnection, OData through an httpx.AsyncClient, its limiter's and retries' waits
awaited, Oracle through python-oracledb's AsyncConnection (async thin mode). A connection
whose containers are all of these runs its calls in greenlets on the loop's thread; any other runs them on its worker thread (SQLite: one hop
per call, where the greenlet mode would hop for every driver call; not measured against it)."""
DIRECT = frozenset({"postgresql"})
"""NATIVE drivers whose sessions in a call are adapters of the driver's AsyncConnection
(backends/awaited.py) that a prepared statement at hand runs on from the task itself, the
driver's AsyncCursor awaited directly (Calls.at_hand): psycopg. (python-oracledb's adapter
would serve too; with no Oracle server here to test it on, Oracle stays in greenlet calls.)"""
WORKERS = 64
"""connect() calls run on a worker pool of this many threads (the event loop's default
executor has only cores + 4 threads: too few for connects that mostly wait on a server),
shared by the process and made anew in a forked child (waits.SharedThreads)."""
_connects = waits.SharedThreads(WORKERS, "pooldbapi-aio")
_CALLS: weakref.WeakSet[Calls] = weakref.WeakSet()
CANCEL_GRACE = 5.0
"""Once a call's task is cancelled, the PostgreSQL servers running its statements are asked
to cancel them (as psycopg's AsyncConnection does): the request may take this long, and the
call this long again to end after it; then the sockets of its sessions still running a
statement are shut, so that the call ends with them lost (psycopg closes the connection so
too)."""
_WATCHERS: set[asyncio.Task[None]] = set()  # (kept from the collector while they run)


def _forget_workers() -> None:
    for calls in list(_CALLS):
        calls.worker = None  # the parent's threads do not exist in a child


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers)


def in_worker(fn: Callable[..., T], executor: ThreadPoolExecutor | None = None,
              args: tuple[Any, ...] = ()) -> asyncio.Future[T]:
    """Run fn(*args) in a worker thread (of executor, else the shared pool) with the caller's
    context (OpenTelemetry's current span)."""
    context = contextvars.copy_context()
    return asyncio.get_running_loop().run_in_executor(executor or _connects(), context.run, fn,
                                                      *args)


class Interrupted(BaseException):
    """Raised in the worker, at a row boundary, once the task waiting for its call was
    cancelled. Not an Exception: the runner treats it as it treats KeyboardInterrupt (the other
    containers' workers stop at their row boundary; what was written is recorded)."""


class Calls:
    """The one door from a task to a synchronous Connection. Its calls run one at a time on a
    thread of its own (as aiosqlite runs a connection's): were they on a pool shared by every
    connection, calls waiting for a full pool's session could take every thread, and the call
    that gives the session back would wait behind them."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.native = waits.available() and \
            all(spec.driver in NATIVE for spec in conn.specs.values())
        # prepared statements whose session is at hand awaited by the task (at_hand)
        self.direct = self.native and all(spec.driver in DIRECT for spec in conn.specs.values())
        self.worker: ThreadPoolExecutor | None = None  # made at the first call (and in a child)
        self.closed = False
        _CALLS.add(self)
        # a connection's calls are serialised, as threads' are: one in the door at a time, the
        # others waiting in order of arrival (the door is handed to the oldest)
        self.busy = False
        self.waiters: deque[asyncio.Future[None]] = deque()
        # told once the task of the call under way was cancelled (its `cancelled`, read by
        # the core at its row boundaries, from the worker thread too: a plain attribute, no
        # lock needed); in greenlet mode also what the task waits on at each wait (waits.Shield)
        self.shield = waits.Shield(self._cancelled)
        self.requested: asyncio.Future[None] | None = None  # the cancel requests gone out
        self.progress: Callable[[str, int], None] | None = None   # the application's
        conn.progress = self._progress

    def _worker(self) -> ThreadPoolExecutor:
        if self.worker is None:
            if self.closed:  # (a call after close() raises at once: no thread of its own)
                return _connects()
            self.worker = ThreadPoolExecutor(1, thread_name_prefix="pooldbapi-aio")
        return self.worker

    def close(self) -> None:
        """Let the thread end once its last call has (called after the connection's close)."""
        self.closed = True
        if self.worker is not None:
            self.worker.shutdown(wait=False)
            self.worker = None

    def _cancelled(self) -> None:
        """Told (on the loop's thread) once the task of the call under way was cancelled: the
        call stops at its next row boundary; a statement a server runs for it meanwhile is
        cancelled there, and the wait for it bounded (CANCEL_GRACE)."""
        if not self.native:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # (no loop running here: nothing to ask from here)
            return
        # the call's settling waits for the requests to have gone out: one that arrived
        # after the call had ended would cancel the next statement on its session
        self.requested = requested = loop.create_future()
        watcher = loop.create_task(self._cancel_statements(requested))
        _WATCHERS.add(watcher)
        watcher.add_done_callback(_WATCHERS.discard)

    def _sessions(self) -> list[Any]:
        """The sessions this connection holds: borrowed, or kept and not taken by another
        borrower meanwhile (the pool takes only one that runs no statement)."""
        tx = self.conn.transaction
        return [*tx.borrowed.values(), *(p for p in tx.parked.values() if tx.still_kept(p))]

    async def _cancel_statements(self, requested: asyncio.Future[None]) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            for phys in self._sessions():
                request = phys.link.cancel_running(CANCEL_GRACE)
                if request is None:
                    continue
                try:
                    await request
                except Exception as exc:  # noqa: BLE001 - the bound below still holds
                    log.debug("cancelling a statement on the server: %s", exc)
        finally:
            if not requested.done():
                requested.set_result(None)
        deadline = loop.time() + CANCEL_GRACE
        while self.busy and self.shield.cancelled and loop.time() < deadline:
            await asyncio.sleep(0.05)
        if not (self.busy and self.shield.cancelled):
            return
        for phys in self._sessions():
            if phys.link.running():
                log.warning("a statement still ran %.1f s after its task was cancelled (and"
                            " the server asked to cancel it): its session is closed",
                            loop.time() - started)
                phys.link.shut()

    def _progress(self, alias: str, rows: int) -> None:
        # the runner tells this after each batch of rows written: the row boundary at which a
        # cancelled call stops
        if self.progress is not None:
            self.progress(alias, rows)
        if self.shield.cancelled:
            raise Interrupted

    async def run(self, fn: Callable[..., T], args: tuple[Any, ...] = (),
                  cursor: Cursor | None = None) -> T:
        """Run fn(*args) (in a greenlet or a worker thread); on cancellation wait for it to
        stop, then settle the transaction. cursor: the core cursor of a call that may write
        (autocommit: what a call that ended anyway committed is said)."""
        if self.busy:
            await self._turn()
        else:  # (no task, future or lock object for a call that finds the door free)
            self.busy = True
        try:
            if self.native:  # in a greenlet on the loop's thread: a cancellation is told to
                # the core (it stops at its next row boundary) while the driver's wait goes on
                try:
                    return await waits.drive(fn, args, self.shield)  # type: ignore[no-any-return]
                except waits.Cancelled as cancelled:
                    await self._settle_here(cancelled.ended.exc, cancelled, cursor, fn)
                    raise
            self.shield.cancelled = False
            work = in_worker(fn, self._worker(), args)
            try:
                return await asyncio.shield(work)
            except asyncio.CancelledError as cancelled:
                if work.cancelled():
                    raise  # the work itself was cancelled (never started)
                # (the work may have ended in the same turn as the cancellation: what it did
                # is settled as for work still running)
                self.shield.cancelled = True
                await _settled(work)
                await _settled(in_worker(self._after_cancel, self._worker(),
                                         (work.exception(), cancelled, cursor, fn)))
                raise
        finally:
            if self.waiters:
                self._leave()
            else:
                self.busy = False

    async def at_hand(self, cursor: Cursor, operation: str, parameters: Any) -> bool:
        """Run a prepared statement whose session is at hand (Cursor.at_hand) from the task
        itself: the driver's coroutines awaited here under the shield, with no greenlet and
        no switch; what may wait (an error's handling, a kept session to give back, a
        cancellation's settling) in a greenlet as run() runs its calls. False, with nothing
        done, where the door is taken or the statement is not at hand: run() then."""
        if self.busy or not self.direct:
            return False
        ready = cursor.at_hand(operation, parameters)
        if ready is None:
            return False
        self.busy = True
        shield = self.shield
        shield.cancelled = False
        try:
            try:
                phys = ready[1]
                cur = phys.cursor()  # (an adapter of the async driver's cursor: DIRECT)
                await waits.shielded(cur.execute_coroutine(ready[3], ready[4]), shield)
                try:
                    description = phys.describe(cur)
                    rows = await waits.shielded(cur.fetchall_coroutine(), shield) \
                        if description is not None else None
                except Exception as exc:  # the statement ran (as runner._run says it)
                    raise ReadFailed(exc) from exc
                result = answer(phys, ready[0].alias, cur, description, rows)
            except GeneratorExit as exc:  # the task's coroutine closed: nothing may be awaited
                cursor.failed(ready, exc)  # (none is, for what is no Exception: as Ctrl-C)
                raise
            except BaseException as exc:  # noqa: BLE001 - handled as execute() handles it
                error: BaseException = exc
                try:
                    error = await self._shielded(cursor.failed, (ready, exc))
                finally:
                    await self._raise_if_cancelled(error, cursor)
                raise error from error.__cause__
            try:
                if not cursor.ran(ready, result):
                    await self._shielded(cursor.hand_back, (ready,))
            finally:
                if shield.cancelled:  # (read here: no coroutine made where nothing was)
                    await self._raise_if_cancelled(None, cursor)
            return True
        finally:
            if self.waiters:
                self._leave()
            else:
                self.busy = False

    async def _raise_if_cancelled(self, exc: BaseException | None, cursor: Cursor) -> None:
        """After a statement at hand that ended (exc: what it raised): if its task was
        cancelled meanwhile, settle as run() settles (the notes say what became of the work)
        and raise the CancelledError."""
        if self.shield.cancelled:
            cancelled = asyncio.CancelledError()
            await self._settle_here(exc, cancelled, cursor)
            raise cancelled from None

    async def _shielded(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        """fn(*args) in a greenlet under the call's shield: its value, what it raises; a
        cancellation meanwhile is left in shield.cancelled (with one told before)."""
        shield = self.shield
        before = shield.cancelled
        try:
            return await waits.drive(fn, args, shield)  # type: ignore[no-any-return]
        except waits.Cancelled as cancelled:
            ended = cancelled.ended
            if ended.exc is not None:
                raise ended.exc from ended.exc.__cause__
            return ended.value  # type: ignore[no-any-return]
        finally:
            shield.cancelled = shield.cancelled or before

    async def _turn(self) -> None:
        """Wait for the calls that came before (the door is handed over: it stays busy)."""
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._leave()  # handed the door as the task was cancelled: the next one's
            else:
                self.waiters.remove(waiter)
            raise

    def _leave(self) -> None:
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.busy = False

    async def _settle_here(self, exc: BaseException | None,
                           cancelled: asyncio.CancelledError, cursor: Cursor | None,
                           fn: Callable[..., Any] | None = None) -> None:
        """Once a cancelled call has ended (exc: what it raised), settle the transaction (in a
        greenlet, not cut short by further cancellations either)."""
        requested, self.requested = self.requested, None
        if requested is not None:
            await _settled(requested)
        try:
            await waits.drive(self._after_cancel, (exc, cancelled, cursor, fn), waits.Shield())
        except waits.Cancelled:
            pass

    def _after_cancel(self, exc: BaseException | None, cancelled: asyncio.CancelledError,
                      cursor: Cursor | None, fn: Callable[..., Any] | None = None) -> None:
        for note in getattr(exc, "__notes__", ()):  # what the runner said of the rows
            cancelled.add_note(note)
        conn, tx = self.conn, self.conn.transaction
        with conn.lock:
            if conn.autocommit and not conn.closed:
                # a cancel request can land inside a batch's BEGIN ... COMMIT, or its undoing:
                # no session goes on to the next statement with a transaction left open. The
                # kept ones go back to their pools, which reset them (one another borrower
                # took meanwhile is that borrower's); one still borrowed is reset here.
                tx.release_parked()
                for phys in list(tx.borrowed.values()):
                    try:
                        with phys.lock:
                            phys.link.reset(False)
                    except Exception as undo:  # noqa: BLE001 - seen as broken at its next use
                        log.warning("after a cancellation, resetting a session: %s", undo)
            if conn.autocommit or conn.closed:
                if exc is None and cursor is not None:
                    cancelled.add_note(f"pooldbapi: the call ended before the cancellation"
                                       f" took effect: {_committed(cursor)}")
                elif isinstance(exc, Error) and not getattr(exc, "__notes__", None):
                    cancelled.add_note(_failed_after_cancel(exc))
                return
            if exc is None and getattr(fn, "__name__", None) in ("commit", "tpc_commit"):
                cancelled.add_note("pooldbapi: the commit ended before the cancellation took"
                                   " effect: the transaction is committed")
                return
            if not tx.borrowed and tx.failed is None:
                return  # nothing open: nothing to fail
            failed = tx.failed if tx.failed is not None else OperationalError(
                "the transaction was interrupted by the cancellation of a task while a call"
                " ran, so it cannot commit; call rollback()")
            try:
                tx.rollback()  # locks and sessions go back now, not at the application's call
            except Error as undo:
                log.warning("rolling back a transaction interrupted by a cancellation: %s", undo)
            tx.failed = failed  # still failed: every statement and commit() raise until rollback()
            cancelled.add_note("pooldbapi: the transaction was interrupted and is failed (every"
                               " container was rolled back): call rollback()")


def _failed_after_cancel(exc: Error) -> str:
    """What became of an autocommit call that raised exc once its task was cancelled (the
    server cancelled its statement on request, or it failed anyway)."""
    what = f"the statement was cancelled on {exc.container}" \
        if exc.sqlstate == QUERY_CANCELED else f"the call failed ({exc.reason})"
    if exc.written is not None:  # a write of rows: what each container committed
        kept = rows_per_container({a: r for a, r in exc.written.items() if r}) or "nothing"
        note = f"pooldbapi: {what}; committed before it: {kept}"
        if exc.unknown:
            note += "; outcome unknown (connection lost in flight): " + \
                rows_per_container(exc.unknown)
        return note
    if exc.sqlstate == QUERY_CANCELED:  # one statement, all or nothing on its server
        return f"pooldbapi: {what}: nothing of it was committed"
    return f"pooldbapi: {what}"


def _committed(cursor: Cursor) -> str:
    """What the call of a cursor just ended wrote (autocommit: committed), per container."""
    result = cursor._result  # the core result of the call
    if result is None:
        return "nothing"
    if result.written:
        return rows_per_container({a: rows for a, rows in result.written.items() if rows})
    return f"rowcount {result.rowcount} on {', '.join(sorted(result.containers))}"


async def _settled(work: asyncio.Future[Any]) -> None:
    """Wait until the call under way has ended, whatever further cancellations come: a session
    may not be used by the next call while a worker still writes on it. The wait is bounded by
    the core's own (the rows of one batch, the pool's timeout)."""
    while not work.done():
        try:
            await asyncio.wait({work})
        except asyncio.CancelledError:
            continue
