"""Which containers a transaction touched; commit and rollback fan-out; partial commits."""
from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any, NamedTuple

from .backends import backend as load_backend
from .errors import (
    Error,
    NotSupportedError,
    OperationalError,
    PartialCommitError,
    ProgrammingError,
    wrap,
)
from .pool import Physical, pool_for
from .settings import ContainerSpec

if TYPE_CHECKING:
    from collections.abc import Callable


def branch(raw: Any, xid: Xid, alias: str) -> Any:
    """Return the driver's xid of one container's branch of a pooldbapi transaction."""
    return raw.xid(xid.format_id, xid.gtrid, f"{xid.bqual}:{alias}")


def _raw_call(name: str) -> Callable[[Any], None]:
    def call(raw: Any) -> None:
        getattr(raw, name)()
    return call

log = logging.getLogger("pooldbapi")


class Xid(NamedTuple):
    """A DB-API transaction id; each container's branch adds ':alias' to the qualifier."""

    format_id: int
    gtrid: str
    bqual: str


class Transaction:
    """The physical connections one pooldbapi connection borrowed, one per container."""

    def __init__(self, two_phase: bool = False) -> None:
        self.borrowed: dict[str, Physical] = {}
        self.pinned: dict[tuple[str, ...], str] = {}
        self.failed: Error | None = None
        self.two_phase = two_phase      # commit() prepares every participant first
        self.xid: Xid | None = None     # set by tpc_begin (or on first use with two_phase)
        self.prepared = False
        self.streams: set[Any] = set()  # open streamed results (runner.Stream)

    def holds(self, alias: str) -> bool:
        """Tell whether this transaction has state on a container (it touched it)."""
        phys = self.borrowed.get(alias)
        return phys is not None and phys.backend.transactional

    def touched(self) -> set[str]:
        """The containers holding this transaction's state (not those without transactions)."""
        return {a for a, phys in self.borrowed.items() if phys.backend.transactional}

    def fail(self, alias: str, err: Error) -> None:
        """A container this transaction touched was lost: the transaction cannot commit."""
        self.failed = err
        self.give_back(alias, broken=True)

    def check(self) -> None:
        """Raise while the transaction has failed; only rollback() clears it."""
        if self.failed is not None:
            raise OperationalError(f"the transaction failed on container"
                                   f" {self.failed.container!r} ({self.failed}); call rollback()")

    def physical(self, spec: ContainerSpec, autocommit: bool) -> Physical:
        """Return the connection to a container, borrowing it (and beginning) on first use."""
        phys = self.borrowed.get(spec.alias)
        if phys is None:
            if self.two_phase and self.xid is None and not autocommit:
                self.xid = Xid(0, f"pooldbapi-{uuid.uuid4()}", "")
            if self.xid is not None:
                backend = load_backend(spec.driver, spec.alias)
                if not backend.two_phase:
                    raise NotSupportedError(
                        f"container {spec.alias!r}: the {spec.driver} driver has no two-phase"
                        " commit, so it cannot take part in this two-phase transaction")
                if self.prepared:
                    raise ProgrammingError("the two-phase transaction is prepared: commit or"
                                           " roll it back before running statements")
            phys = pool_for(spec).acquire()
            try:
                phys.backend.set_autocommit(phys.raw, autocommit)
                if self.xid is not None:
                    phys.raw.tpc_begin(branch(phys.raw, self.xid, spec.alias))
                elif not autocommit:
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
        for stream in list(self.streams):  # a transaction's end ends its streamed results
            stream.close()
        done: list[str] = []
        failed: dict[str, BaseException] = {}
        for alias, phys in list(self.borrowed.items()):
            step: Callable[[object], None] = getattr(phys.backend, action) \
                if not action.startswith("tpc_") else _raw_call(action)
            try:
                with phys.lock:
                    step(phys.raw)
                done.append(alias)
            except Exception as exc:
                if action == "rollback" and phys.backend.is_broken(phys.raw):
                    # a lost session has no transaction left to roll back
                    self.give_back(alias, broken=True)
                    continue
                cls, state = phys.backend.error_class(exc)
                failed[alias] = wrap(exc, alias, phys.spec.secrets, state, cls)
                failed[alias].__cause__ = exc
                log.warning("container %s: %s failed: %s", alias, action, failed[alias])
            self.give_back(alias, broken=alias in failed)
        self.pinned.clear()
        self.xid, self.prepared = None, False
        if action in ("rollback", "tpc_rollback"):
            self.failed = None
        if not failed:
            return
        if not done and len(failed) == 1:
            raise next(iter(failed.values()))
        names = ", ".join(f"{a} ({e})" for a, e in failed.items())
        if action in ("commit", "tpc_commit"):
            raise PartialCommitError(
                f"commit failed on {names}; committed on {', '.join(done) or 'none'}",
                done, failed)
        raise Error(f"rollback failed on {names}")

    def commit(self) -> None:
        """Commit every touched container (each attempted) and give the connections back."""
        self.check()
        if self.xid is not None:
            self.tpc_commit()
            return
        self._finish("commit")

    def tpc_begin(self, xid: Xid) -> None:
        """Start a two-phase transaction: every container touched joins with its own branch."""
        if self.borrowed or self.xid is not None:
            raise ProgrammingError("tpc_begin() must start a transaction: commit() or"
                                   " rollback() the open one first")
        self.xid = Xid(*xid)

    def tpc_prepare(self) -> None:
        """Prepare every participant (first phase); afterwards only commit or rollback."""
        self.check()
        if self.xid is None:
            raise ProgrammingError("tpc_prepare() outside a two-phase transaction")
        for alias, phys in list(self.borrowed.items()):
            try:
                with phys.lock:
                    phys.raw.tpc_prepare()
            except Exception as exc:
                cls, state = phys.backend.error_class(exc)
                raise wrap(exc, alias, phys.spec.secrets, state, cls) from exc
        self.prepared = True

    def tpc_commit(self) -> None:
        """Commit the two-phase transaction: prepare all first (unless done), then commit all;
        if any prepare fails, every participant is rolled back."""
        self.check()
        if not self.prepared and len(self.borrowed) > 1:
            try:
                self.tpc_prepare()
            except Error:
                try:
                    self._finish("tpc_rollback")
                except Error as undo:
                    log.warning("after a failed prepare, rollback failed too: %s", undo)
                raise
        self._finish("tpc_commit")

    def tpc_rollback(self) -> None:
        """Roll back every participant of the two-phase transaction (prepared or not)."""
        self._finish("tpc_rollback")

    def rollback(self) -> None:
        """Roll back every touched container (each attempted) and give the connections back."""
        self._finish("tpc_rollback" if self.xid is not None else "rollback")

    def close(self) -> None:
        """Roll back, except that a prepared two-phase transaction is left for recovery."""
        if self.prepared:
            # the sessions carry the driver's two-phase state: never hand them out again
            for alias in list(self.borrowed):
                self.give_back(alias, broken=True)
            self.xid, self.prepared = None, False
            return
        self.rollback()


def recover(specs: dict[str, ContainerSpec]) -> dict[str, list[tuple[Xid, Any]]]:
    """Return, per container that has two-phase commit, its prepared pooldbapi branches."""
    found: dict[str, list[tuple[Xid, Any]]] = {}
    for alias, spec in specs.items():
        if not load_backend(spec.driver, alias).two_phase:
            continue
        pool = pool_for(spec)
        phys = pool.acquire()
        try:
            phys.backend.set_autocommit(phys.raw, True)
            for raw_xid in phys.raw.tpc_recover():
                bqual = raw_xid.bqual or ""
                if raw_xid.format_id is None or ":" not in bqual:
                    continue  # not a pooldbapi branch
                ours = Xid(raw_xid.format_id, raw_xid.gtrid, bqual.rsplit(":", 1)[0])
                found.setdefault(alias, []).append((ours, raw_xid))
        except Exception as exc:
            pool.release(phys, broken=phys.backend.is_broken(phys.raw))
            cls, state = phys.backend.error_class(exc)
            raise wrap(exc, alias, spec.secrets, state, cls) from exc
        pool.release(phys)
    return found


def finish_recovered(specs: dict[str, ContainerSpec], xid: Xid, action: str) -> None:
    """Commit or roll back every prepared branch of xid, wherever it is (recovery)."""
    done = 0
    for alias, branches in recover(specs).items():
        pool = pool_for(specs[alias])
        phys = pool.acquire()
        try:
            phys.backend.set_autocommit(phys.raw, True)
            for ours, raw_xid in branches:
                if ours == tuple(xid):
                    try:
                        getattr(phys.raw, action)(raw_xid)
                        done += 1
                    except Exception as exc:  # another container of the same server did it
                        if "does not exist" not in str(exc):
                            raise
        except Exception as exc:
            pool.release(phys, broken=phys.backend.is_broken(phys.raw))
            cls, state = phys.backend.error_class(exc)
            raise wrap(exc, alias, specs[alias].secrets, state, cls) from exc
        pool.release(phys)
    if not done:
        raise ProgrammingError(f"no prepared transaction {tuple(xid)!r} on any container")
