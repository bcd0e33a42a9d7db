"""OAuth2 access tokens for OData containers (auth=oauth2): the refresh-token grant or the
client-credentials grant, refreshed before expiry, shared by every connection of a process
and, through a store, by processes:

- with shared-state (redis), a lease in the store lets one process ask at a time, and the
  token (with the new refresh token, at once) is kept there for the others;
- without one, a token-store=PATH file (written atomically, mode 0600) and a lock file;
- else in this process only.

A single-use refresh token is thereby never sent twice. Token requests are at least
token-interval seconds apart. No token or secret is ever put in a message."""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ... import waits
from ...errors import InterfaceError, OperationalError, redact, remember_secrets
from ...settings import ContainerSpec, seconds
from ...state import store_key
from ...state.redis import RedisStore, store_for
from . import http

KEYS = ("auth", "token-url", "client-id", "client-secret", "refresh-token", "token-store",
        "token-interval", "scope")
LEASE = 30.0
"""Seconds a process may hold the refresh lease besides what its token request may take
(token-interval's wait, then the connect and the answer, each up to timeout)."""
POLL = 0.05


@dataclass
class Token:
    """What the token server gave: the access token, when it expires (epoch seconds), the
    refresh token to use next, when it was asked for, and the chain it belongs to."""

    access: str = field(default="", repr=False)  # secrets: never in a repr
    expires: float = 0.0
    refresh: str | None = field(default=None, repr=False)
    asked: float = 0.0
    origin: str = ""

    def live(self, now: float | None = None) -> bool:
        """Whether the token may still be sent: until a quarter of its life (at most a
        minute) before it expires, so that it is refreshed before the service refuses it."""
        margin = min(60.0, (self.expires - self.asked) / 4)
        return bool(self.access) and self.expires - margin > (time.time() if now is None
                                                               else now)

    def usable(self) -> bool:
        """Whether the token may still be sent while another process asks for the next one:
        until a twentieth of its life (at most 5 s) before it expires."""
        margin = min(5.0, (self.expires - self.asked) / 20)
        return bool(self.access) and self.expires - margin > time.time()

    def dumps(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def loads(cls, text: str | bytes | None) -> Token | None:
        if not text:
            return None
        try:
            found = json.loads(text)
            return cls(**{k: found[k] for k in cls.__dataclass_fields__ if k in found})
        except (ValueError, TypeError):
            return None


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


class TokenSource:
    """The access tokens of one OAuth2 app for one container definition, process-wide."""

    def __init__(self, spec: ContainerSpec, timeout: float, verify: bool) -> None:
        params = dict(spec.params)
        self.alias = spec.alias
        missing = [k for k in ("token-url", "client-id", "client-secret") if not params.get(k)]
        if missing:
            raise InterfaceError(f"container {spec.alias!r}: auth=oauth2 needs the key"
                                 f" {missing[0]!r}")
        if "token" in params or "user" in params:
            raise InterfaceError(f"container {spec.alias!r}: auth=oauth2 takes no 'token' or"
                                 " 'user' key (the token server gives the access token)")
        self.url = params["token-url"]
        self.client_id = params["client-id"]
        self.client_secret = params["client-secret"]
        self.first_refresh = params.get("refresh-token") or None
        self.scope = params.get("scope")
        self.interval = seconds(spec.alias, "token-interval", params.get("token-interval", "0"))
        self.timeout, self.verify = timeout, verify
        # the chain: a new refresh-token in the configuration starts a new one
        self.origin = _digest(f"{self.url}\0{self.client_id}\0{self.first_refresh or ''}")
        self.key = store_key("oauth2", self.url, self.client_id, self.first_refresh or "")
        self.store: RedisStore | None = store_for(spec.options.shared_state)
        self.path = params.get("token-store") or None
        self.static = tuple(s for s in (self.client_secret, self.first_refresh) if s)
        self.current = Token()
        self.requests = 0  # token requests sent by this process
        # held across the token request: a greenlet of pooldbapi.aio that waits for it
        # awaits, so the event loop (and the request) goes on
        self._lock = waits.LoopLock()

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values to redact: the secret, the refresh tokens, the access token."""
        token = self.current
        return self.static + tuple(s for s in (token.access, token.refresh) if s)

    def token(self) -> str:
        """A live access token (asked for where none is)."""
        token = self.current
        if token.live():
            return token.access
        with self._lock:
            if not self.current.live():
                self.current = self._obtain()
            return self.current.access

    def rejected(self, access: str) -> None:
        """The service answered 401 to `access`: no longer use it (here and in the store)."""
        with self._lock:
            if self.current.access == access:
                self.current = Token(refresh=self.current.refresh, asked=self.current.asked,
                                     origin=self.current.origin)
                if self.store is not None:
                    self._forget_in_store(access)
                elif self.path:
                    with self._file_lock():
                        found = self._read_file()
                        if found is not None and found.access == access:
                            found.access, found.expires = "", 0.0
                            self._write_file(found)

    # -- where the token is kept -------------------------------------------------------------

    def _obtain(self) -> Token:
        if self.store is not None:
            return self._from_store()
        if self.path:
            with self._file_lock():
                found = self._read_file()
                if found is not None and found.live():
                    return found
                token = self._request(found)
                self._write_file(token)
                return token
        return self._request(self.current if self.current.origin else None)

    def _from_store(self) -> Token:
        assert self.store is not None
        send = self.store.send
        owner = uuid.uuid4().hex
        # the lease outlasts the request: expired while it runs, another process would send
        # the refresh token this one is spending
        lease = LEASE + self.interval + 2 * self.timeout
        deadline = time.monotonic() + lease
        while True:
            try:
                found = Token.loads(send(lambda io: io.client.get(self.key + ":token")))
                if found is not None and found.origin == self.origin and \
                        found.live():
                    return found
                if send(lambda io: io.client.set(self.key + ":lease", owner, nx=True,
                                                 px=int(lease * 1000))):
                    try:
                        # read again under the lease: another process may just have asked
                        found = Token.loads(send(lambda io: io.client.get(self.key + ":token")))
                        if found is not None and found.origin == self.origin and \
                                found.live():
                            return found
                        token = self._request(found if found is not None and
                                              found.origin == self.origin else None)
                        # kept at once: the refresh token just used is spent
                        dumped = token.dumps()
                        send(lambda io: io.client.set(self.key + ":token", dumped))  # noqa: B023
                        return token
                    finally:
                        send(lambda io: io.client.eval(_RELEASE, 1, self.key + ":lease",
                                                       owner))
                if found is not None and found.origin == self.origin and found.usable():
                    return found  # another process asks meanwhile: no call waits for it
            except self.store._redis.RedisError as exc:
                raise OperationalError(
                    f"{self.alias}: the shared state cannot be reached for the OAuth2 token"
                    f" ({type(exc).__name__}); no token is asked for without its lease (a"
                    " refresh token is single-use)") from None
            if time.monotonic() > deadline:
                raise OperationalError(f"{self.alias}: no OAuth2 token within"
                                       f" {lease:.0f} s: another process holds"
                                       " the refresh lease")
            waits.sleep(POLL)

    def _forget_in_store(self, access: str) -> None:
        assert self.store is not None
        with contextlib.suppress(self.store._redis.RedisError):
            self.store.send(lambda io: io.client.eval(_FORGET, 1, self.key + ":token", access))

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        assert self.path
        with open(self.path + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read_file(self) -> Token | None:
        assert self.path
        try:
            with open(self.path, "rb") as f:
                found = Token.loads(f.read())
        except FileNotFoundError:
            return None
        return found if found is not None and found.origin == self.origin else None

    def _write_file(self, token: Token) -> None:
        """Write the token file atomically (a new file, mode 0600, renamed over the old)."""
        assert self.path
        folder = os.path.dirname(os.path.abspath(self.path))
        fd, temp = tempfile.mkstemp(prefix=".pooldbapi-token-", dir=folder)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(token.dumps())
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    # -- the token server --------------------------------------------------------------------

    def _request(self, previous: Token | None) -> Token:
        """Ask the token server (refresh-token grant where there is a refresh token, else
        client credentials), no sooner than token-interval after the last request."""
        if previous is not None and previous.asked:
            wait = previous.asked + self.interval - time.time()
            if wait > 0:
                waits.sleep(wait)
        refresh = previous.refresh if previous is not None and previous.refresh else \
            self.first_refresh
        form = {"client_id": self.client_id, "client_secret": self.client_secret}
        if refresh:
            form.update(grant_type="refresh_token", refresh_token=refresh)
        else:
            form["grant_type"] = "client_credentials"
        if self.scope:
            form["scope"] = self.scope
        asked = time.time()
        secrets = self.static + ((refresh,) if refresh else ())
        self.requests += 1
        try:
            answer = http.post(self.url, self.timeout, self.verify, data=form,
                               headers={"Accept": "application/json"})
        except http.FAILURES as exc:
            text, _ = http.failure(exc, self.url)
            raise OperationalError(f"{self.alias}: the OAuth2 token server cannot be reached:"
                                   f" {redact(text, secrets)}") from None
        try:
            body: dict[str, Any] = answer.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):  # JSON, but no token object
            body = {}
        if answer.status_code != 200 or not body.get("access_token"):
            error = str(body.get("error") or (f"HTTP {answer.status_code}"
                        if answer.status_code != 200 else "HTTP 200 without an access_token"))
            why = redact(str(body.get("error_description") or ""), secrets)
            again = " (a refresh token is single-use: the app must be authorised again)" \
                if refresh and error == "invalid_grant" else ""
            raise OperationalError(f"{self.alias}: the OAuth2 token server refused the"
                                   f" {form['grant_type']} grant: {error}"
                                   f"{': ' + why if why else ''}{again}")
        try:
            lifetime = float(body.get("expires_in") or 3600)
        except (TypeError, ValueError):
            raise OperationalError(f"{self.alias}: the OAuth2 token server's expires_in is no"
                                   " number of seconds") from None
        token = Token(access=str(body["access_token"]), expires=asked + lifetime,
                      refresh=str(body.get("refresh_token") or refresh or "") or None,
                      asked=asked, origin=self.origin)
        remember_secrets([s for s in (token.access, token.refresh) if s])
        return token


# compare-and-delete: only the lease's own holder gives it back
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# forget the access token the service refused, if it is still the one kept (keep the
# refresh token: it is the chain's next)
_FORGET = """
local found = redis.call('GET', KEYS[1])
if not found then return 0 end
local token = cjson.decode(found)
if token['access'] ~= ARGV[1] then return 0 end
token['access'] = ''
token['expires'] = 0
redis.call('SET', KEYS[1], cjson.encode(token))
return 1
"""

_SOURCES: dict[str, TokenSource] = {}
_SOURCES_LOCK = threading.Lock()


def source_for(spec: ContainerSpec, timeout: float, verify: bool) -> TokenSource | None:
    """The process's token source of a container definition (None without auth=oauth2)."""
    auth = spec.param("auth")
    if auth is None:
        for key in KEYS[1:]:
            if spec.param(key) is not None:
                raise InterfaceError(f"container {spec.alias!r}: the key {key!r} goes with"
                                     " auth=oauth2")
        return None
    if auth != "oauth2":
        raise InterfaceError(f"container {spec.alias!r}: key 'auth' is oauth2, not {auth!r}")
    # one source per app, not per container: containers of several services (or companies)
    # that share an app share its token and its single-use refresh token
    app = repr(tuple(spec.param(k) for k in KEYS) + (spec.options.shared_state,))
    found = _SOURCES.get(app)
    if found is None:
        with _SOURCES_LOCK:
            found = _SOURCES.get(app)
            if found is None:
                found = _SOURCES[app] = TokenSource(spec, timeout, verify)
    return found


def _after_fork() -> None:
    _SOURCES.clear()  # a child keeps no parent's lock or half-made request


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
