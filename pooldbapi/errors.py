"""The PEP 249 exception hierarchy, and wrapping of driver errors into it."""
from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .sql.parse import StatementKind


class Warning(Exception):
    """Important warnings such as data truncation."""


class Error(Exception):
    """Base class of every pooldbapi error.

    Besides its reason (args[0]), an error carries fields that say what happened to the
    caller's rows; its message is built from them when it is shown (str()), never by
    rewriting args, so the fields and the message cannot disagree."""

    container: str | None = None
    sqlstate: str | None = None
    row: int | None = None                          # index of the failing row (or page start)
    written: dict[str, tuple[int, ...]] | None = None  # rows written per container before it
    unknown: dict[str, tuple[int, ...]] | None = None  # rows whose outcome nobody can know:
    # in flight in autocommit when their container's connection was lost
    connection_failure: bool = False   # the container, not the statement, failed
    unsent: bool = False               # the statement provably never reached the server
    transaction_failed: bool = False   # a write error failed the open transaction: none kept
    lost_kind: StatementKind | None = None  # autocommit: the kind of statement whose outcome is
    # unknown because the connection was lost while it ran
    rolled_back: tuple[str, ...] | None = None  # a commit that kept nothing: the containers
    # rolled back besides this one
    evaluated_locally: str | None = None  # raised by the local engine: why it ran there

    @property
    def reason(self) -> str:
        """The error's own message, without what it says about rows and containers."""
        return str(self.args[0]) if self.args else ""

    def __str__(self) -> str:
        text = super().__str__() if len(self.args) != 1 else self.reason
        if self.row is not None:
            text += f" (row {self.row} on container {self.container}; {self._kept()})"
        elif self.lost_kind is not None:
            text += (f" (the outcome of this {self.lost_kind} is unknown: the connection was"
                     " lost while it ran)")
        if self.rolled_back is not None and not isinstance(self, PartialCommitError):
            # (a partial commit's rolled_back are containers its own message names)
            text += f" (nothing was committed; rolled back: {', '.join(self.rolled_back)})"
        if self.evaluated_locally:
            text += (" (the statement is evaluated locally, in SQLite's dialect, because"
                     f" {self.evaluated_locally})")
        return text

    def _kept(self) -> str:
        if self.transaction_failed:
            kept = ("the transaction failed and will be rolled back on every container:"
                    " nothing of it is kept; call rollback()")
        else:
            kept = f"written before the error: {rows_per_container(self.written or {})}"
        if self.unknown:
            kept += "; outcome unknown (connection lost in flight): " + \
                rows_per_container(self.unknown)
        return kept


class ReadFailed(Exception):
    """Inside pooldbapi only: a statement ran (what it writes is there, or in its transaction)
    and reading its result afterwards failed (cause: the driver's error, such as a value it
    cannot load). The pooldbapi error made of the cause counts the statement written."""

    def __init__(self, cause: Exception, rowcount: int = 0) -> None:
        super().__init__()  # (no text of its own: the cause's may hold what is redacted)
        self.cause, self.rowcount = cause, rowcount  # rowcount: the rows it wrote, if known


def rows_per_container(rows: Mapping[str, Sequence[int]]) -> str:
    """'a: 3 rows; b: 2 rows' (or 'nothing'), for the messages that say what was written."""
    return "; ".join(f"{a}: {len(r)} rows" for a, r in sorted(rows.items())) or "nothing"


class InterfaceError(Error):
    """An error of the interface rather than of a database."""


class DatabaseError(Error):
    """An error of a database."""


class DataError(DatabaseError):
    """A problem with the processed data (division by zero, value out of range)."""


class OperationalError(DatabaseError):
    """An error in the database's operation, not necessarily under the programmer's control."""


class IntegrityError(DatabaseError):
    """The relational integrity of the database is affected."""


class InternalError(DatabaseError):
    """The database met an internal error."""


class ProgrammingError(DatabaseError):
    """A programming error: bad SQL, a wrong number of parameters, an unknown container."""


class NotSupportedError(DatabaseError):
    """A method or statement form the container (or pooldbapi) does not support."""


class PartialCommitError(OperationalError):
    """Some containers of a transaction committed and others did not.

    committed: containers whose commit succeeded; failed: container -> error, for those whose
    commit failed; in_doubt: the failed containers whose connection was lost during COMMIT, so
    that the server may or may not have committed; rolled_back: containers that were rolled
    back (not committed) once a commit had failed."""

    def __init__(self, message: str, committed: Iterable[str], failed: dict[str, BaseException],
                 in_doubt: Iterable[str] = (), rolled_back: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.committed = tuple(committed)
        self.failed = dict(failed)
        self.in_doubt = tuple(in_doubt)
        self.rolled_back = tuple(rolled_back)


PEP249_CLASSES: tuple[type[Error], ...] = (
    Error, InterfaceError, DatabaseError, DataError, OperationalError, IntegrityError,
    InternalError, ProgrammingError, NotSupportedError,
)
for _cls in (Warning, *PEP249_CLASSES, PartialCommitError):
    _cls.__module__ = "pooldbapi"

_BY_NAME: dict[str, type[Error]] = {cls.__name__: cls for cls in PEP249_CLASSES}

SECRET_KEY = re.compile(r"(pass(word|wd)?|pwd|secret|token|api[-_]?key|credential)", re.IGNORECASE)
HARMLESS_HEADERS = frozenset({
    "accept", "accept-charset", "accept-encoding", "accept-language", "cache-control",
    "content-type", "dataserviceversion", "maxdataserviceversion", "odata-maxversion",
    "odata-version", "prefer", "user-agent", "x-requested-with"})
"""Header names whose values are no secret; every other header.NAME value is one."""
_QUERY_SECRET_WORDS = frozenset({
    "apikey", "auth", "authorization", "code", "cookie", "credential", "credentials",
    "jwt", "key", "pass", "passwd", "password", "pwd", "sas", "secret", "session", "sessionid",
    "sig", "signature", "token"})
"""A URL query parameter is a secret where a word of its name (split at - _ .) is one of
these: access_token, subscription-key, x-api-key, client_secret, sig, X-Amz-Signature..."""
_URL_CREDENTIALS = re.compile(r"(?<=://)([^/@\s:]*):([^/@\s]+)@")  # redis://:pw@ too
_URL_QUERY_SECRET = re.compile(r"([?&;][\w.-]+=)([^&#\s'\"]*)")
# key=value pairs only: "token: X" is how SQLite names an unrecognised token, not a secret
_KEYWORD_SECRET = re.compile(
    r"\b(password|passwd|pwd|token|secret|api[-_]?key)(\s*=\s*)('[^']*'|\"[^\"]*\"|[^\s;&]+)",
    re.IGNORECASE,
)


def secret_key(key: str) -> bool:
    """Tell whether a connection key's value is a secret: a password, token or key by its
    name, or the value of a header that is not known to be harmless."""
    if key.lower().startswith("header."):
        return key[len("header."):].lower() not in HARMLESS_HEADERS
    return bool(SECRET_KEY.search(key))


def secret_query_key(name: str) -> bool:
    """Tell whether a URL query parameter's value is a secret, by the words of its name."""
    words = re.split(r"[-_.]", name.lower())
    return name.lower() in _QUERY_SECRET_WORDS or any(w in _QUERY_SECRET_WORDS for w in words)


def _query_secret(match: re.Match[str]) -> str:
    name = match.group(1)[1:-1]
    return match.group(1) + "***" if secret_query_key(name) else match.group(0)


_KNOWN: tuple[str, ...] = ()        # longest first
_REMEMBERED: dict[str, None] = {}    # in the order they came, the newest last
_KNOWN_LOCK = threading.Lock()
REMEMBERED_SECRETS = 256
"""Secret values kept for log redaction: the newest this many (a process that refreshes
tokens makes new ones all the time)."""
SHORTEST_REMEMBERED = 4
"""Shorter secret values are not masked in log records by value: a 't' would mask every 't'
of every record of the process (key=value pairs and URL secrets are masked by their form)."""


def remember_secrets(secrets: Iterable[str]) -> None:
    """Keep secret values for the redaction of log records (pooldbapi's and its drivers',
    whose messages may quote a URL or a header)."""
    global _KNOWN
    new = [s for s in secrets if len(s) >= SHORTEST_REMEMBERED and s not in _REMEMBERED]
    if not new:
        return
    with _KNOWN_LOCK:
        for secret in new:
            _REMEMBERED.pop(secret, None)
            _REMEMBERED[secret] = None
        while len(_REMEMBERED) > REMEMBERED_SECRETS:
            del _REMEMBERED[next(iter(_REMEMBERED))]
        # longest first, so that a secret holding another is masked whole
        _KNOWN = tuple(sorted(_REMEMBERED, key=len, reverse=True))


QUERY_CANCELED = "57014"
"""The SQLSTATE of a statement its server cancelled on request (PostgreSQL's query_canceled):
no row of it was bad, and nothing of it was kept."""

def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Return text with the given secret values (also as repr() escapes them: a line break
    shown as \\n), key=secret pairs, URL credentials and secret URL query parameters masked;
    nothing else of the text is touched."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
        escaped = repr(secret)[1:-1]
        if escaped != secret:
            text = text.replace(escaped, "***")
    text = _URL_CREDENTIALS.sub(r"\1:***@", text)
    if "://" in text or "?" in text:
        text = _URL_QUERY_SECRET.sub(_query_secret, text)
    return _KEYWORD_SECRET.sub(r"\1\2***", text)


_LOGGERS = ("pooldbapi", "httpx", "httpcore", "urllib3", "requests", "psycopg", "oracledb")
"""The loggers whose records are redacted: pooldbapi's and its drivers' (and their
children's: httpx's INFO line and urllib3.connectionpool's DEBUG line quote each URL)."""


def _redacting_factory(previous: Callable[..., logging.LogRecord]
                       ) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.name.split(".", 1)[0] in _LOGGERS:
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - a bad call: logging reports it when emitted
                return record
            masked = redact(message, _KNOWN)
            if masked != message:
                record.msg, record.args = masked, None
        return record
    factory.pooldbapi_redacts = True  # type: ignore[attr-defined]
    return factory


def install_log_redaction() -> None:
    """Mask secrets in every record of pooldbapi's and its drivers' loggers when it is made
    (only records a logger is enabled for are made: nothing is spent otherwise). The record
    factory already in place is kept and called first."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "pooldbapi_redacts", False):
        logging.setLogRecordFactory(_redacting_factory(current))


def pep249_class(exc: BaseException) -> type[Error]:
    """Return the pooldbapi class matching a driver exception (drivers follow PEP 249 names)."""
    for cls in type(exc).__mro__:
        found = _BY_NAME.get(cls.__name__)
        if found is not None:
            return found
    return OperationalError if isinstance(exc, OSError) else DatabaseError


def redact_in_place(exc: BaseException, secrets: Iterable[str]) -> None:
    """Mask secrets in a driver exception (and the exceptions chained to it), so that nothing
    reachable from the chained cause holds one."""
    secrets = tuple(secrets)
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.args = tuple(redact(a, secrets) if isinstance(a, str) else a
                             for a in current.args)
        # psycopg's errors keep the libpq connection, whose .password is the plaintext
        if getattr(current, "_pgconn", None) is not None:
            current._pgconn = None  # type: ignore[attr-defined]
        current = current.__cause__ or current.__context__


def wrap(exc: BaseException, container: str, secrets: Iterable[str] = (),
         sqlstate: str | None = None, cls: type[Error] | None = None) -> Error:
    """Return a pooldbapi error for a driver exception, naming the container, secrets masked."""
    redact_in_place(exc, secrets)
    message = str(exc).strip() or type(exc).__name__
    detail = f" [{sqlstate}]" if sqlstate else ""
    err = (cls or pep249_class(exc))(f"{container}: {message}{detail}")
    err.container = container
    err.sqlstate = sqlstate
    return err


install_log_redaction()


class ConnectionErrors:
    """PEP 249's optional extension: the exception classes as attributes of a connection
    (`conn.Error`), for the synchronous and the asyncio connection alike."""

    Warning = Warning
    Error = Error
    InterfaceError = InterfaceError
    DatabaseError = DatabaseError
    DataError = DataError
    OperationalError = OperationalError
    IntegrityError = IntegrityError
    InternalError = InternalError
    ProgrammingError = ProgrammingError
    NotSupportedError = NotSupportedError
