"""AsyncConnection: the asyncio shell of a pooldbapi Connection (the same routing, transaction
and errors; each call awaited)."""
from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from .. import errors
from ..connection import Connection
from ..transaction import Xid
from .calls import Calls

if TYPE_CHECKING:
    from .cursor import AsyncCursor


class AsyncConnection(errors.ConnectionErrors):
    """A pooldbapi connection for asyncio: `conn = await pooldbapi.aio.connect(...)`."""

    def __init__(self, sync: Connection) -> None:
        self.sync = sync     # the shared core's connection, which every call goes through
        self.calls = Calls(sync)

    def __repr__(self) -> str:
        state = "closed" if self.sync.closed else "open"
        return f"<pooldbapi.aio.AsyncConnection {state} containers={sorted(self.sync.specs)}>"

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return self.sync.closed

    @property
    def autocommit(self) -> bool:
        """Whether each statement commits on its own; change it with set_autocommit()."""
        return self.sync.autocommit

    async def set_autocommit(self, value: bool) -> None:
        """Turn autocommit on or off (outside a transaction), as psycopg's AsyncConnection."""
        await self.calls.run(setattr, (self.sync, "autocommit", value))

    @property
    def default(self) -> tuple[str, ...] | None:
        """The list an occurrence without a suffix uses."""
        return self.sync.default

    @property
    def progress(self) -> Callable[[str, int], None] | None:
        """Told (alias, rows) as rows are written, from worker threads."""
        return self.calls.progress

    @progress.setter
    def progress(self, value: Callable[[str, int], None] | None) -> None:
        self.calls.progress = value

    def cursor(self, *, stream: bool = False) -> AsyncCursor:
        """Return a new cursor; stream=True reads a select's rows as they are fetched."""
        from .cursor import AsyncCursor
        self.sync.check_open()
        return AsyncCursor(self, stream)

    async def execute(self, operation: str, parameters: Any = None) -> AsyncCursor:
        """Create a cursor, execute the statement on it and return it."""
        return await self.cursor().execute(operation, parameters)

    async def commit(self) -> None:
        """Commit every container the transaction touched."""
        await self.calls.run(Connection.commit, (self.sync,))

    async def rollback(self) -> None:
        """Roll back every container the transaction touched."""
        await self.calls.run(Connection.rollback, (self.sync,))

    async def savepoint(self, name: str) -> None:
        """Set a savepoint on every container of the open transaction (and each it touches
        later)."""
        await self.calls.run(Connection.savepoint, (self.sync, name))

    async def rollback_to_savepoint(self, name: str) -> None:
        """Undo on every container what the transaction did since the savepoint."""
        await self.calls.run(Connection.rollback_to_savepoint, (self.sync, name))

    async def release_savepoint(self, name: str) -> None:
        """Forget the savepoint and those set after it, keeping what was done since."""
        await self.calls.run(Connection.release_savepoint, (self.sync, name))

    async def close(self) -> None:
        """Roll back what is open and give every physical connection back; idempotent."""
        if not self.sync.closed:
            await self.calls.run(Connection.close, (self.sync,))
        self.calls.close()

    # -- two-phase commit -----------------------------------------------------------------
    def xid(self, format_id: int, gtrid: str, bqual: str) -> Xid:
        """Return a transaction id for tpc_begin()."""
        return Xid(format_id, gtrid, bqual)

    async def tpc_begin(self, xid: Xid | tuple[int, str, str]) -> None:
        """Begin a two-phase transaction over every container it will touch."""
        await self.calls.run(Connection.tpc_begin, (self.sync, xid))

    async def tpc_prepare(self) -> None:
        """Prepare every container the transaction touched."""
        await self.calls.run(Connection.tpc_prepare, (self.sync,))

    async def tpc_commit(self, xid: Xid | tuple[int, str, str] | None = None) -> None:
        """Commit the two-phase transaction, or (with xid) a prepared one being recovered."""
        await self.calls.run(Connection.tpc_commit, (self.sync, xid))

    async def tpc_rollback(self, xid: Xid | tuple[int, str, str] | None = None) -> None:
        """Roll back the two-phase transaction, or (with xid) a prepared one being recovered."""
        await self.calls.run(Connection.tpc_rollback, (self.sync, xid))

    async def tpc_recover(self) -> list[Xid]:
        """Return the xids of prepared pooldbapi transactions on the configured containers."""
        return await self.calls.run(Connection.tpc_recover, (self.sync,))

    async def __aenter__(self) -> Self:
        self.sync.check_open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            if not self.sync.closed:
                if exc_type is None:
                    await self.commit()
                else:
                    await self.rollback()
        finally:
            await self.close()
