"""What the adapters of the drivers' async connections share (pg_async.py for psycopg,
oracle_async.py for python-oracledb): a driver's AsyncCursor and AsyncConnection seen as their
synchronous counterparts, each coroutine awaited through the wait seam (waits.py), so that
the back-ends' code and the core run unchanged in a call of pooldbapi.aio."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from operator import attrgetter
from typing import Any, Self

from ..waits import active, await_only, run_ready

__all__ = ["Connection", "Cursor", "call", "entered", "forwarded"]


def forwarded(name: str, settable: bool = False) -> Any:
    """An attribute of the adapter that is the driver object's own (no round trip):
    read, and where settable set, on the driver's cursor or connection. (Read by an
    attrgetter: no Python frame, where the back-end reads one on every statement.)"""
    def set_(self: Any, value: Any) -> None:
        setattr(self.raw, name, value)
    return property(attrgetter(f"raw.{name}"), set_ if settable else None,
                    doc=f"The driver's {name}.")


def call(value: Any) -> Any:
    """Await a driver's coroutine in a call of pooldbapi.aio; outside one (the reaper closing
    an idle session, the interpreter's exit) only one that needs no I/O can run (NotInLoop
    otherwise). A value that is no coroutine (a driver's synchronous close) is returned."""
    if not hasattr(value, "send"):
        return value
    if active():
        return await_only(value)
    return run_ready(value)


@contextmanager
def entered(manager: AbstractAsyncContextManager[Any]) -> Iterator[Any]:
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
    """A driver's AsyncCursor as its synchronous counterpart: what the back-ends and the core
    call on every driver's cursor."""

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
    def rowcount(self) -> int:
        return int(self.raw.rowcount)

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Self:
        # (the core passes no keywords: no dict built and unpacked for each statement)
        await_only(self.raw.execute(query, params, **kwargs) if kwargs else
                   self.raw.execute(query, params))
        return self

    # the driver's coroutines themselves, for a caller that awaits them (pooldbapi.aio's
    # task, for a statement at hand: Calls.at_hand)
    def execute_coroutine(self, query: Any, params: Any = None) -> Any:
        return self.raw.execute(query, params) if params is not None else \
            self.raw.execute(query)

    def fetchall_coroutine(self) -> Any:
        return self.raw.fetchall()

    def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
        await_only(self.raw.executemany(query, params_seq, **kwargs))

    def nextset(self) -> bool | None:
        return self.raw.nextset()  # type: ignore[no-any-return]  # (a plain method: no I/O)

    def fetchone(self) -> Any:
        return await_only(self.raw.fetchone())

    def fetchmany(self, size: int | None = None) -> list[Any]:
        rows: list[Any] = await_only(self.raw.fetchmany(size))
        return rows

    def fetchall(self) -> list[Any]:
        rows: list[Any] = await_only(self.raw.fetchall())
        return rows

    def close(self) -> None:
        call(self.raw.close())  # (psycopg's is a coroutine, python-oracledb's is not)


class Connection:
    """A driver's AsyncConnection as its synchronous counterpart: the transaction and the
    two-phase calls PEP 249 names, the same on every driver with an async API."""

    __slots__ = ("raw",)

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def commit(self) -> None:
        await_only(self.raw.commit())

    def rollback(self) -> None:
        await_only(self.raw.rollback())

    # two-phase commit
    def xid(self, format_id: int, gtrid: str, bqual: str) -> Any:
        return self.raw.xid(format_id, gtrid, bqual)

    def tpc_begin(self, xid: Any) -> None:
        await_only(self.raw.tpc_begin(xid))

    def tpc_prepare(self) -> Any:
        return await_only(self.raw.tpc_prepare())

    def tpc_commit(self, xid: Any = None) -> None:
        await_only(self.raw.tpc_commit(xid))

    def tpc_rollback(self, xid: Any = None) -> None:
        await_only(self.raw.tpc_rollback(xid))

    def tpc_recover(self) -> list[Any]:
        found: list[Any] = await_only(self.raw.tpc_recover())
        return found
