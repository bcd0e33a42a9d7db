"""Replica-aware routing for a connection whose containers include standbys (replica-of): no
write ever lands on a standby; reads skip standbys over max-replication-lag (or promoted),
falling back to the primary; with read_your_writes, reads after the connection's own commit
wait (bounded) for a standby to replay it, else go to the primary."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from . import waits
from .errors import ProgrammingError
from .health import HEALTH
from .lag import LAG, PRIMARY_SQL, Lag, lsn, replayed_past
from .pool import pool_for
from .settings import ContainerSpec
from .sql.parse import SELECT, Statement

if TYPE_CHECKING:
    from .backends.base import Link
    from .router import Pins, Router
    from .transaction import Transaction

WAIT_WITHOUT_LIMIT = 1.0
"""Seconds read_your_writes waits for a standby that has no max-replication-lag."""
POLL = 0.002
"""Seconds between two looks at a standby's replay position while read_your_writes waits."""
FIRST_MEASURE = 1.0
"""Seconds a new connection waits for the first lag measure of its standbys (once per
process and standby: the probers are shared); until then reads go to the primary."""

REPLAY_POSITION = "select pg_last_wal_replay_lsn()::text"


class Replicas:
    """One connection's replica-aware choices (its router hands every route to it)."""

    def __init__(self, specs: Mapping[str, ContainerSpec], transaction: Transaction,
                 read_your_writes: bool) -> None:
        self.specs = specs
        self.standby_of = {a: s.options.replica_of for a, s in specs.items()
                           if s.options.replica_of is not None}
        self.primaries = set(self.standby_of.values())
        self.tx = transaction
        self.read_your_writes = read_your_writes
        self._holds: dict[tuple[str, ...], bool] = {}
        self._targets: dict[tuple[str, ...], tuple[str, ...]] = {}
        self.in_tx: set[str] = set()          # primaries written in the open transaction
        self.pending: set[str] = set()        # primaries committed on, position not asked yet
        self.position: dict[str, int] = {}    # primary -> a position past our last commit
        self.caught: dict[str, int] = {}      # standby -> a position it was seen to replay
        probers = [LAG.prober(specs[a], self._primary_spec(a)) for a in self.standby_of]
        deadline = time.monotonic() + FIRST_MEASURE
        for prober in probers:
            prober.done.wait(max(0.0, deadline - time.monotonic()))

    def _primary_spec(self, standby: str) -> ContainerSpec:
        return self.specs[self.standby_of[standby]]

    def holds_standby(self, aliases: tuple[str, ...]) -> bool:
        """Tell whether a list names a standby."""
        found = self._holds.get(aliases)
        if found is None:
            found = self._holds[aliases] = any(a in self.standby_of for a in aliases)
        return found

    def write_targets(self, stmt: Statement, aliases: tuple[str, ...]) -> tuple[str, ...]:
        """The list without its standbys; ProgrammingError where nothing is left."""
        found = self._targets.get(aliases)
        if found is None:
            found = tuple(a for a in aliases if a not in self.standby_of)
            if not found:
                named = ", ".join(f"{a} is replica-of {self.standby_of[a]}"
                                  for a in dict.fromkeys(aliases))
                raise ProgrammingError(
                    f"this {stmt.kind} writes to {{{','.join(aliases)}}}, which holds only"
                    f" standbys ({named}); a write never goes to a standby: name the primary")
            self._targets[aliases] = found
        return found

    def writable(self, stmt: Statement, aliases: tuple[str, ...]) -> tuple[str, ...]:
        """The containers a write over a list (DDL's, or a write read from first) may go to;
        with read_your_writes they count as written."""
        targets = self.write_targets(stmt, aliases)
        if self.read_your_writes:
            self._wrote(targets)
        return targets

    # -- routing ---------------------------------------------------------------------------
    def route(self, router: Router, stmt: Statement, pins: Pins | None
              ) -> dict[tuple[str, ...], str]:
        """Choose a container for each distinct list of the statement (as Router.route)."""
        write = stmt.kind != SELECT
        choice: dict[tuple[str, ...], str] = {}
        for lst in stmt.lists or (None,):
            aliases = router.resolve(lst, stmt)
            if aliases in choice:
                continue
            if write:
                choice[aliases] = self._write(router, stmt, aliases, pins)
            elif self.holds_standby(aliases):
                choice[aliases] = self._read(router, stmt, aliases, pins)
            else:
                choice[aliases] = self._pinned(router, stmt, aliases, aliases, pins, None)
        if write and self.read_your_writes:
            self._wrote(choice.values())
        return choice

    @staticmethod
    def _pinned(router: Router, stmt: Statement, key: tuple[str, ...],
                aliases: tuple[str, ...], pins: Pins | None,
                allowed: Callable[[str], bool] | None) -> str:
        alias = pins.get(key) if pins is not None else None
        if alias is None or (allowed is not None and not allowed(alias)):
            alias = router.pick(stmt, aliases, allowed)
            if pins is not None and len(key) > 1:
                pins[key] = alias
        return alias

    def _write(self, router: Router, stmt: Statement, aliases: tuple[str, ...],
               pins: Pins | None) -> str:
        targets = self.write_targets(stmt, aliases)
        if targets is aliases or targets == aliases:
            return self._pinned(router, stmt, aliases, aliases, pins, None)
        return self._pinned(router, stmt, aliases, targets, pins,
                            lambda a: a not in self.standby_of)

    def _lag(self, standby: str) -> Lag:
        return LAG.lag(self.specs[standby], self._primary_spec(standby))

    def _usable(self, alias: str) -> bool:
        """A container reads may go to now, as far as replication goes."""
        primary = self.standby_of.get(alias)
        if primary is None:
            return True
        if self.read_your_writes and primary in self.in_tx:
            return False  # this transaction wrote there: only the primary holds it
        lag = self._lag(alias)
        if lag.promoted:
            return False
        limit = self.specs[alias].options.max_replication_lag
        if limit is None:
            return lag.error is None
        seconds = lag.seconds_at(time.monotonic())
        return seconds is not None and seconds <= limit

    def _read(self, router: Router, stmt: Statement, aliases: tuple[str, ...],
              pins: Pins | None) -> str:
        usable = {a for a in aliases if self._usable(a)}
        if not usable:
            return self.standby_of[aliases[0]]  # every standby is over its limit: the primary
        if HEALTH.any_unhealthy or HEALTH.shared:
            healthy = {a for a in usable if router.healthy(a)}
            usable = healthy or usable
        alias = self._pinned(router, stmt, aliases, aliases, pins, usable.__contains__)
        primary = self.standby_of.get(alias)
        if primary is None or not self.read_your_writes or \
                (primary not in self.pending and primary not in self.position):
            return alias
        # where the list names the primary itself, a read goes there rather than wait
        wait = primary not in usable
        return alias if self._replayed(alias, primary, wait) else primary

    # -- read_your_writes ------------------------------------------------------------------
    def _wrote(self, aliases: Iterable[str]) -> None:
        for alias in aliases:
            if alias in self.primaries:
                (self.pending if self.tx.autocommit else self.in_tx).add(alias)

    def ended(self, committed: bool) -> None:
        """Hear that the transaction ended (commit, or rollback: its writes are gone)."""
        if committed:
            self.pending |= self.in_tx
        self.in_tx.clear()

    def _replayed(self, standby: str, primary: str, wait: bool) -> bool:
        """Tell whether the standby has replayed this connection's last commit on the
        primary; with wait, waiting for it up to the standby's max-replication-lag (else
        asking it once)."""
        if primary in self.pending:
            try:
                found = lsn(self._ask(primary, PRIMARY_SQL))
            except Exception:  # noqa: BLE001 - the read goes to the primary, which says why
                return False
            self.pending.discard(primary)
            if found is not None:
                self.position[primary] = found
        target = self.position.get(primary)
        if target is None or self.caught.get(standby, -1) >= target:
            return True
        seen = self._lag(standby).replayed
        limit = self.specs[standby].options.max_replication_lag
        deadline = time.monotonic() + (0.0 if not wait else
                                       WAIT_WITHOUT_LIMIT if limit is None else limit)
        asked = False
        while not replayed_past(seen, target):
            if asked and time.monotonic() >= deadline:
                return False
            try:
                seen = lsn(self._ask(standby, REPLAY_POSITION))
            except Exception:  # noqa: BLE001 - a standby that cannot say: read on the primary
                return False
            asked = True
            if not replayed_past(seen, target) and time.monotonic() < deadline:
                waits.sleep(POLL)
        self.caught[standby] = target
        return True

    def _ask(self, alias: str, sql: str) -> str | None:
        """One value from a container: on the transaction's session where it holds one,
        else on a pooled session borrowed for it."""
        phys = self.tx.borrowed.get(alias)
        if phys is not None:
            with phys.lock:
                return _one(phys.link, sql)
        pool = pool_for(self.specs[alias])
        phys = pool.acquire()
        broken = True
        try:
            with phys.lock:
                value = _one(phys.link, sql)
            broken = False
            return value
        finally:
            pool.release(phys, broken)


def _one(link: Link, sql: str) -> str | None:
    row = link.first_row(sql)
    return None if row is None or row[0] is None else str(row[0])
