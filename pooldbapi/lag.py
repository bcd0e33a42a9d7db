"""Replication lag of standbys (containers with replica-of), measured in the background: one
prober thread per standby definition, process-wide, or one per store where shared-state is
set. Routing reads what the probers last saw; nothing here runs on a statement's path."""
from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .settings import ContainerSpec
from .state import store_key
from .state.redis import store_for

if TYPE_CHECKING:
    from .backends.base import Link

log = logging.getLogger("pooldbapi")

PROBE_INTERVAL = 0.2
"""Seconds between two lag probes of one standby."""
IDLE_STOP = 60.0
"""A prober nobody asked for this long stops (a later question starts it again)."""
HISTORY = 3000
"""Samples of the primary's position kept per standby (10 minutes at PROBE_INTERVAL)."""
STALE_AFTER = 1.0
"""A measure older than this many seconds counts as growing since (its prober is hung or slow:
the standby may have stopped replaying meanwhile)."""
PROBE_TIMEOUT = "2s"
"""statement_timeout of the probers' sessions: a probe never hangs on a stuck server."""
SHARED_TTL = 3.0
"""Seconds a lag published in the shared store (and its probe lease) stays valid."""

LAG_SQL = ("select pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,"
           " extract(epoch from clock_timestamp() - pg_last_xact_replay_timestamp())")
# the insert position, not the write position: with synchronous_commit off a commit is seen
# on the primary before its WAL is written, and a standby that has not replayed it is behind
PRIMARY_SQL = "select pg_current_wal_insert_lsn()::text"
PAGE = 8192
PAGE_HEADER = 40
"""The WAL page size and the longest page header: an insert position at a page's start stands
past its header, where a standby's replay ends before it; such a standby is not behind."""


def lsn(text: str | None) -> int | None:
    """A PostgreSQL LSN ('16/B374D848') as a number, so positions compare."""
    if not text:
        return None
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def replayed_past(replayed: int | None, position: int) -> bool:
    """Tell whether a replay position has reached a primary's (insert) position."""
    if replayed is None:
        return False
    return replayed >= position or (position - replayed <= PAGE_HEADER and
                                    position % PAGE <= PAGE_HEADER)


@dataclass(frozen=True)
class Lag:
    """What was last measured of one standby."""

    alias: str
    primary: str
    seconds: float | None = None   # replay lag; None: not measured (yet, or failed)
    replayed: int | None = None    # the standby's replay position (lsn())
    promoted: bool = False         # it answered pg_is_in_recovery() false: no longer a standby
    error: str | None = None       # why the last probe failed (the error's class)
    at: float = 0.0                # monotonic time of the measure (this process's clock)

    def seconds_at(self, now: float) -> float | None:
        """The lag as it may be at `now`: the measure, plus the time since it beyond
        STALE_AFTER (a standby may have stopped replaying since a prober last answered)."""
        if self.seconds is None:
            return None
        return self.seconds + max(0.0, now - self.at - STALE_AFTER)


def lag_from(history: deque[tuple[float, int]], replayed: int | None, by_timestamp: float | None,
             now: float) -> float:
    """The standby's lag: how long ago the primary first stood past the standby's replay
    position (from the primary's sampled positions); 0 once it has replayed the last one seen;
    the age of its last replayed commit where the history does not reach back far enough."""
    if not history or replayed is None:
        return max(0.0, by_timestamp or 0.0)
    if replayed_past(replayed, history[-1][1]):
        return 0.0
    for at, position in history:
        if not replayed_past(replayed, position):
            seconds = now - at
            if at == history[0][0] and by_timestamp is not None:
                seconds = max(seconds, by_timestamp)  # it was behind before the first sample
            return max(0.0, seconds)
    return 0.0  # (not reached: the last position is past the replay)


class Prober:
    """Measures one standby against its primary every PROBE_INTERVAL, on two sessions of its
    own (autocommit), until nobody asked for IDLE_STOP seconds."""

    def __init__(self, standby: ContainerSpec, primary: ContainerSpec, owner: str) -> None:
        self.standby, self.primary = standby, primary
        self.lag = Lag(standby.alias, primary.alias)
        self.asked = time.monotonic()
        self.history: deque[tuple[float, int]] = deque(maxlen=HISTORY)
        self._sessions: dict[str, Link] = {}
        self._owner = owner
        self._key = store_key("lag", standby.key, primary.key)
        self.thread = threading.Thread(target=self._loop, daemon=True,
                                       name=f"pooldbapi-lag-{standby.alias}")
        self.done = threading.Event()  # set after each probe (tests and the command wait on it)

    def _session(self, spec: ContainerSpec) -> Link:
        from .backends import backend as load_backend
        link = self._sessions.get(spec.key)
        if link is None or link.is_broken():
            link = load_backend(spec.driver, spec.alias).connect(spec)
            link.set_autocommit(True)
            link.first_row(f"set statement_timeout = '{PROBE_TIMEOUT}'")
            self._sessions[spec.key] = link
        return link

    def _close(self) -> None:
        for link in self._sessions.values():
            try:
                link.close()
            except Exception:  # noqa: BLE001, S110 - a session already gone has nothing to close
                pass
        self._sessions.clear()

    def measure(self) -> Lag:
        """Measure once: the primary's position, then the standby's replay."""
        now = time.monotonic()
        try:
            primary = lsn(_row(self._session(self.primary), PRIMARY_SQL)[0])
            if primary is not None:
                self.history.append((now, primary))
            recovering, replay, by_ts = _row(self._session(self.standby), LAG_SQL)
        except Exception as exc:  # noqa: BLE001 - any failure: the lag is unknown until it answers
            self._close()
            return replace(self.lag, seconds=None, error=type(exc).__name__, at=now)
        if not recovering:
            if not self.lag.promoted:
                log.warning("container %s answers as a primary (pg_is_in_recovery() is false):"
                            " it was promoted; it stays out of %s's reads and of writes",
                            self.standby.alias, self.primary.alias)
            return Lag(self.standby.alias, self.primary.alias, None, None, True, None, now)
        replayed = lsn(replay)
        seconds = lag_from(self.history, replayed, None if by_ts is None else float(by_ts), now)
        return Lag(self.standby.alias, self.primary.alias, seconds, replayed, False, None, now)

    def _loop(self) -> None:
        try:
            while time.monotonic() - self.asked < IDLE_STOP:
                self.lag = self._shared_turn() if self.standby.options.shared_state \
                    else self.measure()
                self.done.set()
                time.sleep(PROBE_INTERVAL)
        finally:
            self._close()

    def _shared_turn(self) -> Lag:
        """One process probes (it holds the lease) and publishes; the others read."""
        store = store_for(self.standby.options.shared_state)
        assert store is not None
        taken = store.lease(self._key, SHARED_TTL, self._owner)
        if taken is None or taken:
            found = self.measure()
            store.put(self._key + ":lag", json.dumps(
                [found.seconds, found.replayed, found.promoted, found.error]), SHARED_TTL)
            return found
        text = store.get(self._key + ":lag")
        if text is None:
            return replace(self.lag, seconds=None, error="no lag published", at=time.monotonic())
        seconds, replayed, promoted, error = json.loads(text)
        return Lag(self.standby.alias, self.primary.alias, seconds, replayed, promoted, error,
                   time.monotonic())


def _row(link: Link, sql: str) -> Sequence[Any]:
    row = link.first_row(sql)
    if row is None:
        raise LookupError(f"no row from {sql!r}")
    return row


class LagProbes:
    """The process's lag probers, by (standby, primary) definition."""

    def __init__(self) -> None:
        self._probers: dict[tuple[str, str], Prober] = {}
        self._lock = threading.Lock()
        self._owner = f"{os.getpid()}:{uuid.uuid4().hex}"

    def prober(self, standby: ContainerSpec, primary: ContainerSpec) -> Prober:
        """The running prober of a standby (started on first use, or again after it stopped)."""
        key = (standby.key, primary.key)
        found = self._probers.get(key)
        if found is None or not found.thread.is_alive():
            with self._lock:
                found = self._probers.get(key)
                if found is None or not found.thread.is_alive():
                    found = self._probers[key] = Prober(standby, primary, self._owner)
                    found.thread.start()
        found.asked = time.monotonic()
        return found

    def lag(self, standby: ContainerSpec, primary: ContainerSpec) -> Lag:
        """What was last measured of the standby (its prober keeps measuring)."""
        return self.prober(standby, primary).lag

    def snapshot(self) -> dict[str, Lag]:
        """The last measure of every probed standby, by alias (of two definitions with one
        alias, the one asked for last)."""
        probers = sorted(self._probers.values(), key=lambda p: p.asked)
        return {p.standby.alias: p.lag for p in probers}

    def reset(self) -> None:
        """Forget every prober (tests; a child process after fork starts afresh): they stop at
        their next turn once nobody asks."""
        for found in list(self._probers.values()):
            found.asked = -IDLE_STOP
        self._probers = {}

    def _after_fork(self) -> None:
        self.__init__()  # type: ignore[misc]


LAG = LagProbes()


def describe(lag: Lag) -> str:
    """A measure as the command shows it: '0.12 s', 'promoted', 'unknown (why)'."""
    if lag.promoted:
        return "promoted"
    if lag.seconds is None:
        return f"unknown ({lag.error or 'not measured yet'})"
    return f"{lag.seconds:.2f} s"


def measure_once(standby: ContainerSpec, primary: ContainerSpec) -> Lag:
    """Measure a standby once, on sessions opened for it (the command's containers listing):
    its lag from the last replayed commit's age where it is behind the primary."""
    prober = Prober(standby, primary, "once")
    try:
        return prober.measure()
    finally:
        prober._close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=LAG._after_fork)
