"""The one cache policy: entries kept by key, bounded by their number and by their bytes
(least recently used out first); an entry larger than LARGEST is never kept. An entry's
bytes are the characters of the text it is kept for (its text arguments and a text result):
what is built from a text (a syntax tree, a shape, a translation) grows with it, and a
generated statement of megabytes would push out everything else (as psycopg also reasons)."""
from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, ParamSpec, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
P = ParamSpec("P")
R = TypeVar("R")

BYTES = 4 << 20
"""Characters of text one cache keeps for its entries, at most."""
LARGEST = 16 << 10
"""An entry for a longer text is never kept in an ordinary cache (a Tiered cache keeps it
apart, among the long ones)."""
LONG_ENTRIES = 64
"""Long entries (texts over LARGEST) a Tiered cache keeps, at most: as sqlite3's statement
cache (128) and psycopg's prepared statements (100) keep repeated texts whatever their length,
the batches of a flush or a to_sql call, and a load's few generated statements repeated."""
LONG_BYTES = 4 << 20
"""Characters of long texts a Tiered cache keeps, at most."""
LONG_LARGEST = 1 << 20
"""A text longer than this is never kept, not even among the long ones."""


class BoundedCache(Generic[K, V]):
    """A cache bounded by entries and bytes; thread-safe (a lookup takes no lock)."""

    def __init__(self, entries: int, nbytes: int = BYTES, largest: int = LARGEST) -> None:
        self.entries, self.nbytes, self.largest = entries, nbytes, largest
        self._data: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.bytes = 0  # the sum of the kept entries' sizes

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: K) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[K]:
        """The keys kept, least recently used first (a copy: safe while others put)."""
        return iter(list(self._data))

    def lookup(self, key: K) -> tuple[V] | None:
        """(value,) if kept (now the most recently used), else None."""
        found = self._data.get(key)
        if found is None:
            return None
        try:
            self._data.move_to_end(key)
        except KeyError:  # evicted by another thread meanwhile: the value is still good
            pass
        return (found[0],)

    def get(self, key: K) -> V | None:
        """The value kept for key (now the most recently used), or None."""
        found = self._data.get(key)  # (lookup's body: get is on every statement's path)
        if found is None:
            return None
        try:
            self._data.move_to_end(key)
        except KeyError:  # evicted by another thread meanwhile: the value is still good
            pass
        return found[0]

    def put(self, key: K, value: V, size: int) -> V:
        """Keep value for key (unless size is over `largest`), evicting the least recently
        used entries until both bounds hold; return value."""
        if size > self.largest:
            return value
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self.bytes -= old[1]
            while self._data and (len(self._data) >= self.entries or
                                  self.bytes + size > self.nbytes):
                self.bytes -= self._data.popitem(last=False)[1][1]
            self._data[key] = (value, size)
            self.bytes += size
        return value

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._data.clear()
            self.bytes = 0


class Tiered(Generic[K, V]):
    """Two BoundedCaches under one policy: entries up to LARGEST in one, longer ones (up to
    LONG_LARGEST) apart, so that generated statements push out only each other and never
    the many ordinary ones, and those that repeat are still kept."""

    def __init__(self, entries: int, nbytes: int = BYTES) -> None:
        self.short: BoundedCache[K, V] = BoundedCache(entries, nbytes, LARGEST)
        self.long: BoundedCache[K, V] = BoundedCache(LONG_ENTRIES, LONG_BYTES, LONG_LARGEST)

    def __len__(self) -> int:
        return len(self.short) + len(self.long)

    def __contains__(self, key: K) -> bool:
        return key in self.short or key in self.long

    def get(self, key: K) -> V | None:
        """The value kept for key (now the most recently used of its tier), or None."""
        short = self.short._data  # (BoundedCache.get's body: this is on every statement's path)
        found = short.get(key)
        if found is None:
            return self.long.get(key)
        try:
            short.move_to_end(key)
        except KeyError:  # evicted by another thread meanwhile: the value is still good
            pass
        return found[0]

    def put(self, key: K, value: V, size: int) -> V:
        """Keep value in the tier its size says (not at all over LONG_LARGEST); return it."""
        return (self.short if size <= LARGEST else self.long).put(key, value, size)

    def clear(self) -> None:
        """Forget every entry of both tiers."""
        self.short.clear()
        self.long.clear()


def made_once(table: dict[K, V], lock: threading.Lock, key: K, make: Callable[[], V]) -> V:
    """The value of table for key, made by make() under lock on first use, once whatever the
    threads (a lookup takes no lock): the process-wide registries by key (pools, limiters,
    stores). Not a cache: what they keep lives as long as the process, or until its owner
    drops it."""
    found = table.get(key)
    if found is None:
        with lock:
            found = table.get(key)
            if found is None:
                found = table[key] = make()
    return found


def text_size(*values: object) -> int:
    """An entry's size: the characters of the texts among values (and inside tuples or
    frozensets of them), as the cache measures it."""
    size = 0
    for value in values:
        if isinstance(value, str):
            size += len(value)
        elif isinstance(value, tuple | frozenset):
            size += text_size(*value)
    return size


_KEYWORDS = object()  # parts a key: f(a, b=1) and f(a, ("b", 1)) are kept apart


def cached(entries: int, nbytes: int = BYTES, largest: int = LARGEST
           ) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """functools.lru_cache under this policy: a function of hashable positional arguments
    whose result is kept per arguments, sized by text_size(arguments, result). Exceptions
    are not kept. The cache is the wrapper's `cache` attribute."""
    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        store: BoundedCache[tuple[object, ...], R] = BoundedCache(entries, nbytes, largest)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            key = (*args, _KEYWORDS, *sorted(kwargs.items())) if kwargs else args
            found = store.lookup(key)
            if found is not None:
                return found[0]
            result = fn(*args, **kwargs)
            return store.put(key, result, text_size(*args, *kwargs.values(), result))

        wrapper.cache = store  # type: ignore[attr-defined]
        return wrapper
    return decorate
