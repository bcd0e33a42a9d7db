"""sqlite+pooldbapi: SQLite's compiler and types; `sqlite+pooldbapi:///path/to.db` is one
container, connect_args (or ?settings=file.toml) a pool of them."""
from __future__ import annotations

import datetime
import decimal
import sqlite3
import types
from collections.abc import Callable
from typing import Any

from sqlalchemy import types as sqltypes
from sqlalchemy.dialects.sqlite import base as sqlite_base
from sqlalchemy.dialects.sqlite.base import SQLiteDialect
from sqlalchemy.engine import URL

from .base import PooldbapiDialect, dbapi_module

# pooldbapi's SQLite back-end converts by declared type (DATE, TIMESTAMP, NUMERIC, ...), where
# pysqlite hands SQLAlchemy text and floats: what arrives converted is kept as it is.


def _converted_or(parse: Callable[[Any], Any] | None, kind: type) -> Callable[[Any], Any] | None:
    if parse is None:
        return None
    return lambda value: value if value is None or isinstance(value, kind) else parse(value)


class DATE(sqlite_base.DATE):
    def result_processor(self, dialect: Any, coltype: Any) -> Callable[[Any], Any] | None:
        return _converted_or(super().result_processor(dialect, coltype), datetime.date)


class DATETIME(sqlite_base.DATETIME):
    def result_processor(self, dialect: Any, coltype: Any) -> Callable[[Any], Any] | None:
        parse = super().result_processor(dialect, coltype)
        if parse is None:
            return None

        def process(value: Any) -> Any:
            if isinstance(value, datetime.datetime):
                return value
            if isinstance(value, datetime.date):  # a date-only text read as DATE
                return datetime.datetime(value.year, value.month, value.day)
            return parse(value)
        return process


class TIME(sqlite_base.TIME):
    def result_processor(self, dialect: Any, coltype: Any) -> Callable[[Any], Any] | None:
        parse = super().result_processor(dialect, coltype)  # type: ignore[no-untyped-call]
        return _converted_or(parse, datetime.time)


class _Decimals:
    """Numeric and Float: a Decimal read from a NUMERIC column becomes a float where the type
    asks for floats."""

    asdecimal: bool

    def result_processor(self, dialect: Any, coltype: Any) -> Callable[[Any], Any] | None:
        parse = super().result_processor(dialect, coltype)  # type: ignore[misc]
        if self.asdecimal:
            return parse  # type: ignore[no-any-return]
        return lambda value: float(value) if isinstance(value, decimal.Decimal) else value


class NUMERIC(_Decimals, sqltypes.Numeric):  # type: ignore[type-arg]
    pass


class FLOAT(_Decimals, sqltypes.Float):  # type: ignore[type-arg]
    pass


class SQLiteDialect_pooldbapi(PooldbapiDialect, SQLiteDialect):
    """SQLite over pooldbapi."""

    url_driver = "sqlite"
    supports_statement_cache = True  # SQLAlchemy reads it from each class itself
    colspecs = {**SQLiteDialect.colspecs, sqltypes.Date: DATE,  # noqa: RUF012
                sqltypes.DateTime: DATETIME,
                sqltypes.Time: TIME, sqltypes.Numeric: NUMERIC, sqltypes.Float: FLOAT}

    @classmethod
    def import_dbapi(cls) -> types.ModuleType:
        return dbapi_module(sqlite_version_info=sqlite3.sqlite_version_info,
                            sqlite_version=sqlite3.sqlite_version)

    def url_container(self, url: URL) -> dict[str, str]:
        return {"database": url.database or ":memory:"}

    def _get_server_version_info(self, connection: Any) -> tuple[int, ...]:
        return tuple(sqlite3.sqlite_version_info)


dialect = SQLiteDialect_pooldbapi
