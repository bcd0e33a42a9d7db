"""python-oracledb's AsyncConnection (async thin mode) seen as its Connection: what the Oracle
back-end and the core call (cursor, execute, fetch*, executemany, arraysize, prefetchrows,
lastrowid, commit, rollback, autocommit, is_healthy, tpc_*), each driver coroutine awaited
through the wait seam (awaited.py, shared with psycopg's adapter). Opened by
OracleBackend.connect in a call of pooldbapi.aio, so that a statement's I/O is the event
loop's own, with no thread."""
from __future__ import annotations

from typing import Any

import oracledb

from ..waits import NotInLoop, await_only
from . import awaited
from .awaited import call, forwarded


def connect(params: oracledb.ConnectParams, **kwargs: Any) -> Connection:
    """Open an oracledb AsyncConnection (awaited) and return it adapted."""
    return Connection(await_only(oracledb.connect_async(params=params, **kwargs)))


class Cursor(awaited.Cursor):
    """An AsyncCursor as an oracledb Cursor."""

    __slots__ = ()

    arraysize = forwarded("arraysize", settable=True)
    prefetchrows = forwarded("prefetchrows", settable=True)
    lastrowid = forwarded("lastrowid")


class Connection(awaited.Connection):
    """An AsyncConnection as an oracledb Connection."""

    __slots__ = ()
    raw: oracledb.AsyncConnection

    def __repr__(self) -> str:
        return "<pooldbapi async oracledb session>"

    autocommit = forwarded("autocommit", settable=True)  # (a flag of the client: no round trip)

    def is_healthy(self) -> bool:
        return bool(self.raw.is_healthy())

    def cursor(self) -> Cursor:
        return Cursor(self.raw.cursor())

    def close(self) -> None:
        try:
            call(self.raw.close())
        except NotInLoop:  # no event loop to log off on: the socket is dropped
            self.raw.terminate()


__all__ = ["Connection", "Cursor", "connect"]
