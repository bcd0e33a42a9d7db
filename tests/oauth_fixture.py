"""The OAuth2 authorization server of the tests (oauth_server.py, authlib on Flask) in a
process of its own, on a free loopback port, logging every use of a token to a file."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from pgcluster import free_port

HERE = Path(__file__).resolve().parent


class TokenServer:
    """clients: {client_id: (secret, first refresh token)}; lifetime: seconds an access token
    lives; told: the expires_in the server says (by default the lifetime)."""

    def __init__(self, clients: dict[str, tuple[str, str]], lifetime: float = 3.0,
                 told: float | None = None) -> None:
        self.port = free_port()
        self.log = Path(tempfile.mkstemp(prefix="pooldbapi-oauth-", suffix=".log")[1])
        args = [f"{c}:{secret}:{refresh}" for c, (secret, refresh) in clients.items()]
        self.proc = subprocess.Popen([sys.executable, str(HERE / "oauth_server.py"),
                                      str(self.port), str(self.log),
                                      f"{lifetime}/{told or lifetime}", *args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the token server exited: {self.proc.stderr.read()!r}")
            try:
                requests.get(f"{self.base}/ready", timeout=1)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.base}/token"

    def events(self, kind: str | None = None) -> list[dict[str, object]]:
        lines = self.log.read_text().splitlines()
        found = [json.loads(line) for line in lines]
        return [e for e in found if kind is None or e["event"] == kind]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        self.log.unlink(missing_ok=True)
