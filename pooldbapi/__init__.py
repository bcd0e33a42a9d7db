"""pooldbapi: a PEP 249 driver that spreads statements over pools of data containers."""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from . import telemetry
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
from .settings import load_settings, with_shared_state

apilevel = "2.0"
threadsafety = 2
paramstyle = "qmark"


def connect(containers: Mapping[str, str | Mapping[str, Any]] | None = None, *,
            settings: str | os.PathLike[str] | None = None,
            default: str | list[str] | tuple[str, ...] | None = None,
            seed: object = None, broadcast_ddl: bool | None = None,
            strategy: str | None = None, affinity: str | None = None,
            autocommit: bool | None = None, two_phase: bool | None = None,
            shared_state: str | None = None, dialect: str | None = None,
            read_your_writes: bool | None = None) -> Connection:
    """Open a pooldbapi connection over the given containers (or a settings file).

    An option left at None takes the settings file's top-level key of the same name, else its
    default: broadcast_ddl=False, strategy="round-robin", autocommit=False, two_phase=False.
    shared_state="redis://..." keeps every container's limits and health in that store (where
    a container does not name one of its own). dialect: the SQL dialect statements are written
    in (sqlglot's names: "postgres", "oracle", "sqlite", ...); the parts of a federated select
    that run locally are translated from it. None: the containers' own where they agree.
    read_your_writes=True: reads after this connection's own commit on a primary see it on its
    standbys (replica-of), or go to the primary."""
    telemetry.look()  # an OpenTelemetry provider the application set meanwhile
    resolved = load_settings(containers, settings, default)
    from_file = resolved.options.pop("shared_state", None)  # not a Connection argument
    store = shared_state or from_file
    if store:
        resolved = with_shared_state(resolved, store)
    given = {"seed": seed, "broadcast_ddl": broadcast_ddl, "strategy": strategy,
             "affinity": affinity, "autocommit": autocommit, "two_phase": two_phase,
             "dialect": dialect, "read_your_writes": read_your_writes}
    chosen = {**_CONNECT_DEFAULTS, **resolved.options,
              **{k: v for k, v in given.items() if v is not None}}
    return Connection(resolved, **chosen)


_CONNECT_DEFAULTS: dict[str, Any] = {"seed": None, "broadcast_ddl": False,
                                     "strategy": "round-robin", "affinity": None,
                                     "autocommit": False, "two_phase": False,
                                     "dialect": None, "read_your_writes": False}


__all__ = [
    "BINARY",
    "DATETIME",
    "NUMBER",
    "ROWID",
    "STRING",
    "Binary",
    "Connection",
    "Cursor",
    "DataError",
    "DatabaseError",
    "Date",
    "DateFromTicks",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotSupportedError",
    "OperationalError",
    "PartialCommitError",
    "ProgrammingError",
    "Time",
    "TimeFromTicks",
    "Timestamp",
    "TimestampFromTicks",
    "Warning",
    "apilevel",
    "close_all",
    "connect",
    "health",
    "paramstyle",
    "pool_stats",
    "threadsafety",
]
