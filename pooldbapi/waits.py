"""Where the core waits: the one seam between its synchronous code and an event loop.

The core is written once, synchronously. A pooldbapi.aio call runs it in a greenlet on the
event loop's thread (spawn()); every wait of the core (a driver's I/O through an adapter, a
sleep, a lock, the pool's wait for a free session, work on several containers at once) goes
through this module, which blocks the thread as before outside such a greenlet and, inside
one, hands the awaitable to the event loop and resumes when it is done (await_only): the
technique SQLAlchemy runs its synchronous core over asyncio drivers with. Without greenlet
installed (the `aio` extra) everything blocks as before."""
from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
import types
import weakref
from asyncio import CancelledError, Future
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import CoroutineType
from typing import Any, TypeVar, cast

try:
    from greenlet import getcurrent, greenlet  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - the aio extra brings it
    greenlet = None
    getcurrent = None

T = TypeVar("T")
LOCK_POLL = 0.0005
"""Seconds between two tries of a lock another greenlet of the loop's thread holds."""


class NotInLoop(RuntimeError):
    """An awaitable was handed to await_only outside a call of pooldbapi.aio's greenlet
    mode (a session of an event loop used by synchronous code, or from another thread)."""


class _Ended:
    """What a call of a worker greenlet ended with: its value or its exception."""

    __slots__ = ("exc", "value")

    def __init__(self) -> None:
        self.value: Any = None
        self.exc: BaseException | None = None


def _serve(fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """What a worker greenlet runs: pooldbapi.aio's calls, one after another (its parent: the
    event loop's greenlet of the moment). It is switched to with (fn, args) to start a call,
    and switches back with (coroutine, yielded) for each wait of a driver's coroutine
    (await_only) and with an _Ended once the call is over."""
    me = getcurrent()
    while True:
        ended = _Ended()
        try:
            ended.value = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to drive(), raised there
            ended.exc = exc
        fn = args = None  # type: ignore[assignment]  # (nothing of the call kept while idle)
        fn, args = me.parent.switch(ended)


def _new_worker() -> Any:
    """A worker greenlet, kept between calls (making a greenlet costs about 9 us, switching
    to one well under 1). A plain greenlet, marked by an attribute of its own: the greenlet
    module checks the type of each greenlet it switches, a subclass's through its MRO."""
    worker = greenlet(_serve)
    worker.pooldbapi_async = True
    return worker


_IDLE = threading.local()
KEPT_WORKERS = 64
"""Idle worker greenlets kept per thread for later calls."""


class _Kept:
    """A thread's idle workers."""

    __slots__ = ("__weakref__", "workers")

    def __init__(self) -> None:
        self.workers: list[Any] = []


_EVERY_IDLE: weakref.WeakSet[_Kept] = weakref.WeakSet()  # each live thread's


def _idle() -> list[Any]:
    found: _Kept | None = getattr(_IDLE, "kept", None)
    if found is None:
        found = _IDLE.kept = _Kept()
        _EVERY_IDLE.add(found)
    return found.workers


def idle_workers() -> list[Any]:
    """The worker greenlets kept idle, in every thread (the others are in a call)."""
    return [worker for kept in list(_EVERY_IDLE) for worker in list(kept.workers)]


def available() -> bool:
    """Tell whether the greenlet package is there (pooldbapi.aio's native calls need it)."""
    return greenlet is not None


def active() -> bool:
    """Tell whether the calling code runs in a greenlet of spawn() (so waits are awaited)."""
    return getcurrent is not None and getattr(getcurrent(), "pooldbapi_async", False)


class Cancelled(asyncio.CancelledError):
    """Raised by spawn(fn, on_cancel) once fn ended after its task was cancelled: `ended`
    has what fn returned or raised."""

    def __init__(self, ended: _Ended) -> None:
        super().__init__()
        self.ended = ended


class Shield:
    """A call's cancellations while it waits: told to on_cancel, never thrown into the
    driver, whose wait goes on (so no call is abandoned in the middle of a protocol). One
    serves the calls of its owner one after another (drive() clears `cancelled` at each).

    Also what the task waits on in place of each of the driver's futures: the task is woken
    by that future itself (no proxy future, no extra turn of the loop), and the task's
    cancel() is told to on_cancel instead of cancelling the driver's future (it answers False,
    so asyncio throws CancelledError in once the wait is over)."""

    __slots__ = ("_asyncio_future_blocking", "add_done_callback", "cancelled", "future",
                 "get_loop", "on_cancel")

    def __init__(self, on_cancel: Callable[[], None] | None = None) -> None:
        self.on_cancel = on_cancel
        self.cancelled = False
        self.future: asyncio.Future[Any] | None = None  # the driver's, waited on
        self._asyncio_future_blocking = False
        # what the task calls on what it waits on: the driver's future's own methods (set
        # for each wait; built-ins, so the task's calls cost no Python frame)
        self.get_loop: Callable[[], asyncio.AbstractEventLoop]
        self.add_done_callback: Callable[..., None]

    def waiting(self, future: asyncio.Future[Any]) -> Shield:
        """Self, to be yielded to the task for a wait on the driver's future."""
        self.future = future
        self.get_loop = future.get_loop
        self.add_done_callback = future.add_done_callback
        self._asyncio_future_blocking = True  # (as Future.__await__ yields itself)
        return self

    def remove_done_callback(self, fn: Callable[[Any], object]) -> int:
        assert self.future is not None
        return self.future.remove_done_callback(fn)

    def done(self) -> bool:
        return self.future is not None and self.future.done()

    def cancel(self, msg: Any = None) -> bool:
        self.tell()
        return False

    def tell(self) -> None:
        """Tell on_cancel of a cancellation (once)."""
        if not self.cancelled:
            self.cancelled = True
            if self.on_cancel is not None:
                self.on_cancel()


async def spawn(fn: Callable[[], T], on_cancel: Callable[[], None] | None = None) -> T:
    """Run the synchronous fn in a greenlet on this event loop's thread; each await_only in
    it awaits here. What fn raises is raised to the caller. A cancellation of the task is
    thrown into fn at its wait; with on_cancel it is told to on_cancel instead, fn's waits go
    on, and once fn has ended Cancelled (a CancelledError) is raised with its outcome."""
    shield = Shield(on_cancel) if on_cancel is not None else None
    return await drive(fn, (), shield)  # type: ignore[no-any-return]


@types.coroutine
def drive(fn: Callable[..., Any], args: tuple[Any, ...] = (),
          shield: Shield | None = None) -> Generator[Any, Any, Any]:
    """spawn(), for fn(*args), as an awaitable of one frame (no coroutine of its own): what a
    call of pooldbapi.aio awaits. Each wait of a driver's coroutine in fn is driven from here
    (_waits): its futures go to the task as they would from the coroutine awaited directly
    (under the shield when one is given, kept by its owner from call to call: see Shield),
    what the task sends or throws goes back to it."""
    if greenlet is None:
        raise NotInLoop("pooldbapi.aio needs the greenlet package: pip install 'pooldbapi[aio]'")
    kept = getattr(_IDLE, "kept", None)  # (_idle(), inline: once per call)
    idle = kept.workers if kept is not None else _idle()
    worker = idle.pop() if idle else _new_worker()
    current = getcurrent()
    worker.parent = current
    # the task's contextvars (its span), as a copy: what the call sets stays in the call,
    # as in a worker thread's call
    worker.gr_context = current.gr_context.copy()
    if shield is not None:
        shield.cancelled = False
    result = worker.switch(fn, args)
    while type(result) is tuple:  # a driver's coroutine that waits, and what it yielded
        coro, yielded = result
        try:
            value = yield from _waits(coro, yielded, shield)
        except BaseException as exc:  # noqa: BLE001 - the driver's, raised at fn's wait
            result = worker.throw(exc)
        else:
            result = worker.switch(value)
    if len(idle) < KEPT_WORKERS:
        idle.append(worker)
    if shield is not None and shield.cancelled:
        raise Cancelled(result)
    if result.exc is not None:
        raised, result.exc = result.exc, None
        raise raised
    return result.value


def _waits(coro: Coroutine[Any, Any, T], yielded: Any, shield: Shield | None
           ) -> Generator[Any, Any, T]:
    """Wait for a driver's coroutine that yielded `yielded` (drive()'s and shielded()'s
    awaiting): its futures go to the task as they would from the coroutine awaited directly,
    under the shield when one is given; what the task sends or throws goes back to it.
    Returns the coroutine's value, raises its exception."""
    try:
        while True:
            if shield is not None and isinstance(yielded, Future):
                while not yielded.done():  # (woken early: wait for the driver's again)
                    waiting = shield.waiting(yielded)
                    try:
                        yield waiting
                    except CancelledError:  # (told already by shield.cancel)
                        shield.tell()
                    except GeneratorExit:  # the task's coroutine closed: no more waiting
                        raise
                    except BaseException:  # noqa: BLE001, S110 - the future's own outcome
                        pass  # (the driver reads it from its future)
                shield.future = None
                yielded._asyncio_future_blocking = False
                sent = None  # (the driver reads its future's result itself)
            else:
                try:
                    sent = yield yielded
                except BaseException as exc:  # noqa: BLE001 - a cancellation goes into it
                    if shield is not None and isinstance(exc, CancelledError):
                        shield.tell()
                        sent = None
                    else:
                        yielded = coro.throw(exc)
                        continue
            yielded = coro.send(sent)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


@types.coroutine
def shielded(coro: Coroutine[Any, Any, T], shield: Shield) -> Generator[Any, Any, T]:
    """Await a driver's coroutine from the task itself (no greenlet), under the shield: a
    cancellation of the task is told to it and the driver's wait goes on (the caller reads
    shield.cancelled afterwards). One that ends without waiting costs no turn of the loop."""
    try:
        yielded = coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    return (yield from _waits(coro, yielded, shield))


async def _awaiting(awaitable: Awaitable[T]) -> T:
    return await awaitable


def await_only(awaitable: Awaitable[T]) -> T:
    """Wait for an awaitable from synchronous code that runs in a greenlet of spawn(). The
    coroutine is first run right here, so one that ends without waiting (a fetch of rows
    already read) costs no switch; one that waits is handed on to the event loop (drive())."""
    current = getcurrent() if getcurrent is not None else None
    if not getattr(current, "pooldbapi_async", False):
        if isinstance(awaitable, Coroutine):
            awaitable.close()
        raise NotInLoop("a session of an event loop was used outside pooldbapi.aio's calls"
                        " (from synchronous code or another thread)")
    # (a driver's coroutine: its exact type, before the slower check against the ABC)
    coro = awaitable if type(awaitable) is CoroutineType or isinstance(awaitable, Coroutine) \
        else _awaiting(awaitable)
    try:
        yielded = coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    return current.parent.switch(coro, yielded)  # type: ignore[no-any-return, union-attr]


def run_ready(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never waits (a driver's close, which only frees its socket) from
    synchronous code; NotInLoop if it would wait."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return cast(T, stop.value)
    coro.close()
    raise NotInLoop("the call needs its event loop")


def sleep(seconds: float) -> None:
    """Sleep: awaited in a greenlet of spawn(), else the thread sleeps."""
    if active():
        await_only(asyncio.sleep(seconds))
    else:
        time.sleep(seconds)


class LoopLock:
    """A lock that a greenlet of spawn() may hold across waits: one that finds it taken tries
    again after an awaited pause, so the event loop (and with it the holder) goes on; a
    thread blocks as on a threading.Lock."""

    __slots__ = ("_lock", "acquire", "locked", "release")

    def __init__(self) -> None:
        self._lock = lock = threading.Lock()
        # the lock's own methods (built-ins: the runner's acquire(False) and release of a
        # session on each statement cost no Python frame)
        self.acquire: Callable[..., bool] = lock.acquire
        """threading.Lock's acquire (a greenlet that may have to wait uses `with`)."""
        self.release: Callable[[], None] = lock.release
        self.locked: Callable[[], bool] = lock.locked
        """Tell whether someone holds the lock."""

    def __enter__(self) -> None:
        if self._lock.acquire(False):
            return
        if not active():
            self._lock.acquire()
            return
        while not self._lock.acquire(False):
            await_only(asyncio.sleep(LOCK_POLL))

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def new_lock() -> threading.Lock | LoopLock:
    """The lock of something used across waits: a LoopLock in a greenlet of spawn() (what it
    guards belongs to that event loop), else a threading.Lock."""
    return LoopLock() if active() else threading.Lock()


class SharedThreads:
    """Worker threads shared by the process, made at the first call; a forked child makes its
    own (the parent's threads do not exist there). Calling it returns the executor."""

    def __init__(self, workers: int, prefix: str) -> None:
        self.workers, self.prefix = workers, prefix
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forget)

    def __call__(self) -> ThreadPoolExecutor:
        found = self._executor
        if found is None:
            with self._lock:
                found = self._executor
                if found is None:
                    found = self._executor = ThreadPoolExecutor(
                        self.workers, thread_name_prefix=self.prefix)
        return found

    def _forget(self) -> None:
        self._executor, self._lock = None, threading.Lock()


def gather(calls: Sequence[Callable[[], T]], interrupted: Callable[[], None]) -> list[T]:
    """Run synchronous calls at once, each in a greenlet of its own driven by a task of this
    loop (the caller being in a greenlet of spawn()); return their results in order, or raise
    the first one's exception (in order) once every call has ended. Should the wait itself be
    interrupted, `interrupted` is told (it stops the calls at their next boundary) and every
    call is still waited for: none may go on using what the caller gives back."""
    tasks = [asyncio.ensure_future(spawn(call)) for call in calls]
    try:
        await_only(asyncio.wait(tasks))
    except BaseException:
        interrupted()
        await_only(_settled(tasks))
        _retrieved(tasks)
        raise
    _retrieved(tasks)
    return [task.result() for task in tasks]


def _retrieved(tasks: Sequence[asyncio.Future[Any]]) -> None:
    """Mark every ended task's exception as retrieved (the first is raised, the others were
    told to stop: asyncio would log each as never retrieved)."""
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()


async def _settled(tasks: Sequence[asyncio.Future[Any]]) -> None:
    while not all(task.done() for task in tasks):
        try:
            await asyncio.wait(tasks)
        except asyncio.CancelledError:
            continue


class Wakeup:
    """What a waiter of the pool sleeps on: a threading.Condition on the pool's lock for a
    thread, a future of its loop for a greenlet of spawn() (woken from any thread)."""

    __slots__ = ("cond", "future", "loop")

    def __init__(self, lock: threading.Lock) -> None:
        self.cond = threading.Condition(lock)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.future: asyncio.Future[None] | None = None
        if active():
            self.loop = asyncio.get_running_loop()
            self.future = self.loop.create_future()

    def notify(self) -> None:
        """Wake the waiter (held: the lock the condition is on)."""
        if self.loop is None:
            self.cond.notify()
        else:
            self.loop.call_soon_threadsafe(_set, self.future)

    def wait(self, lock: threading.Lock, timeout: float) -> None:
        """Wait up to timeout seconds to be woken (held: lock; held again on return)."""
        if self.future is None:
            self.cond.wait(timeout)
            return
        lock.release()
        try:
            await_only(asyncio.wait({self.future}, timeout=timeout))
        finally:
            lock.acquire()  # (the pool holds it briefly, never across a wait)
            if self.future.done():  # a later wait waits for a later wake-up
                self.future = self.loop.create_future() if self.loop is not None else None


def _set(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


_LOOPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, int] = weakref.WeakKeyDictionary()
_NUMBERS = iter(range(1, sys.maxsize))
_LOOPS_LOCK = threading.Lock()


def loop_key() -> int | None:
    """A number of the running event loop in a greenlet of spawn() (a session belongs to
    the loop it was opened on: such sessions are pooled per loop), None outside one."""
    if not active():
        return None
    loop = asyncio.get_running_loop()
    found = _LOOPS.get(loop)
    if found is None:
        with _LOOPS_LOCK:
            found = _LOOPS.get(loop)
            if found is None:
                found = _LOOPS[loop] = next(_NUMBERS)
    return found


def awaited_task(coro: Coroutine[Any, Any, T]) -> T:
    """Await a coroutine as a task of its own (in a greenlet of spawn()): its timeouts
    (cancellations within that task) stay its own, and a cancellation of the caller's wait,
    where pooldbapi.aio lets one in, ends it too."""
    task = asyncio.ensure_future(coro)
    try:
        return await_only(task)
    except BaseException:
        task.cancel()
        raise


class _LoopClients:
    """The async clients (each with an aclose()) of one event loop, closed on it when it
    shuts down: an async generator of the loop's, which asyncio.run() closes
    (shutdown_asyncgens) while the loop still runs, so that clients kept past the loop's end
    leave no socket open."""

    def __init__(self) -> None:
        self.clients: weakref.WeakSet[Any] = weakref.WeakSet()
        self.generator = self._closer()

    async def _closer(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            for client in list(self.clients):
                with contextlib.suppress(Exception):
                    await client.aclose()


_ENDINGS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClients] = \
    weakref.WeakKeyDictionary()
_LOOP_OF: weakref.WeakKeyDictionary[Any, asyncio.AbstractEventLoop] = \
    weakref.WeakKeyDictionary()


def closed_with_loop(client: Any) -> None:
    """Have the running loop's shutdown close an async client (its aclose()), kept weakly."""
    loop = asyncio.get_running_loop()
    found = _ENDINGS.get(loop)
    if found is None:
        found = _ENDINGS[loop] = _LoopClients()
        # its first step in the loop's thread makes it the loop's (asyncio's firstiter hook)
        run_ready(found.generator.__anext__())
    found.clients.add(client)
    _LOOP_OF[client] = loop


def loop_of(client: Any) -> asyncio.AbstractEventLoop | None:
    """The event loop a client was given to closed_with_loop() on, or None."""
    return _LOOP_OF.get(client)
