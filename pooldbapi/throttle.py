"""Process-wide throttles per container definition (max-calls-per-second)."""
from __future__ import annotations

import threading
import time
from typing import Any

from .settings import ContainerSpec


class Throttle:
    """Spaces calls to one container evenly at a fixed rate, shared by every thread."""

    def __init__(self, calls_per_second: float) -> None:
        self.interval = 1.0 / calls_per_second
        self._next = 0.0
        self._lock = threading.Lock()

    def take(self, calls: int = 1) -> float:
        """Wait until the next call(s) may go; return the seconds waited."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + calls * self.interval
        wait = start - now
        if wait > 0:
            time.sleep(wait)
        return max(wait, 0.0)

    def hold_until(self, when: float) -> None:
        """Make no call before the monotonic time `when` (a service asked to wait)."""
        with self._lock:
            self._next = max(self._next, when)


_THROTTLES: dict[tuple[Any, ...], Throttle] = {}
_LOCK = threading.Lock()


def throttle_for(spec: ContainerSpec) -> Throttle | None:
    """Return the process-wide throttle of a container definition, None when unthrottled."""
    rate = spec.options.max_calls_per_second
    if not rate:
        return None
    found = _THROTTLES.get(spec.key)
    if found is None:
        with _LOCK:
            found = _THROTTLES.setdefault(spec.key, Throttle(rate))
    return found
