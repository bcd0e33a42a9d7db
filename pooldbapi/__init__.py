"""pooldbapi: a PEP 249 driver that spreads statements over pools of data containers."""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .connection import Connection
from .cursor import Cursor
from .dbapi import (
    BINARY,
    DATETIME,
    NUMBER,
    ROWID,
    STRING,
    Binary,
    Date,
    DateFromTicks,
    Time,
    TimeFromTicks,
    Timestamp,
    TimestampFromTicks,
)
from .errors import (
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
from .health import health
from .pool import close_all, pool_stats
from .settings import load_settings

apilevel = "2.0"
threadsafety = 2
paramstyle = "qmark"


def connect(containers: Mapping[str, str | Mapping[str, Any]] | None = None, *,
            settings: str | os.PathLike[str] | None = None,
            default: str | list[str] | tuple[str, ...] | None = None,
            seed: object = None, broadcast_ddl: bool = False, strategy: str = "round-robin",
            affinity: str | None = None, autocommit: bool = False,
            two_phase: bool = False) -> Connection:
    """Open a pooldbapi connection over the given containers (or a settings file)."""
    return Connection(load_settings(containers, settings, default), seed=seed,
                      broadcast_ddl=broadcast_ddl, strategy=strategy, affinity=affinity,
                      autocommit=autocommit, two_phase=two_phase)


__all__ = [
    "BINARY", "DATETIME", "NUMBER", "ROWID", "STRING", "Binary", "Connection", "Cursor",
    "DataError", "DatabaseError", "Date", "DateFromTicks", "Error", "IntegrityError",
    "InterfaceError", "InternalError", "NotSupportedError", "OperationalError",
    "PartialCommitError", "ProgrammingError", "Time", "TimeFromTicks", "Timestamp",
    "TimestampFromTicks", "Warning", "apilevel", "close_all", "connect", "paramstyle",
    "health", "pool_stats", "threadsafety",
]
