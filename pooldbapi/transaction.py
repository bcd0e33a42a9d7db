"""Which containers a transaction touched and each statement's borrow of their sessions
(Borrow, Borrows); commit and rollback fan-out (End); partial commits; two-phase commit."""
from __future__ import annotations

import logging
import time
import uuid
import weakref
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, Self

from . import telemetry
from .backends import backend as load_backend
from .errors import (
    Error,
    InterfaceError,
    NotSupportedError,
    OperationalError,
    PartialCommitError,
    ProgrammingError,
    ReadFailed,
)
from .health import HEALTH
from .pool import INHERITED, Physical, acquire, pool_for
from .settings import ContainerSpec

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import TracebackType

    from .backends.base import Link
    from .sql.parse import StatementKind


def branch(xid: Xid, alias: str) -> tuple[int, str, str]:
    """The format id, global id and qualifier of one container's branch of a pooldbapi
    transaction."""
    return xid.format_id, xid.gtrid, f"{xid.bqual}:{alias}"


log = logging.getLogger("pooldbapi")


def wrap_error(exc: BaseException, phys: Physical) -> Error:
    """A driver error on a physical connection as a pooldbapi error (secrets masked); a lost
    connection is told to health, and the pool's idle sessions are let go."""
    err = phys.wrap(exc)
    if phys.link.lost(exc):
        err.connection_failure = True
        HEALTH.failed(phys.spec, str(err))
        pool_for(phys.spec).close_idle()
    return err


class End(StrEnum):
    """How a transaction ends on each container: each member the name of the Link method that
    does it (and equal to the word its messages show)."""

    COMMIT = "commit"
    ROLLBACK = "rollback"
    TPC_COMMIT = "tpc_commit"
    TPC_ROLLBACK = "tpc_rollback"


_UNDOING = (End.ROLLBACK, End.TPC_ROLLBACK)


class Borrow:
    """`with transaction.borrow(spec) as phys:` one statement's use of a container: its
    connection borrowed (and begun) on first use; a driver error wrapped, told to health, and
    the connection given back or the transaction failed as the error requires; in autocommit
    the connection given back afterwards (unless `keep`: a stream holds it)."""

    __slots__ = ("_keep", "_lost_kind", "_phys", "_touched", "_tx", "alias")

    def __init__(self, tx: Transaction, spec: ContainerSpec, lost_kind: StatementKind | None,
                 keep: bool) -> None:
        self._tx, self.alias = tx, spec.alias
        self._lost_kind, self._keep = lost_kind, keep
        phys = tx.borrowed.get(spec.alias)  # (held already: the common case in a transaction)
        if phys is None:
            self._touched = False
            phys = tx.physical(spec, tx.autocommit)
        else:
            self._touched = phys.backend.transactional
        self._phys = phys

    def __enter__(self) -> Physical:
        return self._phys

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None:
            if not self._keep:
                self._tx.after_statement(self.alias)
            return
        err = self._tx.statement_failed(self.alias, self._phys, exc, self._touched,
                                        self._lost_kind)
        if err is not None:
            raise err from err.__cause__ or exc

    def failed(self, err: Error, wrote: bool = False) -> None:
        """The statement failed here with err (already wrapped): the connection given back, or
        the transaction failed where it lost work (wrote: rows were acknowledged here)."""
        self._tx.failed_on(self.alias, self._phys, err, self._touched or wrote)


class Borrows:
    """`with transaction.borrow_all(specs) as borrows:` one statement's use of several
    containers at once (the workers of a write, the reads of a federated select): each a
    Borrow, taken in the one order of container definitions (so that two statements writing
    to the same containers never wait for each other in a cycle, and a transaction's first use
    of a container, its begin, is never raced by workers); in autocommit each given back at
    the end, except one failed() gave back or failed the transaction for."""

    __slots__ = ("_each", "_failed", "physicals")

    def __init__(self, tx: Transaction, specs: Iterable[ContainerSpec]) -> None:
        self._each: dict[str, Borrow] = {}
        self._failed: set[str] = set()
        self.physicals: dict[str, Physical] = {}  # each container's connection
        try:
            for spec in sorted(specs, key=lambda s: s.order):
                self._each[spec.alias] = Borrow(tx, spec, None, False)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.physicals.update((alias, b._phys) for alias, b in self._each.items())

    def __enter__(self) -> Self:
        return self

    def failed(self, alias: str, err: Error, wrote: bool) -> None:
        """The work on one container failed with err (see Borrow.failed)."""
        self._failed.add(alias)
        self._each[alias].failed(err, wrote)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for alias, each in self._each.items():
            if alias not in self._failed:
                each._tx.after_statement(alias)


class Xid(NamedTuple):
    """A DB-API transaction id; each container's branch adds ':alias' to the qualifier."""

    format_id: int
    gtrid: str
    bqual: str


class Reading(Protocol):
    """A result still read from a borrowed session (runner.Stream): the transaction's end
    closes it; a child after fork abandons it without a word to the session."""

    alias: str

    def close(self) -> None: ...

    def abandon(self) -> None: ...


class Transaction:
    """The physical connections one pooldbapi connection borrowed, one per container."""

    def __init__(self, two_phase: bool = False) -> None:
        self.borrowed: dict[str, Physical] = {}
        self.pinned: dict[tuple[str, ...], str] = {}
        self.failed: Error | None = None
        self.two_phase = two_phase      # commit() prepares every participant first
        self.xid: Xid | None = None     # set by tpc_begin (or on first use with two_phase)
        self.prepared = False
        self.streams: set[Reading] = set()  # open streamed results
        self.inherited = False          # set in a child process after fork
        self.autocommit = False         # the connection's mode, kept here by the connection
        # Sessions kept between autocommit statements while nobody else waits for them (the
        # pool takes one back for a borrower that would wait); they hold no transaction.
        self.parked: dict[str, Physical] = {}
        self._owner = weakref.ref(self)  # what the pool knows a kept session's borrower by
        # The application's savepoints, oldest first (on every session the transaction holds:
        # a session that joins later sets them as it begins), and whether a session that held
        # this transaction's work was lost (then no savepoint can bring the transaction back)
        self.savepoints: list[str] = []
        self.lost = False

    def adopt(self) -> None:
        """In a child process after fork: let go of the parent's sessions without sending
        anything on them; an open transaction of the parent's cannot go on here."""
        self.inherited = False
        INHERITED.extend(self.parked.values())  # the parent's: never used nor given back here
        self.parked.clear()
        if not self.borrowed and not self.streams:
            return
        INHERITED.extend(self.borrowed.values())
        for stream in self.streams:
            stream.abandon()
        self.borrowed.clear()
        self.streams.clear()
        self.pinned.clear()
        self.savepoints.clear()
        self.xid, self.prepared = None, False
        self.failed = InterfaceError(
            "this connection had a transaction open when the process forked: it belongs to the"
            " parent process and cannot go on in this one; call rollback() here to start afresh"
            " (nothing is sent on the parent's sessions)")

    def holds(self, alias: str) -> bool:
        """Tell whether this transaction has state on a container (it touched it)."""
        phys = self.borrowed.get(alias)
        return phys is not None and phys.backend.transactional

    def touched(self) -> set[str]:
        """The containers holding this transaction's state (not those without transactions)."""
        return {a for a, phys in self.borrowed.items() if phys.backend.transactional}

    def fail(self, alias: str, err: Error, broken: bool = True) -> None:
        """A container this transaction touched was lost, or its transaction aborted: the
        transaction cannot commit; later statements raise until rollback(), or until a
        rollback to a savepoint where no session was lost (an aborted session then stays:
        rolling back to the savepoint recovers its work before it)."""
        if self.failed is None:
            self.failed = err
        phys = self.borrowed.get(alias)
        # (where the back-end undid the whole transaction, its savepoints went with it)
        self.lost = self.lost or broken or (
            phys is not None and not phys.link.abort_keeps_savepoints)
        if broken or not self.savepoints:
            self.give_back(alias, broken=broken)

    def _failure(self, doing: str, ended: bool = False) -> Error:
        """The error for doing something in the failed transaction; ended: it is over (rolled
        back), so nothing is left to call."""
        cause = self.failed
        assert cause is not None
        if cause.container is None:  # not a container's failure (fork): its own words
            return type(cause)(str(cause))
        way = "" if ended else "; call rollback(), or roll back to a savepoint set before it" \
            if self.savepoints and not self.lost else "; call rollback()"
        return OperationalError(f"{doing}: the transaction failed on container"
                                f" {cause.container!r} ({cause}){way}")

    def check(self) -> None:
        """Raise while the transaction has failed; only rollback() clears it."""
        if self.inherited:
            self.adopt()
        if self.failed is not None:
            raise self._failure("cannot run statements") from self.failed

    def _aborted(self) -> Error | None:
        """An error for the first participant whose transaction the server undid (after an
        error outside pooldbapi's view) or whose session was lost; None if all are sound."""
        for alias, phys in self.borrowed.items():
            if not phys.in_transaction:
                continue
            if phys.is_broken():
                what = "its session was lost"
            elif phys.aborted():
                what = "its transaction was aborted by an earlier error"
            else:
                continue
            err = OperationalError(f"{alias}: {what}, so a commit there would keep nothing")
            err.container = alias
            return err
        return None

    def physical(self, spec: ContainerSpec, autocommit: bool) -> Physical:
        """Return the connection to a container, borrowing it (and beginning) on first use."""
        phys = self.borrowed.get(spec.alias)
        if phys is None and autocommit and self.xid is None and not self.inherited:
            # the session kept since this connection's last autocommit statement there, if
            # the pool did not give it to someone else meanwhile: nothing to set nor to begin
            # (a prepared statement takes it in take_kept instead)
            phys = self._unpark(spec.alias)
            if phys is not None:
                self.borrowed[spec.alias] = phys
                return phys
        if phys is None:
            if self.inherited:
                self.check()
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
            phys = self._unpark(spec.alias)
            if phys is not None and autocommit and self.xid is None:
                # kept since its last autocommit statement: nothing to set nor to begin
                self.borrowed[spec.alias] = phys
                return phys
            if phys is None:
                phys = acquire(spec) if not telemetry.ON else \
                    telemetry.acquire(lambda: acquire(spec))
            try:
                phys.link.set_autocommit(autocommit)
                if self.xid is not None:
                    phys.link.tpc_begin(*branch(self.xid, spec.alias))
                elif not autocommit:
                    phys.link.begin()
                if not autocommit and phys.backend.transactional:
                    for name in self.savepoints:  # (set before this session joined)
                        phys.link.savepoint(name)
            except Exception as exc:
                self._release(phys, broken=True)
                raise phys.wrap(exc) from exc
            phys.in_transaction = not autocommit and phys.backend.transactional
            self.borrowed[spec.alias] = phys
        return phys

    def take_kept(self, alias: str, round_trip: bool = True) -> Physical | None:
        """The session this connection keeps on alias for its autocommit statements (see
        after_statement), its lock held, to run one statement on: if nobody took it meanwhile
        nor holds it now, and it is alive (KEPT_UNCHECKED). None otherwise, or in a two-phase
        transaction, or where the runner waits for a call limit first: borrow as usual then
        (physical() sees what became of it); None also where its liveness would be asked
        with a round trip and round_trip is False. After the statement: kept_failed() with the
        lock still held if it raised; else its end stamped in `returned` under the lock, the
        lock released, then kept_done() (runner.Direct.run)."""
        phys = self.parked.get(alias)
        if phys is None or phys.limiter is not None or self.xid is not None or \
                not phys.lock.acquire(False):
            return None
        try:
            if phys.parked_by is self._owner:
                now = time.monotonic()
                if now > phys.expires:  # past connection-lifetime: given back, closed there
                    phys.lock.release()
                    self._give_back_kept(alias, phys)
                    return None
                if phys.checked_after_keep(now, round_trip):
                    return phys
        except BaseException:  # (Ctrl-C in the check's round trip)
            phys.lock.release()
            raise
        phys.lock.release()
        return None

    def _give_back_kept(self, alias: str, phys: Physical) -> None:
        """Give a session this connection keeps back to its pool (unless the pool took it)."""
        if phys.pool.unpark(phys, self._owner):
            del self.parked[alias]
            self._release(phys)

    def kept_done(self, alias: str, phys: Physical) -> None:
        """After a statement on a kept session (take_kept), its end stamped in `returned` and
        its lock released: it stays kept, unless someone waits for a session of its pool, the
        pool closed or the session passed its lifetime; then it is given back. (Released
        first: a borrower that queues after the release is seen here; one that queued before
        took it, or sees it given back.)"""
        if not phys.pool.keeps(phys, phys.returned):
            self._give_back_kept(alias, phys)

    def kept_failed(self, alias: str, phys: Physical) -> None:
        """A statement on a kept session raised (its lock still held, so nobody took it): the
        session is the statement's borrowed one again, for statement_failed() to give back or
        keep."""
        if phys.pool.unpark(phys, self._owner):
            del self.parked[alias]
            self.borrowed[alias] = phys

    def _unpark(self, alias: str) -> Physical | None:
        """The session kept since this connection's last autocommit statement there, if the
        pool did not give it to someone else meanwhile; checked as the pool checks a
        connection it hands out (liveness; its lifetime when it was kept, and by the reaper
        while kept)."""
        phys = self.parked.pop(alias, None)
        if phys is None or not phys.pool.unpark(phys, self._owner):
            return None
        if phys.checked_after_keep(time.monotonic()):
            return phys  # (its lifetime was checked when it was kept)
        self._release(phys, broken=True)
        return None

    @staticmethod
    def _release(phys: Physical, broken: bool = False) -> None:
        if telemetry.ON:
            telemetry.released(phys)
        phys.pool.release(phys, broken)

    def still_kept(self, phys: Physical) -> bool:
        """Tell whether a session this connection kept is still its own (the pool gives one
        that runs no statement to a borrower that would wait)."""
        return phys.parked_by is self._owner

    def release_parked(self) -> None:
        """Give the kept sessions back to their pools (close)."""
        while self.parked:
            _, phys = self.parked.popitem()
            if phys.pool.unpark(phys, self._owner):
                self._release(phys)

    def borrow(self, spec: ContainerSpec, lost_kind: StatementKind | None = None,
               keep: bool = False) -> Borrow:
        """One statement's use of a container's connection (see Borrow); lost_kind: the kind
        of a write whose outcome a lost connection leaves unknown in autocommit."""
        return Borrow(self, spec, lost_kind, keep)

    def borrow_all(self, specs: Iterable[ContainerSpec]) -> Borrows:
        """One statement's use of several containers' connections at once (see Borrows)."""
        return Borrows(self, specs)

    def after_statement(self, alias: str, broken: bool = False) -> None:
        """Give the container's connection back after a statement in autocommit (unless a
        stream still reads from it), or whenever it is broken."""
        if broken:
            self.give_back(alias, broken)
        elif self.autocommit and not (self.streams and
                                      any(s.alias == alias for s in self.streams)):
            # kept for the next statement, unless anyone waits for it (then given back)
            phys = self.borrowed.pop(alias, None)
            if phys is None:
                return
            if phys.session_changed or not phys.pool.park(phys, self._owner):
                self._release(phys)
            else:
                self.parked[alias] = phys

    def statement_failed(self, alias: str, phys: Physical, exc: BaseException, touched: bool,
                         lost_kind: StatementKind | None) -> Error | None:
        """After a statement on a borrowed session raised exc (see Borrow): the session given
        back or the transaction failed as the error requires; returns the pooldbapi error to
        raise from a driver's exc (None: raise exc itself). touched: the session held this
        transaction's work before the statement; lost_kind: see borrow()."""
        if isinstance(exc, Error):
            self.after_statement(alias)
            return None
        if not isinstance(exc, Exception):
            return None  # Ctrl-C: the caller's rollback or close ends the session's work
        if isinstance(exc, ReadFailed):  # the statement ran: its writes are there
            err = wrap_error(exc.cause, phys)
            err.__cause__ = exc.cause  # (raised from the driver's error: the caller reads it)
            if lost_kind:
                err.written = {alias: (0,)}
                err.add_note(f"pooldbapi: the statement was written on {alias!r}; reading"
                             " its result failed")
            self.failed_on(alias, phys, err, touched)
            return err
        err = wrap_error(exc, phys)
        if err.connection_failure and not phys.in_transaction and lost_kind:
            # in autocommit the server may have committed it before the connection went
            err.lost_kind = lost_kind
            err.unknown = {alias: (0,)}
        self.failed_on(alias, phys, err, touched)
        return err

    def failed_on(self, alias: str, phys: Physical, err: Error, touched: bool) -> None:
        """Give the connection back after an error. The open transaction fails where it lost
        something: a session that held its work (touched: before this call, or rows
        acknowledged in it), or a transaction the server aborted (PostgreSQL after any
        statement error)."""
        broken = phys.is_broken() or err.connection_failure
        if phys.in_transaction:
            if broken and touched:
                self.fail(alias, err, broken=True)
                return
            if not broken and phys.aborted():
                self.fail(alias, err, broken=False)
                return
        self.after_statement(alias, broken)

    def give_back(self, alias: str, broken: bool = False) -> None:
        """Return one container's connection to its pool."""
        phys = self.borrowed.pop(alias, None)
        if phys is not None:
            phys.in_transaction = False
            self._release(phys, broken)

    def _finish(self, action: End) -> None:
        if self.inherited:
            self.adopt()
        for stream in list(self.streams):  # a transaction's end ends its streamed results
            stream.close()
        committing = action in (End.COMMIT, End.TPC_COMMIT)
        undo = End.TPC_ROLLBACK if action in (End.TPC_COMMIT, End.TPC_ROLLBACK) else End.ROLLBACK
        done: list[str] = []
        rolled_back: list[str] = []
        in_doubt: list[str] = []
        failed: dict[str, BaseException] = {}
        for alias, phys in list(self.borrowed.items()):
            # Once a one-phase commit failed, roll the others back rather than commit them:
            # all or nothing wherever the failure allows it. (Prepared branches of a two-phase
            # commit must all be committed: the decision was taken.)
            doing = undo if action == End.COMMIT and failed else action
            step: Callable[[], None] = getattr(phys.link, doing)
            try:
                with phys.lock:
                    step()
                (done if doing == action else rolled_back).append(alias)
            except Exception as exc:  # noqa: BLE001 - every container's outcome is collected
                lost = phys.link.lost(exc) or phys.is_broken()
                if lost:
                    HEALTH.failed(phys.spec, f"{doing} failed: {type(exc).__name__}")
                if doing in _UNDOING and lost:
                    # a lost session has no transaction left to roll back
                    self.give_back(alias, broken=True)
                    rolled_back.append(alias)
                    continue
                failed[alias] = phys.wrap(exc)
                failed[alias].__cause__ = exc
                if committing and lost:
                    in_doubt.append(alias)  # COMMIT may have reached the server before it went
                log.warning("container %s: %s failed: %s", alias, doing, failed[alias])
            self.give_back(alias, broken=alias in failed)
        self.pinned.clear()
        self.savepoints.clear()
        self.lost = False
        two_phase_branches = self.xid
        self.xid, self.prepared = None, False
        if action in _UNDOING:
            self.failed = None
        if not failed:
            return
        if committing and not done and not in_doubt:
            first = next(iter(failed.values()))
            assert isinstance(first, Error)
            others = [a for a in failed if a != first.container] + rolled_back
            if others:
                first.rolled_back = tuple(others)
            raise first
        names = ", ".join(f"{a} ({e})" for a, e in failed.items())
        if committing:
            detail = ""
            if in_doubt and two_phase_branches is not None:
                detail = (f"; {', '.join(in_doubt)} stay prepared: once back, tpc_recover() lists"
                          " the transaction and tpc_commit(xid) finishes it")
            elif in_doubt:
                detail = (f"; the outcome on {', '.join(in_doubt)} is unknown (the connection"
                          " was lost during COMMIT)")
            if rolled_back:
                detail += f"; rolled back instead of committed: {', '.join(rolled_back)}"
            raise PartialCommitError(
                f"commit failed on {names}; committed on {', '.join(done) or 'none'}{detail}",
                done, failed, in_doubt, rolled_back)
        raise Error(f"rollback failed on {names}")

    def savepoint(self, name: str) -> None:
        """Set a savepoint on every session of the open transaction (and on each that joins
        it later)."""
        self.check()
        if self.autocommit:
            raise ProgrammingError("a savepoint needs a transaction, and autocommit is on")
        if self.prepared:
            raise ProgrammingError("the two-phase transaction is prepared: commit or roll it"
                                   " back before setting a savepoint")
        _savepoint_name(name)
        self._each(lambda link: link.savepoint(name))
        self.savepoints.append(name)

    def rollback_to(self, name: str) -> None:
        """Undo, on every session, what the transaction did since the savepoint (the latest
        of that name), which stays set; a failed transaction goes on, unless a session that
        held its work was lost."""
        last = self._last(name)
        if self.lost:
            raise self._failure("cannot roll back to a savepoint") from self.failed
        for stream in list(self.streams):  # (a cursor opened after it is gone on the server)
            stream.close()
        for alias, phys in list(self.borrowed.items()):
            if not phys.in_transaction:
                continue
            try:
                with phys.lock:
                    phys.link.rollback_to(name)
            except Exception as exc:
                # the session's transaction is gone with its savepoint (SQLite's OR ROLLBACK,
                # a lost session): what it held before the savepoint too
                err = phys.wrap(exc)
                self.fail(alias, err, broken=True)
                raise self._failure("cannot roll back to a savepoint") from exc
        del self.savepoints[last + 1:]
        self.failed = None

    def release(self, name: str) -> None:
        """Forget the savepoint (the latest of that name) and those set after it, on every
        session, keeping what was done since."""
        last = self._last(name)
        self.check()
        self._each(lambda link: link.release(name))
        del self.savepoints[last:]

    def _last(self, name: str) -> int:
        for k in range(len(self.savepoints) - 1, -1, -1):
            if self.savepoints[k] == name:
                return k
        raise ProgrammingError(f"no savepoint {name!r} is set in the open transaction")

    def _each(self, step: Callable[[Link], None]) -> None:
        """step on the link of every session in the transaction; an error as a statement's."""
        for alias, phys in list(self.borrowed.items()):
            if not phys.in_transaction:
                continue
            try:
                with phys.lock:
                    step(phys.link)
            except Exception as exc:
                err = phys.wrap(exc)
                self.failed_on(alias, phys, err, touched=True)
                raise err from exc

    def _refuse_commit(self) -> None:
        """A failed transaction commits nothing: roll every container back, then raise."""
        if self.inherited:
            self.adopt()
        if self.failed is None:
            self.failed = self._aborted()
            if self.failed is None:
                return
        err = self._failure("commit failed, every container was rolled back", ended=True)
        cause = self.failed
        try:
            self.rollback()
        except Error as undo:  # the commit's error says what matters; the rest is logged
            log.warning("rolling back a failed transaction: %s", undo)
        self.failed = None
        raise err from cause

    def commit(self) -> None:
        """Commit every touched container and give the connections back; a failed
        transaction is rolled back everywhere and the commit raises."""
        self._refuse_commit()
        if self.xid is not None:
            self.tpc_commit()
            return
        self._finish(End.COMMIT)

    def tpc_begin(self, xid: Xid) -> None:
        """Start a two-phase transaction: every container touched joins with its own branch."""
        if self.borrowed or self.xid is not None:
            raise ProgrammingError("tpc_begin() must start a transaction: commit() or"
                                   " rollback() the open one first")
        self.xid = Xid(*xid)

    def tpc_prepare(self) -> None:
        """Prepare every participant (first phase); afterwards only commit or rollback."""
        self._refuse_commit()
        if self.xid is None:
            raise ProgrammingError("tpc_prepare() outside a two-phase transaction")
        for alias, phys in list(self.borrowed.items()):
            try:
                with phys.lock:
                    phys.link.tpc_prepare()
            except Exception as exc:
                if phys.link.lost(exc):
                    HEALTH.failed(phys.spec, f"tpc_prepare failed: {type(exc).__name__}")
                raise phys.wrap(exc) from exc
        self.prepared = True

    def tpc_commit(self) -> None:
        """Commit the two-phase transaction: prepare all first (unless done), then commit all;
        if any prepare fails, every participant is rolled back."""
        self._refuse_commit()
        if not self.prepared and len(self.borrowed) > 1:
            try:
                self.tpc_prepare()
            except Error as err:
                # The server ended the branch whose PREPARE failed, but the driver may think it
                # prepared: close that session (nothing of it is left) and roll the others back.
                if err.container in self.borrowed:
                    self.give_back(err.container, broken=True)
                try:
                    self._finish(End.TPC_ROLLBACK)
                except Error as undo:
                    log.warning("after a failed prepare, rollback failed too: %s", undo)
                raise
        self._finish(End.TPC_COMMIT)

    def tpc_rollback(self) -> None:
        """Roll back every participant of the two-phase transaction (prepared or not)."""
        self._finish(End.TPC_ROLLBACK)

    def rollback(self) -> None:
        """Roll back every touched container (each attempted) and give the connections back."""
        self._finish(End.TPC_ROLLBACK if self.xid is not None else End.ROLLBACK)

    def close(self) -> None:
        """Roll back, except that a prepared two-phase transaction is left for recovery; give
        every session back."""
        if self.inherited:
            self.adopt()
            self.failed = None
        try:
            self._close()
        finally:
            self.release_parked()

    def _close(self) -> None:
        if self.prepared:
            # the sessions carry the driver's two-phase state: never hand them out again
            for alias in list(self.borrowed):
                self.give_back(alias, broken=True)
            self.xid, self.prepared = None, False
            return
        self.rollback()


def _savepoint_name(name: str) -> None:
    if not (isinstance(name, str) and name.isascii() and name.isidentifier()):
        raise ProgrammingError(f"a savepoint's name is an SQL identifier (letters, digits and"
                               f" '_', not first a digit): {name!r} is not")
    if name.lower().startswith("pooldbapi_"):
        raise ProgrammingError(f"savepoint names starting 'pooldbapi_' are pooldbapi's own:"
                               f" {name!r}")


def recover(specs: dict[str, ContainerSpec]) -> dict[str, list[tuple[Xid, Any]]]:
    """Return, per container that has two-phase commit, its prepared pooldbapi branches."""
    found: dict[str, list[tuple[Xid, Any]]] = {}
    for alias, spec in specs.items():
        if not load_backend(spec.driver, alias).two_phase:
            continue
        phys = acquire(spec)
        pool = phys.pool
        try:
            phys.link.set_autocommit(True)
            for raw_xid in phys.link.tpc_recover():
                bqual = raw_xid.bqual or ""
                if raw_xid.format_id is None or ":" not in bqual:
                    continue  # not a pooldbapi branch
                ours = Xid(raw_xid.format_id, raw_xid.gtrid, bqual.rsplit(":", 1)[0])
                found.setdefault(alias, []).append((ours, raw_xid))
        except Exception as exc:
            pool.release(phys, broken=phys.is_broken())
            raise phys.wrap(exc) from exc
        pool.release(phys)
    return found


def finish_recovered(specs: dict[str, ContainerSpec], xid: Xid, action: End) -> None:
    """Commit or roll back every prepared branch of xid, wherever it is (recovery)."""
    done = 0
    for alias, branches in recover(specs).items():
        phys = acquire(specs[alias])
        pool = phys.pool
        try:
            phys.link.set_autocommit(True)
            for ours, raw_xid in branches:
                if ours == tuple(xid):
                    try:
                        getattr(phys.link, action)(raw_xid)
                        done += 1
                    except Exception as exc:  # another container of the same server did it
                        if "does not exist" not in str(exc):
                            raise
        except Exception as exc:
            pool.release(phys, broken=phys.is_broken())
            raise phys.wrap(exc) from exc
        pool.release(phys)
    if not done:
        raise ProgrammingError(f"no prepared transaction {tuple(xid)!r} on any container")
