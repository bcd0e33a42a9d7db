"""Connection: the DB-API object (routing is router.py's, the borrowed sessions
transaction.py's)."""
from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self

from . import errors
from .context import Context, Options
from .cursor import Cursor
from .errors import InterfaceError, ProgrammingError
from .federated.dialect import checked as checked_dialect
from .health import HEALTH
from .router import Router
from .settings import ContainerSpec, Settings
from .transaction import End, Transaction, Xid, finish_recovered, recover

log = logging.getLogger("pooldbapi")

_OPEN: weakref.WeakSet[Connection] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # only this thread exists in the child: a lock held by another thread at fork would stay
    # held for ever, and the transaction's sessions are the parent's
    for conn in list(_OPEN):
        conn.lock = threading.RLock()
        conn.transaction.inherited = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Connection(errors.ConnectionErrors):
    """A pooldbapi connection: routes statements over the configured containers."""

    def __init__(self, settings: Settings, *, seed: object = None, broadcast_ddl: bool = False,
                 strategy: str = "round-robin", affinity: str | None = None,
                 autocommit: bool = False, two_phase: bool = False,
                 dialect: str | None = None, read_your_writes: bool = False) -> None:
        if affinity not in (None, "transaction"):
            raise InterfaceError(f"unknown affinity {affinity!r} (known: 'transaction')")
        # the statements' dialect (None: the containers' own, where they agree), broadcast_ddl
        # and progress, as every cursor's context reads them
        self.options = Options(checked_dialect(dialect), broadcast_ddl)
        self.specs: Mapping[str, ContainerSpec] = settings.containers
        for spec in self.specs.values():
            HEALTH.watch(spec)
        self.router = Router(self.specs, settings.default, seed=seed, strategy=strategy)
        self.affinity = affinity
        self._closed = False
        # False from the moment close() begins, before it waits for the lock: a call that
        # takes the lock after a close() began (another thread's) raises instead of working
        # on a rolled-back session (what a cursor's call reads; check_open says which)
        self.usable = True
        self.transaction = Transaction(two_phase)
        self.transaction.autocommit = bool(autocommit)  # the connection's mode is kept there
        if any(spec.options.replica_of for spec in self.specs.values()):
            from .replicas import Replicas
            self.router.replicas = Replicas(self.specs, self.transaction, read_your_writes)
        # what a cursor hands the layers below for a call (with its own router where it has
        # a default list of its own)
        self.context = Context(self.specs, self.transaction, self.router, self.options,
                               affinity is not None)
        # threadsafety 2: threads may share a connection; its calls are serialised
        self.lock = threading.RLock()
        _OPEN.add(self)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<pooldbapi.Connection {state} containers={sorted(self.specs)}>"

    @property
    def dialect(self) -> str | None:
        """The statements' dialect (None: the containers' own, where they agree)."""
        return self.options.dialect

    @property
    def broadcast_ddl(self) -> bool:
        """Whether DDL without '@' runs on every container of the default list."""
        return self.options.broadcast_ddl

    @broadcast_ddl.setter
    def broadcast_ddl(self, value: bool) -> None:
        self.options.broadcast_ddl = bool(value)

    @property
    def progress(self) -> Callable[[str, int], None] | None:
        """Told (alias, rows) as the rows of executemany, bulk insert, insert ... select and
        synchronize are written (from worker threads); the command line shows it."""
        return self.options.progress

    @progress.setter
    def progress(self, value: Callable[[str, int], None] | None) -> None:
        self.options.progress = value

    # -- routing (router.py; the calls' own in context.py) ---------------------------------
    @property
    def default(self) -> tuple[str, ...] | None:
        """The list an occurrence without a suffix uses."""
        return self.router.default

    @default.setter
    def default(self, value: tuple[str, ...] | None) -> None:
        self.router.default = value
        self.context.forget()  # its statements were prepared for the old default

    @property
    def seed(self) -> object:
        """The seed of the strategies' random starts (None: random)."""
        return self.router.seed

    # -- DB-API ---------------------------------------------------------------------------
    def check_open(self) -> None:
        """Raise if closed, or closing (another thread's close() waits for the lock). Called
        with the lock held: a check before taking it would let a close() slip in between."""
        if self._closed:
            raise InterfaceError("the connection is closed")
        if not self.usable:
            raise InterfaceError("the connection is being closed (close() was called in"
                                 " another thread): its transaction is rolled back")

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return self._closed

    @property
    def autocommit(self) -> bool:
        """Whether each statement commits on its own (False at first, as PEP 249 says)."""
        return self.transaction.autocommit

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        with self.lock:
            self.check_open()
            if self.transaction.inherited:
                self.transaction.adopt()
            if self.transaction.borrowed and bool(value) != self.transaction.autocommit:
                raise ProgrammingError("cannot change autocommit inside a transaction:"
                                       " commit() or rollback() first")
            self.transaction.autocommit = bool(value)

    def cursor(self, *, stream: bool = False) -> Cursor:
        """Return a new cursor; with stream=True a select's rows are fetched as they are read
        (a server-side cursor on PostgreSQL), so memory stays flat however large the result."""
        with self.lock:
            self.check_open()
            return Cursor(self, stream=stream)

    def execute(self, operation: str, parameters: Any = None) -> Cursor:
        """Create a cursor, execute the statement on it and return it (as psycopg 3 does)."""
        return self.cursor().execute(operation, parameters)

    def commit(self) -> None:
        """Commit every container the transaction touched."""
        with self.lock:
            self.check_open()
            try:
                self.transaction.commit()
            finally:
                self._ended(committed=True)

    def rollback(self) -> None:
        """Roll back every container the transaction touched."""
        with self.lock:
            self.check_open()
            try:
                self.transaction.rollback()
            finally:
                self._ended(committed=False)

    # -- savepoints (as SQL's; SAVEPOINT as text is refused: it would reach one container) --
    def savepoint(self, name: str) -> None:
        """Set a savepoint named name in the open transaction, on every container it touched
        and on each it touches later."""
        with self.lock:
            self.check_open()
            self.transaction.savepoint(name)

    def rollback_to_savepoint(self, name: str) -> None:
        """Undo on every container what the transaction did since the savepoint, which stays
        set; a transaction failed since then (a PostgreSQL statement error) goes on."""
        with self.lock:
            self.check_open()
            self.transaction.rollback_to(name)

    def release_savepoint(self, name: str) -> None:
        """Forget the savepoint and those set after it, keeping what was done since."""
        with self.lock:
            self.check_open()
            self.transaction.release(name)

    def _ended(self, committed: bool) -> None:
        if self.router.replicas is not None:  # read_your_writes: what this transaction wrote
            self.router.replicas.ended(committed)

    def close(self) -> None:
        """Roll back what is open and give every physical connection back; idempotent."""
        if self._closed:
            return
        self.usable = False
        with self.lock:
            if self._closed:
                return
            try:
                self.transaction.close()
            finally:
                self._closed = True

    # -- two-phase commit (DB-API TPC extension) ------------------------------------------
    def xid(self, format_id: int, gtrid: str, bqual: str) -> Xid:
        """Return a transaction id for tpc_begin()."""
        return Xid(format_id, gtrid, bqual)

    def tpc_begin(self, xid: Xid | tuple[int, str, str]) -> None:
        """Begin a two-phase transaction over every container it will touch."""
        with self.lock:
            self.check_open()
            if self.transaction.autocommit:
                raise ProgrammingError("tpc_begin() needs autocommit off")
            self.transaction.tpc_begin(Xid(*xid))

    def tpc_prepare(self) -> None:
        """Prepare every container the transaction touched (the first phase)."""
        with self.lock:
            self.check_open()
            self.transaction.tpc_prepare()

    def tpc_commit(self, xid: Xid | tuple[int, str, str] | None = None) -> None:
        """Commit the two-phase transaction, or (with xid) a prepared one being recovered."""
        with self.lock:
            self.check_open()
            if xid is None:
                try:
                    self.transaction.tpc_commit()
                finally:
                    self._ended(committed=True)
            else:
                finish_recovered(dict(self.specs), Xid(*xid), End.TPC_COMMIT)

    def tpc_rollback(self, xid: Xid | tuple[int, str, str] | None = None) -> None:
        """Roll back the two-phase transaction, or (with xid) a prepared one being recovered."""
        with self.lock:
            self.check_open()
            if xid is None:
                self.transaction.tpc_rollback()
            else:
                finish_recovered(dict(self.specs), Xid(*xid), End.TPC_ROLLBACK)

    def tpc_recover(self) -> list[Xid]:
        """Return the xids of prepared pooldbapi transactions on the configured containers."""
        with self.lock:
            self.check_open()
            found = recover(dict(self.specs))
        return list(dict.fromkeys(ours for branches in found.values() for ours, _ in branches))

    def __enter__(self) -> Self:
        with self.lock:
            self.check_open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if not self._closed:
                if exc_type is None:
                    self.commit()
                else:
                    self.rollback()
        finally:
            self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True) and self.transaction.borrowed:
            try:
                self.close()
            except Exception:  # noqa: BLE001, S110 - nothing can be reported from a finaliser
                pass

