"""Oracle through python-oracledb in thin mode: keys forwarded to oracledb.connect (typed by
oracledb's ConnectParams), :1 markers, DB_TYPE_* type codes, ORA- codes kept. In a call of
pooldbapi.aio the link's raw connection is oracledb's AsyncConnection behind
oracle_async.py's adapter: the same link code over either."""
from __future__ import annotations

import inspect
import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import oracledb

from .. import waits
from ..dbapi import (
    BINARY_NAME,
    DATETIME_NAME,
    NUMBER_NAME,
    ROWID_NAME,
    STRING_NAME,
    TypeCode,
)
from ..errors import (
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    ProgrammingError,
    pep249_class,
)
from ..settings import ContainerSpec
from ..sql.styles import Paramstyle
from .base import PROBE_ROWS, Backend, CallLimiter, Description, DriverBackend, Link

PROBE_SQL = "select 1 from dual"
"""What the health probe sends to an Oracle container (Oracle has no select without from)."""

_CATEGORY = {
    NUMBER_NAME: ("NUMBER", "BINARY_FLOAT", "BINARY_DOUBLE", "BINARY_INTEGER", "BOOLEAN"),
    STRING_NAME: ("VARCHAR", "NVARCHAR", "CHAR", "NCHAR", "CLOB", "NCLOB", "LONG",
                  "LONG_NVARCHAR", "JSON", "XMLTYPE"),
    BINARY_NAME: ("RAW", "BLOB", "LONG_RAW", "BFILE"),
    DATETIME_NAME: ("DATE", "TIMESTAMP", "TIMESTAMP_TZ", "TIMESTAMP_LTZ", "INTERVAL_DS",
                    "INTERVAL_YM"),
    ROWID_NAME: ("ROWID", "UROWID"),
}
_BY_NAME = {f"DB_TYPE_{name}": cat for cat, names in _CATEGORY.items() for name in names}
# the connect argument oracledb takes outside ConnectParams
_CONNECT_ONLY = ("dsn",)
# ORA codes that mean the server or the link, not the statement, failed
_LOST = {1033, 1034, 1089, 1092, 3113, 3114, 3135, 12170, 12514, 12516, 12518, 12520, 12528,
         12537, 12541, 12547, 12571, 28547}
# DPY codes of the thin driver for the same: cannot connect, connection closed or reset
_LOST_DPY = {"DPY-6005", "DPY-6000", "DPY-4011", "DPY-1001", "DPY-4024"}
_SAVEPOINTS = itertools.count()
# ORA codes oracledb leaves as plain DatabaseError that PEP 249 names more precisely
_BY_CODE: dict[int, type[Error]] = {
    1400: IntegrityError, 2290: IntegrityError, 2291: IntegrityError, 2292: IntegrityError,
    1722: DataError, 1438: DataError, 12899: DataError, 1476: DataError, 1841: DataError,
    1861: DataError, 904: ProgrammingError, 942: ProgrammingError, 955: ProgrammingError,
    6550: ProgrammingError,
}


def type_code(db_type: Any) -> TypeCode:
    """Return the TypeCode of an oracledb DB_TYPE_* object."""
    name = getattr(db_type, "name", str(db_type))
    return TypeCode(name, _BY_NAME.get(name))


def ora_code(exc: BaseException) -> str | None:
    """Return the ORA-/DPY- code of an oracledb error, e.g. 'ORA-00001'."""
    err = exc.args[0] if exc.args else None
    return getattr(err, "full_code", None) or None


def _convert(alias: str, key: str, value: str, annotation: str) -> Any:
    try:
        if annotation.startswith("bool"):
            low = value.strip().lower()
            if low not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise ValueError(value)
            return low in ("true", "1", "yes", "on")
        if annotation.startswith("int"):
            return int(value)
        if annotation.startswith("float"):
            return float(value)
    except ValueError:
        kind = annotation.split(" ")[0]
        raise InterfaceError(f"container {alias!r}: key {key!r} has an invalid value"
                             f" {value!r} (expected {kind})") from None
    return value


def _keywords() -> dict[str, str]:
    """oracledb's connect keywords (those of ConnectParams.set) and their annotations."""
    found = {name: str(param.annotation)
             for name, param in inspect.signature(oracledb.ConnectParams.set).parameters.items()
             if param.kind is inspect.Parameter.KEYWORD_ONLY}
    return {k: v for k, v in found.items() if v.split(" ")[0] in ("str", "int", "float", "bool")}


def connect_arguments(spec: ContainerSpec) -> tuple[oracledb.ConnectParams, dict[str, Any]]:
    """Build oracledb's ConnectParams (and the dsn) from a container's forwarded keys."""
    keywords = _keywords()
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in spec.params:
        if key in _CONNECT_ONLY:
            extra[key] = value
        elif key in keywords:
            kwargs[key] = _convert(spec.alias, key, value, keywords[key])
        else:
            raise InterfaceError(f"container {spec.alias!r}: the oracle driver rejects the key"
                                 f" {key!r}")
    params = oracledb.ConnectParams()
    params.set(**kwargs)
    return params, extra


class OracleLink(Link):
    """One python-oracledb connection."""

    __slots__ = ()

    driver_error = oracledb.Error

    # (reset: Link's; ALTER SESSION and the like stay with the session, so a session changed
    # is closed)

    def is_broken(self) -> bool:
        try:
            return not self.raw.is_healthy()
        except oracledb.Error:
            return True

    def probe(self) -> None:
        with self.raw.cursor() as cur:
            cur.execute(PROBE_SQL)
            cur.fetchall()

    def describe(self, cursor: Any, first_row: Sequence[Any] | None = None,
                 text: str | None = None) -> Description | None:
        if cursor.description is None:
            return None
        return tuple((col[0], type_code(col[1]), col[2], col[3], col[4], col[5], col[6])
                     for col in cursor.description)

    def open_stream(self, text: str, values: Sequence[Any] | None, batch: int) -> Any:
        cur = self.raw.cursor()
        cur.arraysize = cur.prefetchrows = batch
        cur.execute(text, values) if values is not None else cur.execute(text)
        return cur

    def release(self, name: str) -> None:
        pass  # Oracle has no RELEASE SAVEPOINT: a savepoint lasts until the transaction ends

    @contextmanager
    def atomic(self) -> Iterator[None]:
        raw = self.raw
        was = raw.autocommit
        raw.autocommit = False
        name = f"pooldbapi_page_{next(_SAVEPOINTS)}"
        with raw.cursor() as cur:
            cur.execute(f"savepoint {name}")
            try:
                yield
            except BaseException:
                cur.execute(f"rollback to savepoint {name}")
                raw.autocommit = was
                raise
        if was:
            raw.commit()
            raw.autocommit = True


class OracleBackend(DriverBackend):
    """python-oracledb in thin mode (no Oracle client libraries needed)."""

    name = "oracle"
    paramstyle = Paramstyle.NUMERIC
    runs_sql = True
    transactional = True
    two_phase = True
    describes_from_values = False
    cursor_reads_slower = False
    throttles_calls = False
    max_parameters: int | None = 65535  # bind variables per statement
    max_statement_bytes: int | None = None

    def connect(self, spec: ContainerSpec, limiter: CallLimiter | None = None) -> OracleLink:
        params, extra = connect_arguments(spec)
        if waits.active():  # a call of pooldbapi.aio: oracledb's AsyncConnection, adapted
            from . import oracle_async
            raw: Any = oracle_async.connect(params, **extra)
        else:
            raw = oracledb.connect(params=params, **extra)
        return OracleLink(raw, spec, self)

    def error_class(self, exc: BaseException) -> tuple[type[Error], str | None]:
        code = ora_code(exc)
        err = exc.args[0] if exc.args else None
        number = getattr(err, "code", 0) or 0
        cls = _BY_CODE.get(number) or (ProgrammingError if 900 <= number < 1000 else None)
        return cls or pep249_class(exc), code

    def is_connection_error(self, exc: BaseException) -> bool:
        if not isinstance(exc, oracledb.Error):
            return False
        err = exc.args[0] if exc.args else None
        if getattr(err, "is_session_dead", False):
            return True
        return ora_code(exc) in _LOST_DPY or getattr(err, "code", 0) in _LOST

    # (lastrowid: DriverBackend's, the ROWID of the row written)

    def call_text(self, name: str, markers: str) -> str | None:
        return f"begin {name}({markers}); end;"  # OUT values are not returned

    def estimate_text(self, text: str) -> str | None:
        return (f"select count(*) from ({text} fetch first {PROBE_ROWS + 1} rows only)"
                " pooldbapi_probe")  # Oracle 12c and later; no AS before a table alias


BACKEND: Backend = OracleBackend()  # mypy checks it against the protocol
