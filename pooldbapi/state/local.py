"""In-process limits: calls spaced at a rate (GCRA without burst), and fixed windows (so many
calls a minute or a day). The clock is injectable for tests."""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

Clock = Callable[[], float]


class Spacing:
    """Calls spaced evenly at a fixed rate: each call reserves the next slot (the theoretical
    arrival time of GCRA with no burst), shared by every thread."""

    def __init__(self, calls_per_second: float, clock: Clock = time.monotonic) -> None:
        self.interval = 1.0 / calls_per_second
        self._clock = clock
        self._next = 0.0
        self._lock = threading.Lock()

    def reserve(self, calls: int = 1) -> float:
        """Reserve the next slot(s); return the seconds to wait before sending."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + calls * self.interval
        return max(start - now, 0.0)

    def hold_until(self, when: float) -> None:
        """Make no call before the clock reads `when` (a service asked to wait)."""
        with self._lock:
            self._next = max(self._next, when)


class Window:
    """At most `limit` calls per fixed window of `period` seconds; windows start at multiples
    of the period, shifted by `offset` seconds (a time zone's midnight for days)."""

    def __init__(self, limit: float, period: float, offset: float = 0.0,
                 clock: Clock = time.time) -> None:
        self.limit, self.period, self.offset = limit, period, offset
        self._clock = clock
        self._index: int | None = None
        self._used = 0
        self._lock = threading.Lock()

    def take(self) -> float:
        """Count one call in the current window; return 0, or the seconds until the next
        window when this one is used up (the call is then not counted)."""
        with self._lock:
            now = self._clock()
            index = math.floor((now + self.offset) / self.period)
            if index != self._index:
                self._index, self._used = index, 0
            if self._used < self.limit:
                self._used += 1
                return 0.0
            return (index + 1) * self.period - self.offset - now
