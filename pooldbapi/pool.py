"""Process-wide pools of physical connections, keyed by the resolved container definition
(and, in a call of pooldbapi.aio, by its event loop: a session belongs to the loop it was
opened on)."""
from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from . import telemetry, waits
from .backends import backend as load_backend
from .backends.base import Description, Link, driver_error
from .cache import made_once
from .errors import Error, OperationalError
from .health import HEALTH
from .settings import ContainerSpec
from .throttle import Limiter, throttle_for

log = logging.getLogger("pooldbapi")


class Physical:
    """One pooled connection and what the pool knows of it (when opened and given back,
    whether its session changed, who keeps it); its link (backends.base.Link) answers for the
    connection: is_broken, aborted, check, atomic, describe and wrap are the link's own."""

    __slots__ = (
        "_cursor",
        "aborted",
        "atomic",
        "backend",
        "check",
        "created",
        "describe",
        "expires",
        "in_transaction",
        "is_broken",
        "limiter",
        "link",
        "lock",
        "parked_by",
        "pool",
        "returned",
        "session_changed",
        "spec",
        "wrap",
    )

    def __init__(self, link: Link, pool: Pool) -> None:
        self.pool = pool  # given back there, even if close_all() replaced the pools meanwhile
        self.link = link
        self.spec = link.spec
        self.backend = backend = link.backend
        self.created = self.returned = time.monotonic()
        self.expires = self.created + link.spec.options.connection_lifetime
        self.session_changed = False
        self.in_transaction = False  # borrowed by a transaction that began on it
        self.parked_by: Any = None  # kept by this borrower between autocommit statements
        # sqlite3 connections move between worker threads: access is serialised
        self.lock = waits.new_lock()  # (held across awaits by a session of an event loop)
        self._cursor: Any = None
        # the link's answers, bound once (each is a call on the one-container path)
        self.describe: Callable[..., Description | None] = link.describe
        self.check: Callable[..., bool] = link.check
        self.is_broken: Callable[[], bool] = link.is_broken
        self.aborted: Callable[[], bool] = link.aborted
        self.atomic: Callable[[], AbstractContextManager[Any]] = link.atomic
        self.wrap: Callable[[BaseException], Error] = link.wrap
        # what the runner waits on before a call (None: the back-end waits itself, per call)
        self.limiter: Limiter | None = None if backend.throttles_calls else pool.limiter

    def checked_after_keep(self, now: float, round_trip: bool = True) -> bool:
        """A kept session's check as its borrower takes it again: alive (Link.check), taken
        as alive within KEPT_UNCHECKED of the end of its last statement (round_trip False: a
        check in doubt answers False, with no round trip)."""
        return now - self.returned < KEPT_UNCHECKED or self.check(round_trip)

    def reset(self) -> bool:
        """Make the connection fit for the next user (False: it is closed instead)."""
        return self.link.reset(self.session_changed)

    def cursor(self) -> Any:
        """Return the driver cursor kept for this connection (results are read whole)."""
        if self._cursor is None:
            self._cursor = self.link.cursor()
        return self._cursor


class PoolClosed(OperationalError):
    """Pool.acquire on a pool closed meanwhile (pool.acquire(spec) tries its successor)."""


class Waiter:
    """A borrower waiting for a connection, in the pool's queue of arrival. Whoever frees a
    connection hands it (or its place under the maximum: `granted` with no `phys`) straight to
    the oldest waiter, so one that just gave a connection back cannot take it again first."""

    __slots__ = ("granted", "phys", "wake")

    def __init__(self, lock: threading.Lock) -> None:
        # on the pool's own lock: no hand-over is missed (a greenlet of pooldbapi.aio awaits)
        self.wake = waits.Wakeup(lock)
        self.granted = False
        self.phys: Physical | None = None


@dataclass
class PoolStats:
    """Counters of one pool."""

    alias: str
    driver: str
    open: int
    idle: int
    in_use: int
    waits: int
    errors: int
    maximum: int
    parked: int = 0  # kept by their borrower between autocommit statements (not in in_use)
    waiting: int = 0   # borrowers waiting for a connection now
    minimum: int = 0


class Pool:
    """The physical connections of one container definition."""

    def __init__(self, spec: ContainerSpec, key: Any = None) -> None:
        self.spec = spec
        self.key = spec.key if key is None else key  # (an event loop's sessions: its own)
        self.backend = load_backend(spec.driver, spec.alias)
        opts = spec.options
        cap = self.backend.max_connections(spec)
        self.maximum = max(1, opts.maximum_number_of_pooled_connections)
        if cap is not None:
            self.maximum = min(self.maximum, cap)
        self.pooling = opts.allow_connection_pooling or cap == 1
        # the container's call limit (None: none); a back-end that makes several calls for one
        # statement is handed it and takes its slots itself, for others the runner takes them
        self.limiter = throttle_for(spec)
        # Under the process-wide bound on idle connections, unless this pool was asked to keep
        # some (a minimum), or its one connection is its data (a :memory: database).
        self.bounded = cap != 1 and opts.minimum_number_of_pooled_connections == 0
        self._idle: deque[Physical] = deque()
        self._open = 0
        self._waits = 0
        self._errors = 0
        self._lock = threading.Lock()  # never taken twice by one thread
        self._waiting: deque[Waiter] = deque()  # oldest first; only then is anyone woken
        # Sessions kept by their last borrower between its autocommit statements, longest kept
        # first; anyone who would otherwise wait takes one (see park()).
        self._parked: dict[Physical, None] = {}
        self.closed = False
        self.used = time.monotonic()  # last acquire: a pool unused past idle-timeout is closed

    def _connect(self) -> Physical:
        started = time.perf_counter()
        try:
            link = self.backend.connect(
                self.spec, self.limiter if self.backend.throttles_calls else None)
        except Error:
            raise
        except Exception as exc:
            self._errors += 1
            err = driver_error(self.backend, self.spec, exc, connecting=True)
            err.unsent = True
            if self.backend.is_connection_error(exc):
                err.connection_failure = True
                HEALTH.failed(self.spec, str(err))
            raise err from exc
        HEALTH.succeeded(self.spec)
        if telemetry.ON:
            telemetry.created(self.spec, time.perf_counter() - started)
        return Physical(link, self)

    def _expired(self, phys: Physical, now: float) -> bool:
        opts = self.spec.options
        if now > phys.expires or phys.is_broken():
            return True
        # idle connections beyond the minimum are closed after idle-timeout
        return now - phys.returned > opts.idle_timeout and \
            self._open > opts.minimum_number_of_pooled_connections

    def _hand_over(self, phys: Physical | None) -> bool:
        """Give a connection (None: a place under the maximum) to the oldest waiter; False when
        nobody waits (held: the pool's lock)."""
        if not self._waiting:
            return False
        waiter = self._waiting.popleft()
        waiter.granted, waiter.phys = True, phys
        waiter.wake.notify()
        return True

    def _free_place(self) -> None:
        """A connection was closed: its place goes to the oldest waiter (held: the lock)."""
        if not self._hand_over(None):
            self._open -= 1

    def _wait(self, deadline: float) -> Physical | None:
        """Queue up and wait for a connection or a place (held: the lock); None: a place, to
        open a connection in, or the pool was closed. Raises at the deadline."""
        waiter = Waiter(self._lock)
        self._waiting.append(waiter)
        self._waits += 1
        try:
            while not waiter.granted:
                if self.closed:  # (close() emptied the queue and woke everyone in it)
                    return None
                # Queued before looking: a kept session whose statement ends after this look is
                # given back by its borrower, who sees the queue then (Transaction.kept_done).
                if self._parked and self._waiting and self._waiting[0] is waiter:
                    kept = self._steal()
                    if kept is not None:
                        self._waiting.popleft()
                        if self._waiting and self._parked:  # the next in line looks too
                            self._waiting[0].wake.notify()
                        return kept
                remaining = deadline - time.monotonic()
                if self.closed:
                    return None
                if remaining <= 0:
                    if telemetry.ON:
                        telemetry.timed_out(self.spec.alias)
                    raise OperationalError(
                        f"container {self.spec.alias!r}: no free physical connection within"
                        f" {self.spec.options.pool_timeout:g} s (all {self.maximum} of"
                        " maximum-number-of-pooled-connections are in use)")
                waiter.wake.wait(self._lock, remaining)
            return waiter.phys
        except BaseException:
            if not waiter.granted:
                if waiter in self._waiting:
                    self._waiting.remove(waiter)
            elif waiter.phys is None:  # handed a place just as Ctrl-C struck: pass it on
                self._free_place()
            elif not self._hand_over(waiter.phys):
                self._to_idle(waiter.phys)
            raise

    def acquire(self) -> Physical:
        """Borrow a physical connection, waiting up to pool-timeout for a free one; waiters are
        served in their order of arrival."""
        now = self.used = time.monotonic()
        deadline = now + self.spec.options.pool_timeout
        with self._lock:
            if self.closed:
                candidate = None
            elif self._idle:  # (never while anyone waits: a freed connection goes to them)
                candidate = self._idle.pop()
                if self.bounded:
                    _untrack(candidate)
            elif self._open < self.maximum:
                self._open += 1
                candidate = None
            else:  # one kept by a borrower between statements is taken from it now (by the
                # first in line: nobody who came later overtakes a waiter)
                candidate = self._steal() if self._parked and not self._waiting else None
                if candidate is None:
                    candidate = self._wait(deadline)
            closed = self.closed and candidate is None
        if closed:  # evicted or closed by close_all() meanwhile (acquire(spec) goes on with
            # its successor)
            raise PoolClosed(f"container {self.spec.alias!r}: its pool is closed")
        # From here this borrower holds a place under the maximum: a connection that fails its
        # check is replaced in that place, so nobody who came later overtakes.
        while candidate is not None:
            # the check may need a round trip: never under the pool's lock
            if not self._expired(candidate, now) and candidate.check():
                return candidate
            candidate.link.close()
            with self._lock:
                if not self._idle:
                    break
                self._open -= 1  # the closed one's place (nobody waits while any is idle)
                candidate = self._idle.pop()
                if self.bounded:
                    _untrack(candidate)
        try:
            phys = self._connect()
        except BaseException:
            with self._lock:
                self._free_place()
            raise
        self._fill_minimum()
        return phys

    def park(self, phys: Physical, owner: object) -> bool:
        """Let the borrower `owner` keep phys for its autocommit statements: while nobody waits
        for a connection of this pool (a borrower that would wait takes a kept session that
        runs no statement, and its borrower gives back one that does when it ends, so none
        waits for a kept session). False: someone waits, the pool is closed, pooling is off,
        or phys is past connection-lifetime (the reaper closes one that passes it while kept);
        give it back then. The borrower runs its statements on it without asking the pool
        again (under the session's lock; Transaction.take_kept); taking it from the borrower
        holds both locks."""
        now = time.monotonic()
        if not self.pooling or now > phys.expires:
            return False  # one per use, or too old to keep: given back, and closed there
        with self._lock:
            if self._waiting or self.closed:
                return False
            phys.parked_by = owner
            phys.returned = now
            self._parked[phys] = None
            return True

    def unpark(self, phys: Physical, owner: object) -> bool:
        """Take back a session `owner` kept; False when the pool gave it to another borrower
        (or closed it) meanwhile. Under the pool's lock, so only one of them ever has it."""
        with self._lock:
            if phys.parked_by is not owner:
                return False
            phys.parked_by = None
            del self._parked[phys]
            return True

    def keeps(self, phys: Physical, now: float) -> bool:
        """Tell whether the borrower that keeps phys may go on keeping it after a statement:
        nobody waits, the pool is open, phys is within connection-lifetime."""
        return not self._waiting and not self.closed and now <= phys.expires

    def _steal(self) -> Physical | None:
        """Take the session kept longest that runs no statement now from its borrower; None if
        every kept one does (held: the lock; its borrower gives it back when it ends)."""
        for phys in self._parked:
            if phys.lock.acquire(False):
                try:
                    return self._take_parked(phys)
                finally:
                    phys.lock.release()
        return None

    def _take_parked(self, phys: Physical) -> Physical:
        """Take a kept session from its borrower (held: the lock)."""
        del self._parked[phys]
        phys.parked_by = None
        return phys

    def reap(self, now: float) -> None:
        """Close idle connections past idle-timeout (beyond the minimum) or connection-lifetime,
        without waiting for traffic."""
        with self._lock:
            keep: deque[Physical] = deque()
            stale: list[Physical] = []
            for phys in self._idle:
                if self._expired(phys, now):
                    self._open -= 1
                    stale.append(phys)
                    _untrack(phys)
                else:
                    keep.append(phys)
            self._idle = keep
            orphans: list[Physical] = []
            for phys in list(self._parked):
                if not phys.lock.acquire(False):
                    continue  # running a statement
                try:
                    if self._expired(phys, now):  # kept past idle-timeout or lifetime
                        stale.append(self._take_parked(phys))
                        self._free_place()  # (its place to anyone waiting)
                    elif phys.parked_by() is None:  # its connection went without closing
                        orphans.append(self._take_parked(phys))
                finally:
                    phys.lock.release()
        for phys in stale:
            phys.link.close()
        for phys in orphans:
            self.release(phys)

    def unused(self, now: float) -> bool:
        """Tell whether the pool holds no connection and was not used for its idle timeout."""
        with self._lock:
            return self._open == 0 and not self._waiting and \
                now - self.used > self.spec.options.idle_timeout

    def _fill_minimum(self) -> None:
        """Open idle connections up to minimum-number-of-pooled-connections."""
        while self.pooling:
            with self._lock:
                if self._open >= min(self.spec.options.minimum_number_of_pooled_connections,
                                     self.maximum):
                    return
                self._open += 1
            try:
                phys = self._connect()
            except Error:
                with self._lock:
                    self._open -= 1
                return
            with self._lock:
                if not self._hand_over(phys):
                    self._idle.appendleft(phys)

    def _to_idle(self, phys: Physical) -> bool:
        """Keep phys idle (held: the lock); True when that took the process over its bound."""
        self._idle.append(phys)
        if not self.bounded:
            return False
        with _IDLE_LOCK:
            _IDLE[phys] = None
            return len(_IDLE) > IDLE_LIMIT

    def evict(self, phys: Physical) -> None:
        """Close phys if it is still idle here (the process has too many idle connections);
        a pool left with no connection is dropped (a later use makes a new one)."""
        with self._lock:
            _untrack(phys)
            if phys not in self._idle:
                return  # borrowed (or closed) meanwhile
            self._idle.remove(phys)
            self._open -= 1
            empty = self._open == 0
        phys.link.close()
        if empty:
            with _LOCK:
                if _POOLS.get(self.key) is self and self.stats().open == 0:
                    del _POOLS[self.key]
                    self.close()

    def release(self, phys: Physical, broken: bool = False) -> None:
        """Give a physical connection back: reset and kept, or closed when broken or old."""
        keep = self.pooling and not broken and not self.closed and \
            not phys.is_broken()
        if keep:
            try:
                keep = phys.reset()
                phys.session_changed = False
            except Exception as exc:  # noqa: BLE001 - one that cannot be reset is never handed out
                log.info("container %s: dropping a connection that failed its reset: %s",
                         self.spec.alias, type(exc).__name__)
                keep = False
        now = time.monotonic()
        if keep and now > phys.expires:
            keep = False
        if not keep:
            phys.link.close()
        over = False
        with self._lock:
            if not keep:
                self._free_place()
            elif not self._hand_over(phys):
                phys.returned = now
                over = self._to_idle(phys)
        if over:
            _evict()

    def close(self) -> None:
        """Close every idle physical connection (those in use are closed when given back)."""
        with self._lock:
            self.closed = True
            waiting, self._waiting = self._waiting, deque()
            for waiter in waiting:  # each goes to the successor pool
                waiter.wake.notify()
        self.close_idle()

    def close_idle(self) -> None:
        """Close the idle connections and the kept ones (their borrowers borrow anew): on
        close, and after a connection-level failure (they are suspect then)."""
        with self._lock:
            idle, self._idle = list(self._idle), deque()
            while (kept := self._steal()) is not None:  # (one running a statement is given
                idle.append(kept)  # back by its borrower when it ends, and closed there)
            for phys in idle:
                self._free_place()  # (a kept one's place to anyone waiting)
                _untrack(phys)
        for phys in idle:
            phys.link.close()

    def stats(self) -> PoolStats:
        """Return this pool's counters."""
        with self._lock:
            idle, parked = len(self._idle), len(self._parked)
            return PoolStats(self.spec.alias, self.spec.driver, self._open, idle,
                             self._open - idle - parked, self._waits, self._errors,
                             self.maximum, parked, len(self._waiting),
                             self.spec.options.minimum_number_of_pooled_connections)


KEPT_UNCHECKED = 0.001
"""A session kept between autocommit statements (Pool.park) that ran its last statement less
than this many seconds ago is used without the liveness check (Link.check; for PostgreSQL a
poll() of its socket). The check finds a session the server ended while it sat kept (a
restart, idle_session_timeout, pg_terminate_backend) and replaces it before anything is sent;
it never promised anything about the next microseconds, since a server can end a session just
after the check or during the statement, which every statement must survive anyway. So a
statement that follows the last within a millisecond runs as psycopg_pool's unchecked
connections do; after any longer pause the check (a system call) is a tiny share of it."""
IDLE_LIMIT = 64
"""At most this many idle physical connections are kept across all the pools of a process
(those of pools with a minimum, and :memory: databases' own, aside): past it the connection
idle longest is closed, so that many distinct definitions used once each (a file per job) do
not each keep a descriptor until their idle timeout."""
_IDLE: dict[Physical, None] = {}  # the idle connections under IDLE_LIMIT, longest idle first
_IDLE_LOCK = threading.Lock()  # taken inside a pool's lock, never the other way round


def _untrack(phys: Physical) -> None:
    with _IDLE_LOCK:
        _IDLE.pop(phys, None)


def _evict() -> None:
    """Close the connections idle longest until the process is back within IDLE_LIMIT."""
    while True:
        with _IDLE_LOCK:
            if len(_IDLE) <= IDLE_LIMIT:
                return
            victim = next(iter(_IDLE))
        victim.pool.evict(victim)


_POOLS: dict[Any, Pool] = {}
_LOCK = threading.Lock()
INHERITED: list[Any] = []
"""Pools and physical connections a child process inherited through fork: kept referenced and
never used, so that nothing (no rollback, no terminate) is sent on the parent's sessions."""
REAP_INTERVAL = 5.0
"""Seconds between two rounds of the reaper (at most; sooner for shorter idle timeouts)."""
_reaper: threading.Thread | None = None


def acquire(spec: ContainerSpec) -> Physical:
    """Borrow a connection to a container from its pool; a pool closed meanwhile (evicted, or
    by close_all()) hands over to the one that took its place."""
    pool = pool_for(spec)
    while True:
        try:
            return pool.acquire()
        except PoolClosed:
            successor = pool_for(spec)
            if successor is pool:
                raise
            pool = successor


def pool_for(spec: ContainerSpec) -> Pool:
    """Return the process-wide pool of a container definition, creating it on first use; a
    call of pooldbapi.aio gets the pool of its event loop's sessions."""
    loop = waits.loop_key()
    key = spec.key if loop is None else (spec.key, loop)
    found = _POOLS.get(key)
    if found is not None:
        return found
    if loop is not None and loop not in _LOOP_POOLS:
        _LOOP_POOLS[loop] = _LoopPools(loop)
    return made_once(_POOLS, _LOCK, key, lambda: _started(Pool(spec, key)))


class _LoopPools:
    """The pools of one event loop's sessions, closed as the loop shuts down (asyncio.run()'s
    end; waits.closed_with_loop): no session of a loop that has ended can serve again, and
    each would stay open on its server until the reaper's idle timeout."""

    def __init__(self, loop: int) -> None:
        self.loop = loop
        waits.closed_with_loop(self)

    async def aclose(self) -> None:
        _LOOP_POOLS.pop(self.loop, None)
        with _LOCK:
            ended = [k for k in _POOLS if isinstance(k, tuple) and k[1] == self.loop]
            pools = [_POOLS.pop(k) for k in ended]
        for pool in pools:
            pool.close()


_LOOP_POOLS: dict[int, _LoopPools] = {}


def _started(pool: Pool) -> Pool:
    """A new pool, with the reaper running (held: _LOCK)."""
    _start_reaper()
    return pool


def _start_reaper() -> None:
    global _reaper
    if _reaper is None or not _reaper.is_alive():
        _reaper = threading.Thread(target=_reap_loop, name="pooldbapi-reaper", daemon=True)
        _reaper.start()


def reap() -> None:
    """One round of the reaper: expire idle connections, close pools unused for their idle
    timeout (a later connect opens a new one)."""
    now = time.monotonic()
    with _LOCK:
        pools = list(_POOLS.items())
    for key, pool in pools:
        pool.reap(now)
        if pool.unused(now):
            with _LOCK:
                if _POOLS.get(key) is pool and pool.unused(now):
                    del _POOLS[key]
                    pool.close()


def _reap_loop() -> None:
    global _reaper
    while True:
        with _LOCK:
            if not _POOLS:
                _reaper = None
                return
            shortest = min(min(p.spec.options.idle_timeout, p.spec.options.connection_lifetime)
                           for p in _POOLS.values())
        time.sleep(max(0.05, min(REAP_INTERVAL, shortest / 2)))
        try:
            reap()
        except Exception:  # the reaper must outlive any one pool's trouble
            log.exception("pooldbapi: the pool reaper failed a round")


def close_all() -> None:
    """Close every pooled physical connection of this process."""
    with _LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.close()


def pool_stats() -> list[PoolStats]:
    """Return the counters of every pool of this process."""
    with _LOCK:
        pools = list(_POOLS.values())
    return [pool.stats() for pool in pools]


def _forget_inherited() -> None:
    # A child must not use, close or even finalise the parent's connections (closing would send
    # a terminate, or roll back a SQLite journal): keep them referenced, never touched.
    global _LOCK, _IDLE_LOCK, _reaper
    INHERITED.extend(_POOLS.values())
    _POOLS.clear()
    _LOOP_POOLS.clear()  # (the parent's loops do not run here)
    _IDLE.clear()
    _LOCK = threading.Lock()
    _IDLE_LOCK = threading.Lock()
    _reaper = None


atexit.register(close_all)
telemetry.observe(pool_stats=pool_stats)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited)
