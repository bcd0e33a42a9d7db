"""What the pooldbapi dialects share: the connect arguments from the URL and connect_args,
no SQLAlchemy pooling (pooldbapi pools physical connections), the container list from an
execution option, and ping and isolation level through pooldbapi."""
from __future__ import annotations

import types
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.engine import URL
from sqlalchemy.engine.interfaces import DBAPIConnection, IsolationLevel
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.compiler import InsertmanyvaluesSentinelOpts

import pooldbapi

CONTAINERS_OPTION = "pooldbapi_containers"
"""Execution option: the container list ('{a,b}') for statements without '@' suffixes."""

ALIAS = "db"
"""The alias of the one container a URL naming one database gives."""


def dbapi_module(**extra: Any) -> types.ModuleType:
    """pooldbapi as the DB-API module, with what a native dialect reads beyond PEP 249."""
    module = types.ModuleType("pooldbapi")
    module.__dict__.update({name: getattr(pooldbapi, name) for name in pooldbapi.__all__})
    module.__dict__.update(extra)
    return module


class PooldbapiDialect:
    """Mixed into a native dialect: what makes it run over pooldbapi."""

    driver = "pooldbapi"
    supports_statement_cache = True
    # executemany with RETURNING becomes multi-row VALUES ... RETURNING (SQLAlchemy's
    # insertmanyvalues): pooldbapi spreads its rows over the list and returns their RETURNING
    # rows in the order of the rows
    use_insertmanyvalues = True
    # no implicit sentinel: a batch as INSERT ... SELECT would land whole on one container, and
    # ordering returned rows by a generated key assumes one sequence, where each container has
    # its own. Where the order of the objects matters (the ORM), rows go one by one.
    insertmanyvalues_implicit_sentinel = InsertmanyvaluesSentinelOpts.NOT_SUPPORTED

    url_driver: str = ""
    url_keys: tuple[str, ...] = ()  # URL query keys that url_container consumes
    default_paramstyle = "qmark"

    @classmethod
    def import_dbapi(cls) -> types.ModuleType:
        return dbapi_module()

    @classmethod
    def get_pool_class(cls, url: URL) -> type[NullPool]:
        return NullPool  # pooldbapi keeps the physical connections

    def url_container(self, url: URL) -> dict[str, str]:
        """The pooldbapi connection string keys of the one database a URL names."""
        raise NotImplementedError

    def create_connect_args(self, url: URL) -> tuple[list[Any], dict[str, Any]]:
        query = dict(url.query)
        kwargs: dict[str, Any] = {}
        settings = query.pop("settings", None)
        if settings is not None:
            kwargs["settings"] = settings
        elif url.host or url.database:
            keys = {"driver": self.url_driver, **self.url_container(url),
                    **{k: str(v) for k, v in query.items() if k not in self.url_keys}}
            kwargs["containers"] = {ALIAS: keys}
        return [], kwargs

    def do_ping(self, dbapi_connection: Any) -> bool:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("select 1")
            cursor.fetchall()
        finally:
            cursor.close()
        return True

    def is_disconnect(self, e: Exception, connection: Any, cursor: Any) -> bool:
        # pooldbapi says it on the error (the container's session was lost or never opened);
        # pooldbapi's pool has already let the physical connection go
        if getattr(e, "connection_failure", False):
            return True
        return bool(connection is not None and getattr(connection, "closed", False))

    def _with_containers(self, cursor: Any, context: Any, run: Callable[[], Any]) -> Any:
        option = context.execution_options.get(CONTAINERS_OPTION) if context else None
        if option is None:
            return run()
        cursor.default = option
        try:
            return run()
        finally:
            cursor.default = None

    def do_execute(self, cursor: Any, statement: str, parameters: Any, context: Any = None
                   ) -> None:
        self._with_containers(cursor, context, lambda: cursor.execute(statement, parameters))

    def do_execute_no_params(self, cursor: Any, statement: str, context: Any = None) -> None:
        self._with_containers(cursor, context, lambda: cursor.execute(statement))

    def do_executemany(self, cursor: Any, statement: str, parameters: Any,
                       context: Any = None) -> None:
        self._with_containers(cursor, context,
                              lambda: cursor.executemany(statement, parameters))

    def get_isolation_level_values(self, dbapi_conn: DBAPIConnection
                                   ) -> Sequence[IsolationLevel]:
        return ["AUTOCOMMIT", "READ COMMITTED"]

    def set_isolation_level(self, dbapi_connection: DBAPIConnection,
                            level: IsolationLevel) -> None:
        # each container is a session of its own: autocommit is pooldbapi's to set
        dbapi_connection.autocommit = level == "AUTOCOMMIT"

    def get_isolation_level(self, dbapi_connection: DBAPIConnection) -> IsolationLevel:
        return "AUTOCOMMIT" if dbapi_connection.autocommit else "READ COMMITTED"

    def detect_autocommit_setting(self, dbapi_conn: Any) -> bool:
        return bool(dbapi_conn.autocommit)
