"""Strategies choose the next container of a list: RoundRobin (default), WeightedRandom,
LeastBusy, Adaptive. One strategy object per distinct list of a statement, per connection;
LeastBusy reads the units in flight per container definition, process-wide (InFlight)."""
from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable
from typing import ClassVar, Protocol

Healthy = Callable[[str], bool]


def _always(alias: str) -> bool:
    return True


def seeded_random(seed: object, statement: str, aliases: tuple[str, ...]) -> random.Random:
    """Return the generator for a list: seeded from (seed, statement, list), never from hash()."""
    if seed is None:
        return random.Random()
    return random.Random(f"{seed}\0{statement}\0{','.join(aliases)}")


class InFlight:
    """Units of work in flight per container definition (ContainerSpec.key), process-wide:
    every connection and thread that chose a container counts there until its unit ends."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def count(self, key: str) -> int:
        """The units in flight on a container definition."""
        return self.counts.get(key, 0)

    def end(self, key: str, units: int = 1) -> None:
        """Units on a container ended; a key with none left is dropped (nothing grows)."""
        with self.lock:
            left = self.counts.get(key, 0) - units
            if left > 0:
                self.counts[key] = left
            else:
                # never below 0: a child after fork starts from nothing, and its units
                # chosen before the fork still end
                self.counts.pop(key, None)

    def clear(self) -> None:
        """Forget every count (a child process after fork: the parent's units are not ours)."""
        self.lock = threading.Lock()
        self.counts = {}


IN_FLIGHT = InFlight()
"""The process's units in flight, per container definition (what least-busy compares)."""

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=IN_FLIGHT.clear)


class Strategy(Protocol):
    """Picks the container for the next unit of work (execution, row or page) of one list.
    Made as cls(aliases, rng, keys), keys naming each alias's container definition; a
    strategy with `feedback` is told (done) when each unit it chose ended."""

    aliases: tuple[str, ...]
    feedback: ClassVar[bool]

    def choose(self, healthy: Healthy = _always) -> str:
        """Return the alias of the container for the next unit of work."""

    def choose_many(self, n: int, healthy: Healthy = _always) -> list[str]:
        """Return the containers for the next n units of work."""

    def done(self, alias: str, seconds: float, units: int) -> None:
        """Hear that work chosen earlier finished (for strategies that learn)."""


class _OneByOne:
    """choose_many as n calls of choose."""

    feedback: ClassVar[bool] = False

    def choose(self, healthy: Healthy = _always) -> str:
        raise NotImplementedError

    def choose_many(self, n: int, healthy: Healthy = _always) -> list[str]:
        return [self.choose(healthy) for _ in range(n)]


class RoundRobin(_OneByOne):
    """The list as written, in turn, from a random (or seeded) start; duplicates are weights."""

    def __init__(self, aliases: tuple[str, ...], rng: random.Random,
                 keys: tuple[str, ...] | None = None) -> None:
        self.aliases = aliases
        self._next = rng.randrange(len(aliases))
        self._lock = threading.Lock()

    def choose(self, healthy: Healthy = _always) -> str:
        with self._lock:
            n = len(self.aliases)
            start = self._next
            for step in range(n):
                alias = self.aliases[(start + step) % n]
                if healthy(alias):
                    self._next = (start + step + 1) % n
                    return alias
            # none is healthy: go on in turn, the error will say why
            self._next = (start + 1) % n
            return self.aliases[start]

    def choose_many(self, n: int, healthy: Healthy = _always) -> list[str]:
        if not all(healthy(a) for a in set(self.aliases)):
            return super().choose_many(n, healthy)
        with self._lock:
            k, start = len(self.aliases), self._next
            self._next = (start + n) % k
        turn = self.aliases[start:] + self.aliases[:start]
        return list(turn * (n // k) + turn[:n % k])

    def done(self, alias: str, seconds: float, units: int) -> None:
        pass


class WeightedRandom(_OneByOne):
    """Independent random picks, each listed container weighted by how often it is listed."""

    def __init__(self, aliases: tuple[str, ...], rng: random.Random,
                 keys: tuple[str, ...] | None = None) -> None:
        self.aliases = aliases
        self._rng = rng
        self._lock = threading.Lock()

    def choose(self, healthy: Healthy = _always) -> str:
        candidates = [a for a in self.aliases if healthy(a)] or list(self.aliases)
        with self._lock:
            return self._rng.choice(candidates)

    def done(self, alias: str, seconds: float, units: int) -> None:
        pass


class LeastBusy(_OneByOne):
    """The healthy container with the fewest units in flight (process-wide, per container
    definition; a container listed twice may carry twice the load); ties in turn, so that
    work one at a time goes round the list."""

    feedback = True

    def __init__(self, aliases: tuple[str, ...], rng: random.Random,
                 keys: tuple[str, ...] | None = None, in_flight: InFlight | None = None
                 ) -> None:
        self.aliases = aliases
        # keys: the containers' definitions (as pools and health are keyed), one per alias,
        # counted process-wide; without them (aliases are only names) it counts on its own
        self._key = dict(zip(aliases, keys if keys is not None else aliases, strict=True))
        self._weight = {alias: aliases.count(alias) for alias in aliases}
        if in_flight is None:
            in_flight = IN_FLIGHT if keys is not None else InFlight()
        self._in_flight = in_flight
        self._next = rng.randrange(len(aliases))

    def choose(self, healthy: Healthy = _always) -> str:
        n = len(self.aliases)
        in_flight = self._in_flight
        # health is asked outside the process-wide lock (it may ask a shared store)
        ok = [healthy(alias) for alias in self.aliases] if healthy is not _always else None
        with in_flight.lock:  # read and count at once: two threads never both take the idle one
            start = self._next
            best, best_load, best_pos = "", 0.0, -1
            for step in range(n):
                pos = (start + step) % n
                if ok is not None and not ok[pos]:
                    continue
                alias = self.aliases[pos]
                load = in_flight.counts.get(self._key[alias], 0) / self._weight[alias]
                if best_pos < 0 or load < best_load:
                    best, best_load, best_pos = alias, load, pos
            if best_pos < 0:  # none is healthy: go on in turn, the error will say why
                best_pos = start
                best = self.aliases[start]
            self._next = (best_pos + 1) % n
            key = self._key[best]
            in_flight.counts[key] = in_flight.counts.get(key, 0) + 1
            return best

    def busy(self, alias: str) -> int:
        """The units in flight on the alias's container definition."""
        return self._in_flight.count(self._key[alias])

    def done(self, alias: str, seconds: float, units: int) -> None:
        self._in_flight.end(self._key[alias], units)


class Adaptive(_OneByOne):
    """Picks containers in proportion to their measured throughput (units per second)."""

    feedback = True

    def __init__(self, aliases: tuple[str, ...], rng: random.Random,
                 keys: tuple[str, ...] | None = None) -> None:
        self.aliases = aliases
        self._rng = rng
        self._rate = {alias: 0.0 for alias in aliases}
        self._lock = threading.Lock()

    def choose(self, healthy: Healthy = _always) -> str:
        candidates = [a for a in self.aliases if healthy(a)] or list(self.aliases)
        with self._lock:
            unmeasured = [a for a in candidates if self._rate[a] == 0.0]
            if unmeasured:
                return self._rng.choice(unmeasured)
            return self._rng.choices(candidates, [self._rate[a] for a in candidates])[0]

    def done(self, alias: str, seconds: float, units: int) -> None:
        rate = units / max(seconds, 1e-6)
        with self._lock:
            old = self._rate[alias]
            self._rate[alias] = rate if old == 0.0 else 0.8 * old + 0.2 * rate


STRATEGIES: dict[str, type[RoundRobin | WeightedRandom | LeastBusy | Adaptive]] = {
    "round-robin": RoundRobin, "weighted-random": WeightedRandom,
    "least-busy": LeastBusy, "adaptive": Adaptive,
}
