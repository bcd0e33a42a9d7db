"""postgresql+pooldbapi: PostgreSQL's compiler and types over psycopg through pooldbapi;
`postgresql+pooldbapi://user:pw@host:5432/db` is one container, connect_args (or
?settings=file.toml) a pool of them."""
from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.engine import URL

from .base import PooldbapiDialect


class PGDialect_pooldbapi(PooldbapiDialect, PGDialect):
    """PostgreSQL over pooldbapi."""

    url_driver = "postgresql"
    supports_statement_cache = True  # SQLAlchemy reads it from each class itself

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
