"""Strategies choose the next container of a list: RoundRobin (default), WeightedRandom,
LeastBusy, Adaptive. One strategy object per distinct list of a statement, per connection."""
from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Protocol

Healthy = Callable[[str], bool]


def _always(alias: str) -> bool:
    return True


def seeded_random(seed: object, statement: str, aliases: tuple[str, ...]) -> random.Random:
    """Return the generator for a list: seeded from (seed, statement, list), never from hash()."""
    if seed is None:
        return random.Random()
    return random.Random(f"{seed}\0{statement}\0{','.join(aliases)}")


class Strategy(Protocol):
    """Picks the container for the next unit of work (execution, row or page) of one list."""

    aliases: tuple[str, ...]

    def choose(self, healthy: Healthy = _always) -> str:
        """Return the alias of the container for the next unit of work."""

    def choose_many(self, n: int, healthy: Healthy = _always) -> list[str]:
        """Return the containers for the next n units of work."""

    def done(self, alias: str, seconds: float, units: int = 1) -> None:
        """Hear that work chosen earlier finished (for strategies that learn)."""


class _OneByOne:
    """choose_many as n calls of choose."""

    def choose(self, healthy: Healthy = _always) -> str:
        raise NotImplementedError

    def choose_many(self, n: int, healthy: Healthy = _always) -> list[str]:
        return [self.choose(healthy) for _ in range(n)]


class RoundRobin(_OneByOne):
    """The list as written, in turn, from a random (or seeded) start; duplicates are weights."""

    def __init__(self, aliases: tuple[str, ...], rng: random.Random) -> None:
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

    def done(self, alias: str, seconds: float, units: int = 1) -> None:
        pass


class WeightedRandom(_OneByOne):
    """Independent random picks, each listed container weighted by how often it is listed."""

    def __init__(self, aliases: tuple[str, ...], rng: random.Random) -> None:
        self.aliases = aliases
        self._rng = rng
        self._lock = threading.Lock()

    def choose(self, healthy: Healthy = _always) -> str:
        candidates = [a for a in self.aliases if healthy(a)] or list(self.aliases)
        with self._lock:
            return self._rng.choice(candidates)

    def done(self, alias: str, seconds: float, units: int = 1) -> None:
        pass


class LeastBusy(_OneByOne):
    """The healthy container with the fewest units in flight; ties in round-robin order."""

    def __init__(self, aliases: tuple[str, ...], rng: random.Random) -> None:
        self.aliases = aliases
        self._turn = RoundRobin(aliases, rng)
        self._busy = {alias: 0 for alias in aliases}
        self._lock = threading.Lock()

    def choose(self, healthy: Healthy = _always) -> str:
        with self._lock:
            order = [self._turn.choose() for _ in self.aliases]
            candidates = [a for a in order if healthy(a)] or order
            weight = {a: self.aliases.count(a) for a in candidates}
            alias = min(candidates, key=lambda a: self._busy[a] / weight[a])
            self._busy[alias] += 1
            return alias

    def done(self, alias: str, seconds: float, units: int = 1) -> None:
        with self._lock:
            self._busy[alias] = max(0, self._busy[alias] - 1)


class Adaptive(_OneByOne):
    """Picks containers in proportion to their measured throughput (units per second)."""

    def __init__(self, aliases: tuple[str, ...], rng: random.Random) -> None:
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

    def done(self, alias: str, seconds: float, units: int = 1) -> None:
        rate = units / max(seconds, 1e-6)
        with self._lock:
            old = self._rate[alias]
            self._rate[alias] = rate if old == 0.0 else 0.8 * old + 0.2 * rate


STRATEGIES: dict[str, type[RoundRobin | WeightedRandom | LeastBusy | Adaptive]] = {
    "round-robin": RoundRobin, "weighted-random": WeightedRandom,
    "least-busy": LeastBusy, "adaptive": Adaptive,
}
