"""HTTP for the odata back-end, over httpx: one client per physical connection, made from a
container's settings (Settings). In the synchronous API an httpx.Client; in a call of
pooldbapi.aio (waits.active()) an httpx.AsyncClient of the same settings, whose requests are
awaited on the event loop (waits.await_only): no thread per request. Everything above this
module (the request loop, retries, paging, OAuth2, budgets) is the same code for both."""
from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from ... import waits

Response = httpx.Response
FAILURES = (httpx.HTTPError, httpx.InvalidURL)
"""What a request may raise instead of answering."""


@dataclass(frozen=True)
class Settings:
    """What every call of a container's connection sends besides its own request."""

    headers: dict[str, str] = field(default_factory=dict)
    query: str = ""  # the service URL's query, added to every call's
    auth: tuple[str, str] | None = None  # HTTP Basic
    timeout: float = 30.0  # each of connect, read, write and the wait for a pooled connection
    verify: bool = True


_TLS: dict[bool, ssl.SSLContext] = {}
_TLS_LOCK = threading.Lock()


def tls_context(verify: bool) -> ssl.SSLContext:
    """The process's TLS context for verify on or off (httpx's defaults: certifi's CA
    bundle, or SSL_CERT_FILE / SSL_CERT_DIR), made once: loading the CA bundle costs about
    0.1 s of CPU, which every new client would otherwise spend (on the event loop's thread,
    in pooldbapi.aio)."""
    found = _TLS.get(verify)
    if found is None:
        with _TLS_LOCK:
            found = _TLS.get(verify)
            if found is None:
                found = _TLS[verify] = httpx.create_ssl_context(verify=verify)
    return found


class Client:
    """A physical connection's HTTP client: an httpx.Client, or an httpx.AsyncClient in a
    call of pooldbapi.aio (the connection then belongs to that event loop), and the query
    every call carries (added here: httpx's own params would replace a call's query)."""

    __slots__ = ("client", "query")

    def __init__(self, settings: Settings) -> None:
        # redirects are followed, as browsers and requests do (httpx drops the
        # Authorization header on a redirect to another origin)
        options: dict[str, Any] = {
            "headers": settings.headers, "auth": settings.auth, "timeout": settings.timeout,
            "verify": tls_context(settings.verify), "follow_redirects": True}
        self.query = settings.query
        self.client: httpx.Client | httpx.AsyncClient
        if waits.active():
            self.client = httpx.AsyncClient(**options)
            waits.closed_with_loop(self.client)
        else:
            self.client = httpx.Client(**options)

    def url(self, url: str) -> str:
        """A call's URL with the service URL's query after its own."""
        if not self.query:
            return url
        return f"{url}{'&' if '?' in url else '?'}{self.query}"


def send(client: Client, method: str, url: str, **kwargs: Any) -> Response:
    """Send one request and read its whole answer."""
    http = client.client
    if isinstance(http, httpx.AsyncClient):
        return waits.awaited_task(http.request(method, client.url(url), **kwargs))
    return http.request(method, client.url(url), **kwargs)


def post(url: str, timeout: float, verify: bool, **kwargs: Any) -> Response:
    """One POST of its own (an OAuth2 token request): awaited in a call of pooldbapi.aio."""
    if waits.active():
        return waits.awaited_task(_post(url, timeout, verify, kwargs))
    return httpx.post(url, timeout=timeout, verify=verify, **kwargs)


async def _post(url: str, timeout: float, verify: bool, kwargs: dict[str, Any]) -> Response:
    async with httpx.AsyncClient(timeout=timeout, verify=verify) as client:
        return await client.post(url, **kwargs)


def failure(exc: BaseException, url: str) -> tuple[str, bool]:
    """A request's failure as a message naming the server (never its path or query, which
    may carry secrets; the caller redacts the rest), and whether the connection was lost:
    no answer came, so a write's outcome is unknown (not so for a URL or a header that
    could not be sent at all)."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = None
    detail = str(exc) or "no answer"
    lost = isinstance(exc, httpx.TransportError) and not isinstance(
        exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError)
    return (f"{type(exc).__name__}: {detail} (host={parts.hostname!r}, port={port})", lost)


def close(wrapped: Client) -> None:
    """Close a client and its pooled connections. An AsyncClient outside a call of its
    event loop (the reaper's thread, the interpreter's exit): closed on that loop while it
    runs; after it ended, its loop's shutdown closed it already (asyncio.run)."""
    client = wrapped.client
    if isinstance(client, httpx.Client):
        client.close()
        return
    if waits.active():
        waits.await_only(client.aclose())
        return
    loop = waits.loop_of(client)
    if loop is not None and loop.is_running():
        asyncio.run_coroutine_threadsafe(client.aclose(), loop)
        return
    with contextlib.suppress(waits.NotInLoop, RuntimeError):
        waits.run_ready(client.aclose())
