"""pooldbapi.aio: the asyncio API over the same core as pooldbapi (parsing, routing, plans,
transactions, results and errors are the synchronous API's; each call is awaited)."""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .. import connect as _connect
from ..errors import (
    DatabaseError,
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    PartialCommitError,
    ProgrammingError,
    Warning,
)
from .calls import in_worker
from .connection import AsyncConnection
from .cursor import AsyncCursor

__all__ = [
    "AsyncConnection", "AsyncCursor", "DataError", "DatabaseError", "Error", "IntegrityError",
    "InterfaceError", "InternalError", "NotSupportedError", "OperationalError",
    "PartialCommitError", "ProgrammingError", "Warning", "connect",
]


async def connect(containers: Mapping[str, str | Mapping[str, Any]] | None = None, *,
                  settings: str | os.PathLike[str] | None = None,
                  default: str | list[str] | tuple[str, ...] | None = None,
                  seed: object = None, broadcast_ddl: bool | None = None,
                  strategy: str | None = None, affinity: str | None = None,
                  autocommit: bool | None = None, two_phase: bool | None = None,
                  shared_state: str | None = None, dialect: str | None = None,
                  read_your_writes: bool | None = None) -> AsyncConnection:
    """Open a pooldbapi connection for asyncio; the arguments are pooldbapi.connect()'s."""
    sync = await in_worker(lambda: _connect(
        containers, settings=settings, default=default, seed=seed,
        broadcast_ddl=broadcast_ddl, strategy=strategy, affinity=affinity,
        autocommit=autocommit, two_phase=two_phase, shared_state=shared_state,
        dialect=dialect, read_your_writes=read_your_writes))
    return AsyncConnection(sync)
