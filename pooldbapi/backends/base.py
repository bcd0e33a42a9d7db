"""The Backend protocol: connect, paramstyle, type codes, error map, capabilities."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from ..dbapi import Description
from ..errors import Error
from ..settings import ContainerSpec

__all__ = ["PROBE_ROWS", "Backend", "CallLimiter", "CopyRows", "Description", "DriverBackend"]


class CallLimiter(Protocol):
    """The calls-per-second/minute/day limit of a container (throttle.Limiter), handed to a
    back-end that makes several calls for one statement (REST) when it is connected."""

    def take(self, calls: int = 1) -> float:
        """Wait for a slot for the next calls; return the seconds waited."""
        ...

    def hold_until(self, when: float) -> None:
        """Give no slot before the monotonic time `when` (the service asked to wait)."""
        ...


class CopyRows(Protocol):
    """A back-end's bulk path: write a page of rows to a table (its columns, None: all, in
    order) on a raw connection; return the rows written."""

    def __call__(self, raw: Any, table: str, columns: tuple[str, ...] | None,
                 rows: Sequence[Any]) -> int: ...


class Backend(Protocol):
    """One driver behind pooldbapi. Each back-end module exposes one instance as BACKEND."""

    name: str
    paramstyle: str          # the marker style render() writes for it: qmark, format or numeric
    runs_sql: bool           # False for REST back-ends: selects are evaluated locally
    transactional: bool      # has transactions (savepoints); False: every write is immediate
    two_phase: bool          # supports DB-API TPC
    describes_from_values: bool  # type codes come from the first row's values, not the driver
    cursor_reads_slower: bool  # a server-side cursor gives up plans a plain query may use
    #                            (PostgreSQL plans no parallel scan for a cursor)
    throttles_calls: bool    # takes a limiter slot for each call it makes (REST: a statement
    #                          may need several calls), so the runner takes none for it
    max_parameters: int | None   # parameters one statement may bind (None: no limit known)
    max_statement_bytes: int | None  # the longest statement text it takes (None: no limit)
    rowcount_after_close: bool  # the driver's closed cursor still tells rowcount, lastrowid

    def connect(self, spec: ContainerSpec, limiter: CallLimiter | None = None) -> Any:
        """Open a physical connection with the spec's forwarded keys; reject unknown keys.
        limiter: the container's limit, for a back-end that throttles its own calls."""

    def max_connections(self, spec: ContainerSpec) -> int | None:
        """Return a hard cap on physical connections (1 for an in-memory SQLite), or None."""

    def set_autocommit(self, raw: Any, on: bool) -> None:
        """Put an idle physical connection into or out of autocommit."""

    def begin(self, raw: Any) -> None:
        """Start a transaction (where the driver does not start one implicitly)."""

    def commit(self, raw: Any) -> None:
        """Commit the physical connection's transaction."""

    def rollback(self, raw: Any) -> None:
        """Roll back the physical connection's transaction."""

    def changes_session(self, kind: str, words: tuple[str, ...]) -> bool:
        """Tell whether a DDL or OTHER statement (kind, its first keywords) may leave state in
        the session that reset() must clear."""

    def reset(self, raw: Any, session_changed: bool) -> bool:
        """Make a returned connection fit for the next user: rolled back, session cleared.
        False: the session cannot be cleared here, so the connection is closed instead."""
        return True

    def close(self, raw: Any) -> None:
        """Close a physical connection, ignoring errors."""

    def is_broken(self, raw: Any) -> bool:
        """Tell whether the physical connection can no longer be used."""

    def aborted(self, raw: Any) -> bool:
        """Tell whether the open transaction was undone by the server after an error (so a
        COMMIT would quietly roll back); False where the driver undoes only the statement."""

    def check(self, raw: Any) -> bool:
        """Tell whether an idle connection still works (cheaply; a round trip only if in doubt)."""

    def checker(self, raw: Any) -> Callable[[], bool]:
        """check() of one connection, made once when it is opened (with what the back-end
        keeps for it between checks)."""

    def probe(self, raw: Any) -> None:
        """Send the health probe's statement (a round trip); raise if the container fails."""

    def describe(self, cursor: Any, first_row: Sequence[Any] | None = None,
                 text: str | None = None) -> Description | None:
        """Return the PEP 249 description with pooldbapi type codes, or None. Back-ends that
        type columns by their values get the first row (None: no row) and the statement's text
        (for what a row cannot tell)."""

    def error_class(self, exc: BaseException) -> tuple[type[Error], str | None]:
        """Return the pooldbapi class and the SQLSTATE (or driver code) of a driver error."""

    def is_connection_error(self, exc: BaseException, raw: Any) -> bool:
        """Tell whether an error means the container, not the statement, failed."""

    def open_stream(self, raw: Any, text: str, values: Sequence[Any] | None, batch: int) -> Any:
        """Execute a select on a cursor that fetches its rows in batches, not all at once."""

    def atomic(self, raw: Any) -> AbstractContextManager[Any]:
        """Make a block all-or-nothing: a savepoint in a transaction, its own one outside."""

    @property
    def copy_rows(self) -> CopyRows | None:
        """The bulk path for pages of plain values (PostgreSQL's COPY); None: pages go
        through executemany."""

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


PROBE_ROWS = 100_000
"""A limit probe counts at most this many rows (and one more, to tell 'more')."""


class DriverBackend:
    """What most PEP 249 drivers share; a back-end module overrides what its driver does
    differently."""

    driver_error: type[BaseException] = Exception  # the driver's base exception class
    rowcount_after_close = False  # the driver's closed cursor still tells rowcount, lastrowid

    def max_connections(self, spec: ContainerSpec) -> int | None:
        return None

    def set_autocommit(self, raw: Any, on: bool) -> None:
        raw.autocommit = on

    def begin(self, raw: Any) -> None:
        pass  # the driver opens a transaction at the first statement

    def commit(self, raw: Any) -> None:
        raw.commit()

    def rollback(self, raw: Any) -> None:
        raw.rollback()

    def close(self, raw: Any) -> None:
        try:
            raw.close()
        except self.driver_error:
            pass

    def aborted(self, raw: Any) -> bool:
        return False  # the statement is undone, the transaction goes on (Oracle's rule)

    def changes_session(self, kind: str, words: tuple[str, ...]) -> bool:
        return True

    def call_text(self, name: str, markers: str) -> str | None:
        return None

    def key_range_text(self, table: str, start: int, step: int) -> str | None:
        return None

    def estimate_text(self, text: str) -> str | None:
        return f"select count(*) from ({text} limit {PROBE_ROWS + 1}) pooldbapi_probe"

    def estimated_rows(self, row: Sequence[Any]) -> int | None:
        return int(row[0])
