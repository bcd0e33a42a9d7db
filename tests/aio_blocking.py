"""Synchronous code (the fault scenarios) driving pooldbapi.aio: each awaited method runs on one
event loop in a thread of its own, so a scenario written once runs through both APIs."""
from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any

import pooldbapi.aio


class Loop:
    """An event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True,
                         name="aio-blocking").start()

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=300)

    def connect(self, *args: Any, **kwargs: Any) -> Blocking:
        return Blocking(self.call(pooldbapi.aio.connect(*args, **kwargs)), self)


class Blocking:
    """An AsyncConnection or AsyncCursor seen from synchronous code; what the shell does not
    have (a cursor's _result) is read from the core object it wraps."""

    def __init__(self, target: Any, loop: Loop) -> None:
        self._target, self._loop = target, loop

    def __getattr__(self, name: str) -> Any:
        target = self._target
        if not hasattr(target, name):
            return getattr(target.sync, name)
        value = getattr(target, name)
        if inspect.iscoroutinefunction(value):
            return lambda *a, **k: self._wrap(self._loop.call(value(*a, **k)))
        if callable(value) and not isinstance(value, type):
            return lambda *a, **k: self._wrap(value(*a, **k))
        return value

    def _wrap(self, value: Any) -> Any:
        if isinstance(value, pooldbapi.aio.AsyncConnection | pooldbapi.aio.AsyncCursor):
            return Blocking(value, self._loop)
        return value
