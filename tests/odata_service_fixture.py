"""The real OData service for the tests: SAP CAP (tests/odata_service, in-memory SQLite) behind
nginx, which gives each API token (Authorization header) its own rate limit."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import requests
from pgcluster import free_port

SERVICE = Path(__file__).resolve().parent / "odata_service"
PATH = "/odata/v4/eol/"
PATH_V2 = "/odata/v2/eol/"  # the same service in OData v2 (@cap-js-community/odata-v2-adapter)


def _wait(url: str, seconds: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited: {log.read_text()[-2000:]}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


class CapService:
    """SAP CAP serving the eol model on a free loopback port; in memory, or on the SQLite file
    `database` (kept across kill() and start(), for the fault tests)."""

    def __init__(self, database: Path | None = None) -> None:
        if not (SERVICE / "node_modules").exists():
            raise RuntimeError("run the README's test command: it installs the service's"
                               " Node packages (npm ci in tests/odata_service)")
        self.port = free_port()
        self.database = database
        self.log = Path(tempfile.mkstemp(prefix="pooldbapi-cap-", suffix=".log")[1])
        self._out = self.log.open("wb")
        self.start()

    def start(self) -> None:
        env = {**os.environ, "PORT": str(self.port)}
        if self.database is not None:
            env["POOLDBAPI_CAP_DATABASE"] = str(self.database)
        self.proc = subprocess.Popen([str(SERVICE / "node_modules" / ".bin" / "cds-serve")],
                                     cwd=SERVICE, env=env,
                                     stdout=self._out, stderr=subprocess.STDOUT)
        try:
            _wait(f"http://127.0.0.1:{self.port}{PATH}", 60, self.proc, self.log)
        except BaseException:
            self.close()
            raise

    def kill(self) -> None:
        """End the service at once (SIGKILL): what it committed is in its file."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def pause(self) -> None:
        """Stop the service's process (SIGSTOP): connections stay open, nothing is answered."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # (a paused process does not end on TERM)
            self.proc.terminate()
            self.proc.wait(10)
        self._out.close()
        self.log.unlink(missing_ok=True)


class Gateway:
    """nginx in front of the service: 401 without a 'Bearer tok...' token, 403 for the token
    'tok-forbidden' (known, but not allowed), /echo/... a 401 whose body echoes the call's
    path, query, Authorization and Cookie, and a rate limit of `rate` calls per second per
    token (429, with Retry-After where given: seconds or an HTTP date); unavailable: every
    authorised call answered 503, as a gateway in maintenance does. `read_timeout`: seconds
    nginx waits for the service's answer before it answers 504 itself (default 60). Every
    call's method, status and body are logged too (bodies.log; see posted())."""

    def __init__(self, cap_port: int, rate: int, burst: int,
                 retry_after: int | str | None = None,
                 headers: dict[str, str] | None = None, unavailable: bool = False,
                 read_timeout: float | None = None, check_url: str | None = None) -> None:
        # check_url: every call's bearer token is checked there first (auth_request: the
        # OAuth2 tests' token server answers 200 for a live access token, else 401)
        self.dir = Path(tempfile.mkdtemp(prefix="pooldbapi-nginx-"))
        self.port = free_port()
        self.cap_port = cap_port
        self.access_log = self.dir / "access.log"
        limited = "" if retry_after is None else (
            "error_page 429 @limited;\n"
            f'    location @limited {{ add_header Retry-After "{retry_after}" always;'
            " return 429; }")
        waits = "" if read_timeout is None else \
            f"proxy_read_timeout {max(int(read_timeout * 1000), 1)}ms;"
        self.bodies_log = self.dir / "bodies.log"
        user = "user root;" if os.geteuid() == 0 else ""
        extra = "".join(f"add_header {k} {v} always;\n      " for k, v in
                        (headers or {}).items())
        check = "" if check_url is None else f"""
    location = /_check {{
      internal;
      proxy_pass {check_url};
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
    }}"""
        (self.dir / "nginx.conf").write_text(f"""
worker_processes 1;
daemon off;
{user}
error_log {self.dir}/error.log warn;
pid {self.dir}/nginx.pid;
events {{ worker_connections 512; }}
http {{
  log_format calls '$status $request_method $request_uri "$http_authorization" $msec';
  access_log {self.access_log} calls;
  log_format bodies escape=json '$request_method $status $request_body';
  access_log {self.bodies_log} bodies;
  client_body_temp_path {self.dir}/body;
  proxy_temp_path {self.dir}/proxy;
  fastcgi_temp_path {self.dir}/fastcgi;
  uwsgi_temp_path {self.dir}/uwsgi;
  scgi_temp_path {self.dir}/scgi;
  limit_req_zone $http_authorization zone=tokens:1m rate={rate}r/s;
  limit_req_status 429;
  server {{
    listen 127.0.0.1:{self.port};
    # a service that echoes what it was sent in its 401 (as some do): for the secrets tests
    location /echo/ {{ return 401 "denied $request_uri $http_authorization $http_cookie"; }}
    location / {{
      if ($http_authorization !~ "^Bearer tok") {{ return 401; }}
      if ($http_authorization = "Bearer tok-forbidden") {{ return 403; }}
      {"return 503;" if unavailable else ""}
      {"auth_request /_check;" if check_url else ""}
      limit_req zone=tokens burst={burst} nodelay;
      {waits}
      proxy_set_header Host $http_host;  # (v2's next links are absolute, made from it)
      {extra}proxy_pass http://127.0.0.1:{cap_port};
    }}
    {limited}
    {check}
  }}
}}
""")
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    @property
    def url_v2(self) -> str:
        # 'localhost': the adapter's absolute next links name it for 127.0.0.1 (and the
        # Host header nginx passes on), and pooldbapi follows no link to another host
        return f"http://localhost:{self.port}{PATH_V2}"

    def start(self) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen([nginx, "-p", str(self.dir), "-c",
                                      str(self.dir / "nginx.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(f"http://127.0.0.1:{self.port}/", 20, self.proc, self.dir / "error.log")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)

    def calls(self) -> list[str]:
        """The calls nginx saw: 'status method uri "authorization" seconds' per line, once
        the log has stopped growing (nginx writes a line after the answer has gone out)."""
        size = -1
        while self.access_log.exists() and self.access_log.stat().st_size != size:
            size = self.access_log.stat().st_size
            time.sleep(0.2)
        return self.access_log.read_text().splitlines() if self.access_log.exists() else []

    def posted(self) -> list[tuple[int, dict[str, object]]]:
        """(status, JSON body) of every POST nginx saw, once the log has stopped growing."""
        import json
        size = -1
        while self.bodies_log.exists() and self.bodies_log.stat().st_size != size:
            size = self.bodies_log.stat().st_size
            time.sleep(0.1)
        out = []
        for line in (self.bodies_log.read_text().splitlines() if self.bodies_log.exists()
                     else []):
            method, status, body = line.split(" ", 2)
            if method == "POST":  # (escape=json: the body as the inside of a JSON string)
                out.append((int(status), json.loads(json.loads(f'"{body}"') or "{}")))
        return out

    def forget_calls(self) -> None:
        """Empty the logs (nginx appends: the next call starts them again)."""
        for log in (self.access_log, self.bodies_log):
            if log.exists():
                log.write_bytes(b"")

    def wait_for(self, text: str, seconds: float = 5.0) -> list[str]:
        """Return the calls containing `text` (decoded), waiting for nginx to log them:
        it writes a line after the answer has gone out."""
        from urllib.parse import unquote
        deadline = time.monotonic() + seconds
        while True:
            found = [line for line in self.calls() if text in unquote(line)]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
