"""Error budgets (max-errors-per-hour=N): services such as Exact Online block an API key for an
hour after a number of client errors (400, 401, 403, 404) per endpoint within an hour. The
client errors a container received are counted per endpoint (the entity set, or $metadata)
over the last hour, in this process or in the shared store; once N were received, the next
call to that endpoint is refused before it is sent."""
from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from typing import Any

from ...errors import InterfaceError, OperationalError
from ...settings import ContainerSpec
from ...state import store_key
from ...state.redis import RedisStore, store_for

HOUR = 3600.0
CLIENT_ERRORS = frozenset({400, 401, 403, 404})


def endpoint_of(path: str) -> str:
    """The endpoint of a path below the service root: 'Journals' for Journals(1),
    Journals/$count and Journals?$filter=..., '$metadata' for $metadata."""
    for stop in "(/?":
        path = path.split(stop, 1)[0]
    return path or "/"


class ErrorBudget:
    """The client errors of one container definition, per endpoint, over the last hour."""

    def __init__(self, spec: ContainerSpec, limit: int) -> None:
        self.alias = spec.alias
        self.limit = limit
        self.key = store_key("errors", spec.key)
        self.store: RedisStore | None = store_for(spec.options.shared_state)
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _local(self, endpoint: str, now: float) -> deque[float]:
        seen = self._seen.setdefault(endpoint, deque())
        while seen and seen[0] <= now - HOUR:
            seen.popleft()
        return seen

    def _shared(self, endpoint: str, now: float, add: bool) -> list[float] | None:
        """The times of the endpoint's errors in the store (one added first), or None while
        it cannot be reached."""
        assert self.store is not None
        key = f"{self.key}:{endpoint}"

        def run(io: Any) -> Any:
            pipe = io.client.pipeline()
            pipe.zremrangebyscore(key, "-inf", now - HOUR)
            if add:
                pipe.zadd(key, {f"{now}:{uuid.uuid4().hex[:8]}": now})
                pipe.expire(key, int(HOUR) + 60)
            pipe.zrange(key, 0, -1, withscores=True)
            return pipe.execute()  # (a coroutine in a call of pooldbapi.aio)
        found = self.store._call(run)
        return None if found is None else [score for _, score in found[-1]]

    def check(self, endpoint: str) -> None:
        """Raise OperationalError, before the call is sent, where the endpoint's budget is
        spent."""
        now = time.time()
        times = self._shared(endpoint, now, False) if self.store is not None else None
        if times is None:
            with self._lock:
                times = list(self._local(endpoint, now))
        if len(times) >= self.limit:
            wait = min(times) + HOUR - now
            raise OperationalError(
                f"{self.alias}: {len(times)} client errors (400, 401, 403, 404) from"
                f" {endpoint!r} within the hour (max-errors-per-hour={self.limit}): the call"
                f" is not sent, so that the service does not block the key; the next may go"
                f" in {max(wait, 0):.0f} s")

    def spent(self, endpoint: str) -> None:
        """Count a client error the endpoint answered."""
        now = time.time()
        with self._lock:
            self._local(endpoint, now).append(now)
        if self.store is not None:
            self._shared(endpoint, now, True)


_BUDGETS: dict[str, ErrorBudget] = {}
_LOCK = threading.Lock()


def budget_for(spec: ContainerSpec) -> ErrorBudget | None:
    """The process's error budget of a container definition, None without
    max-errors-per-hour."""
    given = spec.param("max-errors-per-hour")
    if given is None:
        return None
    try:
        limit = int(given)
        if limit < 1:
            raise ValueError
    except ValueError:
        raise InterfaceError(f"container {spec.alias!r}: key 'max-errors-per-hour' is a whole"
                             f" number of 1 or more, not {given!r}") from None
    found = _BUDGETS.get(spec.key)
    if found is None:
        with _LOCK:
            found = _BUDGETS.setdefault(spec.key, ErrorBudget(spec, limit))
    return found
