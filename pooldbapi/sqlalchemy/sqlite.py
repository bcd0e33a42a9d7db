"""sqlite+pooldbapi: SQLite's compiler and types; `sqlite+pooldbapi:///path/to.db` is one
container, connect_args (or ?settings=file.toml) a pool of them."""
from __future__ import annotations

import sqlite3
import types
from typing import Any

from sqlalchemy.dialects.sqlite.base import SQLiteDialect
from sqlalchemy.engine import URL

from .base import PooldbapiDialect, dbapi_module

# SQLite's own types, as over pysqlite: pooldbapi's SQLite back-end returns what sqlite3 returns
# (text for dates, floats for NUMERIC, integers for BOOLEAN, with the container's detect_types),
# and SQLAlchemy's result processors do the rest.


class SQLiteDialect_pooldbapi(PooldbapiDialect, SQLiteDialect):
    """SQLite over pooldbapi."""

    url_driver = "sqlite"
    supports_statement_cache = True  # SQLAlchemy reads it from each class itself
    transaction_level = "SERIALIZABLE"  # (as pysqlite's dialect reports it)

    @classmethod
    def import_dbapi(cls) -> types.ModuleType:
        return dbapi_module(sqlite_version_info=sqlite3.sqlite_version_info,
                            sqlite_version=sqlite3.sqlite_version)

    def url_container(self, url: URL) -> dict[str, str]:
        return {"database": url.database or ":memory:"}

    def _get_server_version_info(self, connection: Any) -> tuple[int, ...]:
        return tuple(sqlite3.sqlite_version_info)


dialect = SQLiteDialect_pooldbapi
