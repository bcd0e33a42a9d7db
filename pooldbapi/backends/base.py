"""The Backend protocol (paramstyle, capabilities, error map, connect) and the Link: one open
connection, owning the driver's raw connection."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Coroutine, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from ..dbapi import Description
from ..errors import Error, NotSupportedError, OperationalError, wrap
from ..settings import ContainerSpec
from ..sql.parse import StatementKind
from ..sql.styles import Paramstyle

__all__ = ["PROBE_ROWS", "Backend", "CallLimiter", "CopyRows", "Description", "DriverBackend",
           "Link", "driver_error"]


class CallLimiter(Protocol):
    """The calls-per-second/minute/day limit of a container (throttle.Limiter), handed to a
    back-end that makes several calls for one statement (REST) when it is connected."""

    def take(self, calls: int = 1) -> float:
        """Wait for a slot for the next calls; return the seconds waited."""
        ...

    def hold_until(self, when: float) -> None:
        """Give no slot before the monotonic time `when` (the service asked to wait)."""
        ...


class Backend(Protocol):
    """One driver behind pooldbapi: what holds for all its connections (paramstyle, limits,
    capabilities, the error map, the statements it is asked for); connect() opens a Link,
    which answers for one connection. Each back-end module exposes one instance as BACKEND."""

    name: str
    paramstyle: Paramstyle   # the marker style render() writes for it: qmark, format or numeric
    runs_sql: bool           # False for REST back-ends: selects are evaluated locally
    transactional: bool      # has transactions (savepoints); False: every write is immediate
    two_phase: bool          # supports DB-API TPC
    describes_from_values: bool  # type codes come from the first row's values, not the driver
    cursor_reads_slower: bool  # a server-side cursor gives up plans a plain query may use
    #                            (PostgreSQL plans no parallel scan for a cursor)
    throttles_calls: bool    # takes a limiter slot for each call it makes (REST: a statement
    #                          may need several calls), so the runner takes none for it
    copies_rows: bool        # its links have a bulk path for pages of plain values
    #                          (Link.copy_rows: PostgreSQL's COPY); False: executemany
    max_parameters: int | None   # parameters one statement may bind (None: no limit known)
    max_statement_bytes: int | None  # the longest statement text it takes (None: no limit)
    rowcount_after_close: bool  # the driver's closed cursor still tells rowcount, lastrowid
    executemany_returns: bool  # its cursors' executemany(..., returning=True) keeps each
    #                            parameter set's RETURNING rows, read set by set through
    #                            nextset() (psycopg); False: such rows are sent one by one

    def connect(self, spec: ContainerSpec, limiter: CallLimiter | None = None) -> Link:
        """Open a connection with the spec's forwarded keys; reject unknown keys.
        limiter: the container's limit, for a back-end that throttles its own calls."""

    def max_connections(self, spec: ContainerSpec) -> int | None:
        """Return a hard cap on physical connections (1 for an in-memory SQLite), or None."""

    def changes_session(self, kind: StatementKind, words: tuple[str, ...]) -> bool:
        """Tell whether a DDL or OTHER statement (kind, its first keywords) may leave state in
        the session that Link.reset() must clear."""

    def error_class(self, exc: BaseException) -> tuple[type[Error], str | None]:
        """Return the pooldbapi class and the SQLSTATE (or driver code) of a driver error."""

    def is_connection_error(self, exc: BaseException) -> bool:
        """Tell whether a failed connect means the container failed (it is unreachable), not
        the caller's keys (Link.lost tells it of an error on an open connection)."""

    def lastrowid(self, cursor: Any) -> Any:
        """Return the id of the row the last insert wrote, where the driver knows it."""

    def call_text(self, name: str, markers: str) -> str | None:
        """The statement that calls a procedure or function for callproc (markers: '?, ?'),
        or None where the back-end has none."""

    def key_range_text(self, table: str, start: int, step: int) -> str | None:
        """The statement that makes the generated keys (serial, identity) of a table just
        created give start, start + step, ...; None where the back-end has no such step."""

    def estimate_text(self, text: str) -> str | None:
        """A statement whose one row tells how many rows the select `text` would give: the
        planner's estimate, or a count up to PROBE_ROWS (a limit probe); None: no way."""

    def estimated_rows(self, row: Sequence[Any]) -> int | None:
        """The row count in the row of estimate_text's statement."""


def driver_error(backend: Backend, spec: ContainerSpec, exc: BaseException,
                 connecting: bool = False) -> Error:
    """The one place a driver error becomes a pooldbapi error (Link.wrap on a connection): the
    class and SQLSTATE its back-end maps it to, the container's alias, its secrets masked;
    connecting: a failed connect, where the driver's catch-all DatabaseError is an
    OperationalError."""
    cls, state = backend.error_class(exc)
    if connecting and cls.__name__ == "DatabaseError":
        cls = OperationalError
    return wrap(exc, spec.alias, spec.secrets, state, cls)


class Link(ABC):
    """One open connection of a back-end, owning the driver's raw connection: the layers above
    ask it (is_broken, aborted, reset, atomic, describe, wrap ...) instead of handing the raw
    connection to the back-end. What most PEP 249 drivers share; each back-end's subclass
    overrides what its driver does differently."""

    __slots__ = ("backend", "raw", "spec")

    driver_error: type[BaseException] = Exception  # the driver's base exception class
    copy_rows: CopyRows | None = None  # the bulk path (Backend.copies_rows), None: none
    # whether a statement that fails has changed nothing (PostgreSQL, Oracle); where not, a
    # statement of several rows runs under atomic() in autocommit too
    statements_atomic = True
    # whether a transaction the back-end aborted keeps its savepoints (PostgreSQL's does: a
    # rollback to one recovers it); where not, no savepoint can bring it back
    abort_keeps_savepoints = True

    def __init__(self, raw: Any, spec: ContainerSpec, backend: Backend) -> None:
        self.raw = raw
        self.spec = spec
        self.backend = backend

    def wrap(self, exc: BaseException) -> Error:
        """A driver error on this connection as a pooldbapi error (see driver_error)."""
        return driver_error(self.backend, self.spec, exc)

    def lost(self, exc: BaseException) -> bool:
        """Tell whether an error on this connection means the container, not the statement,
        failed."""
        return self.backend.is_connection_error(exc)

    def set_autocommit(self, on: bool) -> None:
        """Put the idle connection into or out of autocommit."""
        self.raw.autocommit = on

    def begin(self) -> None:
        """Start a transaction (where the driver does not start one implicitly)."""
        # the driver opens a transaction at the first statement

    def commit(self) -> None:
        """Commit the connection's transaction."""
        self.raw.commit()

    def rollback(self) -> None:
        """Roll back the connection's transaction."""
        self.raw.rollback()

    def reset(self, session_changed: bool) -> bool:
        """Make a returned connection fit for the next user: rolled back, session cleared.
        False: the session cannot be cleared here, so the connection is closed instead."""
        self.raw.rollback()
        return not session_changed

    def close(self) -> None:
        """Close the connection, ignoring the driver's errors."""
        try:
            self.raw.close()
        except self.driver_error:
            pass

    @abstractmethod
    def is_broken(self) -> bool:
        """Tell whether the connection can no longer be used."""

    def aborted(self) -> bool:
        """Tell whether the open transaction was undone by the server after an error (so a
        COMMIT would quietly roll back); False where the driver undoes only the statement."""
        return False  # the statement is undone, the transaction goes on (Oracle's rule)

    def check(self, round_trip: bool = True) -> bool:
        """Tell whether the idle connection still works (cheaply; a round trip only if in
        doubt, and with round_trip False none: False then)."""
        return not self.is_broken()

    @abstractmethod
    def probe(self) -> None:
        """Send the health probe's statement (a round trip); raise if the container fails."""

    def describe(self, cursor: Any, first_row: Sequence[Any] | None = None,
                 text: str | None = None) -> Description | None:
        """Return the PEP 249 description with pooldbapi type codes, or None. Back-ends that
        type columns by their values get the first row (None: no row) and the statement's text
        (for what a row cannot tell)."""
        return cursor.description  # type: ignore[no-any-return]

    def cursor(self) -> Any:
        """A new cursor of the driver's connection."""
        return self.raw.cursor()

    def first_row(self, sql: str) -> Sequence[Any] | None:
        """Execute a statement without parameters on a cursor of its own; return its first
        row (None: no row, or a statement that returns none)."""
        cur = self.raw.cursor()
        cur.execute(sql)
        return cur.fetchone() if cur.description is not None else None

    # A REST service's entity sets (ODataLink answers from the service's $metadata)

    def entity_keys(self, entity: str) -> list[str]:
        """The key properties of an entity set."""
        raise NotSupportedError(f"{self.spec.alias}: a {self.spec.driver} container has no"
                                f" entity sets")

    def unsafe_key(self, entity: str, key: dict[str, Any]) -> str | None:
        """Why a key cannot be sent as one path segment (None: it can)."""
        raise NotSupportedError(f"{self.spec.alias}: a {self.spec.driver} container has no"
                                f" entity sets")

    def open_stream(self, text: str, values: Sequence[Any] | None, batch: int) -> Any:
        """Execute a select on a cursor that fetches its rows in batches, not all at once."""
        cur = self.raw.cursor()
        cur.arraysize = batch
        cur.execute(text, values) if values is not None else cur.execute(text)
        return cur

    @abstractmethod
    def atomic(self) -> AbstractContextManager[Any]:
        """Make a block all-or-nothing: a savepoint in a transaction, its own one outside."""

    def atomic_calls(self) -> AbstractContextManager[Any]:
        """atomic() for a block of execute and executemany calls on the driver, nothing else
        (no COPY). Its value is true where the block's statements and those that make it
        atomic are sent together as it ends (PostgreSQL's pipeline): their results (rowcount,
        RETURNING rows) are then read after the block, not in it."""
        return self.atomic()

    def atomic_execute(self, cursor: Any, text: str) -> bool:
        """Execute one statement without parameters on cursor, all or nothing as atomic()
        makes it, as one call to the server where the back-end has one (PostgreSQL: one simple
        query, the savepoint's statements around the text), leaving cursor on the statement's
        result; False, with nothing sent, where it has none (the caller then uses
        atomic_calls)."""
        return False

    # A statement that outlives its call's cancellation (pooldbapi.aio): asked to stop on the
    # server, and past a grace, its session's socket shut. Where a driver has no such request,
    # nothing runs to be asked.

    def cancel_running(self, timeout: float) -> Coroutine[Any, Any, Any] | None:
        """A coroutine that asks the server to cancel the statement this session runs, or None
        where it runs none (or its driver has no asynchronous request)."""
        return None

    def running(self) -> bool:
        """Tell whether the session runs a statement (where its driver says so)."""
        return False

    def shut(self) -> None:
        """Shut the session's socket, so that a wait on it ends (the session is lost)."""

    # The application's savepoints (Connection.savepoint): SQL's statements, each on a cursor
    # of its own; name is an identifier the connection checked

    def savepoint(self, name: str) -> None:
        """Set a savepoint in the open transaction."""
        self._run(f"SAVEPOINT {name}")

    def rollback_to(self, name: str) -> None:
        """Undo what the transaction did since the savepoint (which stays)."""
        self._run(f"ROLLBACK TO SAVEPOINT {name}")

    def release(self, name: str) -> None:
        """Forget the savepoint (and those set after it), keeping what was done since."""
        self._run(f"RELEASE SAVEPOINT {name}")

    def _run(self, text: str) -> None:
        cursor = self.raw.cursor()
        try:
            cursor.execute(text)
        finally:
            cursor.close()

    # Two-phase commit (where Backend.two_phase): PEP 249's calls on the driver's connection

    def tpc_begin(self, format_id: int, gtrid: str, bqual: str) -> None:
        """Start this connection's branch of a two-phase transaction."""
        self.raw.tpc_begin(self.raw.xid(format_id, gtrid, bqual))

    def tpc_prepare(self) -> None:
        """Prepare the branch begun here (the first phase)."""
        self.raw.tpc_prepare()

    def tpc_commit(self, xid: Any = None) -> None:
        """Commit the branch begun here, or (xid: one tpc_recover listed) a prepared one."""
        self.raw.tpc_commit() if xid is None else self.raw.tpc_commit(xid)

    def tpc_rollback(self, xid: Any = None) -> None:
        """Roll back the branch begun here, or (xid: one tpc_recover listed) a prepared one."""
        self.raw.tpc_rollback() if xid is None else self.raw.tpc_rollback(xid)

    def tpc_recover(self) -> list[Any]:
        """The driver's xids of the prepared branches on this connection's server."""
        return list(self.raw.tpc_recover())


class CopyRows(Protocol):
    """A link's bulk path: write a page of rows to a table (its columns, None: all, in order);
    return the rows written."""

    def __call__(self, table: str, columns: tuple[str, ...] | None,
                 rows: Sequence[Any]) -> int: ...


PROBE_ROWS = 100_000
"""A limit probe counts at most this many rows (and one more, to tell 'more')."""


class DriverBackend:
    """What most PEP 249 drivers share; a back-end module overrides what its driver does
    differently."""

    rowcount_after_close = False  # the driver's closed cursor still tells rowcount, lastrowid
    copies_rows = False  # no bulk path: pages go through executemany
    executemany_returns = False  # RETURNING rows of executemany: one row a call

    def max_connections(self, spec: ContainerSpec) -> int | None:
        return None

    def changes_session(self, kind: StatementKind, words: tuple[str, ...]) -> bool:
        return True

    def lastrowid(self, cursor: Any) -> Any:
        return cursor.lastrowid

    def call_text(self, name: str, markers: str) -> str | None:
        return None

    def key_range_text(self, table: str, start: int, step: int) -> str | None:
        return None

    def estimate_text(self, text: str) -> str | None:
        return f"select count(*) from ({text} limit {PROBE_ROWS + 1}) pooldbapi_probe"

    def estimated_rows(self, row: Sequence[Any]) -> int | None:
        return int(row[0])
