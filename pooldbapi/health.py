"""Process-wide health of containers: failure classification, back-off, probes, re-admission."""
from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

from . import telemetry
from .backends import backend as load_backend
from .backends.base import driver_error
from .errors import Error
from .lag import LAG
from .settings import ContainerSpec
from .state import store_key
from .state.redis import RedisStore, store_for
from .throttle import throttle_for

log = logging.getLogger("pooldbapi")

FIRST_BACKOFF = 0.25
"""Seconds a container is skipped after its first connection-level failure."""
MAX_BACKOFF = 8.0
"""The back-off doubles with each further failure, up to this many seconds."""
SHARED_CACHE = 0.25
"""Seconds a process trusts what the shared store said of a container's health."""


@dataclass
class ContainerHealth:
    """What the process knows of one container definition's health."""

    alias: str
    healthy: bool = True
    failures: int = 0
    next_probe: float = 0.0        # monotonic time of the next probe while unhealthy
    last_error: str | None = None
    replica_of: str | None = None             # a standby (replica-of): its primary
    replication_lag: float | None = None      # a standby's last measured lag, seconds
    promoted: bool = False                    # a standby that answers as a primary


class Health:
    """Health per container definition, with a daemon thread that probes the unhealthy."""

    def __init__(self) -> None:
        self._states: dict[str, ContainerHealth] = {}
        self._specs: dict[str, ContainerSpec] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._prober: threading.Thread | None = None
        self.any_unhealthy = False
        self.shared = False   # some container's health lives in a shared store
        self._seen: dict[str, tuple[float, bool]] = {}  # store answers, cached
        # this prober's name for probe leases (a pid is reused; a child gets a new name)
        self._owner = f"{os.getpid()}:{uuid.uuid4().hex}"

    def watch(self, spec: ContainerSpec) -> None:
        """Note a container whose health other processes share (shared-state)."""
        if spec.options.shared_state:
            self.shared = True

    def _shared_down(self, spec: ContainerSpec) -> bool:
        now = time.monotonic()
        seen = self._seen.get(spec.key)
        if seen is not None and now - seen[0] < SHARED_CACHE:
            return seen[1]
        found = _store(spec)
        down = found is not None and found[0].unhealthy(found[1]) is not None
        self._seen[spec.key] = (now, down)
        return down

    def is_healthy(self, spec: ContainerSpec) -> bool:
        """Tell whether strategies may choose this container now (another process may have
        found it down, where its health is shared)."""
        if not spec.options.exclude_unhealthy:
            return True
        if spec.options.shared_state and self._shared_down(spec):
            return False
        if not self.any_unhealthy:
            return True
        state = self._states.get(spec.key)
        return state is None or state.healthy

    def failed(self, spec: ContainerSpec, error: str) -> None:
        """Hear of a connection-level failure: skip the container for a growing back-off."""
        with self._lock:
            state = self._states.setdefault(spec.key, ContainerHealth(spec.alias))
            self._specs[spec.key] = spec
            state.failures += 1
            backoff = min(FIRST_BACKOFF * 2 ** (state.failures - 1), MAX_BACKOFF)
            state.next_probe = time.monotonic() + backoff
            state.last_error = error
            if state.healthy:
                log.warning("container %s is unhealthy: %s", spec.alias, error)
                if telemetry.ON:
                    telemetry.health_changed(spec.alias, False)
            state.healthy = False
            self.any_unhealthy = True
            self._start_prober()
        self._wake.set()
        # Other processes skip it until a probe re-admits it: the mark outlives the back-off
        # by the probe lease, so that it lapses by itself only where its prober died.
        self._share(spec, lambda store, key: store.mark_unhealthy(key, backoff + MAX_BACKOFF,
                                                                  error))

    def succeeded(self, spec: ContainerSpec) -> None:
        """Hear that the container answered: re-admit it."""
        state = self._states.get(spec.key)
        if state is None or (state.healthy and not state.failures):
            return
        with self._lock:
            if not state.healthy:
                log.warning("container %s is healthy again", spec.alias)
                if telemetry.ON:
                    telemetry.health_changed(spec.alias, True)
            state.healthy, state.failures, state.last_error = True, 0, None
            self.any_unhealthy = any(not s.healthy for s in self._states.values())
        self._share(spec, lambda store, key: store.mark_healthy(key))

    def _probe_lease(self, spec: ContainerSpec) -> bool:
        """Where health is shared, one process probes a container at a time; the others
        re-admit it once the store no longer says it is down."""
        found = _store(spec)
        if found is None:
            return True
        store, key = found
        taken = store.lease(key, MAX_BACKOFF, self._owner)
        if taken is None or taken:
            return True  # the lease is ours, or the store is away: probe here
        if store.unhealthy(key) is None:
            self.succeeded(spec)  # another process re-admitted it (or its mark expired)
        else:
            with self._lock:
                state = self._states.get(spec.key)
                if state is not None:
                    state.next_probe = time.monotonic() + FIRST_BACKOFF
        return False

    def _share(self, spec: ContainerSpec, tell: Any) -> None:
        """Tell the shared store, where the container's health is shared."""
        found = _store(spec)
        if found is not None:
            tell(*found)
            self._seen.pop(spec.key, None)

    def snapshot(self) -> dict[str, ContainerHealth]:
        """Return a copy of every container's health, by alias."""
        with self._lock:
            return {s.alias: ContainerHealth(s.alias, s.healthy, s.failures, s.next_probe,
                                             s.last_error) for s in self._states.values()}

    def reset(self) -> None:
        """Forget everything (tests); a child process after fork starts afresh too."""
        with self._lock:
            self._states.clear()
            self._specs.clear()
            self._seen.clear()
            self.any_unhealthy = False

    def _after_fork(self) -> None:
        # the parent's lock may be held by a thread that does not exist here: never take it
        self.__init__()  # type: ignore[misc]

    def _start_prober(self) -> None:
        if self._prober is None or not self._prober.is_alive():
            self._prober = threading.Thread(target=self._probe_loop, name="pooldbapi-health",
                                            daemon=True)
            self._prober.start()

    def _probe_loop(self) -> None:
        while True:
            with self._lock:
                due = [(key, self._specs[key]) for key, s in self._states.items()
                       if not s.healthy and s.next_probe <= time.monotonic()]
                pending = [s.next_probe for s in self._states.values() if not s.healthy]
                if not pending:
                    self._prober = None
                    return
            for _, spec in due:
                self._probe(spec)
            wait = max(0.05, min(pending) - time.monotonic()) if not due else 0.05
            self._wake.wait(min(wait, 1.0))
            self._wake.clear()

    def _probe(self, spec: ContainerSpec) -> None:
        if spec.options.shared_state and not self._probe_lease(spec):
            return
        backend = load_backend(spec.driver, spec.alias)
        try:
            link = backend.connect(spec, throttle_for(spec) if backend.throttles_calls else None)
        except Exception as exc:  # noqa: BLE001 - any failure keeps it out, with a longer wait
            # the driver's message as a failed connect's error says it (secrets masked)
            self.failed(spec, str(exc if isinstance(exc, Error) else
                                  driver_error(backend, spec, exc, connecting=True)))
            return
        try:
            link.probe()
        except Exception as exc:  # noqa: BLE001 - any failure keeps it out, with a longer wait
            self.failed(spec, f"probe failed: {link.wrap(exc)}")
            return
        finally:
            link.close()
        self.succeeded(spec)
        self._share(spec, lambda store, key: store.release(key))  # the probe lease


def _store(spec: ContainerSpec) -> tuple[RedisStore, str] | None:
    """The store holding a container's shared health, and its key there; None where the
    container's health lives in this process."""
    store = store_for(spec.options.shared_state)
    return None if store is None else (store, store_key(spec.key))


HEALTH = Health()


def health() -> dict[str, ContainerHealth]:
    """Return the health of every container this process has seen fail, and of every
    standby whose lag it measures, by alias."""
    found = HEALTH.snapshot()
    for alias, lag in LAG.snapshot().items():
        found[alias] = replace(found.get(alias) or ContainerHealth(alias),
                               replica_of=lag.primary, replication_lag=lag.seconds,
                               promoted=lag.promoted)
    return found


telemetry.observe(health=health)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=HEALTH._after_fork)
