"""Routing: which container of each list a unit of work (an execution, a row, a page) runs
on. One strategy per (statement, list), kept per connection (LRU); the health filter; the
containers pinned by a transaction's affinity, handed in by the caller."""
from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .backends import backend as load_backend
from .cache import LARGEST, BoundedCache, text_size
from .errors import InterfaceError, NotSupportedError, ProgrammingError
from .health import HEALTH
from .settings import ContainerSpec
from .sql.parse import Statement
from .strategy import STRATEGIES, Strategy, seeded_random

if TYPE_CHECKING:
    from .replicas import Replicas

STRATEGY_CACHE_SIZE = 1024
"""Strategies kept per connection (statement text, list); an evicted one restarts at random.
Also bounded in bytes (cache.BYTES of statement text); a text longer than cache.LARGEST is
kept by its digest, so that a long statement keeps its turn without its text being held."""


VIEWS = 64
"""Cursors' default lists a connection's router keeps a view for (least recently used out
first: cache.py)."""


def _digest(text: str) -> str:
    """A long text's stand-in as a key (no two texts of a process share one in practice)."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16)
    return f"blake2b:{digest.hexdigest()}"


def text_key(stmt: Statement) -> str:
    """What the router keeps a statement's choices by: its text, or a digest of a long one."""
    if len(stmt.text) <= LARGEST:
        return stmt.text
    found = stmt.derived.router_key
    if found is None:
        found = stmt.derived.router_key = _digest(stmt.text)
    return found

Pins = dict[tuple[str, ...], str]
"""A transaction's affinity: the container each list landed on first (list -> alias)."""


class Router:
    """Chooses containers for a connection's statements."""

    def __init__(self, specs: Mapping[str, ContainerSpec], default: tuple[str, ...] | None, *,
                 seed: object = None, strategy: str = "round-robin") -> None:
        if strategy not in STRATEGIES:
            raise InterfaceError(f"unknown strategy {strategy!r}"
                                 f" (known: {', '.join(STRATEGIES)})")
        self.specs = specs
        self._default = default
        # per statement (text_key) whose lists have one container each: the choice, and the
        # container it runs on whole (one container for all, running SQL; else None)
        self._fixed: BoundedCache[str, tuple[dict[tuple[str, ...], str], str | None]] = \
            BoundedCache(STRATEGY_CACHE_SIZE)
        self.seed = seed
        self.strategy_class = STRATEGIES[strategy]
        self._strategies: BoundedCache[tuple[str, tuple[str, ...]], Strategy] = \
            BoundedCache(STRATEGY_CACHE_SIZE)
        self._checked: BoundedCache[str, bool] = BoundedCache(STRATEGY_CACHE_SIZE)
        # units chosen by strategies that hear back, not yet ended: (strategy, alias, units)
        self._pending: list[tuple[Strategy, str, int]] = []
        self._since = 0.0  # when the first of them was chosen
        self._runs_sql: dict[str, bool] = {}
        self.replicas: Replicas | None = None  # set where some container is a standby
        # by a cursor's own default list
        self._views: BoundedCache[tuple[str, ...], Router] = BoundedCache(VIEWS)

    def view(self, default: tuple[str, ...]) -> Router:
        """This router as a cursor with its own default list sees it: the same strategies (a
        list takes its turns whoever names it), its own default and what follows from it
        (the fixed choices, the checks, the units it chose until settled)."""
        if default == self._default:
            return self
        found = self._views.get(default)
        if found is None:
            found = Router.__new__(Router)
            found.specs, found._default = self.specs, default
            found._fixed = BoundedCache(STRATEGY_CACHE_SIZE)
            found.seed, found.strategy_class = self.seed, self.strategy_class
            found._strategies, found._runs_sql = self._strategies, self._runs_sql
            found._checked = BoundedCache(STRATEGY_CACHE_SIZE)
            found._pending, found._since = [], 0.0
            found._views = BoundedCache(VIEWS)
            found.replicas = self.replicas
            self._views.put(default, found, text_size(default))
        return found

    @property
    def default(self) -> tuple[str, ...] | None:
        """The list of occurrences without a suffix."""
        return self._default

    @default.setter
    def default(self, value: tuple[str, ...] | None) -> None:
        if value != self._default:
            self._fixed.clear()  # the choices that followed from the old default
        self._default = value

    def check(self, stmt: Statement) -> None:
        """Raise ProgrammingError for an occurrence naming a container that is not configured."""
        key = text_key(stmt)
        if key in self._checked:
            return
        for occ in stmt.occurrences:
            for alias, at in zip(occ.aliases or (), occ.alias_positions):
                if alias not in self.specs:
                    raise ProgrammingError(
                        f"container {alias!r} at {stmt.where(at)} in the suffix of {occ.name}"
                        f" is not configured (configured: {', '.join(sorted(self.specs))})")
        if any(occ.aliases is None for occ in stmt.occurrences) or not stmt.occurrences:
            self.resolve(None, stmt)
        self._checked.put(key, True, len(key))

    def resolve(self, aliases: tuple[str, ...] | None, stmt: Statement | None = None
                ) -> tuple[str, ...]:
        """Return the list an occurrence uses: its own, or the default."""
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

    def strategy(self, text: str, aliases: tuple[str, ...], text_key: str | None = None
                 ) -> Strategy:
        """Return the strategy of one list of one statement (kept, LRU); text_key: the
        statement's (see text_key), where the caller has it."""
        if text_key is None:
            text_key = text if len(text) <= LARGEST else _digest(text)
        key = (text_key, aliases)
        found = self._strategies.get(key)
        if found is None:
            found = self.strategy_class(aliases, seeded_random(self.seed, text, aliases),
                                        tuple(self.specs[a].key for a in aliases))
            self._strategies.put(key, found, text_size(key))
        return found

    def route(self, stmt: Statement, pins: Pins | None = None) -> dict[tuple[str, ...], str]:
        """Choose a container for each distinct list of the statement, for one unit of work;
        with pins (transaction affinity) a list goes where it went before, and is pinned.
        The choice is the caller's to read, not to change."""
        if self.replicas is not None:  # standbys: replicas.py chooses
            return self.replicas.route(self, stmt, pins)
        fixed = self._fixed.get(text_key(stmt))
        if fixed is not None:
            return fixed[0]
        choice: dict[tuple[str, ...], str] = {}
        chosen = False
        for lst in stmt.lists or (None,):
            aliases = self.resolve(lst, stmt)
            if len(aliases) == 1:  # one container: nothing to choose, learn or pin
                choice[aliases] = aliases[0]
                continue
            chosen = True
            if aliases in choice:
                continue
            alias = pins.get(aliases) if pins is not None else None
            if alias is None:
                strategy = self.strategy(stmt.text, aliases, text_key(stmt))
                alias = strategy.choose(self.healthy) if HEALTH.any_unhealthy or \
                    HEALTH.shared else strategy.choose()
                if strategy.feedback:
                    self._started(strategy, alias, 1)
                if pins is not None:
                    pins[aliases] = alias
            choice[aliases] = alias
        if not chosen:  # every list has one container: the same choice every time
            key = text_key(stmt)
            distinct = set(choice.values())
            whole = distinct.pop() if len(distinct) == 1 else None
            self._fixed.put(key, (choice, whole if whole is not None and self.runs_sql(whole)
                                  else None), len(key))
        return choice

    def direct(self, stmt: Statement) -> str | None:
        """The one container a statement runs on whole, known from an earlier route(): every
        list of it has that one container, and its back-end runs SQL. None: route() it (not
        routed yet, something to choose, several containers, a REST back-end, standbys)."""
        if self.replicas is not None:
            return None
        fixed = self._fixed.get(text_key(stmt))
        return fixed[1] if fixed is not None else None

    def one(self, stmt: Statement, choice: dict[tuple[str, ...], str] | None = None,
            pins: Pins | None = None) -> str:
        """Return the one container a unit of work lands on, or raise NotSupportedError."""
        choice = self.route(stmt, pins) if choice is None else choice
        distinct = set(choice.values())
        if len(distinct) > 1:
            landed = ", ".join(f"{{{','.join(k)}}} -> {v}" for k, v in choice.items())
            raise NotSupportedError(f"the occurrences of this {stmt.kind} landed on different"
                                    f" containers ({landed}); give them one list")
        return distinct.pop()

    def assign(self, stmt: Statement, n: int, pins: Pins | None = None) -> str | list[str]:
        """Choose containers for n units of work (rows, pages): one alias for all, or one each."""
        lists = stmt.lists or (None,)
        if len(lists) > 1 or pins is not None or self.replicas is not None:
            return [self.one(stmt, pins=pins) for _ in range(n)]
        aliases = self.resolve(lists[0], stmt)
        if len(set(aliases)) == 1:
            return aliases[0]
        strategy = self.strategy(stmt.text, aliases, text_key(stmt))
        picks = strategy.choose_many(n, self.healthy) if HEALTH.any_unhealthy or \
            HEALTH.shared else strategy.choose_many(n)
        if strategy.feedback:
            for alias, units in Counter(picks).items():
                self._started(strategy, alias, units)
        return picks

    def writable(self, stmt: Statement, aliases: list[str]) -> list[str]:
        """The containers a write may go to: all but the standbys (ProgrammingError where
        only standbys are named)."""
        if self.replicas is None:
            return aliases
        return list(self.replicas.writable(stmt, tuple(aliases)))

    def pick(self, stmt: Statement, aliases: tuple[str, ...],
             allowed: Callable[[str], bool] | None = None) -> str:
        """Choose one container of a list by its strategy: among those `allowed` (one of
        them at least), else among the healthy ones."""
        if len(aliases) == 1:
            return aliases[0]
        strategy = self.strategy(stmt.text, aliases, text_key(stmt))
        if allowed is not None:
            alias = strategy.choose(allowed)
        else:
            alias = strategy.choose(self.healthy) if HEALTH.any_unhealthy or \
                HEALTH.shared else strategy.choose()
        if strategy.feedback:
            self._started(strategy, alias, 1)
        return alias

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

    def _started(self, strategy: Strategy, alias: str, units: int) -> None:
        if not self._pending:
            self._since = time.monotonic()
        self._pending.append((strategy, alias, units))

    def detach(self) -> Units:
        """Hand the units chosen so far to what outlives the call (a streamed result): they
        end when it does, not with the call."""
        units = Units(self._pending, self._since)
        self._pending = []
        return units

    def settle(self, seconds: float | None = None) -> None:
        """End every unit chosen since the last call (the call that chose them ended, however:
        rows, error, interruption); seconds: how long their work took (None: since chosen)."""
        if self._pending:
            units = self.detach()
            units.settle(seconds)


class Units:
    """Units of work chosen and not yet ended; settle() ends them (once)."""

    __slots__ = ("_pending", "_since")

    def __init__(self, pending: list[tuple[Strategy, str, int]], since: float) -> None:
        self._pending, self._since = pending, since

    def settle(self, seconds: float | None = None) -> None:
        """Tell each strategy its units ended and how long they took; idempotent."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        if seconds is None:
            seconds = time.monotonic() - self._since
        for strategy, alias, units in pending:
            strategy.done(alias, seconds, units)
