"""oracle+pooldbapi: Oracle's compiler and types over python-oracledb through pooldbapi;
`oracle+pooldbapi://user:pw@host:1521/?service_name=S` is one container, connect_args (or
?settings=file.toml) a pool of them."""
from __future__ import annotations

from sqlalchemy.dialects.oracle.base import OracleDialect
from sqlalchemy.engine import URL

from .base import PooldbapiDialect


class OracleDialect_pooldbapi(PooldbapiDialect, OracleDialect):
    """Oracle over pooldbapi."""

    url_driver = "oracle"
    url_keys = ("service_name",)
    supports_statement_cache = True  # SQLAlchemy reads it from each class itself

    def url_container(self, url: URL) -> dict[str, str]:
        service = url.query.get("service_name") or url.database
        dsn = f"{url.host}:{url.port or 1521}/{service}" if url.host else str(url.database)
        keys = {"user": url.username, "password": url.password, "dsn": dsn}
        return {k: str(v) for k, v in keys.items() if v is not None}


dialect = OracleDialect_pooldbapi
