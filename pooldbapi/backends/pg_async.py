"""psycopg's AsyncConnection seen as its Connection: what the PostgreSQL back-end and the core
call (cursor, execute, fetch*, executemany, copy, server-side cursors, commit, rollback,
autocommit, transaction blocks, tpc_*, pgconn, info), each driver coroutine awaited through
the wait seam. Opened by PostgreSQLBackend.connect in a call of pooldbapi.aio, so that a
statement's I/O is the event loop's own, with no thread."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import Any, Self

import psycopg

from ..waits import NotInLoop, active, await_only, run_ready


def connect(conninfo: str, **kwargs: Any) -> Connection:
    """Open a psycopg AsyncConnection (awaited) and return it adapted."""
    return Connection(await_only(psycopg.AsyncConnection.connect(conninfo, **kwargs)))


@contextmanager
def _entered(manager: AbstractAsyncContextManager[Any]) -> Iterator[Any]:
    """An async context manager of the driver used as a synchronous one."""
    value = await_only(manager.__aenter__())
    try:
        yield value
    except BaseException as exc:
        if not await_only(manager.__aexit__(type(exc), exc, exc.__traceback__)):
            raise
    else:
        await_only(manager.__aexit__(None, None, None))


class Cursor:
    """An AsyncCursor (or AsyncServerCursor) as its synchronous counterpart."""

    __slots__ = ("raw",)

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # what the cursor knows without a round trip
    @property
    def description(self) -> Any:
        return self.raw.description

    @property
    def pgresult(self) -> Any:
        return self.raw.pgresult

    @property
    def rowcount(self) -> int:
        return int(self.raw.rowcount)

    @property
    def itersize(self) -> int:
        return int(self.raw.itersize)

    @itersize.setter
    def itersize(self, value: int) -> None:
        self.raw.itersize = value

    @property
    def closed(self) -> bool:
        return bool(self.raw.closed)

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Cursor:
        await_only(self.raw.execute(query, params, **kwargs))
        return self

    def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
        await_only(self.raw.executemany(query, params_seq, **kwargs))

    def fetchone(self) -> Any:
        return await_only(self.raw.fetchone())

    def fetchmany(self, size: int = 0) -> list[Any]:
        rows: list[Any] = await_only(self.raw.fetchmany(size))
        return rows

    def fetchall(self) -> list[Any]:
        rows: list[Any] = await_only(self.raw.fetchall())
        return rows

    def copy(self, statement: Any, params: Any = None) -> Any:
        return _copying(self.raw.copy(statement, params))

    def close(self) -> None:
        _call(self.raw.close())


@contextmanager
def _copying(manager: AbstractAsyncContextManager[Any]) -> Iterator[Copy]:
    with _entered(manager) as copy:
        yield Copy(copy)


class Copy:
    """An AsyncCopy as a Copy (write_row, write)."""

    __slots__ = ("raw",)

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def write_row(self, row: Sequence[Any]) -> None:
        await_only(self.raw.write_row(row))

    def write(self, buffer: Any) -> None:
        await_only(self.raw.write(buffer))


def _call(coro: Any) -> Any:
    """Await a driver coroutine in a call of pooldbapi.aio; outside one (the reaper closing an
    idle session, the interpreter's exit) only one that needs no I/O can run."""
    if active():
        return await_only(coro)
    return run_ready(coro)


class Connection:
    """An AsyncConnection as a psycopg Connection."""

    __slots__ = ("raw",)

    def __init__(self, raw: psycopg.AsyncConnection[Any]) -> None:
        self.raw = raw

    def __repr__(self) -> str:
        return f"<pooldbapi async psycopg session {'closed' if self.closed else 'open'}>"

    @property
    def pgconn(self) -> Any:
        return self.raw.pgconn

    @property
    def info(self) -> Any:
        return self.raw.info

    @property
    def closed(self) -> bool:
        return bool(self.raw.closed)

    @property
    def broken(self) -> bool:
        return bool(self.raw.broken)

    @property
    def autocommit(self) -> bool:
        return bool(self.raw.autocommit)

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        await_only(self.raw.set_autocommit(value))

    @property
    def _prepared(self) -> Any:  # psycopg's prepared statements (reset() forgets them)
        return getattr(self.raw, "_prepared", None)

    def cursor(self, name: str = "", **kwargs: Any) -> Cursor:
        return Cursor(self.raw.cursor(name, **kwargs) if name else self.raw.cursor(**kwargs))

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Cursor:
        return Cursor(await_only(self.raw.execute(query, params, **kwargs)))

    def commit(self) -> None:
        await_only(self.raw.commit())

    def rollback(self) -> None:
        await_only(self.raw.rollback())

    def transaction(self, *args: Any, **kwargs: Any) -> Any:
        return _entered(self.raw.transaction(*args, **kwargs))

    def close(self) -> None:
        try:
            _call(self.raw.close())
        except NotInLoop:
            self.raw.pgconn.finish()

    # two-phase commit
    def xid(self, format_id: int, gtrid: str, bqual: str) -> Any:
        return self.raw.xid(format_id, gtrid, bqual)

    def tpc_begin(self, xid: Any) -> None:
        await_only(self.raw.tpc_begin(xid))

    def tpc_prepare(self) -> None:
        await_only(self.raw.tpc_prepare())

    def tpc_commit(self, xid: Any = None) -> None:
        await_only(self.raw.tpc_commit(xid))

    def tpc_rollback(self, xid: Any = None) -> None:
        await_only(self.raw.tpc_rollback(xid))

    def tpc_recover(self) -> list[Any]:
        found: list[Any] = await_only(self.raw.tpc_recover())
        return found


__all__ = ["Connection", "Copy", "Cursor", "connect"]
