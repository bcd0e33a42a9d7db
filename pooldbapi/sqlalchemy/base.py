"""What the pooldbapi dialects share: the connect arguments from the URL and connect_args,
no SQLAlchemy pooling (pooldbapi pools physical connections), the container list from an
execution option, and ping and isolation level through pooldbapi."""
from __future__ import annotations

import types
from collections.abc import Callable, ItemsView, Iterator, Sequence
from typing import Any

from sqlalchemy.engine import URL
from sqlalchemy.engine.interfaces import DBAPIConnection, IsolationLevel
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.compiler import InsertmanyvaluesSentinelOpts

import pooldbapi
from pooldbapi.settings import parse_alias_list
from pooldbapi.sql.styles import PERCENT_STYLES

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


SCHEMA_QUESTIONS = (
    "has_table", "has_multi_table", "has_index", "has_sequence", "has_schema", "get_schema_names",
    "get_table_names", "get_temp_table_names", "get_view_names", "get_temp_view_names",
    "get_materialized_view_names", "get_sequence_names", "get_view_definition", "get_columns", "get_pk_constraint",
    "get_foreign_keys", "get_indexes", "get_unique_constraints", "get_check_constraints",
    "get_table_comment", "get_table_options", "get_multi_columns", "get_multi_pk_constraint",
    "get_multi_foreign_keys", "get_multi_indexes", "get_multi_unique_constraints",
    "get_multi_check_constraints", "get_multi_table_comment", "get_multi_table_options",
)
"""The dialect's schema questions (create_all's and drop_all's checks, pandas' if_exists, the
Inspector): over a list, each is asked of every distinct container."""

_KEY_RANGE = frozenset({"start", "increment"})  # pooldbapi gives each container its own


def _comparable(value: Any) -> Any:
    """A form of a reflection answer that compares by value (SQLAlchemy's types compare by
    identity); an identity column's start and increment are left out, since broadcast DDL gives
    each container of a list its own residue class of keys."""
    if isinstance(value, dict):
        return tuple(sorted((str(k), _comparable(v)) for k, v in value.items()
                            if not (k in _KEY_RANGE and "always" in value)))
    if isinstance(value, list | tuple):
        return tuple(_comparable(v) for v in value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def _short(name: str, value: Any) -> str:
    if name == "has_multi_table":  # ((schema, table), bool) pairs: by table name
        value = {table if schema is None else f"{schema}.{table}": there
                 for (schema, table), there in value}
    text = repr(value)
    return text if len(text) <= 300 else text[:297] + "..."


def _asking_each(name: str) -> Callable[..., Any]:
    def question(self: PooldbapiDialect, connection: Any, *args: Any, **kw: Any) -> Any:
        native = getattr(super(PooldbapiDialect, self), name)
        aliases = self.distinct_containers(connection)
        if len(aliases) <= 1:
            return native(connection, *args, **kw)
        cache = kw.pop("info_cache", None)
        answers: dict[str, Any] = {}
        saved = connection.get_execution_options().get(CONTAINERS_OPTION)
        try:
            for alias in aliases:
                connection.execution_options(**{CONTAINERS_OPTION: alias})
                own = None if cache is None else cache.setdefault(("pooldbapi", alias), {})
                answer = native(connection, *args, info_cache=own, **kw)
                answers[alias] = list(answer) if isinstance(answer, Iterator | ItemsView) \
                    else answer
        finally:
            connection.execution_options(**{CONTAINERS_OPTION: saved})
        first, *others = aliases
        if all(_comparable(answers[a]) == _comparable(answers[first]) for a in others):
            return answers[first]
        what = ", ".join(repr(a) for a in args)
        raise pooldbapi.ProgrammingError(
            f"{name}({what}) over {{{','.join(aliases)}}}: the containers disagree ("
            + "; ".join(f"{a}: {_short(name, answers[a])}" for a in aliases)
            + "): make their schemas agree, or name one container with the execution option"
              f" {CONTAINERS_OPTION!r}")
    question.__name__ = name
    question.__doc__ = f"The native {name}, asked of every distinct container of the list."
    return question


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
    paramstyle: str
    url_keys: tuple[str, ...] = ()  # URL query keys that url_container consumes
    default_paramstyle = "qmark"

    @classmethod
    def import_dbapi(cls) -> types.ModuleType:
        return dbapi_module()

    @classmethod
    def get_pool_class(cls, url: URL) -> type[NullPool]:
        return NullPool  # pooldbapi keeps the physical connections

    @classmethod
    def get_async_dialect_cls(cls, url: URL) -> type[Any]:
        # not the native dialect's async one: it would connect with its own driver, around
        # pooldbapi and its containers
        if getattr(cls, "is_async", False):
            return cls
        raise pooldbapi.InterfaceError(
            f"{url.get_backend_name()}+pooldbapi is synchronous: create_async_engine takes"
            f" {url.get_backend_name()}+pooldbapi_async")

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
        if not parameters and self.paramstyle in PERCENT_STYLES:
            # a percent paramstyle chosen for the engine: SQLAlchemy writes a literal % as %%
            # and, as psycopg does with an empty parameter set, %% means %; pooldbapi, given no
            # placeholder to tell the style by, would send %% as written
            statement, parameters = statement.replace("%%", "%"), None
        self._with_containers(cursor, context, lambda: cursor.execute(statement, parameters))

    # begin_nested(): the connection's savepoints, on every container of the transaction
    # (SAVEPOINT as text would reach one container, and pooldbapi refuses it)
    def do_savepoint(self, connection: Any, name: str) -> None:
        connection.connection.dbapi_connection.savepoint(name)

    def do_rollback_to_savepoint(self, connection: Any, name: str) -> None:
        connection.connection.dbapi_connection.rollback_to_savepoint(name)

    def do_release_savepoint(self, connection: Any, name: str) -> None:
        connection.connection.dbapi_connection.release_savepoint(name)

    def do_execute_no_params(self, cursor: Any, statement: str, context: Any = None) -> None:
        self._with_containers(cursor, context, lambda: cursor.execute(statement))

    def do_executemany(self, cursor: Any, statement: str, parameters: Any,
                       context: Any = None) -> None:
        self._with_containers(cursor, context,
                              lambda: cursor.executemany(statement, parameters))

    def distinct_containers(self, connection: Any) -> tuple[str, ...]:
        """The distinct containers that a statement without '@' runs on over this SQLAlchemy
        connection: the execution option's list, else the pooldbapi connection's default."""
        option = connection.get_execution_options().get(CONTAINERS_OPTION)
        if option is not None:
            aliases = parse_alias_list(option, CONTAINERS_OPTION)
        else:
            dbapi_connection = connection.connection.dbapi_connection
            default = dbapi_connection.default
            aliases = default if default is not None else tuple(dbapi_connection.specs)[:1] \
                if len(dbapi_connection.specs) == 1 else ()
        return tuple(dict.fromkeys(aliases))

    # the back-end's own level, the one pooldbapi's transactions run at (the native dialect
    # reports it so): PostgreSQL's and Oracle's default; SQLite's is SERIALIZABLE
    transaction_level: IsolationLevel = "READ COMMITTED"

    def get_isolation_level_values(self, dbapi_conn: DBAPIConnection
                                   ) -> Sequence[IsolationLevel]:
        return ["AUTOCOMMIT", self.transaction_level]

    def set_isolation_level(self, dbapi_connection: DBAPIConnection,
                            level: IsolationLevel) -> None:
        # each container is a session of its own: autocommit is pooldbapi's to set
        dbapi_connection.autocommit = level == "AUTOCOMMIT"

    def get_isolation_level(self, dbapi_connection: DBAPIConnection) -> IsolationLevel:
        return "AUTOCOMMIT" if dbapi_connection.autocommit else self.transaction_level

    def detect_autocommit_setting(self, dbapi_conn: Any) -> bool:
        return bool(dbapi_conn.autocommit)


for _name in SCHEMA_QUESTIONS:
    setattr(PooldbapiDialect, _name, _asking_each(_name))
