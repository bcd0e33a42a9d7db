"""postgresql+pooldbapi: PostgreSQL's compiler and types over psycopg through pooldbapi;
`postgresql+pooldbapi://user:pw@host:5432/db` is one container, connect_args (or
?settings=file.toml) a pool of them."""
from __future__ import annotations

import decimal
import types
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy import types as sqltypes
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg, PGExecutionContext_psycopg
from sqlalchemy.engine import URL, processors

from .base import PooldbapiDialect, dbapi_module

_FLOATS = frozenset({"float4", "float8"})


class _Numbers:
    """Numeric and Float as psycopg's dialect reads them, by the type's name: pooldbapi's
    type_code is the PostgreSQL type name (psycopg's is the OID)."""

    asdecimal: bool
    _effective_decimal_return_scale: int | None

    def bind_processor(self, dialect: Any) -> None:
        return None

    def result_processor(self, dialect: Any, coltype: Any) -> Callable[[Any], Any] | None:
        floats = str(coltype) in _FLOATS  # numeric and the integers arrive as Decimal, int
        if self.asdecimal:
            return processors.to_decimal_processor_factory(
                decimal.Decimal, self._effective_decimal_return_scale,  # type: ignore[arg-type]
            ) if floats else None
        return None if floats else processors.to_float


class _ExecutionContext(PGExecutionContext_psycopg):
    def create_server_side_cursor(self) -> Any:
        # stream_results / yield_per: pooldbapi's streaming cursor (a server-side cursor)
        return self._dbapi_connection.cursor(stream=True)


class NUMERIC(_Numbers, sqltypes.Numeric):  # type: ignore[type-arg]
    pass


class FLOAT(_Numbers, sqltypes.Float):  # type: ignore[type-arg]
    pass


class PGDialect_pooldbapi(PooldbapiDialect, PGDialect_psycopg):
    """PostgreSQL over pooldbapi: the psycopg dialect's types and compiler (bind casts, JSON,
    ranges), since pooldbapi hands parameters and rows to psycopg and back unchanged; what it
    does on psycopg's connection object itself (adapter maps, server-side cursors, the hstore
    lookup) is pooldbapi's to do or not done."""

    url_driver = "postgresql"
    supports_statement_cache = True  # SQLAlchemy reads it from each class itself
    execution_ctx_cls = _ExecutionContext
    # the native dialect's sentinel forms: a batch that needs its rows' keys in order (the
    # ORM's flush) is INSERT ... SELECT ... FROM (VALUES ...) ORDER BY a counter, RETURNING
    # the keys sorted by key. Its only occurrence is the target, so the whole batch lands on
    # one container, whose sequence gave keys in the rows' order; the next batch goes to the
    # next container of the list.
    insertmanyvalues_implicit_sentinel = PGDialect_psycopg.insertmanyvalues_implicit_sentinel
    colspecs = {**PGDialect_psycopg.colspecs,  # noqa: RUF012
                sqltypes.Numeric: NUMERIC, sqltypes.Float: FLOAT}

    def __init__(self, use_native_hstore: bool = False, **kwargs: Any) -> None:
        # psycopg's paramstyle, not pooldbapi's module default (qmark): the jsonb comparators
        # (has_key, has_any, has_all) compile to the operators ?, ?| and ?&, which a qmark
        # statement would read as markers. paramstyle= given to create_engine still wins.
        kwargs.setdefault("paramstyle", "pyformat")
        super().__init__(use_native_hstore=use_native_hstore,  # type: ignore[no-untyped-call]
                         **kwargs)

    def on_connect(self) -> Any:
        # not psycopg's notice handler: only the isolation level asked for
        level = self.isolation_level
        if level is None:
            return None
        return lambda conn: self.set_isolation_level(conn, level)  # type: ignore[arg-type]

    @classmethod
    def import_dbapi(cls) -> types.ModuleType:
        # the psycopg dialect reads the driver's adapters (the map it builds is not used:
        # pooldbapi opens the connections) and version
        return dbapi_module(adapters=psycopg.adapters, __version__=psycopg.__version__)

    def url_container(self, url: URL) -> dict[str, str]:
        keys = {"host": url.host, "port": url.port, "user": url.username,
                "password": url.password, "dbname": url.database}
        return {k: str(v) for k, v in keys.items() if v is not None}

    def _get_server_version_info(self, connection: Any) -> tuple[int, ...]:
        # a select runs on one container of the list (a 'show' would need exactly one)
        number = connection.exec_driver_sql(
            "select current_setting('server_version_num')").scalar()
        value = int(number)
        return (value // 10000, value % 10000 // 100 if value < 100000 else value % 10000)


dialect = PGDialect_pooldbapi
