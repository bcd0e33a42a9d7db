"""AsyncCursor: the asyncio shell of a pooldbapi Cursor (fetches from memory where the rows
are in memory, from a worker thread where they are streamed)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from ..backends.base import Description
from ..cursor import Cursor

if TYPE_CHECKING:
    from .connection import AsyncConnection


class AsyncCursor:
    """A pooldbapi cursor for asyncio."""

    def __init__(self, connection: AsyncConnection, stream: bool = False) -> None:
        self.connection = connection
        self.sync = Cursor(connection.sync, stream=stream)
        self.stream = stream

    def __repr__(self) -> str:
        return f"<pooldbapi.aio.AsyncCursor {'closed' if self.sync.closed else 'open'}>"

    # -- state (the core cursor's, read without a round trip) -----------------------------
    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return self.sync.closed

    @property
    def arraysize(self) -> int:
        """Rows fetchmany() returns by default."""
        return self.sync.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self.sync.arraysize = value

    @property
    def default(self) -> tuple[str, ...] | None:
        """This cursor's container list for statements without '@' (None: the connection's)."""
        return self.sync.default

    @default.setter
    def default(self, value: str | Sequence[str] | None) -> None:
        self.sync.default = value

    @property
    def description(self) -> Description | None:
        """Seven items per result column, from the container that ran; None without rows."""
        return self.sync.description

    @property
    def rowcount(self) -> int:
        """Rows produced or affected by the last call, summed over containers; -1 if unknown."""
        return self.sync.rowcount

    @property
    def lastrowid(self) -> Any:
        """The id of the one row the last statement wrote on one container, else None."""
        return self.sync.lastrowid

    @property
    def rownumber(self) -> int | None:
        """The 0-based index of the next row in the result, None without a result."""
        return self.sync.rownumber

    @property
    def containers(self) -> dict[str, int]:
        """Alias -> executions, rows or pages that ran there for the last call."""
        return self.sync.containers

    # -- execution ------------------------------------------------------------------------
    async def execute(self, operation: str, parameters: Any = None) -> Self:
        """Run a statement; parameters (a sequence or a mapping) bind its placeholders."""
        sync = self.sync
        calls = self.connection.calls
        if not await calls.at_hand(sync, operation, parameters):  # (else ran from here)
            await calls.run(Cursor.execute, (sync, operation, parameters), sync)
        return self

    async def executemany(self, operation: str, seq_of_parameters: Iterable[Any]) -> Self:
        """Run a write for each parameter set, each set on the next container of its list."""
        sync = self.sync
        await self.connection.calls.run(Cursor.executemany, (sync, operation, seq_of_parameters),
                                        sync)
        return self

    async def explain(self, operation: str, parameters: Any = None) -> Self:
        """Plan a select without running it (see Cursor.explain)."""
        await self.connection.calls.run(Cursor.explain, (self.sync, operation, parameters))
        return self

    async def callproc(self, procname: str, parameters: Sequence[Any] = ()) -> Sequence[Any]:
        """Call a procedure or function (see Cursor.callproc)."""
        sync = self.sync
        return await self.connection.calls.run(Cursor.callproc, (sync, procname, parameters),
                                               sync)

    def nextset(self) -> bool | None:
        """Not supported: every call produces at most one result set."""
        return self.sync.nextset()

    def setinputsizes(self, sizes: Any) -> None:
        """Accepted and ignored, as PEP 249 allows."""
        self.sync.setinputsizes(sizes)

    def setoutputsize(self, size: int, column: int | None = None) -> None:
        """Accepted and ignored, as PEP 249 allows."""
        self.sync.setoutputsize(size, column)

    # -- fetching: rows in memory are taken at once; a stream reads from its session ------
    async def fetchone(self) -> Sequence[Any] | None:
        """Return the next row, or None when the result is exhausted."""
        if not self.stream:
            return self.sync.fetchone()
        return await self.connection.calls.run(Cursor.fetchone, (self.sync,))

    async def fetchmany(self, size: int | None = None) -> list[Sequence[Any]]:
        """Return up to size rows (arraysize by default)."""
        if not self.stream:
            return self.sync.fetchmany(size)
        return await self.connection.calls.run(Cursor.fetchmany, (self.sync, size))

    async def fetchall(self) -> list[Sequence[Any]]:
        """Return the remaining rows."""
        if not self.stream:
            return self.sync.fetchall()
        return await self.connection.calls.run(Cursor.fetchall, (self.sync,))

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Sequence[Any]:
        row = await self.fetchone()
        if row is None:
            raise StopAsyncIteration
        return row

    async def close(self) -> None:
        """Close the cursor (and a streamed result still open); idempotent."""
        await self.connection.calls.run(Cursor.close, (self.sync,))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()
