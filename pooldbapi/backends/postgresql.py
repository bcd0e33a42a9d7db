"""PostgreSQL through psycopg 3: keys forwarded as conninfo keywords, type codes from OIDs."""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import select
import socket
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import pq
from psycopg.conninfo import make_conninfo
from psycopg.postgres import types as pg_types

from .. import waits
from ..cache import BoundedCache, text_size
from ..dbapi import (
    BINARY_NAME,
    DATETIME_NAME,
    NUMBER_NAME,
    ROWID_NAME,
    STRING_NAME,
    TypeCode,
)
from ..errors import Error, InterfaceError, pep249_class
from ..settings import ContainerSpec
from ..sql.styles import Paramstyle
from .base import Backend, CallLimiter, Description, DriverBackend, Link

_CATEGORY = {
    NUMBER_NAME: {"int2", "int4", "int8", "float4", "float8", "numeric", "oid", "money", "bool"},
    STRING_NAME: {"text", "varchar", "bpchar", "char", "name", "json", "jsonb", "uuid", "xml",
                  "citext", "unknown"},
    BINARY_NAME: {"bytea"},
    DATETIME_NAME: {"date", "time", "timetz", "timestamp", "timestamptz", "interval"},
    ROWID_NAME: {"tid"},
}
_BY_NAME = {name: cat for cat, names in _CATEGORY.items() for name in names}
_TYPE_CODES: dict[int, TypeCode] = {}
_CURSOR_NUMBERS = itertools.count()
_DESCRIPTIONS: BoundedCache[tuple[Any, ...], Description] = BoundedCache(
    4096, largest=1 << 20)  # (a result of a thousand columns is still kept)
"""Descriptions by result shape (each column's name, type, modifier and size)."""
_INVALID_OPTION = re.compile(r'invalid (?:connection option|URI query parameter) "([^"]+)"')
# SQLSTATE classes that mean the server or the link, not the statement, failed
_CONNECTION_CLASSES = ("08", "57P01", "57P02", "57P03", "53300")
_UNREACHABLE = re.compile(
    r"connection refused|could not connect|timeout expired|timed out|server closed the"
    r" connection|could not translate host name|no route to host|network is unreachable|"
    r"connection reset|the database system is (starting up|shutting down|in recovery)|"
    r"too many clients|could not receive data|could not send data|SSL SYSCALL", re.IGNORECASE)


def type_code(oid: int) -> TypeCode:
    """Return the TypeCode of a PostgreSQL type OID."""
    code = _TYPE_CODES.get(oid)
    if code is None:
        info = pg_types.get(oid)
        name = info.name if info is not None else str(oid)
        code = _TYPE_CODES[oid] = TypeCode(name, _BY_NAME.get(name))
    return code


CONNECT_TIMEOUT = 10
"""Seconds libpq waits for a server to answer a connect, where the key connect_timeout is not
given: a port that accepts TCP and never answers must not hang a statement."""

PROBE_SQL = "select 1"
"""What the health probe sends."""


_ATOMIC = {False: ("SAVEPOINT pooldbapi_page", "RELEASE SAVEPOINT pooldbapi_page"),
           True: ("BEGIN", "COMMIT")}
"""What makes a block atomic, by autocommit: a savepoint in a transaction, its own one outside."""


def _drain(pipeline: psycopg.Pipeline) -> None:
    """Read what is left of a pipeline whose statement failed as it was sent (executemany
    reads answers as it sends): the server skipped the rest up to the Sync, and psycopg
    would log each skipped one at the block's end."""
    try:
        pipeline.sync()
    except psycopg.Error:
        pass


class PostgreSQLLink(Link):
    """One psycopg connection."""

    __slots__ = ("_block", "_poller")

    driver_error = psycopg.Error

    def __init__(self, raw: Any, spec: ContainerSpec, backend: Backend) -> None:
        super().__init__(raw, spec, backend)
        self._poller: select.poll | None = None  # check()'s, made at its first call
        # atomic_calls' cursor for what makes its block atomic, kept (a cursor of the
        # block's statements would take their results: its rowcount, its rows), made at its
        # first call
        self._block: Any = None

    def lost(self, exc: BaseException) -> bool:
        if not isinstance(exc, psycopg.OperationalError):
            return False
        state = getattr(exc, "sqlstate", None) or ""
        raw = self.raw
        return bool(raw.broken or raw.closed or state.startswith(_CONNECTION_CLASSES))

    def set_autocommit(self, on: bool) -> None:
        if self.raw.autocommit != on:
            self.raw.autocommit = on

    def reset(self, session_changed: bool) -> bool:
        raw = self.raw
        # (pgconn's status directly: raw.info builds a ConnectionInfo on every call)
        if raw.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            raw.rollback()
        if session_changed:
            was = raw.autocommit
            raw.autocommit = True
            raw.execute("DISCARD ALL")
            raw.autocommit = was
            # DISCARD ALL dropped the server's prepared statements. psycopg notices that only
            # the first time a session runs it (later runs are counted, not checked), and would
            # then EXECUTE a statement the server no longer has: forget them here.
            prepared = getattr(raw, "_prepared", None)
            if prepared is not None:
                prepared.clear()
        return True

    def is_broken(self) -> bool:
        return bool(self.raw.closed or self.raw.broken)

    def aborted(self) -> bool:
        # any statement error aborts a PostgreSQL transaction; a later COMMIT rolls it back
        return bool(self.raw.pgconn.transaction_status == pq.TransactionStatus.INERROR)

    def _native(self) -> psycopg.AsyncConnection[Any] | None:
        """psycopg's AsyncConnection under pooldbapi.aio's adapter (backends/pg_async.py)."""
        native = getattr(self.raw, "raw", None)
        return native if isinstance(native, psycopg.AsyncConnection) else None

    def running(self) -> bool:
        native = self._native()
        return native is not None and not native.closed and \
            native.pgconn.transaction_status == pq.TransactionStatus.ACTIVE

    def cancel_running(self, timeout: float) -> Coroutine[Any, Any, Any] | None:
        # as psycopg's AsyncConnection asks it when its own wait is cancelled (cancel_safe:
        # psycopg 3.2 and later; before, cancel() in a thread)
        native = self._native()
        if native is None or not self.running():
            return None
        if hasattr(native, "cancel_safe"):
            return native.cancel_safe(timeout=timeout)
        return asyncio.wait_for(asyncio.to_thread(native.cancel), timeout)

    def shut(self) -> None:
        native = self._native()
        if native is None or native.closed:
            return
        with contextlib.suppress(OSError), \
                socket.socket(fileno=os.dup(native.pgconn.socket)) as sock:
            sock.shutdown(socket.SHUT_RDWR)  # (the driver's wait wakes up to the end)

    def check(self, round_trip: bool = True) -> bool:
        # An idle session has nothing to say: a readable socket means the server ended it
        # (terminated, shut down) or left a message; only then ask with a round trip (or,
        # where the caller cannot wait for one, answer False: in doubt). The
        # poll object is made once per connection (poll() costs less than select() for one
        # descriptor; the descriptor is the connection's for its life).
        raw = self.raw
        if raw.closed or raw.broken:
            return False
        try:
            poller = self._poller
            if poller is None:
                poller = self._poller = select.poll()
                poller.register(raw.pgconn.socket, select.POLLIN)
            readable = poller.poll(0)
        except (OSError, ValueError, psycopg.Error):
            return False
        if not readable:
            return True
        if not round_trip:
            return False
        try:
            raw.execute("select 1")
            raw.rollback()
            return True
        except psycopg.Error:
            return False

    def probe(self) -> None:
        self.raw.execute(PROBE_SQL).fetchall()
        self.rollback()

    def describe(self, cursor: Any, first_row: Sequence[Any] | None = None,
                 text: str | None = None) -> Description | None:
        res = cursor.pgresult
        n = res.nfields if res is not None else 0
        if not n:
            return None
        # Building psycopg's Column objects costs more than the query on loopback: describe
        # once per distinct result shape (the key of one column built with no comprehension)
        key = ((res.fname(0), res.ftype(0), res.fmod(0), res.fsize(0)),) if n == 1 else \
            tuple([(res.fname(i), res.ftype(i), res.fmod(i), res.fsize(i)) for i in range(n)])
        found = _DESCRIPTIONS.get(key)
        if found is None:
            found = tuple((col.name, type_code(col.type_code), col.display_size,
                           col.internal_size, col.precision, col.scale, col.null_ok)
                          for col in cursor.description)
            _DESCRIPTIONS.put(key, found, text_size(key))
        return found

    def open_stream(self, text: str, values: Sequence[Any] | None, batch: int) -> Any:
        # a server-side cursor; outside a transaction it must be WITH HOLD to outlive the DECLARE
        name = f"pooldbapi_{next(_CURSOR_NUMBERS)}"
        cur = self.raw.cursor(name=name, withhold=self.raw.autocommit)
        cur.itersize = batch
        cur.execute(text, values)
        return cur

    @contextmanager
    def atomic(self) -> Iterator[None]:
        raw = self.raw
        if raw.autocommit:
            with raw.transaction():
                yield
            return
        # Not psycopg's transaction(): outside a block it would COMMIT the caller's transaction.
        raw.execute("SAVEPOINT pooldbapi_page")
        try:
            yield
        except BaseException:
            raw.execute("ROLLBACK TO SAVEPOINT pooldbapi_page")
            raise
        raw.execute("RELEASE SAVEPOINT pooldbapi_page")

    @contextmanager
    def atomic_calls(self) -> Iterator[bool]:
        # One round trip where atomic() takes three: the block's statements and the
        # savepoint's (or BEGIN and COMMIT) go in one pipeline, ended by one Sync (the server
        # stops at the first error and skips the rest up to the Sync). psycopg's executemany
        # rides the pipeline it finds, and sets the cursor's results as the answers are read.
        raw = self.raw
        if type(raw) is not psycopg.Connection:  # pooldbapi.aio's adapter: no pipeline there
            with self.atomic():
                yield False
            return
        autocommit = raw.autocommit
        # In autocommit a BEGIN and a COMMIT, though the statements up to a Sync are one
        # implicit transaction already: psycopg loses track of a pipeline whose Sync fails (a
        # deferred constraint checked there), and answers the next call with PIPELINE_SYNC.
        # Never prepared: psycopg counts a statement prepared once its Parse is queued, and a
        # RELEASE skipped after an error would stay so, unknown to the server.
        begin, end = _ATOMIC[autocommit]
        try:
            with raw.pipeline() as pipeline:
                block = self._block
                if block is None:
                    block = self._block = raw.cursor()
                block.execute(begin, prepare=False)
                try:
                    yield True
                except psycopg.Error:
                    _drain(pipeline)
                    raise
                block.execute(end, prepare=False)
        except BaseException:
            self._undo_block(autocommit)
            raise

    def atomic_execute(self, cursor: Any, text: str) -> bool:
        # The savepoint's statements and the text as one simple query (one message, one
        # round trip, as a native execute without parameters sends it): the server parses
        # the whole string before it runs any of it, and stops at the first error, skipping
        # the rest; the text cannot swallow what follows it (a line comment ends at the
        # newline; a string, quoted name or comment left open fails the whole query, and what
        # follows has no quote, `$` or `*/` to close one).
        raw = self.raw
        if type(raw) is not psycopg.Connection:  # pooldbapi.aio's adapter: atomic_calls
            return False
        autocommit = raw.autocommit
        begin, end = _ATOMIC[autocommit]
        try:
            # the text is rendered for parameters (a literal % doubled): () where it has a %,
            # else none, which spares psycopg its search of the text for placeholders
            cursor.execute(f"{begin};\n{text}\n;{end}", () if "%" in text else None,
                           prepare=False)
        except BaseException:
            self._undo_block(autocommit)
            raise
        cursor.nextset()  # from the savepoint's result (or BEGIN's) to the statement's
        return True

    def _undo_block(self, autocommit: bool) -> None:
        """After a failed pipeline: undo exactly the block (its transaction in autocommit, back
        to its savepoint in a transaction). Where that fails because nothing of the session's
        transaction can commit any more (the session is lost, or the savepoint was never made
        in a transaction already aborted), the block's error is the one to tell; any other
        failure is raised."""
        raw = self.raw
        status = raw.pgconn.transaction_status
        try:
            if not autocommit:
                raw.execute("ROLLBACK TO SAVEPOINT pooldbapi_page", prepare=False)
            elif status != pq.TransactionStatus.IDLE:  # (IDLE: the COMMIT failed, undoing all)
                raw.execute("ROLLBACK", prepare=False)
        except psycopg.Error:
            if not (raw.broken or raw.closed or
                    raw.pgconn.transaction_status == pq.TransactionStatus.INERROR):
                raise

    def copy_rows(self, table: str, columns: tuple[str, ...] | None,
                  rows: Sequence[Any]) -> int:
        target = f"{table} ({', '.join(columns)})" if columns else table
        with self.raw.cursor() as cur:
            with cur.copy(f"COPY {target} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return int(cur.rowcount)


class PostgreSQLBackend(DriverBackend):
    """psycopg 3, every unknown key forwarded to psycopg.connect with its spelling unchanged."""

    name = "postgresql"
    paramstyle = Paramstyle.FORMAT
    runs_sql = True
    transactional = True
    two_phase = True
    describes_from_values = False
    cursor_reads_slower = True
    throttles_calls = False
    copies_rows = True  # COPY FROM STDIN (PostgreSQLLink.copy_rows)
    executemany_returns = True  # psycopg's executemany(returning=True), one pipeline
    max_parameters: int | None = 65535  # the protocol's 16-bit parameter count
    max_statement_bytes: int | None = (1 << 30) - 1  # the server's MaxAllocSize for a message

    def connect(self, spec: ContainerSpec, limiter: CallLimiter | None = None
                ) -> PostgreSQLLink:
        params = dict(spec.params)
        params.setdefault("connect_timeout", str(CONNECT_TIMEOUT))
        # psycopg's own connect argument; every other key is a libpq conninfo keyword
        threshold = params.pop("prepare_threshold", None)
        extra: dict[str, Any] = {}
        if threshold is not None:
            try:
                extra["prepare_threshold"] = None if threshold.lower() == "none" else \
                    int(threshold)
            except ValueError:
                raise InterfaceError(f"container {spec.alias!r}: key 'prepare_threshold' has"
                                     f" an invalid value {threshold!r}") from None
        try:
            if waits.active():  # a call of pooldbapi.aio: psycopg's AsyncConnection, adapted
                from . import pg_async
                raw: Any = pg_async.connect(make_conninfo(**params), **extra)
            else:
                raw = psycopg.connect(make_conninfo(**params), **extra)
        except psycopg.ProgrammingError as exc:
            match = _INVALID_OPTION.search(str(exc))
            if match:
                raise InterfaceError(f"container {spec.alias!r}: the postgresql driver rejects"
                                     f" the key {match.group(1)!r}") from None
            raise
        return PostgreSQLLink(raw, spec, self)

    def error_class(self, exc: BaseException) -> tuple[type[Error], str | None]:
        return pep249_class(exc), getattr(exc, "sqlstate", None)

    def is_connection_error(self, exc: BaseException) -> bool:
        if not isinstance(exc, psycopg.OperationalError):
            return False
        # libpq gives no SQLSTATE for a failed connect: tell the server's absence from a
        # refusal of the caller (wrong password, unknown database), which is theirs to fix
        state = getattr(exc, "sqlstate", None) or ""
        return bool(_UNREACHABLE.search(str(exc))) or state.startswith(_CONNECTION_CLASSES)

    def lastrowid(self, cursor: Any) -> Any:
        return None  # PostgreSQL has no row id: use RETURNING

    def call_text(self, name: str, markers: str) -> str | None:
        return f"select * from {name}({markers})"  # a function's rows

    def key_range_text(self, table: str, start: int, step: int) -> str | None:
        # the sequences the table's serial and identity columns own (pg_depend 'a' and 'i');
        # ALTER SEQUENCE works on both kinds, and its restart is the first key handed out
        literal = "'" + table.replace("'", "''") + "'"
        return ("do $pooldbapi$ declare s regclass; begin for s in select d.objid::regclass"
                " from pg_depend d join pg_class q on q.oid = d.objid and q.relkind = 'S'"
                f" where d.refobjid = {literal}::regclass and d.classid = 'pg_class'::regclass"
                " and d.deptype in ('a', 'i') loop execute format('alter sequence %s"
                f" increment by {step:d} start with {start:d} restart with {start:d}', s);"
                " end loop; end $pooldbapi$")

    def estimate_text(self, text: str) -> str | None:
        return f"explain (format json) {text}"  # the planner's estimate: nothing runs

    def estimated_rows(self, row: Sequence[Any]) -> int | None:
        plan = row[0]
        if isinstance(plan, str):
            plan = json.loads(plan)
        return int(plan[0]["Plan"]["Plan Rows"])


BACKEND: Backend = PostgreSQLBackend()  # mypy checks it against the protocol
