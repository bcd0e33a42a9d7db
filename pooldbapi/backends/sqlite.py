"""The embedded default back-end: stdlib sqlite3, with explicit adapters and converters."""
from __future__ import annotations

import datetime
import decimal
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..cache import BoundedCache, text_size
from ..dbapi import TypeCode, category_of_value
from ..errors import Error, InterfaceError, OperationalError, ProgrammingError, pep249_class
from ..settings import ContainerSpec
from ..sql.parse import OTHER, StatementKind
from ..sql.styles import Paramstyle
from .base import Backend, CallLimiter, Description, DriverBackend, Link
from .sqlite_declared import category as declared_category
from .sqlite_declared import declared as declared_types

# Explicit adapters, so that Python's deprecated default ones are never used; they write the ISO
# text the defaults wrote. No converters: what a container returns is what sqlite3 returns with
# the detect_types the container gives (none by default, as sqlite3.connect) and the converters
# the application registered (sqlite3's registry is process-wide, so pooldbapi adds none).
sqlite3.register_adapter(datetime.date, lambda d: d.isoformat())
sqlite3.register_adapter(datetime.datetime, lambda d: d.isoformat(" "))
sqlite3.register_adapter(datetime.time, lambda t: t.isoformat())
sqlite3.register_adapter(decimal.Decimal, str)

def _flag(value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(value)


_KEYS = {"database": str, "timeout": float, "uri": lambda v: v.lower() in ("1", "true", "yes"),
         "cached_statements": int, "detect_types": int}
# SQLite's per-connection pragmas pooldbapi sets on every session it opens: as a statement,
# `pragma foreign_keys` does nothing inside a transaction (SQLite's rule), and in autocommit
# its session is not kept (it changed the session)
_PRAGMAS = {"foreign_keys": _flag}
_TYPE_NAMES = {"NUMBER": "NUMERIC", "STRING": "TEXT", "BINARY": "BLOB", "DATETIME": "TIMESTAMP"}
# SQLite results carry no column types: a code per category of the first row's value
_CODES = {category: TypeCode(_TYPE_NAMES.get(category or "", "NULL"), category)
          for category in (*_TYPE_NAMES, None)}


_DECLARED: dict[str, TypeCode] = {}


def _declared_code(declared: str) -> TypeCode:
    """The type code of a declared column type: its name ('VARCHAR(20)' -> VARCHAR, so that a
    DATE column is not taken for a timestamp) and the category SQLite's affinity gives it."""
    code = _DECLARED.get(declared)
    if code is None:
        name = declared.split("(", 1)[0].strip().upper()
        code = _DECLARED[declared] = TypeCode(name, declared_category(declared))
    return code


PROBE_SQL = "select 1"
"""What the health probe sends."""


_DESCRIBED: BoundedCache[tuple[Any, ...], Description] = BoundedCache(
    4096, largest=1 << 20)  # (a result of a thousand columns is still kept)
"""Descriptions by (sqlite3's column tuple, the first row's value types)."""

def _limit(category: int, default: int) -> int:
    """A limit of the SQLite library this process runs (Connection.getlimit: Python 3.11)."""
    probe = sqlite3.connect(":memory:")
    try:
        return int(probe.getlimit(category)) if hasattr(probe, "getlimit") else default
    finally:
        probe.close()


class SQLiteLink(Link):
    """One sqlite3 connection; it may move between threads (access serialised by the pool's
    record of it)."""

    __slots__ = ()

    driver_error = sqlite3.Error
    # OR FAIL (in the statement or a constraint's ON CONFLICT) and a trigger's RAISE(FAIL)
    # keep what the statement changed before its error
    statements_atomic = False
    # what aborts a SQLite transaction (OR ROLLBACK, SQLITE_FULL) rolls all of it back
    abort_keeps_savepoints = False

    def set_autocommit(self, on: bool) -> None:
        pass  # isolation_level=None: autocommit unless begin() was called

    def begin(self) -> None:
        self.raw.execute("BEGIN")

    def commit(self) -> None:
        if self.raw.in_transaction:
            self.raw.execute("COMMIT")

    def rollback(self) -> None:
        if self.raw.in_transaction:
            self.raw.execute("ROLLBACK")

    def reset(self, session_changed: bool) -> bool:
        self.rollback()
        if not session_changed:
            return True
        # no DISCARD ALL: an ATTACH, a pragma or a temporary table stays with the session, so
        # the connection is closed; except an in-memory database, which closing would lose
        main = self.raw.execute("pragma database_list").fetchone()
        return bool(main is not None and not main[2])

    def close(self) -> None:
        # roll back first: a connection that a live cursor's statement keeps from closing
        # (sqlite3 leaves it a zombie) would otherwise keep its transaction's locks
        try:
            self.rollback()
        except sqlite3.Error:
            pass
        super().close()

    def is_broken(self) -> bool:
        try:
            self.raw.total_changes  # noqa: B018 - raises on a closed connection
        except sqlite3.ProgrammingError:
            return True
        return False

    def aborted(self) -> bool:
        # most errors undo the statement only; SQLITE_FULL, IOERR, NOMEM and some BUSY cases
        # roll the whole transaction back, which shows as no transaction being open any more
        return not self.raw.in_transaction

    def probe(self) -> None:
        self.raw.execute(PROBE_SQL).fetchall()
        self.rollback()

    def describe(self, cursor: Any, first_row: Sequence[Any] | None = None,
                 text: str | None = None) -> Description | None:
        columns = cursor.description
        if columns is None:
            return None
        # the same columns with values of the same types describe alike: built once
        key = (columns, None if first_row is None else tuple(map(type, first_row)))
        found = _DESCRIBED.get(key)
        if found is not None:
            return found
        width = len(columns)
        categories = [category_of_value(v) for v in first_row] if first_row is not None \
            else [None] * width
        codes = [_CODES[c] for c in categories]
        if text is not None and None in categories:  # no row, or a NULL: the declared types
            declared = declared_types(cursor.connection, text, width)
            if declared is not None:
                codes = [code if category is not None or not typ else _declared_code(typ)
                         for code, category, typ in zip(codes, categories, declared,
                                                        strict=True)]
        described = tuple((col[0], code, None, None, None, None, None)
                          for col, code in zip(columns, codes, strict=True))
        if None not in categories:  # (declared types depend on the statement and schema)
            _DESCRIBED.put(key, described, text_size(key))
        return described

    # (open_stream: Link's; sqlite3 steps through the result as rows are fetched)

    @contextmanager
    def atomic(self) -> Iterator[None]:
        # SAVEPOINT nests in a transaction and opens one of its own in autocommit
        raw = self.raw
        outermost = not raw.in_transaction
        raw.execute("SAVEPOINT pooldbapi_page")
        try:
            yield
            # outside a transaction this RELEASE is the commit, which can fail (SQLITE_BUSY,
            # SQLITE_FULL) and leave the transaction open: undone too, nothing of it stays
            raw.execute("RELEASE SAVEPOINT pooldbapi_page")
        except BaseException:
            if outermost:  # ROLLBACK: a RELEASE would be a commit again, and fail again
                if raw.in_transaction:
                    raw.execute("ROLLBACK")
            else:
                try:
                    raw.execute("ROLLBACK TO SAVEPOINT pooldbapi_page")
                except sqlite3.OperationalError as gone:
                    # an interruption landed just after the RELEASE: the page is in the
                    # caller's transaction, which the interruption fails; it goes on up
                    if "no such savepoint" not in str(gone):
                        raise
                else:
                    raw.execute("RELEASE SAVEPOINT pooldbapi_page")
            raise


class SQLiteBackend(DriverBackend):
    """stdlib sqlite3; physical connections may move between threads, access serialised."""

    name = "sqlite"
    paramstyle = Paramstyle.QMARK
    runs_sql = True
    transactional = True
    two_phase = False
    describes_from_values = True
    cursor_reads_slower = False
    throttles_calls = False
    # the library's SQLITE_MAX_VARIABLE_NUMBER and SQLITE_MAX_SQL_LENGTH (32,766 and 10^9
    # since 3.32 by default; a build may set others)
    max_parameters: int | None = _limit(getattr(sqlite3, "SQLITE_LIMIT_VARIABLE_NUMBER", 9),
                                        32766)
    max_statement_bytes: int | None = _limit(getattr(sqlite3, "SQLITE_LIMIT_SQL_LENGTH", 1),
                                             1_000_000_000)

    rowcount_after_close = True

    def _kwargs(self, spec: ContainerSpec) -> tuple[dict[str, Any], dict[str, bool]]:
        """sqlite3.connect's keyword arguments, and the pragmas to set, from the keys."""
        kwargs: dict[str, Any] = {}
        pragmas: dict[str, bool] = {}
        for key, value in spec.params:
            convert = _KEYS.get(key) or _PRAGMAS.get(key)
            if convert is None:
                raise InterfaceError(f"container {spec.alias!r}: sqlite3.connect does not take"
                                     f" the key {key!r} (it takes {', '.join(_KEYS)}; and"
                                     f" pooldbapi sets the pragma {', '.join(_PRAGMAS)})")
            try:
                (pragmas if key in _PRAGMAS else kwargs)[key] = convert(value)  # type: ignore[operator]
            except ValueError:
                raise InterfaceError(f"container {spec.alias!r}: key {key!r} has an invalid"
                                     f" value {value!r}") from None
        if "database" not in kwargs:
            raise InterfaceError(f"container {spec.alias!r}: the sqlite driver needs the key"
                                 " 'database' (a file name or :memory:)")
        return kwargs, pragmas

    def connect(self, spec: ContainerSpec, limiter: CallLimiter | None = None) -> SQLiteLink:
        kwargs, pragmas = self._kwargs(spec)
        raw = None
        try:
            raw = sqlite3.connect(**kwargs, isolation_level=None, check_same_thread=False)
            for name, on in pragmas.items():
                raw.execute(f"pragma {name} = {'on' if on else 'off'}")
        except sqlite3.Error as exc:
            if raw is not None:
                raw.close()
            raise OperationalError(f"container {spec.alias!r}: cannot open SQLite database"
                                   f" {kwargs['database']!r}: {exc}") from exc
        return SQLiteLink(raw, spec, self)

    def max_connections(self, spec: ContainerSpec) -> int | None:
        database = spec.param("database", "") or ""
        # every connection to :memory: is a database of its own: pin it to one
        return 1 if database in ("", ":memory:") or "mode=memory" in database else None

    def changes_session(self, kind: StatementKind, words: tuple[str, ...]) -> bool:
        # ATTACH, DETACH, PRAGMA (other statements) and temporary objects live in the session;
        # CREATE TABLE and the like live in the database file
        return kind == OTHER or "TEMP" in words or "TEMPORARY" in words

    def error_class(self, exc: BaseException) -> tuple[type[Error], str | None]:
        code = getattr(exc, "sqlite_errorname", None)
        cls = pep249_class(exc)
        # sqlite3 reports SQL mistakes (syntax, no such table) as OperationalError
        if code == "SQLITE_ERROR" and cls is OperationalError:
            cls = ProgrammingError
        return cls, code

    def is_connection_error(self, exc: BaseException) -> bool:
        code = getattr(exc, "sqlite_errorname", "")
        return code in ("SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_NOTADB", "SQLITE_CORRUPT")

    def call_text(self, name: str, markers: str) -> str | None:
        return f"select {name}({markers})"  # an SQL function, one row


BACKEND: Backend = SQLiteBackend()  # mypy checks it against the protocol
