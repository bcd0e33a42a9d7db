"""Calls of the odata back-end: one httpx client per physical connection (http.py: awaited in
pooldbapi.aio), paging through next links, 429 (and 503 on reads) retried after Retry-After,
and a DB-API-like cursor over the statements pooldbapi sends (translate.py), in OData v4 or v2
(v2.py)."""
from __future__ import annotations

import datetime
import decimal
import email.utils
import random
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from ... import telemetry, waits
from ...dbapi import (
    BINARY_NAME,
    DATETIME_NAME,
    NUMBER_NAME,
    STRING_NAME,
    TypeCode,
)
from ...errors import redact
from . import http, v2
from .budget import CLIENT_ERRORS, endpoint_of
from .translate import Request, literal, translate

_CATEGORY = {
    NUMBER_NAME: {"Edm.Int16", "Edm.Int32", "Edm.Int64", "Edm.Byte", "Edm.SByte",
                  "Edm.Decimal", "Edm.Double", "Edm.Single", "Edm.Boolean"},
    STRING_NAME: {"Edm.String", "Edm.Guid"},
    BINARY_NAME: {"Edm.Binary"},
    DATETIME_NAME: {"Edm.Date", "Edm.DateTimeOffset", "Edm.TimeOfDay", "Edm.Duration",
                    "Edm.DateTime", "Edm.Time"},  # (the last two: v2's)
}
_BY_TYPE = {t: cat for cat, types in _CATEGORY.items() for t in types}


class Error(Exception):
    """An OData call failed; `status` is the HTTP status where there was an answer."""

    status: int | None = None
    connection_failure = False


class OperationalError(Error):
    """The service could not be reached or refused to serve (401, 403, 429 after max-tries)."""


class ProgrammingError(Error):
    """The service rejected the request (400, 404 on a collection, 405, 501)."""


class IntegrityError(Error):
    """The service reported a conflict (409, 412)."""


class DataError(Error):
    """The service rejected a value (422)."""


def _error(status: int, text: str) -> Error:
    cls: type[Error] = {409: IntegrityError, 412: IntegrityError, 422: DataError}.get(
        status, OperationalError if status in (401, 403, 429) or status >= 500
        else ProgrammingError)
    err = cls(f"HTTP {status}: {(v2.error_text(text) or text)[:300]}")
    err.status = status
    err.connection_failure = status >= 500
    return err


def retry_after(value: str | None, attempt: int) -> float:
    """Return the seconds to wait: Retry-After (seconds or an HTTP date), else a back-off.

    A date already past, or 0, is the back-off too: retrying at once would call the service in
    a loop for as long as it keeps refusing."""
    if value:
        if value.strip().isdigit():
            given = float(value)
        else:
            try:
                when = email.utils.parsedate_to_datetime(value)
                given = (when - datetime.datetime.now(datetime.UTC)).total_seconds()
            except (TypeError, ValueError):  # neither: the back-off
                given = 0.0
        if given > 0:
            return given
    return float(min(0.05 * 2.0 ** attempt, 2.0) * (0.5 + random.random()))


def convert(value: Any, edm: str) -> Any:
    """Return a JSON value as the Python type of its Edm type."""
    if value is None:
        return None
    if edm == "Edm.Decimal":
        return decimal.Decimal(str(value))
    if edm == "Edm.Date":
        return datetime.date.fromisoformat(value)
    if edm == "Edm.DateTimeOffset":
        return datetime.datetime.fromisoformat(value)  # a final Z reads as UTC (3.11+)
    if edm == "Edm.TimeOfDay":
        return datetime.time.fromisoformat(value)
    return value


def reset_seconds(value: str, now: float | None = None) -> float | None:
    """Seconds until a rate-limit reset given as a delay, epoch seconds or epoch milliseconds
    (told apart by size), or None when it is no number."""
    try:
        number = float(value)
    except ValueError:
        return None
    now = time.time() if now is None else now
    if number > 1e12:  # epoch milliseconds (Exact Online)
        return max(0.0, number / 1000 - now)
    if number > 1e9:   # epoch seconds
        return max(0.0, number - now)
    return max(0.0, number)


_HEADERS = (("X-RateLimit-Remaining", "X-RateLimit-Reset"),
            ("X-RateLimit-Minutely-Remaining", "X-RateLimit-Minutely-Reset"))


class Hold:
    """When a container may be called next, from the service's X-RateLimit-* headers; shared by
    every connection to one container definition in the process (and, through the limiter,
    by every process that shares its state)."""

    def __init__(self) -> None:
        self.until = 0.0
        self._lock = threading.Lock()

    def heard(self, headers: Any) -> float:
        """Hold calls until the reset when the service says no call is left (daily or per
        minute); return the seconds held (0 when calls are left)."""
        held = 0.0
        for remaining, reset in _HEADERS:
            left, when = headers.get(remaining), headers.get(reset)
            if left is None or when is None or left.strip() != "0":
                continue
            seconds = reset_seconds(when)
            if seconds is not None:
                held = max(held, seconds)
        if held:
            with self._lock:
                self.until = max(self.until, time.monotonic() + held)
        return held

    def wait(self) -> None:
        """Sleep until the container may be called."""
        delay = self.until - time.monotonic()
        if delay > 0:
            waits.sleep(delay)


class AdaptiveRate:
    """A sending rate learnt from 429s that say nothing of when to come back: each such answer
    cuts the rate to 0.7 of what was sent in the last second (or of the current rate), each
    success raises it by 5% until nothing was cut any more (AWS's adaptive retry mode, in
    short), so processes that share a service without sharing state converge."""

    def __init__(self) -> None:
        self.rate: float | None = None
        self._ceiling = float("inf")
        self._sent: list[float] = []
        self._next = 0.0
        self._lock = threading.Lock()

    def before_call(self) -> float:
        """Wait for the learnt rate (if any); return the seconds waited."""
        with self._lock:
            now = time.monotonic()
            self._sent = [t for t in self._sent if now - t < 1.0]
            self._sent.append(now)
            if self.rate is None:
                return 0.0
            start = max(now, self._next)
            self._next = start + 1.0 / self.rate
        if start > now:
            waits.sleep(start - now)
        return max(start - now, 0.0)

    def throttled(self) -> None:
        with self._lock:
            measured = float(len(self._sent)) or 1.0
            self.rate = max(0.5, 0.7 * (self.rate if self.rate is not None else measured))
            self._ceiling = self.rate / 0.7 * 2  # beyond twice the cut point: no limit again

    def succeeded(self) -> None:
        if self.rate is None:
            return
        with self._lock:
            if self.rate is not None:
                self.rate *= 1.05
                if self.rate > self._ceiling:
                    self.rate = None


class ODataConnection:
    """A physical connection to an OData service: an httpx client and its settings."""

    def __init__(self, url: str, client: http.Client, timeout: float, verify: bool,
                 max_tries: int, secrets: Sequence[str], hold: Hold | None = None,
                 limiter: Any = None, adaptive: AdaptiveRate | None = None,
                 rate_limit_wait: float = 60.0, alias: str = "",
                 version: int | None = None, auth: Any = None, budget: Any = None) -> None:
        self.alias = alias  # the container's, for its figures (telemetry)
        self.url = url.rstrip("/") + "/"
        self.http = client
        self.timeout = timeout
        self.verify = verify
        self.max_tries = max_tries
        self.secrets = tuple(secrets)
        self.autocommit = True      # no transactions: every write is immediate
        self.closed = False
        self._types: dict[str, dict[str, str]] | None = None
        self._keys: dict[str, list[str]] = {}
        self.hold = hold or Hold()
        self.limiter = limiter  # the container's limits: a slot for every call, $metadata too
        self.adaptive = adaptive or AdaptiveRate()
        self.rate_limit_wait = rate_limit_wait
        self.calls = 0
        self.version = version  # 2 or 4: given, else read from $metadata with the types
        self.auth = auth  # an oauth.TokenSource (auth=oauth2), else None
        self.budget = budget  # a budget.ErrorBudget (max-errors-per-hour), else None

    def request(self, method: str, path: str, **kwargs: Any) -> http.Response:
        """Send one call. 429 is retried (after Retry-After, else a back-off, the rate cut)
        until rate-limit-wait seconds were spent waiting; 503 on reads up to max-tries."""
        url = path if path.startswith("http") else self.url + path
        endpoint = endpoint_of(url[len(self.url):] if url.startswith(self.url) else
                               urlsplit(url).path.rsplit("/", 1)[-1])
        waited, attempt, refreshed, sent = 0.0, 0, False, ""
        while True:
            if self.budget is not None:  # refused here, unsent, once the budget is spent
                self.budget.check(endpoint)
            self.hold.wait()
            if self.limiter is not None:
                self.limiter.take()
            paced = self.adaptive.before_call()
            if attempt:  # waiting for the learnt rate after a 429 counts as waiting for it
                waited += paced
            failure, lost = None, False
            if self.auth is not None:  # the app's access token, refreshed before it expires
                sent = self.auth.token()
                kwargs["headers"] = {**kwargs.get("headers", {}),
                                     "Authorization": f"Bearer {sent}"}
            try:
                self.calls += 1
                response = http.send(self.http, method, url, **kwargs)
            except http.FAILURES as exc:
                text, lost = http.failure(exc, url)
                failure = redact(text, self.all_secrets())
            if failure is not None:
                # raised outside the handler: httpx's exception (its .request with the
                # headers and URL) is no __context__
                err = OperationalError(failure)
                err.connection_failure = lost
                raise err
            held = self.hold.heard(response.headers)
            if held and self.limiter is not None:  # every process holds, where state is shared
                self.limiter.hold_until(time.monotonic() + held)
            attempt += 1
            status = response.status_code
            if self.budget is not None and status in CLIENT_ERRORS:
                self.budget.spent(endpoint)
            if status == 401 and self.auth is not None and not refreshed:
                refreshed = True  # once: a new token, then the service's answer stands
                self.auth.rejected(sent)
                continue
            if status == 429:
                if telemetry.ON:
                    telemetry.too_many(self.alias)
                given = response.headers.get("Retry-After")
                if not given:
                    self.adaptive.throttled()
                delay = retry_after(given, attempt - 1)
                if waited + delay > self.rate_limit_wait:
                    break
            elif status == 503 and method == "GET" and attempt < self.max_tries:
                delay = retry_after(response.headers.get("Retry-After"), attempt - 1)
            else:
                if status < 400:
                    self.adaptive.succeeded()
                break
            if self.limiter is not None:
                self.limiter.hold_until(time.monotonic() + delay)
            if telemetry.ON:
                telemetry.retried(self.alias)
            waits.sleep(delay)
            waited += delay
        if response.status_code >= 400:
            refused = _error(response.status_code, redact(response.text, self.all_secrets()))
            if refreshed and response.status_code == 401:
                again = f"{refused.args[0]} (refused again after the OAuth2 token was refreshed)"
                refused.args = (again,)
            raise refused
        return response

    def all_secrets(self) -> tuple[str, ...]:
        """The values no message may show: the container's, and its current OAuth2 tokens."""
        return self.secrets + (self.auth.secrets if self.auth is not None else ())

    def types(self, entity: str) -> dict[str, str]:
        """Return the properties of an entity set and their Edm types, from $metadata."""
        if self._types is None:
            root = ET.fromstring(self.request("GET", "$metadata").content)
            if self.version is None:
                try:
                    self.version = v2.version(root)
                except ValueError as exc:
                    raise ProgrammingError(f"the service speaks {exc}") from None
            self._types, self._keys = v2.schema(root)
        found = self._types.get(entity)
        if found is None:
            raise ProgrammingError(f"the service has no entity set {entity!r}")
        return found

    def keys(self, entity: str) -> list[str]:
        """Return the key properties of an entity set, from $metadata."""
        self.types(entity)
        return self._keys.get(entity, [])

    def unsafe_key(self, entity: str, key: dict[str, Any]) -> str | None:
        """Why a key cannot be sent as one path segment (None: it can), from $metadata."""
        try:
            key_segment(entity, self.types(entity), key, self.version)
        except ProgrammingError as exc:
            return str(exc)
        return None

    def cursor(self) -> ODataCursor:
        return ODataCursor(self)

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True
        http.close(self.http)


class ODataCursor:
    """The DB-API-like face of one OData connection, for the statements pooldbapi sends."""

    def __init__(self, conn: ODataConnection) -> None:
        self.conn = conn
        self.description: tuple[tuple[Any, ...], ...] | None = None
        self.rowcount = -1
        self.lastrowid = None
        self.arraysize = 1000
        self._rows: Iterator[tuple[Any, ...]] = iter(())

    def execute(self, text: str, params: Sequence[Any] | None = None) -> None:
        request = translate(text, params)
        types = self.conn.types(request.entity)
        version = self.conn.version
        if version == 2:  # v2's literals go by the type of the property compared
            try:
                request = translate(text, params, v2.filter_literal(types), v2.STARTS)
            except ValueError as exc:
                raise ProgrammingError(f"entity set {request.entity!r}: a value cannot be"
                                       f" sent: {exc}") from None
        unknown = sorted(request.names - types.keys())
        if unknown:
            raise ProgrammingError(f"entity set {request.entity!r} has no property"
                                   f" {unknown[0]!r}")
        self.description, self._rows, self.rowcount = None, iter(()), -1
        if request.method == "COUNT":
            query = urlencode({"$filter": request.filter}, quote_via=quote, safe="$,'()") \
                if request.filter else ""
            answer = self.conn.request("GET", f"{quote(request.entity)}/$count"
                                       + (f"?{query}" if query else ""))
            self.description = (("count", TypeCode("Edm.Int64", NUMBER_NAME), None, None, None,
                                 None, None),)
            try:
                count = int(answer.text.strip().lstrip("\ufeff"))
            except ValueError:
                raise OperationalError(
                    f"the service's $count of {request.entity!r} answered no number:"
                    f" {redact(answer.text[:60], self.conn.all_secrets())!r}") from None
            self._rows = iter([(count,)])
            return
        if request.method == "GET":
            columns = request.columns or list(types)
            self.description = tuple(
                (c, TypeCode(types[c], _BY_TYPE.get(types[c])), None, None, None, None, None)
                for c in columns)
            self._rows = iter(()) if request.empty else self._read(request, columns, types)
            return
        path = key_segment(request.entity, types, request.key, version) if request.key else \
            quote(request.entity, safe="")
        if request.method == "POST":
            self.conn.request("POST", path, json=_body(request, types, version))
            self.rowcount = 1
            return
        method = "MERGE" if request.method == "PATCH" and version == 2 else request.method
        try:
            self.conn.request(method, path, **({"json": _body(request, types, version)}
                                               if request.body else {}))
            self.rowcount = 1
        except ProgrammingError as exc:
            if exc.status != 404:
                raise
            self.rowcount = 0  # no such row

    def _read(self, request: Request, columns: list[str], types: dict[str, str]
              ) -> Iterator[tuple[Any, ...]]:
        params = {"$select": ",".join(columns)}
        if request.filter:
            params["$filter"] = request.filter
        if request.orderby:
            params["$orderby"] = request.orderby
        if request.top is not None:
            params["$top"] = str(request.top)
        # spaces as %20: OData parsers do not all read '+' as a space
        query = urlencode(params, quote_via=quote, safe="$,'()")
        response = self.conn.request("GET", f"{quote(request.entity)}?{query}")
        old = self.conn.version == 2
        while True:
            payload = response.json()
            if old:  # verbose JSON: d.results, d.__next (opaque: followed as given)
                items, link = v2.page(payload)
                for item in items:
                    yield tuple(v2.convert(item.get(c), types[c]) for c in columns)
            else:
                for item in payload.get("value", []):
                    yield tuple(convert(item.get(c), types[c]) for c in columns)
                link = payload.get("@odata.nextLink")
            if not link:
                return
            response = self.conn.request("GET", self._next(link))

    def _next(self, link: str) -> str:
        """The URL of a next link, followed as given (a $skiptoken is opaque), but only on the
        service's own scheme, host and port: the credentials go with every call."""
        if not link.startswith(("http://", "https://")):
            return self.conn.url + link
        own, there = urlsplit(self.conn.url), urlsplit(link)
        if (own.scheme, own.netloc.lower()) != (there.scheme, there.netloc.lower()):
            raise OperationalError(f"the service's next link leads to another server"
                                   f" ({there.scheme}://{there.netloc}): not followed with"
                                   " this container's credentials")
        return link

    def executemany(self, text: str, seq: Sequence[Sequence[Any]]) -> None:
        total = 0
        for params in seq:
            self.execute(text, params)
            total += max(self.rowcount, 0)
        self.rowcount = total

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        out = []
        for row in self._rows:
            out.append(row)
            if len(out) >= (size or self.arraysize):
                break
        return out

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._rows)

    def fetchone(self) -> tuple[Any, ...] | None:
        return next(self._rows, None)

    def close(self) -> None:
        self._rows = iter(())


_INTEGERS = {"Edm.Int16", "Edm.Int32", "Edm.Int64", "Edm.Byte", "Edm.SByte"}
_NUMBERS = {"Edm.Decimal", "Edm.Double", "Edm.Single"}


def key_literal(entity: str, name: str, edm: str | None, value: Any, version: int | None = 4
                ) -> str:
    """Return a key value as the OData literal of its Edm type, percent-encoded as part of one
    path segment: nothing in it can end the segment, start a query or climb the path ('..'
    without a '/' is no segment of its own). A value that is no literal of its type is a
    ProgrammingError naming the key, never a different URL."""
    def refused(why: str) -> ProgrammingError:
        return ProgrammingError(f"key {name!r} of {entity!r} cannot be sent: {value!r} {why}")
    if version == 2 and edm in ("Edm.DateTime", "Edm.Time"):
        try:
            return quote(v2.literal(edm, value), safe="'")
        except (ValueError, TypeError) as exc:
            raise refused(f"({exc})") from None
    if edm == "Edm.String":
        if not isinstance(value, str):
            raise refused("is no string")
        text = literal(value)  # quotes doubled inside '...'
    elif edm in _INTEGERS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise refused(f"is no integer ({edm})")
        text = str(value)
    elif edm in _NUMBERS:
        if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal) or \
                not decimal.Decimal(value).is_finite():
            raise refused(f"is no finite number ({edm})")
        text = str(value)
    elif edm == "Edm.Guid":
        try:
            text = str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
        except ValueError:
            raise refused("is no GUID") from None
        if not isinstance(value, uuid.UUID) and text != str(value).lower():
            raise refused("is no GUID")  # uuid.UUID also reads braces and 'urn:uuid:'
    elif edm == "Edm.Boolean":
        if not isinstance(value, bool):
            raise refused("is no boolean")
        text = literal(value)
    elif edm == "Edm.Date":
        if isinstance(value, datetime.datetime) or not isinstance(value, datetime.date):
            raise refused("is no date")
        text = value.isoformat()
    elif edm == "Edm.DateTimeOffset":
        if not isinstance(value, datetime.datetime):
            raise refused("is no timestamp")
        text = literal(value)
    else:
        raise refused(f"(a key of type {edm or 'unknown'} is not sent by pooldbapi)")
    if version == 2 and edm not in ("Edm.String", "Edm.Boolean") and \
            edm not in _INTEGERS - {"Edm.Int64"}:
        text = v2.literal(edm, value)  # guid'...', datetime'...', 1.5M, 7L
    return quote(text, safe="'")


def key_segment(entity: str, types: dict[str, str], key: dict[str, Any],
                version: int | None = 4) -> str:
    """Return the path segment of one entity, Entity(key) or Entity(a=1,b='x'), every
    value formatted by its Edm type from $metadata and percent-encoded."""
    values = [(name, key_literal(entity, name, types.get(name), value, version))
              for name, value in key.items()]
    if len(values) == 1:
        inside = values[0][1]
    else:
        inside = ",".join(f"{quote(name, safe='')}={text}" for name, text in values)
    return f"{quote(entity, safe='')}({inside})"


def _body(request: Request, types: dict[str, str], version: int | None) -> dict[str, Any]:
    from .translate import json_value
    for name, value in request.body.items():
        # JSON has no NaN or infinity: refused here, before the call (the client would refuse
        # it while sending, taken for a lost connection of unknown outcome)
        if isinstance(value, float | decimal.Decimal) and not decimal.Decimal(value).is_finite():
            raise ProgrammingError(f"entity set {request.entity!r}: {name!r} cannot be sent:"
                                   f" {value!r} is no finite number (JSON has none)")
    if version == 2:
        try:
            return {k: v2.json_value(v, types.get(k)) for k, v in request.body.items()}
        except (ValueError, TypeError) as exc:
            raise ProgrammingError(f"entity set {request.entity!r}: a value cannot be sent:"
                                   f" {exc}") from None
    return {k: json_value(v) for k, v in request.body.items()}
