"""Which containers a transaction touched; commit and rollback fan-out; partial commits."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .errors import Error, PartialCommitError, wrap
from .pool import Physical, pool_for
from .settings import ContainerSpec

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger("pooldbapi")


class Transaction:
    """The physical connections one pooldbapi connection borrowed, one per container."""

    def __init__(self) -> None:
        self.borrowed: dict[str, Physical] = {}
        self.pinned: dict[tuple[str, ...], str] = {}

    def physical(self, spec: ContainerSpec, autocommit: bool) -> Physical:
        """Return the connection to a container, borrowing it (and beginning) on first use."""
        phys = self.borrowed.get(spec.alias)
        if phys is None:
            phys = pool_for(spec).acquire()
            try:
                phys.backend.set_autocommit(phys.raw, autocommit)
                if not autocommit:
                    phys.backend.begin(phys.raw)
            except Exception as exc:
                pool_for(spec).release(phys, broken=True)
                cls, state = phys.backend.error_class(exc)
                raise wrap(exc, spec.alias, spec.secrets, state, cls) from exc
            self.borrowed[spec.alias] = phys
        return phys

    def give_back(self, alias: str, broken: bool = False) -> None:
        """Return one container's connection to its pool."""
        phys = self.borrowed.pop(alias, None)
        if phys is not None:
            pool_for(phys.spec).release(phys, broken)

    def _finish(self, action: str) -> None:
        done: list[str] = []
        failed: dict[str, BaseException] = {}
        for alias, phys in list(self.borrowed.items()):
            step: Callable[[object], None] = getattr(phys.backend, action)
            try:
                with phys.lock:
                    step(phys.raw)
                done.append(alias)
            except Exception as exc:
                cls, state = phys.backend.error_class(exc)
                failed[alias] = wrap(exc, alias, phys.spec.secrets, state, cls)
                failed[alias].__cause__ = exc
                log.warning("container %s: %s failed: %s", alias, action, failed[alias])
            self.give_back(alias, broken=alias in failed)
        self.pinned.clear()
        if not failed:
            return
        if not done and len(failed) == 1:
            raise next(iter(failed.values()))
        names = ", ".join(f"{a} ({e})" for a, e in failed.items())
        if action == "commit":
            raise PartialCommitError(
                f"commit failed on {names}; committed on {', '.join(done) or 'none'}",
                done, failed)
        raise Error(f"rollback failed on {names}")

    def commit(self) -> None:
        """Commit every touched container (each attempted) and give the connections back."""
        self._finish("commit")

    def rollback(self) -> None:
        """Roll back every touched container (each attempted) and give the connections back."""
        self._finish("rollback")
