"""psycopg's AsyncConnection seen as its Connection: what the PostgreSQL back-end and the core
call (cursor, execute, fetch*, executemany, copy, server-side cursors, commit, rollback,
autocommit, transaction blocks, tpc_*, pgconn, info), each driver coroutine awaited through
the wait seam (what every driver's adapter shares: awaited.py). Opened by
PostgreSQLBackend.connect in a call of pooldbapi.aio, so that a statement's I/O is the event
loop's own, with no thread."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import Any

import psycopg

from ..waits import NotInLoop, await_only
from . import awaited
from .awaited import call, entered, forwarded


def connect(conninfo: str, **kwargs: Any) -> Connection:
    """Open a psycopg AsyncConnection (awaited) and return it adapted."""
    return Connection(await_only(psycopg.AsyncConnection.connect(conninfo, **kwargs)))


class Cursor(awaited.Cursor):
    """An AsyncCursor (or AsyncServerCursor) as its synchronous counterpart."""

    __slots__ = ()

    pgresult = forwarded("pgresult")
    itersize = forwarded("itersize", settable=True)
    closed = forwarded("closed")

    def copy(self, statement: Any, params: Any = None) -> Any:
        return _copying(self.raw.copy(statement, params))


@contextmanager
def _copying(manager: AbstractAsyncContextManager[Any]) -> Iterator[Copy]:
    with entered(manager) as copy:
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


class Connection(awaited.Connection):
    """An AsyncConnection as a psycopg Connection."""

    __slots__ = ()
    raw: psycopg.AsyncConnection[Any]

    def __repr__(self) -> str:
        return f"<pooldbapi async psycopg session {'closed' if self.closed else 'open'}>"

    pgconn = forwarded("pgconn")
    info = forwarded("info")
    closed = forwarded("closed")
    broken = forwarded("broken")

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

    def transaction(self, *args: Any, **kwargs: Any) -> Any:
        return entered(self.raw.transaction(*args, **kwargs))

    def close(self) -> None:
        try:
            call(self.raw.close())
        except NotInLoop:
            self.raw.pgconn.finish()


__all__ = ["Connection", "Copy", "Cursor", "connect"]
