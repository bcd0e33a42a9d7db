"""Limits per container definition, or per rate-limit-group shared by several containers:
max-calls-per-second (calls spaced evenly), max-calls-per-minute and max-calls-per-day (fixed
windows; the day starts at midnight UTC or in rate-limit-timezone). In this process, or in a
shared store (shared-state=redis://...), falling back to this process while it is away."""
from __future__ import annotations

import datetime
import threading
import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import telemetry, waits
from .cache import made_once
from .errors import InterfaceError, OperationalError
from .settings import ContainerSpec
from .state import store_key
from .state.local import Spacing, Window
from .state.redis import RedisStore, store_for

MINUTE, DAY = 60.0, 86400.0


def _day_offset(spec: ContainerSpec) -> float:
    """Seconds to add to UTC so that days start at midnight in the container's zone."""
    name = spec.options.rate_limit_timezone
    if not name:
        return 0.0
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InterfaceError(f"container {spec.alias!r}: rate-limit-timezone {name!r} is not"
                             " a time zone (for example Europe/Amsterdam)") from None
    offset = datetime.datetime.now(zone).utcoffset()
    return offset.total_seconds() if offset else 0.0


class Limiter:
    """The limits of one container or group: take() waits until a call may go."""

    def __init__(self, spec: ContainerSpec, key: str | tuple[Any, ...]) -> None:
        opts = spec.options
        self.alias = spec.alias
        self.key = store_key(key)
        self.store: RedisStore | None = store_for(opts.shared_state)
        rate = opts.max_calls_per_second
        self.interval = 1.0 / rate if rate else None
        self.spacing = Spacing(rate) if rate else None
        self.windows: list[tuple[Window, str]] = []
        if opts.max_calls_per_minute:
            self.windows.append((Window(opts.max_calls_per_minute, MINUTE), "minute"))
        if opts.max_calls_per_day:
            self.windows.append((Window(opts.max_calls_per_day, DAY, _day_offset(spec)), "day"))

    def take(self, calls: int = 1) -> float:
        """Wait until the next call(s) may go; return the seconds waited. A used-up day
        raises OperationalError (no statement waits for tomorrow)."""
        waited = 0.0
        for _ in range(calls):
            for window, name in self.windows:
                while True:
                    wait = None
                    if self.store is not None:
                        wait = self.store.window(self.key, window.limit, window.period,
                                                 window.offset)
                    if wait is None:
                        wait = window.take()
                    if wait <= 0:
                        break
                    if name == "day":
                        raise OperationalError(
                            f"container {self.alias!r}: max-calls-per-day"
                            f" ({window.limit:g}) is used up; the next day starts in"
                            f" {wait / 3600:.1f} h")
                    waits.sleep(wait)
                    waited += wait
        if self.store is not None and self.interval is None:  # spacing honours holds itself
            held = self.store.held(self.key)
            if held:
                waits.sleep(held)
                waited += held
        if self.interval is not None:
            wait = None
            if self.store is not None:
                wait = self.store.spacing(self.key, self.interval, calls)
            if wait is None:
                assert self.spacing is not None
                wait = self.spacing.reserve(calls)
            if wait > 0:
                waits.sleep(wait)
                waited += wait
        if waited and telemetry.ON:
            telemetry.throttled(self.alias, waited)
        return waited

    def hold_until(self, when: float) -> None:
        """Send nothing before the monotonic time `when` (a service asked to wait); through
        the store, every process holds."""
        if self.spacing is not None:
            self.spacing.hold_until(when)
        if self.store is not None:
            self.store.hold(self.key, max(when - time.monotonic(), 0.0))


_LIMITERS: dict[str | tuple[Any, ...], Limiter] = {}
_LOCK = threading.Lock()


def throttle_for(spec: ContainerSpec) -> Limiter | None:
    """Return the process-wide limiter of a container (or of its rate-limit-group), None
    when the container has no limit."""
    opts = spec.options
    if not (opts.max_calls_per_second or opts.max_calls_per_minute or opts.max_calls_per_day):
        return None
    key: str | tuple[Any, ...] = ("group", opts.rate_limit_group, opts.shared_state) \
        if opts.rate_limit_group else spec.key
    return made_once(_LIMITERS, _LOCK, key, lambda: Limiter(spec, key))
