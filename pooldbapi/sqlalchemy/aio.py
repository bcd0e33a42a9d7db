"""sqlite+pooldbapi_async, postgresql+pooldbapi_async, oracle+pooldbapi_async: the pooldbapi
dialects for create_async_engine, over pooldbapi.aio through SQLAlchemy's own asyncio adapters
(the dialects are the synchronous ones; only the DB-API module is the adapted one)."""
from __future__ import annotations

import types
from typing import Any

from sqlalchemy.connectors.asyncio import (
    AsyncAdapt_dbapi_connection,
    AsyncAdapt_dbapi_cursor,
    AsyncAdapt_dbapi_module,
    AsyncAdapt_dbapi_ss_cursor,
)
from sqlalchemy.dialects.sqlite.base import SQLiteExecutionContext
from sqlalchemy.util.concurrency import await_

import pooldbapi.aio

from .oracle import OracleDialect_pooldbapi
from .postgresql import PGDialect_pooldbapi
from .sqlite import SQLiteDialect_pooldbapi


class _Default:
    """The container list a statement without '@' uses, set per statement by the dialect
    (the pooldbapi_containers option) on the adapted cursor."""

    __slots__ = ()
    _cursor: Any

    @property
    def default(self) -> tuple[str, ...] | None:
        return self._cursor.default  # type: ignore[no-any-return]

    @default.setter
    def default(self, value: Any) -> None:
        self._cursor.default = value


class _Cursor(_Default, AsyncAdapt_dbapi_cursor):
    __slots__ = ()


class _StreamCursor(_Default, AsyncAdapt_dbapi_ss_cursor):
    __slots__ = ()

    def _make_new_cursor(self, connection: Any) -> Any:
        return connection.cursor(stream=True)


class _Connection(AsyncAdapt_dbapi_connection):
    """An AsyncConnection as SQLAlchemy's synchronous dialect code sees it."""

    _cursor_cls = _Cursor
    _ss_cursor_cls = _StreamCursor
    __slots__ = ()

    def cursor(self, server_side: bool = False, stream: bool = False) -> Any:
        return super().cursor(server_side or stream)

    @property
    def autocommit(self) -> bool:
        return bool(self._connection.autocommit)

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        await_(self._connection.set_autocommit(value))

    @property
    def default(self) -> tuple[str, ...] | None:
        return self._connection.default  # type: ignore[no-any-return]

    @property
    def specs(self) -> Any:
        return self._connection.sync.specs

    @property
    def closed(self) -> bool:
        return bool(self._connection.closed)

    def savepoint(self, name: str) -> None:
        await_(self._connection.savepoint(name))

    def rollback_to_savepoint(self, name: str) -> None:
        await_(self._connection.rollback_to_savepoint(name))

    def release_savepoint(self, name: str) -> None:
        await_(self._connection.release_savepoint(name))


class _Module(AsyncAdapt_dbapi_module):
    """pooldbapi.aio as SQLAlchemy's asyncio connector wants a DB-API module: the module
    attributes (exceptions, paramstyle, type objects) of the synchronous dialect's."""

    def __init__(self, names: types.ModuleType) -> None:
        super().__init__(pooldbapi.aio, dbapi_module=names)
        self.__dict__.update({k: v for k, v in vars(names).items()
                              if not k.startswith("__") and k != "connect"})

    def connect(self, *args: Any, **kwargs: Any) -> _Connection:
        connection: Any = await_(pooldbapi.aio.connect(*args, **kwargs))
        return _Connection(self, connection)


class _Async:
    """What makes a pooldbapi dialect the async one: the adapted module."""

    driver = "pooldbapi_async"
    is_async = True

    @classmethod
    def import_dbapi(cls) -> Any:
        return _Module(super().import_dbapi())  # type: ignore[misc]


class _SQLiteExecutionContext(SQLiteExecutionContext):
    def create_server_side_cursor(self) -> Any:
        # AsyncConnection.stream(): pooldbapi's streaming cursor (SQLite steps through its
        # result), as the aiosqlite dialect streams
        return self._dbapi_connection.cursor(server_side=True)


class SQLiteDialect_pooldbapi_async(_Async, SQLiteDialect_pooldbapi):
    """SQLite over pooldbapi.aio, for create_async_engine."""

    supports_statement_cache = True  # SQLAlchemy reads it from each class itself
    supports_server_side_cursors = True
    execution_ctx_cls = _SQLiteExecutionContext


class PGDialect_pooldbapi_async(_Async, PGDialect_pooldbapi):
    """PostgreSQL over pooldbapi.aio, for create_async_engine."""

    supports_statement_cache = True


class OracleDialect_pooldbapi_async(_Async, OracleDialect_pooldbapi):
    """Oracle over pooldbapi.aio (python-oracledb's async thin mode), for
    create_async_engine."""

    supports_statement_cache = True
