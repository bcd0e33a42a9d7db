"""Process-wide pools of physical connections, keyed by the resolved container definition."""
from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from . import telemetry
from .backends import backend as load_backend
from .backends.base import Backend
from .errors import Error, OperationalError, wrap
from .health import HEALTH
from .settings import ContainerSpec

log = logging.getLogger("pooldbapi")


class Physical:
    """One physical connection and what the pool knows of it."""

    __slots__ = (
        "_cursor",
        "backend",
        "created",
        "in_transaction",
        "lock",
        "pool",
        "raw",
        "returned",
        "session_changed",
        "spec",
    )

    def __init__(self, raw: Any, spec: ContainerSpec, backend: Backend, pool: Pool) -> None:
        self.pool = pool  # given back there, even if close_all() replaced the pools meanwhile
        self.raw = raw
        self.spec = spec
        self.backend = backend
        self.created = self.returned = time.monotonic()
        self.session_changed = False
        self.in_transaction = False  # borrowed by a transaction that began on it
        # sqlite3 connections move between worker threads: access is serialised
        self.lock = threading.Lock()
        self._cursor: Any = None

    def cursor(self) -> Any:
        """Return the driver cursor kept for this connection (results are read whole)."""
        if self._cursor is None:
            self._cursor = self.raw.cursor()
        return self._cursor


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
    waiting: int = 0   # borrowers waiting for a connection now
    minimum: int = 0


class Pool:
    """The physical connections of one container definition."""

    def __init__(self, spec: ContainerSpec) -> None:
        self.spec = spec
        self.backend = load_backend(spec.driver, spec.alias)
        opts = spec.options
        cap = self.backend.max_connections(spec)
        self.maximum = max(1, opts.maximum_number_of_pooled_connections)
        if cap is not None:
            self.maximum = min(self.maximum, cap)
        self.pooling = opts.allow_connection_pooling or cap == 1
        self._idle: deque[Physical] = deque()
        self._open = 0
        self._waits = 0
        self._errors = 0
        self._cond = threading.Condition(threading.Lock())  # never taken twice by one thread
        self._waiters = 0  # threads waiting for a connection: only then is anyone notified
        self.closed = False
        self.used = time.monotonic()  # last acquire: a pool unused past idle-timeout is closed

    def _connect(self) -> Physical:
        started = time.perf_counter()
        try:
            raw = self.backend.connect(self.spec)
        except Error:
            raise
        except Exception as exc:
            self._errors += 1
            cls, state = self.backend.error_class(exc)
            err = wrap(exc, self.spec.alias, self.spec.secrets, state,
                       OperationalError if cls.__name__ == "DatabaseError" else cls)
            err.unsent = True
            if self.backend.is_connection_error(exc, None):
                err.connection_failure = True
                HEALTH.failed(self.spec, str(err))
            raise err from exc
        HEALTH.succeeded(self.spec)
        if telemetry.ON:
            telemetry.created(self.spec, time.perf_counter() - started)
        return Physical(raw, self.spec, self.backend, self)

    def discard_idle(self) -> None:
        """Close the idle connections: after a connection-level failure they are suspect."""
        self._close_idle()

    def _expired(self, phys: Physical, now: float) -> bool:
        opts = self.spec.options
        if now - phys.created > opts.connection_lifetime or self.backend.is_broken(phys.raw):
            return True
        # idle connections beyond the minimum are closed after idle-timeout
        return now - phys.returned > opts.idle_timeout and \
            self._open > opts.minimum_number_of_pooled_connections

    def _notify(self) -> None:
        """Wake one waiting borrower (held: the pool's lock)."""
        if self._waiters:
            self._cond.notify()

    def acquire(self) -> Physical:
        """Borrow a physical connection, waiting up to pool-timeout for a free one."""
        now = self.used = time.monotonic()
        deadline = now + self.spec.options.pool_timeout
        while True:
            candidate: Physical | None = None
            with self._cond:
                while True:
                    if self.closed:
                        break
                    if self._idle:
                        candidate = self._idle.pop()
                        break
                    if self._open < self.maximum:
                        self._open += 1
                        break
                    now = time.monotonic()
                    remaining = deadline - now
                    if remaining <= 0:
                        if telemetry.ON:
                            telemetry.timed_out(self.spec.alias)
                        raise OperationalError(
                            f"container {self.spec.alias!r}: no free physical connection within"
                            f" {self.spec.options.pool_timeout:g} s (all {self.maximum} of"
                            " maximum-number-of-pooled-connections are in use)")
                    self._waits += 1
                    self._waiters += 1
                    try:
                        self._cond.wait(remaining)
                    finally:
                        self._waiters -= 1
            if self.closed:  # evicted or closed by close_all() meanwhile: its successor serves
                successor = pool_for(self.spec)
                if successor is self:
                    raise OperationalError(f"container {self.spec.alias!r}: its pool is closed")
                return successor.acquire()
            if candidate is None:
                break
            # the check may need a round trip: never under the pool's lock
            if not self._expired(candidate, now) and self.backend.check(candidate.raw):
                return candidate
            self.backend.close(candidate.raw)
            with self._cond:
                self._open -= 1
                self._notify()
        try:
            phys = self._connect()
        except BaseException:
            with self._cond:
                self._open -= 1
                self._notify()
            raise
        self._fill_minimum()
        return phys

    def reap(self, now: float) -> None:
        """Close idle connections past idle-timeout (beyond the minimum) or connection-lifetime,
        without waiting for traffic."""
        with self._cond:
            keep: deque[Physical] = deque()
            stale: list[Physical] = []
            for phys in self._idle:
                if self._expired(phys, now):
                    self._open -= 1
                    stale.append(phys)
                else:
                    keep.append(phys)
            self._idle = keep
        for phys in stale:
            self.backend.close(phys.raw)

    def unused(self, now: float) -> bool:
        """Tell whether the pool holds no connection and was not used for its idle timeout."""
        with self._cond:
            return self._open == 0 and now - self.used > self.spec.options.idle_timeout

    def _fill_minimum(self) -> None:
        """Open idle connections up to minimum-number-of-pooled-connections."""
        while self.pooling:
            with self._cond:
                if self._open >= min(self.spec.options.minimum_number_of_pooled_connections,
                                     self.maximum):
                    return
                self._open += 1
            try:
                phys = self._connect()
            except Error:
                with self._cond:
                    self._open -= 1
                return
            with self._cond:
                self._idle.appendleft(phys)
                self._notify()

    def release(self, phys: Physical, broken: bool = False) -> None:
        """Give a physical connection back: reset and kept, or closed when broken or old."""
        keep = self.pooling and not broken and not self.closed and \
            not self.backend.is_broken(phys.raw)
        if keep:
            try:
                keep = self.backend.reset(phys.raw, phys.session_changed)
                phys.session_changed = False
            except Exception as exc:  # noqa: BLE001 - one that cannot be reset is never handed out
                log.info("container %s: dropping a connection that failed its reset: %s",
                         self.spec.alias, type(exc).__name__)
                keep = False
        now = time.monotonic()
        if keep and now - phys.created > self.spec.options.connection_lifetime:
            keep = False
        if not keep:
            self.backend.close(phys.raw)
        with self._cond:
            if keep:
                phys.returned = now
                self._idle.append(phys)
            else:
                self._open -= 1
            self._notify()

    def close(self) -> None:
        """Close every idle physical connection (those in use are closed when given back)."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()
        self._close_idle()

    def _close_idle(self) -> None:
        with self._cond:
            idle, self._idle = list(self._idle), deque()
            self._open -= len(idle)
        for phys in idle:
            self.backend.close(phys.raw)

    def stats(self) -> PoolStats:
        """Return this pool's counters."""
        with self._cond:
            idle = len(self._idle)
            return PoolStats(self.spec.alias, self.spec.driver, self._open, idle,
                             self._open - idle, self._waits, self._errors, self.maximum,
                             self._waiters,
                             self.spec.options.minimum_number_of_pooled_connections)


_POOLS: dict[str, Pool] = {}
_LOCK = threading.Lock()
INHERITED: list[Any] = []
"""Pools and physical connections a child process inherited through fork: kept referenced and
never used, so that nothing (no rollback, no terminate) is sent on the parent's sessions."""
REAP_INTERVAL = 5.0
"""Seconds between two rounds of the reaper (at most; sooner for shorter idle timeouts)."""
_reaper: threading.Thread | None = None


def pool_for(spec: ContainerSpec) -> Pool:
    """Return the process-wide pool of a container definition, creating it on first use."""
    found = _POOLS.get(spec.key)
    if found is None:
        with _LOCK:
            found = _POOLS.get(spec.key)
            if found is None:
                found = _POOLS[spec.key] = Pool(spec)
                _start_reaper()
    return found


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
    global _LOCK, _reaper
    INHERITED.extend(_POOLS.values())
    _POOLS.clear()
    _LOCK = threading.Lock()
    _reaper = None


atexit.register(close_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited)
