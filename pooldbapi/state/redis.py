"""Limits and health in a Redis store, shared by processes and hosts. The arithmetic runs in
Lua on the server, on the server's clock (redis.call('TIME')), so clients whose clocks
disagree still agree. Every call is bounded by short timeouts; while the store cannot be
reached, callers fall back to in-process limits (one warning) and try the store again later."""
from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from .. import waits
from ..cache import made_once
from ..errors import redact

log = logging.getLogger("pooldbapi")

TIMEOUT = 1.0
"""Seconds a store call may take (connect and each reply)."""
RETRY_AFTER = 15.0
"""Seconds to stay on in-process limits after the store failed, before trying it again."""

_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1000000 "
# KEYS[1]: the next free slot, KEYS[2]: a hold; ARGV: interval (s), calls. Returns the
# seconds to wait (past the hold, if one is set).
_SPACING = _NOW + """
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local held = tonumber(redis.call('GET', KEYS[2]) or '0')
local start = math.max(now, tat, held)
local nxt = start + tonumber(ARGV[2]) * tonumber(ARGV[1])
redis.call('SET', KEYS[1], tostring(nxt), 'PX', math.ceil((nxt - now) * 1000) + 1000)
return tostring(start - now)
"""
# KEYS[1]: the window counter's prefix; ARGV: limit, period (s), offset (s). Returns 0 when
# the call is counted, else the seconds until the next window.
_WINDOW = _NOW + """
local period, offset = tonumber(ARGV[2]), tonumber(ARGV[3])
local index = math.floor((now + offset) / period)
local key = KEYS[1] .. ':' .. index
local used = redis.call('INCR', key)
if used == 1 then redis.call('EXPIRE', key, math.ceil(period) + 60) end
if used <= tonumber(ARGV[1]) then return '0' end
redis.call('DECR', key)
return tostring((index + 1) * period - offset - now)
"""
# KEYS[1]: a hold; ARGV: seconds. Nothing is sent before the server's clock passes it.
_HOLD = _NOW + """
local untl = now + tonumber(ARGV[1])
local old = tonumber(redis.call('GET', KEYS[1]) or '0')
if untl > old then
  redis.call('SET', KEYS[1], tostring(untl), 'PX', math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
end
return 'ok'
"""
_HELD = _NOW + """
local untl = tonumber(redis.call('GET', KEYS[1]) or '0')
return tostring(math.max(untl - now, 0))
"""

# The probe lease: taken where free, renewed by its holder; anyone else is refused.
_LEASE = """
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


class _Io:
    """A redis-py client of a store's URL and the scripts registered on it: a redis.Redis in
    the synchronous API, a redis.asyncio.Redis (whose calls return coroutines) for one event
    loop. The same timeouts for both."""

    def __init__(self, client_class: Any, url: str,
                 loops: weakref.WeakKeyDictionary[Any, _Io] | None = None) -> None:
        self._loops = loops  # where an event loop's is kept (dropped at its close)
        self.client = client_class.from_url(url, socket_timeout=TIMEOUT,
                                            socket_connect_timeout=TIMEOUT,
                                            retry_on_timeout=False)
        self.spacing = self.client.register_script(_SPACING)
        self.window = self.client.register_script(_WINDOW)
        self.hold = self.client.register_script(_HOLD)
        self.held = self.client.register_script(_HELD)
        self.lease = self.client.register_script(_LEASE)

    async def aclose(self) -> None:
        """Close an event loop's client (at the loop's shutdown)."""
        loops = self._loops if self._loops is not None else {}
        for loop, io in list(loops.items()):
            if io is self:
                del loops[loop]
        await self.client.aclose()


class RedisStore:
    """One store URL: a redis-py client (its connection pool shared by the process) and the
    scripts; each method returns None while the store cannot be reached. In a call of
    pooldbapi.aio (waits.active()) the round trips are a redis.asyncio client's of the
    running event loop (one per loop, closed with it), awaited there: the same calls and
    scripts, only the I/O differs."""

    def __init__(self, url: str) -> None:
        import redis  # the extra pooldbapi[redis]
        self.url = url
        self._redis = redis
        self._sync = _Io(redis.Redis, url)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Io] = \
            weakref.WeakKeyDictionary()
        self._down_until = 0.0
        self._lock = threading.Lock()

    def _io(self) -> _Io:
        """The running event loop's client, made at its first call there."""
        loop = asyncio.get_running_loop()
        found = self._loops.get(loop)
        if found is None:
            import redis.asyncio
            found = self._loops[loop] = _Io(redis.asyncio.Redis, self.url, self._loops)
            waits.closed_with_loop(found)
        return found

    def forget_loops(self) -> None:
        """Drop the event loops' clients (a forked child never uses its parent's)."""
        self._loops = weakref.WeakKeyDictionary()

    def send(self, run: Callable[[_Io], Any]) -> Any:
        """One round trip, run(io) with io.client (and the scripts) for the calling code: the
        synchronous client, or in a call of pooldbapi.aio the running loop's async client,
        whose coroutine is awaited as a task of its own (TIMEOUT is a cancellation within
        it). A redis.RedisError is raised."""
        if waits.active():
            return waits.awaited_task(run(self._io()))
        return run(self._sync)

    def _call(self, run: Callable[[_Io], Any]) -> Any:
        if self._down_until and time.monotonic() < self._down_until:
            return None
        try:
            found = self.send(run)
        except self._redis.RedisError as exc:
            with self._lock:
                if not self._down_until:
                    log.warning("shared state %s cannot be reached (%s): limits and health stay"
                                " in this process until it answers again",
                                redact(self.url), redact(str(exc), ()))
                self._down_until = time.monotonic() + RETRY_AFTER
            return None
        if self._down_until:
            with self._lock:
                self._down_until = 0.0
            log.warning("shared state %s answers again", redact(self.url))
        return found

    def spacing(self, key: str, interval: float, calls: int = 1) -> float | None:
        """Reserve the next slot(s) of a rate, after any hold; the seconds to wait, or None
        (unreachable)."""
        found = self._call(lambda io: io.spacing(keys=[key + ":next", key + ":hold"],
                                                 args=[interval, calls]))
        return None if found is None else float(found)

    def window(self, key: str, limit: float, period: float, offset: float) -> float | None:
        """Count a call in the current window: 0, the seconds to the next window, or None."""
        found = self._call(lambda io: io.window(keys=[f"{key}:w{int(period)}"],
                                                args=[limit, period, offset]))
        return None if found is None else float(found)

    def hold(self, key: str, seconds: float) -> None:
        """Let no process send before `seconds` from now (the server's clock)."""
        self._call(lambda io: io.hold(keys=[key + ":hold"], args=[seconds]))

    def held(self, key: str) -> float | None:
        """Seconds left of a hold (0 without one), or None."""
        found = self._call(lambda io: io.held(keys=[key + ":hold"]))
        return None if found is None else float(found)

    def mark_unhealthy(self, key: str, seconds: float, error: str) -> None:
        """Tell every process that the container failed, for `seconds`."""
        self._call(lambda io: io.client.set(key + ":down", error,
                                           px=max(1, int(seconds * 1000))))

    def mark_healthy(self, key: str) -> None:
        self._call(lambda io: io.client.delete(key + ":down"))

    def lease(self, key: str, seconds: float, owner: str) -> bool | None:
        """Take (or, for its holder `owner`, renew) the probe lease of a container for
        `seconds`: True for one owner at a time, False for the others, None while the store
        cannot be reached."""
        found = self._call(lambda io: io.lease(keys=[key + ":probe"],
                                               args=[owner, max(1, int(seconds * 1000))]))
        return None if found is None and self._down_until else bool(found)

    def release(self, key: str) -> None:
        """Give the probe lease back (the probe re-admitted the container)."""
        self._call(lambda io: io.client.delete(key + ":probe"))

    def put(self, key: str, value: str, seconds: float) -> None:
        """Publish a value (a standby's measured lag) for `seconds`."""
        self._call(lambda io: io.client.set(key, value, px=max(1, int(seconds * 1000))))

    def get(self, key: str) -> str | None:
        """A value published with put() and not expired, else None."""
        found = self._call(lambda io: io.client.get(key))
        return found.decode() if isinstance(found, bytes) else found

    def unhealthy(self, key: str) -> str | None:
        """The error another process recorded while the container is down, else None."""
        found = self._call(lambda io: io.client.get(key + ":down"))
        return found.decode() if isinstance(found, bytes) else found


_STORES: dict[str, RedisStore] = {}
_STORES_LOCK = threading.Lock()


def store_for(url: str | None) -> RedisStore | None:
    """The process's store for a URL (one client and connection pool per URL), or None."""
    if not url:
        return None
    return made_once(_STORES, _STORES_LOCK, url, lambda: RedisStore(url))


def _after_fork() -> None:
    for store in _STORES.values():  # (held on by limiters, budgets and leases too)
        store.forget_loops()
    _STORES.clear()  # a child opens connections of its own




if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
