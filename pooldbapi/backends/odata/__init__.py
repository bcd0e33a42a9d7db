"""The odata back-end: a REST / OData v4 or v2 service over httpx (http.py). Entity sets are tables; selects
are evaluated locally from what the service returns; writes are one call per row."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ...errors import Error, InterfaceError, pep249_class, redact
from ...settings import ContainerSpec, seconds
from ...sql.parse import StatementKind
from ...sql.styles import Paramstyle
from ..base import Backend, CallLimiter, Link
from . import http, oauth
from .budget import budget_for
from .client import AdaptiveRate, Hold, ODataConnection, ODataCursor

_HOLDS: dict[str, Hold] = {}  # per container definition, process-wide
_ADAPTIVE: dict[str, AdaptiveRate] = {}  # learnt sending rates, likewise
_KEYS = ("url", "token", "user", "password", "timeout", "verify", "odata-version",
         "max-errors-per-hour", *oauth.KEYS)


def settings_for(spec: ContainerSpec) -> tuple[str, http.Settings]:
    """Check a container's keys; return its service URL and what every call sends."""
    params = dict(spec.params)
    for key in params:
        if key not in _KEYS and not key.startswith("header."):
            raise InterfaceError(f"container {spec.alias!r}: the odata driver rejects the key"
                                 f" {key!r} (it takes {', '.join(_KEYS)}, header.NAME)")
    url = params.get("url")
    if not url:
        raise InterfaceError(f"container {spec.alias!r}: the odata driver needs the key 'url'")
    for key, value in params.items():
        if key in ("token", "user", "password") or key.startswith("header."):
            _check_header_value(spec.alias, key, value)
    parts = urlsplit(url)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # out of range, or no number
        port_ok = False
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or not port_ok:
        # a configuration error, raised at connect: no call, no health failure
        raise InterfaceError(f"container {spec.alias!r}: key 'url' is no http(s) URL with a"
                             f" host and a valid port: {redact(url, spec.secrets)!r}")
    if parts.query:
        # a query in the service URL (an access_token, an API version) goes with every call,
        # after whatever path a call adds to the service URL
        url = urlunsplit(parts._replace(query="", fragment=""))
    headers: dict[str, str] = {}
    auth = None
    if "token" in params:
        headers["Authorization"] = f"Bearer {params['token']}"
    elif "user" in params:
        auth = (params["user"], params.get("password", ""))
    for key, value in params.items():
        if key.startswith("header."):
            headers[key[len("header."):]] = value
    # (no Accept of its own: the client's */*, as before; a header.Accept replaces it)
    # a wait of every call: more than 0 and finite
    timeout = seconds(spec.alias, "timeout", params.get("timeout", "30"), above=True)
    verify = params.get("verify", "true").lower() not in ("false", "0", "no", "off")
    odata_version(spec)
    return url, http.Settings(headers, parts.query, auth, timeout, verify)


def odata_version(spec: ContainerSpec) -> int | None:
    """The `odata-version` a container string gives (2 or 4), None: read from $metadata."""
    given = spec.param("odata-version")
    if given is None:
        return None
    if given.strip() not in ("2", "4"):
        raise InterfaceError(f"container {spec.alias!r}: key 'odata-version' is 2 or 4, not"
                             f" {given!r}")
    return int(given)


def _check_header_value(alias: str, key: str, value: str) -> None:
    """A value that goes into an HTTP header must be one HTTP can carry: never a line
    break or another control character (a header of its own), always Latin-1. Otherwise an
    InterfaceError naming the key, never the value: a configuration error, raised at
    connect, that marks no container unhealthy."""
    if any(ord(c) < 32 and c != "\t" or ord(c) == 127 for c in value):
        raise InterfaceError(f"container {alias!r}: key {key!r} holds a line break or another"
                             " control character, which no HTTP header can carry")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise InterfaceError(f"container {alias!r}: key {key!r} holds a character outside"
                             " Latin-1, which no HTTP header can carry") from None


class ODataLink(Link):
    """One connection to an OData service (client.ODataConnection): no transactions, every
    write is immediate."""

    __slots__ = ()

    def lost(self, exc: BaseException) -> bool:
        return bool(getattr(exc, "connection_failure", False))

    def set_autocommit(self, on: bool) -> None:
        pass  # every write is immediate

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass  # cannot undo what the service took

    def reset(self, session_changed: bool) -> bool:
        return True  # no session on the service side

    def close(self) -> None:
        self.raw.close()

    def is_broken(self) -> bool:
        return bool(self.raw.closed)

    # (aborted: Link's; no transactions, every write is immediate)

    def probe(self) -> None:
        # the service's own answer: a wrong path or another server answers no $metadata
        ET.fromstring(self.raw.request("GET", "$metadata").content)

    # (describe: Link's, the cursor's own description)

    def entity_keys(self, entity: str) -> list[str]:
        return self.raw.keys(entity)  # type: ignore[no-any-return]

    def unsafe_key(self, entity: str, key: dict[str, Any]) -> str | None:
        return self.raw.unsafe_key(entity, key)  # type: ignore[no-any-return]

    def open_stream(self, text: str, values: Sequence[Any] | None, batch: int) -> Any:
        cur = ODataCursor(self.raw)
        cur.execute(text, values)
        return cur

    @contextmanager
    def atomic(self) -> Iterator[None]:
        # no transactions: nothing can make a block all-or-nothing; each call of it (a bulk
        # page's rows reach here) stands on its own
        yield


class ODataBackend:
    """OData v4 or v2 over httpx; no transactions, no SQL: selects are evaluated locally."""

    name = "odata"
    paramstyle = Paramstyle.QMARK
    runs_sql = False
    transactional = False
    two_phase = False
    describes_from_values = False
    cursor_reads_slower = False
    copies_rows = False  # no bulk path: pages are sent row by row
    executemany_returns = False  # (every row is a call of its own)
    throttles_calls = True
    max_parameters: int | None = None  # one call per row: rows are never sent together
    max_statement_bytes: int | None = None
    rowcount_after_close = False

    def connect(self, spec: ContainerSpec, limiter: CallLimiter | None = None) -> ODataLink:
        url, settings = settings_for(spec)
        timeout, verify = settings.timeout, settings.verify
        auth = oauth.source_for(spec, timeout, verify)
        budget = budget_for(spec)
        hold = _HOLDS.setdefault(spec.key, Hold())
        adaptive = _ADAPTIVE.setdefault(spec.key, AdaptiveRate())
        return ODataLink(ODataConnection(url, http.Client(settings), timeout, verify,
                                         spec.options.max_tries,
                                         spec.secrets, hold, limiter, adaptive,
                                         spec.options.rate_limit_wait, spec.alias,
                                         odata_version(spec), auth, budget), spec, self)

    def max_connections(self, spec: ContainerSpec) -> int | None:
        return None

    def changes_session(self, kind: StatementKind, words: tuple[str, ...]) -> bool:
        return False  # no session on the service side

    def error_class(self, exc: BaseException) -> tuple[type[Error], str | None]:
        status = getattr(exc, "status", None)
        return pep249_class(exc), f"HTTP {status}" if status else None

    def is_connection_error(self, exc: BaseException) -> bool:
        return bool(getattr(exc, "connection_failure", False))

    def lastrowid(self, cursor: Any) -> Any:
        return None

    def call_text(self, name: str, markers: str) -> str | None:
        return None  # a REST service has no procedures

    def key_range_text(self, table: str, start: int, step: int) -> str | None:
        return None  # a REST service has no DDL

    def estimate_text(self, text: str) -> str | None:
        return None  # a select on a service is evaluated locally: no statement to ask

    def estimated_rows(self, row: Sequence[Any]) -> int | None:
        return None


BACKEND: Backend = ODataBackend()  # mypy checks it against the protocol
