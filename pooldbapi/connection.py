"""Connection: the DB-API object; container routing with one strategy per list."""
from __future__ import annotations

import logging
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from . import errors
from .backends import backend as load_backend
from .dialect import checked as checked_dialect
from .errors import InterfaceError, NotSupportedError, ProgrammingError
from .health import HEALTH
from .settings import ContainerSpec, Settings
from .sql.parse import Statement
from .strategy import STRATEGIES, RoundRobin, Strategy, seeded_random
from .transaction import Transaction, Xid, finish_recovered, recover

if TYPE_CHECKING:
    from .cursor import Cursor

log = logging.getLogger("pooldbapi")

STRATEGY_CACHE_SIZE = 1024
"""Strategies kept per connection (statement text, list); an evicted one restarts at random."""

_OPEN: weakref.WeakSet[Connection] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # only this thread exists in the child: a lock held by another thread at fork would stay
    # held for ever, and the transaction's sessions are the parent's
    for conn in list(_OPEN):
        conn.lock = threading.RLock()
        conn.transaction.inherited = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Connection:
    """A pooldbapi connection: routes statements over the configured containers."""

    Warning = errors.Warning
    Error = errors.Error
    InterfaceError = errors.InterfaceError
    DatabaseError = errors.DatabaseError
    DataError = errors.DataError
    OperationalError = errors.OperationalError
    IntegrityError = errors.IntegrityError
    InternalError = errors.InternalError
    ProgrammingError = errors.ProgrammingError
    NotSupportedError = errors.NotSupportedError

    def __init__(self, settings: Settings, *, seed: object = None, broadcast_ddl: bool = False,
                 strategy: str = "round-robin", affinity: str | None = None,
                 autocommit: bool = False, two_phase: bool = False,
                 dialect: str | None = None) -> None:
        if strategy not in STRATEGIES:
            raise InterfaceError(f"unknown strategy {strategy!r}"
                                 f" (known: {', '.join(STRATEGIES)})")
        if affinity not in (None, "transaction"):
            raise InterfaceError(f"unknown affinity {affinity!r} (known: 'transaction')")
        self.dialect = checked_dialect(dialect)  # None: the containers' own, where they agree
        self.specs: Mapping[str, ContainerSpec] = settings.containers
        for spec in self.specs.values():
            HEALTH.watch(spec)
        self.default = settings.default
        self.seed = seed
        self.broadcast_ddl = broadcast_ddl
        self.affinity = affinity
        self._strategy_class = STRATEGIES[strategy]
        self._strategies: OrderedDict[tuple[str, tuple[str, ...]], Strategy] = OrderedDict()
        self._checked: set[str] = set()
        self._pending: list[tuple[Strategy, str]] = []
        self._runs_sql: dict[str, bool] = {}
        self._autocommit = bool(autocommit)
        self._closed = False
        self.transaction = Transaction(two_phase)
        # threadsafety 2: threads may share a connection; its calls are serialised
        self.lock = threading.RLock()
        # told (alias, rows) as the rows of executemany, bulk insert, insert ... select and
        # synchronize are written (from worker threads); the command line shows it
        self.progress: Callable[[str, int], None] | None = None
        _OPEN.add(self)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<pooldbapi.Connection {state} containers={sorted(self.specs)}>"

    # -- routing ------------------------------------------------------------------------
    def check(self, stmt: Statement) -> None:
        """Raise ProgrammingError for an occurrence naming a container that is not configured."""
        if stmt.text in self._checked:
            return
        for occ in stmt.occurrences:
            for alias, at in zip(occ.aliases or (), occ.alias_positions):
                if alias not in self.specs:
                    raise ProgrammingError(
                        f"container {alias!r} at {stmt.where(at)} in the suffix of {occ.name}"
                        f" is not configured (configured: {', '.join(sorted(self.specs))})")
        if any(occ.aliases is None for occ in stmt.occurrences) or not stmt.occurrences:
            self.resolve(None, stmt)
        if len(self._checked) > STRATEGY_CACHE_SIZE:
            self._checked.clear()
        self._checked.add(stmt.text)

    def resolve(self, aliases: tuple[str, ...] | None, stmt: Statement | None = None
                ) -> tuple[str, ...]:
        """Return the list an occurrence uses: its own, or the connection's default."""
        if aliases is not None:
            return aliases
        if self.default is None:
            where = ""
            if stmt is not None:
                bare = next((o for o in stmt.occurrences if o.aliases is None), None)
                where = (f": {bare.name!r} at {stmt.where(bare.position)} has no '@' suffix"
                         if bare else ": the statement names no table with '@'")
            raise ProgrammingError(f"no default container list{where}; name the containers"
                                   " with @alias or @{a,b}, or set a default list (connect's"
                                   " default=..., the settings file's default key, or the"
                                   " command's --default)")
        return self.default

    def strategy(self, text: str, aliases: tuple[str, ...]) -> Strategy:
        """Return the strategy of one list of one statement (kept per connection, LRU)."""
        key = (text, aliases)
        found = self._strategies.get(key)
        if found is None:
            found = self._strategy_class(aliases, seeded_random(self.seed, text, aliases))
            self._strategies[key] = found
            if len(self._strategies) > STRATEGY_CACHE_SIZE:
                self._strategies.popitem(last=False)
        else:
            self._strategies.move_to_end(key)
        return found

    def route(self, stmt: Statement) -> dict[tuple[str, ...], str]:
        """Choose a container for each distinct list of the statement, for one unit of work."""
        choice: dict[tuple[str, ...], str] = {}
        for lst in stmt.lists or (None,):
            aliases = self.resolve(lst, stmt)
            if len(aliases) == 1:  # one container: nothing to choose, learn or pin
                choice[aliases] = aliases[0]
                continue
            if aliases in choice:
                continue
            pinned = self.transaction.pinned if self.affinity and not self._autocommit else None
            alias = pinned.get(aliases) if pinned is not None else None
            if alias is None:
                strategy = self.strategy(stmt.text, aliases)
                alias = strategy.choose(self.healthy) if HEALTH.any_unhealthy or \
                    HEALTH.shared else strategy.choose()
                if self._strategy_class is not RoundRobin:
                    self._pending.append((strategy, alias))
                if pinned is not None:
                    pinned[aliases] = alias
            choice[aliases] = alias
        return choice

    def one(self, stmt: Statement, choice: dict[tuple[str, ...], str] | None = None) -> str:
        """Return the one container a unit of work lands on, or raise NotSupportedError."""
        choice = self.route(stmt) if choice is None else choice
        distinct = set(choice.values())
        if len(distinct) > 1:
            landed = ", ".join(f"{{{','.join(k)}}} -> {v}" for k, v in choice.items())
            raise NotSupportedError(f"the occurrences of this {stmt.kind} landed on different"
                                    f" containers ({landed}); give them one list")
        return distinct.pop()

    def assign(self, stmt: Statement, n: int) -> str | list[str]:
        """Choose containers for n units of work (rows, pages): one alias for all, or one each."""
        lists = stmt.lists or (None,)
        if len(lists) > 1 or (self.affinity and not self._autocommit):
            return [self.one(stmt) for _ in range(n)]
        aliases = self.resolve(lists[0], stmt)
        if len(set(aliases)) == 1:
            return aliases[0]
        if HEALTH.any_unhealthy or HEALTH.shared:
            return self.strategy(stmt.text, aliases).choose_many(n, self.healthy)
        return self.strategy(stmt.text, aliases).choose_many(n)

    def runs_sql(self, alias: str) -> bool:
        """Tell whether a container's back-end runs SQL (REST ones are read locally)."""
        found = self._runs_sql.get(alias)
        if found is None:
            spec = self.specs[alias]
            found = self._runs_sql[alias] = load_backend(spec.driver, alias).runs_sql
        return found

    def healthy(self, alias: str) -> bool:
        """Tell whether a container may be chosen now (process-wide health)."""
        return HEALTH.is_healthy(self.specs[alias])

    def settle(self, seconds: float) -> None:
        """Tell the strategies how long the units chosen since the last call took."""
        pending, self._pending = self._pending, []
        for strategy, alias in pending:
            strategy.done(alias, seconds / max(len(pending), 1))

    def after_statement(self, alias: str, broken: bool = False) -> None:
        """Give the container's connection back after a statement in autocommit, or if broken."""
        if broken or (self._autocommit and not any(
                s.alias == alias for s in self.transaction.streams)):
            self.transaction.give_back(alias, broken)

    # -- DB-API ---------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise InterfaceError("the connection is closed")

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return self._closed

    @property
    def autocommit(self) -> bool:
        """Whether each statement commits on its own (False at first, as PEP 249 says)."""
        return self._autocommit

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        self._check_open()
        with self.lock:
            if self.transaction.inherited:
                self.transaction.adopt()
            if self.transaction.borrowed and bool(value) != self._autocommit:
                raise ProgrammingError("cannot change autocommit inside a transaction:"
                                       " commit() or rollback() first")
            self._autocommit = bool(value)

    def cursor(self, *, stream: bool = False) -> Cursor:
        """Return a new cursor; with stream=True a select's rows are fetched as they are read
        (a server-side cursor on PostgreSQL), so memory stays flat however large the result."""
        from .cursor import Cursor
        self._check_open()
        return Cursor(self, stream=stream)

    def execute(self, operation: str, parameters: Any = None) -> Cursor:
        """Create a cursor, execute the statement on it and return it (as psycopg 3 does)."""
        return self.cursor().execute(operation, parameters)

    def commit(self) -> None:
        """Commit every container the transaction touched."""
        self._check_open()
        with self.lock:
            self.transaction.commit()

    def rollback(self) -> None:
        """Roll back every container the transaction touched."""
        self._check_open()
        with self.lock:
            self.transaction.rollback()

    def close(self) -> None:
        """Roll back what is open and give every physical connection back; idempotent."""
        if self._closed:
            return
        with self.lock:
            if self._closed:
                return
            try:
                self.transaction.close()
            finally:
                self._closed = True

    # -- two-phase commit (DB-API TPC extension) ------------------------------------------
    def xid(self, format_id: int, gtrid: str, bqual: str) -> Xid:
        """Return a transaction id for tpc_begin()."""
        return Xid(format_id, gtrid, bqual)

    def tpc_begin(self, xid: Xid | tuple[int, str, str]) -> None:
        """Begin a two-phase transaction over every container it will touch."""
        self._check_open()
        if self._autocommit:
            raise ProgrammingError("tpc_begin() needs autocommit off")
        with self.lock:
            self.transaction.tpc_begin(Xid(*xid))

    def tpc_prepare(self) -> None:
        """Prepare every container the transaction touched (the first phase)."""
        self._check_open()
        with self.lock:
            self.transaction.tpc_prepare()

    def tpc_commit(self, xid: Xid | tuple[int, str, str] | None = None) -> None:
        """Commit the two-phase transaction, or (with xid) a prepared one being recovered."""
        self._check_open()
        if xid is None:
            with self.lock:
                self.transaction.tpc_commit()
        else:
            finish_recovered(dict(self.specs), Xid(*xid), "tpc_commit")

    def tpc_rollback(self, xid: Xid | tuple[int, str, str] | None = None) -> None:
        """Roll back the two-phase transaction, or (with xid) a prepared one being recovered."""
        self._check_open()
        if xid is None:
            with self.lock:
                self.transaction.tpc_rollback()
        else:
            finish_recovered(dict(self.specs), Xid(*xid), "tpc_rollback")

    def tpc_recover(self) -> list[Xid]:
        """Return the xids of prepared pooldbapi transactions on the configured containers."""
        self._check_open()
        found = recover(dict(self.specs))
        return list(dict.fromkeys(ours for branches in found.values() for ours, _ in branches))

    def __enter__(self) -> Self:
        self._check_open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if not self._closed:
                if exc_type is None:
                    self.commit()
                else:
                    self.rollback()
        finally:
            self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True) and self.transaction.borrowed:
            try:
                self.close()
            except Exception:  # noqa: S110 - nothing can be reported from a finaliser
                pass
