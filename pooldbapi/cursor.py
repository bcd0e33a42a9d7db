"""Cursor: the DB-API object; picks the operation for the statement kind; fetch*."""
from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from . import telemetry
from .backends import backend as load_backend
from .dbapi import Description
from .errors import InterfaceError, NotSupportedError, ProgrammingError
from .ops import bulk, ddl, dml, select, synchronize
from .result import Result
from .runner import Direct, Stream, execute_on
from .settings import parse_alias_list
from .sql import parse as sqlparse_
from .sql.parse import Statement, StatementKind, parse

if TYPE_CHECKING:
    from .connection import Connection
    from .context import Context
    from .pool import Physical

Ready = tuple[Direct, "Physical", "Physical | None", str, "Sequence[Any] | None"]
"""A statement made ready by Cursor.at_hand: the prepared plan, the session (its lock held),
the session again if it is kept (else None), the back-end's text and values."""

STREAM_BATCH = 2000
"""Rows a streaming cursor fetches from the server at a time (or arraysize, if larger)."""

_EXECUTE: dict[StatementKind, Callable[[Context, Statement, Any], Result]] = {
    sqlparse_.SELECT: select.execute,
    sqlparse_.INSERT: dml.execute,
    sqlparse_.UPDATE: dml.execute,
    sqlparse_.DELETE: dml.execute,
    sqlparse_.DDL: ddl.execute,
    sqlparse_.OTHER: ddl.execute_other,
    sqlparse_.BULK: bulk.execute,
    sqlparse_.SYNC: synchronize.execute,
}
_DIRECT = (sqlparse_.SELECT, sqlparse_.INSERT, sqlparse_.UPDATE, sqlparse_.DELETE)
"""Kinds whose statement, routed whole to one container every time, is prepared (Direct): for
them the operation is execute_on there, whatever it is otherwise."""
_EXECUTEMANY: dict[StatementKind, Callable[[Context, Statement, Sequence[Any]], Result]] = {
    sqlparse_.INSERT: dml.executemany,
    sqlparse_.UPDATE: dml.executemany,
    sqlparse_.DELETE: dml.executemany,
    sqlparse_.BULK: bulk.executemany,
}


class Cursor:
    """A pooldbapi cursor."""

    arraysize: int = 1

    def __init__(self, connection: Connection, stream: bool = False) -> None:
        self.connection = connection
        self.stream = stream
        self._closed = False
        self._result: Result | None = None
        self._rows: list[Sequence[Any]] = []
        self._pos = 0
        self._streamed: Stream | None = None
        self._source: Iterator[Sequence[Any]] | None = None
        self._default: tuple[str, ...] | None = None
        # what the layers below are given for this cursor's calls (its own router view where
        # it has a default list of its own); the connection's default is never changed
        self._context = connection.context

    @property
    def default(self) -> tuple[str, ...] | None:
        """The container list for this cursor's statements and occurrences without '@'
        (None: the connection's default). Set it as '{a,b}', 'a' or a sequence of aliases."""
        return self._default

    @default.setter
    def default(self, value: str | Sequence[str] | None) -> None:
        if value is None:
            self._default = None
            self._context = self.connection.context
            return
        aliases = parse_alias_list(value, "cursor.default")  # type: ignore[arg-type]
        unknown = [a for a in aliases if a not in self.connection.specs]
        if unknown:
            raise ProgrammingError(f"cursor.default: container {unknown[0]!r} is not configured"
                                   f" (configured: {', '.join(sorted(self.connection.specs))})")
        self._default = aliases
        context = self.connection.context
        self._context = context.with_router(context.router.view(aliases))

    def __repr__(self) -> str:
        return f"<pooldbapi.Cursor {'closed' if self._closed else 'open'}>"

    # -- state ----------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise InterfaceError("the cursor is closed")
        self.connection.check_open()

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return self._closed

    @property
    def description(self) -> Description | None:
        """Seven items per result column, from the container that ran; None without rows."""
        return self._result.description if self._result is not None else None

    @property
    def rowcount(self) -> int:
        """Rows produced or affected by the last call, summed over containers; -1 if unknown
        (a streamed select: until its last row was fetched)."""
        if self._streamed is not None:
            return self._streamed.rows_read if self._streamed.finished else -1
        return self._result.rowcount if self._result is not None else -1

    @property
    def lastrowid(self) -> Any:
        """The id of the one row the last statement wrote on one container, else None."""
        return self._result.lastrowid if self._result is not None else None

    @property
    def rownumber(self) -> int | None:
        """The 0-based index of the next row in the result, None without a result."""
        if self._result is None or self._result.description is None:
            return None
        return self._pos

    @property
    def containers(self) -> dict[str, int]:
        """Alias -> executions, rows or pages that ran there for the last call."""
        return dict(self._result.containers) if self._result is not None else {}

    # -- execution ------------------------------------------------------------------------
    def _prepare(self, operation: str) -> Statement:
        self._check_open()
        stmt = parse(operation)
        self._context.router.check(stmt)
        self._context.transaction.check()
        if stmt.kind == sqlparse_.TCL:
            raise ProgrammingError(f"{' '.join(stmt.words) or 'transaction control'} as SQL text"
                                   " is not allowed: use the connection's commit() and"
                                   " rollback() (or autocommit)")
        return stmt

    def _set(self, result: Result) -> None:
        self._result = result
        self._rows = result.rows
        self._pos = 0

    def _reset(self) -> None:
        if self._streamed is not None:
            self._streamed.close()
        self._result, self._rows, self._pos = None, [], 0
        self._streamed = self._source = None

    def execute(self, operation: str, parameters: Any = None) -> Cursor:
        """Run a statement; parameters (a sequence or a mapping) bind its placeholders."""
        with self.connection.lock:
            if not telemetry.ON and type(operation) is str and not self.stream:
                plan = self._context.plans.get(operation)
                if plan is not None:  # (a prepared statement chooses no unit: none to settle)
                    return self._prepared(plan, parameters)
            try:
                if telemetry.ON:  # the statement's span (telemetry.py)
                    return telemetry.statement(self.connection, operation, parameters,
                                               self._run)
                return self._run(operation, parameters, False)
            finally:
                # every unit the call chose ends with it (a stream took its own along)
                self._context.router.settle()

    def _prepared(self, plan: Direct, parameters: Any) -> Cursor:
        """Run a prepared statement (runner.Direct): the checks of _prepare that can change
        since it was prepared, then the plan."""
        if self._streamed is not None:
            self._streamed.close()
        self._result, self._rows, self._pos = None, [], 0
        self._streamed = self._source = None
        connection = self.connection
        if self._closed or not connection.usable:
            self._check_open()  # raises what is wrong
        context = self._context
        tx = context.transaction
        if tx.failed is not None or tx.inherited:
            tx.check()
        result = plan.run(context, parameters)
        self._result, self._rows = result, result.rows
        return self

    def _run(self, operation: str, parameters: Any, prepared: bool = True) -> Cursor:
        """Run a statement (prepared False: execute() found no plan for it already)."""
        context = self._context
        if prepared and type(operation) is str and not self.stream:
            plan = context.plans.get(operation)
            if plan is not None:
                return self._prepared(plan, parameters)
        if self._streamed is not None:
            self._streamed.close()
        self._result, self._rows, self._pos = None, [], 0
        self._streamed = self._source = None
        stmt = self._prepare(operation)
        if self.stream and stmt.kind == sqlparse_.SELECT:
            streamed = select.stream(self._context, stmt, parameters,
                                     max(self.arraysize, STREAM_BATCH))
            if isinstance(streamed, Result):
                self._set(streamed)
                return self
            self._set(Result(streamed.description, [], -1, None, {streamed.alias: 1}))
            self._streamed = streamed
            self._source = itertools.chain.from_iterable(streamed.batches())
            return self
        self._set(_EXECUTE[stmt.kind](context, stmt, parameters))
        if stmt.kind in _DIRECT and not self.stream:
            alias = context.router.direct(stmt)  # (known once the statement was routed)
            if alias is not None:
                try:
                    plan = Direct(context, alias, stmt)
                except ProgrammingError:  # not renderable with parameters: never prepared
                    return self
                context.plans.put(operation, plan, len(operation))
        return self

    # execute()'s steps for a caller that awaits the driver itself (pooldbapi.aio's task): a
    # prepared statement whose session is at hand, with nothing in between that waits
    def at_hand(self, operation: str, parameters: Any) -> Ready | None:
        """execute() up to the driver's call, for a prepared statement (runner.Direct) whose
        session is at hand (Direct.at_hand): the connection's lock and the session's held.
        None, with nothing taken or changed, where execute() would wait, stream, trace, or
        first end a streamed result: call execute() then. Raises what execute() raises for a
        closed cursor or connection and for bad parameters. Then ran() (and, where it says
        so, hand_back()), or failed(). (A prepared statement chooses no unit of the router:
        there is nothing to settle.)"""
        if self.stream or telemetry.ON or self._streamed is not None or \
                type(operation) is not str:
            return None
        context = self._context
        plan = context.plans.get(operation)
        tx = context.transaction
        if plan is None or tx.failed is not None or tx.inherited:
            return None
        connection = self.connection
        lock = connection.lock
        if not lock.acquire(False):
            return None
        try:
            if self._closed or not connection.usable:
                self._check_open()  # raises what is wrong
            ready = plan.at_hand(context, parameters)
        except BaseException:
            self._result, self._rows, self._pos = None, [], 0  # (as execute() leaves it)
            self._source = None
            lock.release()
            raise
        if ready is None:
            lock.release()
        else:  # (no earlier result is read while it runs)
            self._result, self._rows, self._pos = None, [], 0
            self._source = None
        return ready

    def ran(self, ready: Ready, result: Result) -> bool:
        """The driver answered the statement at_hand() made ready: result is the call's.
        Everything is let go but, where this returns False, a kept session that is to be
        given back and the connection's lock: hand_back() then (it may wait)."""
        plan, phys, kept = ready[0], ready[1], ready[2]
        self._result, self._rows = result, result.rows
        if plan.ended(self._context, phys, kept):
            self.connection.lock.release()
            return True
        return False

    def hand_back(self, ready: Ready) -> None:
        """Give back the kept session ran() did not keep, then the connection's lock."""
        try:
            self._context.transaction.kept_done(ready[0].alias, ready[1])
        finally:
            self.connection.lock.release()

    def failed(self, ready: Ready, exc: BaseException) -> BaseException:
        """The driver raised exc for the statement at_hand() made ready: what execute() does
        then (which may wait: not for what is no Exception, such as Ctrl-C or a closed
        coroutine's GeneratorExit); returns what to raise. Lets go of everything."""
        try:
            return ready[0].failed(self._context, ready[1], ready[2], exc)
        finally:
            self.connection.lock.release()

    def explain(self, operation: str, parameters: Any = None) -> Cursor:
        """Plan a select without running it: the cursor's rows are the steps (step,
        container, statement, estimated_rows), per occurrence where it is evaluated locally."""
        with self.connection.lock:
            self._reset()
            stmt = self._prepare(operation)
            if stmt.kind != sqlparse_.SELECT:
                raise NotSupportedError(f"explain takes a select, not {stmt.kind}")
            try:
                self._set(select.explain(self._context, stmt, parameters))
            finally:
                self._context.router.settle()
            return self

    def executemany(self, operation: str, seq_of_parameters: Iterable[Any]) -> Cursor:
        """Run a write for each parameter set, each set on the next container of its list."""
        with self.connection.lock:
            try:
                if telemetry.ON:  # the statement's span (telemetry.py)
                    return telemetry.statement(self.connection, operation, seq_of_parameters,
                                               self._run_many, many=True)
                return self._run_many(operation, seq_of_parameters)
            finally:
                self._context.router.settle()

    def _run_many(self, operation: str, seq_of_parameters: Iterable[Any]) -> Cursor:
        self._reset()
        stmt = self._prepare(operation)
        run = _EXECUTEMANY.get(stmt.kind)
        if run is None:
            raise ProgrammingError(f"executemany takes insert, update, delete or bulk insert,"
                                   f" not {stmt.kind}")
        if isinstance(seq_of_parameters, str | bytes | Mapping) or \
                not isinstance(seq_of_parameters, Iterable):
            raise ProgrammingError(f"executemany takes a sequence of parameter sets, not"
                                   f" {type(seq_of_parameters).__name__}")
        seq = seq_of_parameters if isinstance(seq_of_parameters, Sequence) else \
            list(seq_of_parameters)
        self._set(run(self._context, stmt, seq))
        return self

    def callproc(self, procname: str, parameters: Sequence[Any] = ()) -> Sequence[Any]:
        """Call a procedure or function on the container the default list (or '@' in the
        name: 'fn@{a,b}') gives: a PostgreSQL or SQLite function, whose rows are the result
        set, or an Oracle procedure. Returns the parameters (OUT values are not read back)."""
        with self.connection.lock:
            self._reset()
            self._check_open()
            name, at, suffix = procname.partition("@")
            if not name or not all(part.replace("_", "a").replace("$", "a").isalnum()
                                   for part in name.split(".")):
                raise ProgrammingError(f"callproc: {procname!r} is not a procedure name")
            params = list(parameters)
            markers = ", ".join("?" * len(params))
            routing = parse(f"select 1 from {name}{at}{suffix}")
            context = self._context
            context.router.check(routing)
            context.transaction.check()
            alias = context.one(routing)
            spec = self.connection.specs[alias]
            text = load_backend(spec.driver, alias).call_text(name, markers)
            if text is None:
                raise NotSupportedError(f"callproc: container {alias!r} ({spec.driver}) has no"
                                        " procedures")
            try:
                self._set(Result.merge([execute_on(context, alias, parse(text),
                                                   params if params else None)]))
            finally:
                context.router.settle()
            return params

    def nextset(self) -> bool | None:
        """Not supported: every call produces at most one result set."""
        self._check_open()
        raise NotSupportedError("nextset is not supported: a call produces one result set")

    def setinputsizes(self, sizes: Any) -> None:
        """Accepted and ignored, as PEP 249 allows."""
        self._check_open()

    def setoutputsize(self, size: int, column: int | None = None) -> None:
        """Accepted and ignored, as PEP 249 allows."""
        self._check_open()

    # -- fetching -------------------------------------------------------------------------
    def _check_result(self) -> None:
        self._check_open()
        if self._result is None:
            raise ProgrammingError("no result: execute() a statement first")
        if self._result.description is None:
            raise ProgrammingError("the last statement produced no result set")

    def _take(self, size: int | None) -> list[Sequence[Any]]:
        if self._source is not None:
            with self.connection.lock:  # a streamed result reads from a shared session
                self._check_result()
                assert self._streamed is not None
                # commit, rollback or close ended it: not one more row of the batch in hand
                self._streamed.check(self._pos)
                rows = list(itertools.islice(self._source, size))
        else:
            result, connection = self._result, self.connection
            if self._closed or not connection.usable or result is None or \
                    result.description is None:
                self._check_result()  # raises what is wrong
            end = len(self._rows) if size is None else self._pos + size
            rows = self._rows[self._pos:end]
        self._pos += len(rows)
        return rows

    def fetchone(self) -> Sequence[Any] | None:
        """Return the next row, or None when the result is exhausted."""
        rows = self._take(1)
        return rows[0] if rows else None

    def fetchmany(self, size: int | None = None) -> list[Sequence[Any]]:
        """Return up to size rows (arraysize by default)."""
        return self._take(self.arraysize if size is None else size)

    def fetchall(self) -> list[Sequence[Any]]:
        """Return the remaining rows."""
        return self._take(None)

    def __iter__(self) -> Iterator[Sequence[Any]]:
        return self

    def __next__(self) -> Sequence[Any]:
        row = self.fetchone()
        if row is None:
            raise StopIteration
        return row

    def close(self) -> None:
        """Close the cursor (and a streamed result still open); idempotent. rowcount and
        lastrowid stay readable where every container's driver keeps them on a closed cursor
        (sqlite3 does, psycopg resets them): SQLAlchemy reads an insert's rowcount after
        closing the cursor, so pandas' to_sql reports what the native dialect reports."""
        with self.connection.lock:
            kept = self._result if self._streamed is None and self._kept_after_close() \
                else None
            self._reset()
            if kept is not None:
                self._result = Result(None, [], kept.rowcount, kept.lastrowid,
                                      dict(kept.containers))
        self._closed = True

    def _kept_after_close(self) -> bool:
        if self._result is None or not self._result.containers:
            return False
        specs = self.connection.specs
        return all(load_backend(specs[alias].driver, alias).rowcount_after_close
                   for alias in self._result.containers)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
