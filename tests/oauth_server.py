"""An OAuth2 authorization server for the tests, built with authlib on Flask: expiring access
tokens ('tok-oa-...', so the gateway's 'Bearer tok' check lets them through to its
auth_request), single-use refresh tokens (a second use is refused with invalid_grant), the
client-credentials grant, and GET /check for nginx's auth_request (200 for a live access token,
401 otherwise). Every use is logged as one JSON line: the event, the client, a digest of the
token (never the token) and whether it was taken.

    python oauth_server.py PORT LOG LIFETIME[/TOLD] CLIENT:SECRET:REFRESH [...]

TOLD: the expires_in the server tells (default the LIFETIME it keeps), to make a token die
before its holder expects.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import sys
import threading
import time
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from flask import Flask, request

LOCK = threading.Lock()


def digest(token: str | None) -> str | None:
    return None if token is None else hashlib.sha256(token.encode()).hexdigest()[:16]


class Client(ClientMixin):  # type: ignore[misc]
    def __init__(self, client_id: str, secret: str) -> None:
        self.client_id, self.secret = client_id, secret

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return ""

    def get_allowed_scope(self, scope: str) -> str:
        return scope or ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_post", "client_secret_basic")

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("refresh_token", "client_credentials")


class Refresh:
    """A refresh token: used once, then revoked."""

    def __init__(self, client_id: str, value: str) -> None:
        self.client_id, self.value, self.used = client_id, value, False

    def check_client(self, client: Client) -> bool:
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        return ""

    def is_expired(self) -> bool:
        return False

    def is_revoked(self) -> bool:
        return self.used


def main() -> None:
    port, log_path = int(sys.argv[1]), sys.argv[2]
    lifetime, _, told = sys.argv[3].partition("/")
    lifetime, told = float(lifetime), float(told or lifetime)
    clients: dict[str, Client] = {}
    refreshes: dict[str, Refresh] = {}
    access: dict[str, tuple[str, float]] = {}  # token -> (client, expires at)
    for item in sys.argv[4:]:
        client_id, secret, refresh = item.split(":", 2)
        clients[client_id] = Client(client_id, secret)
        refreshes[refresh] = Refresh(client_id, refresh)
    log = open(log_path, "a", buffering=1)  # noqa: SIM115 (open for the server's life)

    def note(event: str, **fields: Any) -> None:
        with LOCK:
            log.write(json.dumps({"event": event, "at": time.time(), **fields}) + "\n")

    class RefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
        TOKEN_ENDPOINT_AUTH_METHODS = ("client_secret_post", "client_secret_basic")
        INCLUDE_NEW_REFRESH_TOKEN = True

        def authenticate_refresh_token(self, refresh_token: str) -> Refresh | None:
            with LOCK:
                found = refreshes.get(refresh_token)
                taken = found is not None and not found.used
                if taken:
                    assert found is not None
                    found.used = True  # single use: taken here, under the lock
            note("refresh", client=found.client_id if found else None,
                 refresh=digest(refresh_token), ok=taken)
            return found if taken else None

        def authenticate_user(self, refresh_token: Refresh) -> object:
            return object()  # no user: the app's own grant

        def revoke_old_credential(self, refresh_token: Refresh) -> None:
            refresh_token.used = True

    class CredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
        TOKEN_ENDPOINT_AUTH_METHODS = ("client_secret_post", "client_secret_basic")

    app = Flask(__name__)
    server = AuthorizationServer(app, query_client=clients.get, save_token=lambda t, r: save(t, r))

    def save(token: dict[str, Any], req: Any) -> None:
        client_id = req.client.client_id
        with LOCK:
            access[token["access_token"]] = (client_id, time.time() + lifetime)
            if token.get("refresh_token"):
                refreshes[token["refresh_token"]] = Refresh(client_id, token["refresh_token"])
        note("issue", client=client_id, grant=req.grant_type,
             access=digest(token["access_token"]), refresh=digest(token.get("refresh_token")))

    server.register_token_generator("default", BearerTokenGenerator(
        access_token_generator=lambda **kw: "tok-oa-" + secrets.token_hex(16),
        refresh_token_generator=lambda **kw: "rt-" + secrets.token_hex(16),
        expires_generator=lambda client, grant_type: int(told)))
    server.register_grant(RefreshGrant)
    server.register_grant(CredentialsGrant)

    @app.post("/token")
    def token() -> Any:
        return server.create_token_response()

    @app.get("/check")
    def check() -> Any:
        given = request.headers.get("Authorization", "")
        value = given[len("Bearer "):] if given.startswith("Bearer ") else ""
        with LOCK:
            found = access.get(value)
        live = found is not None and found[1] > time.time()
        note("check", client=found[0] if found else None, access=digest(value), ok=live,
             uri=request.headers.get("X-Original-URI"))
        return ("", 200) if live else ("", 401)

    @app.get("/ready")
    def ready() -> Any:
        return "ok"

    import logging
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app.run("127.0.0.1", port, threaded=True)


if __name__ == "__main__":
    main()
