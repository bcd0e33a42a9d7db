"""OAuth2 for OData containers against a real authorization server (authlib, oauth_server.py)
whose access tokens expire and whose refresh tokens are single-use; nginx checks every call's
bearer token with it (auth_request) before the SAP CAP service sees the call."""
from __future__ import annotations

import collections
import itertools
import json
import os
import stat
import subprocess
import sys
import time

import pytest
from oauth_fixture import TokenServer
from odata_service_fixture import Gateway

import pooldbapi
from pooldbapi.backends.odata import oauth
from pooldbapi.health import HEALTH
from pooldbapi.settings import make_spec

SECRET = "s3cr3t-client-value"


@pytest.fixture(autouse=True)
def _fresh():
    HEALTH.reset()
    oauth._SOURCES.clear()
    yield
    HEALTH.reset()
    oauth._SOURCES.clear()


@pytest.fixture
def checked(cap):
    """start(clients, lifetime, told) -> (token server, gateway checking its tokens)."""
    made = []

    def start(clients, lifetime=3.0, told=None, rate=1000, burst=1000):
        server = TokenServer(clients, lifetime, told)
        gateway = Gateway(cap.port, rate, burst, check_url=f"{server.base}/check")
        made.append((server, gateway))
        return server, gateway
    yield start
    for server, gateway in made:
        gateway.close()
        server.close()


def spec(server, gateway, client="app1", refresh="rt-first-1", **extra):
    keys = {"url": gateway.url, "auth": "oauth2", "token-url": server.token_url,
            "client-id": client, "client-secret": SECRET, **extra}
    if refresh:
        keys["refresh-token"] = refresh
    return "driver=odata;" + ";".join(f"{k}={v}" for k, v in keys.items())


def refreshes_used_twice(server):
    uses = collections.Counter(e["refresh"] for e in server.events("refresh"))
    return [r for r, n in uses.items() if n > 1]


def test_tokens_are_refreshed_before_expiry_and_each_refresh_token_is_used_once(checked):
    server, gateway = checked({"app1": (SECRET, "rt-first-1")}, lifetime=2)
    conn = pooldbapi.connect({"o1": spec(server, gateway)})
    until = time.monotonic() + 7  # three and a half lifetimes
    while time.monotonic() < until:
        assert conn.execute("select count(*) from Journals@o1").fetchone() == (2500,)
        time.sleep(0.05)
    conn.close()
    issued = server.events("issue")
    assert len(issued) >= 4 and all(e["grant"] == "refresh_token" for e in issued)
    assert not refreshes_used_twice(server)
    assert all(e["ok"] for e in server.events("refresh"))
    # refreshed before expiry: no call reached nginx with a dead token
    assert [e for e in server.events("check") if not e["ok"]] == []
    assert not [c for c in gateway.calls() if c.startswith("401 ") and "/eol/" in c]


def test_a_401_refreshes_once_and_the_call_goes_on(checked):
    # the server says 30 s but keeps a token 1.5 s: the service refuses it while the
    # container still thinks it live
    server, gateway = checked({"app1": (SECRET, "rt-first-1")}, lifetime=1.5, told=30)
    conn = pooldbapi.connect({"o1": spec(server, gateway)})
    assert conn.execute("select count(*) from Journals@o1").fetchone() == (2500,)
    time.sleep(2)
    assert conn.execute("select count(*) from Journals@o1").fetchone() == (2500,)
    conn.close()
    assert [c.split()[0] for c in gateway.calls() if "$count" in c] == ["200", "401", "200"]
    assert len(server.events("issue")) == 2 and not refreshes_used_twice(server)


def test_a_401_after_the_refresh_fails_clearly_without_a_secret(checked):
    server, gateway = checked({"app1": (SECRET, "rt-first-1")})
    # /echo/ answers every call 401, echoing what it was sent
    echo = gateway.url.replace("/odata/v4/eol/", "/echo/")
    conn = pooldbapi.connect({"o1": spec(server, gateway, url=echo)})
    with pytest.raises(pooldbapi.OperationalError,
                       match="HTTP 401.*refused again after the OAuth2 token was refreshed"
                       ) as info:
        conn.execute("select count(*) from Journals@o1").fetchone()
    conn.close()
    text = str(info.value) + repr(info.value)
    assert "tok-oa-" not in text and SECRET not in text and "rt-" not in text
    assert len(server.events("issue")) == 2  # the first token, and one refresh


def test_client_credentials_without_a_refresh_token(checked):
    server, gateway = checked({"app1": (SECRET, "rt-unused")}, lifetime=2)
    conn = pooldbapi.connect({"o1": spec(server, gateway, refresh=None)})
    for _ in range(3):
        assert conn.execute("select count(*) from Journals@o1").fetchone() == (2500,)
        time.sleep(1)
    conn.close()
    issued = server.events("issue")
    assert len(issued) >= 2 and {e["grant"] for e in issued} == {"client_credentials"}
    assert not server.events("refresh")


def test_a_refused_grant_names_the_problem_not_the_secret(checked):
    server, gateway = checked({"app1": (SECRET, "rt-first-1")})
    conn = pooldbapi.connect({"o1": spec(server, gateway, refresh="rt-not-known")})
    with pytest.raises(pooldbapi.OperationalError,
                       match="refused the refresh_token grant: invalid_grant.*authorised again"
                       ) as info:
        conn.execute("select count(*) from Journals@o1").fetchone()
    assert "rt-not-known" not in str(info.value) and SECRET not in str(info.value)
    assert not [c for c in gateway.calls() if "/eol/" in c]  # no call without a token
    conn.close()
    bad = pooldbapi.connect({"o1": spec(server, gateway, **{"client-secret": "wrong-x"})})
    with pytest.raises(pooldbapi.OperationalError, match="invalid_client") as info:
        bad.execute("select count(*) from Journals@o1").fetchone()
    assert "wrong-x" not in str(info.value)
    bad.close()


@pytest.mark.parametrize("keys, problem", [
    ({"auth": "oauth2", "client-id": "a", "client-secret": "b"}, "needs the key 'token-url'"),
    ({"auth": "basic"}, "key 'auth' is oauth2"),
    ({"client-id": "a"}, "'client-id' goes with auth=oauth2"),
    ({"auth": "oauth2", "token-url": "http://x/t", "client-id": "a", "client-secret": "b",
      "token-interval": "-1"}, "'token-interval' is seconds"),
])
def test_bad_oauth2_keys_are_refused_before_any_call(keys, problem):
    text = "driver=odata;url=http://127.0.0.1:9/odata/;" + ";".join(
        f"{k}={v}" for k, v in keys.items())
    with pytest.raises(pooldbapi.InterfaceError, match=problem) as info:
        pooldbapi.connect({"o1": text}).execute("select count(*) from Journals@o1")
    assert "=b" not in str(info.value)


def test_the_token_store_file_keeps_the_new_refresh_token_for_the_next_process(
        checked, tmp_path):
    server, gateway = checked({"app1": (SECRET, "rt-first-1")}, lifetime=1)
    path = tmp_path / "tokens.json"
    text = spec(server, gateway, **{"token-store": path})
    conn = pooldbapi.connect({"o1": text})
    assert conn.execute("select count(*) from Journals@o1").fetchone() == (2500,)
    conn.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    kept = json.loads(path.read_text())
    assert kept["refresh"].startswith("rt-") and kept["refresh"] != "rt-first-1"
    time.sleep(1.2)  # expired: the next process must refresh, with the kept refresh token
    oauth._SOURCES.clear()  # as a new process starts
    again = pooldbapi.connect({"o1": text})
    assert again.execute("select count(*) from Journals@o1").fetchone() == (2500,)
    again.close()
    assert len(server.events("refresh")) == 2 and not refreshes_used_twice(server)
    assert all(e["ok"] for e in server.events("refresh"))
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".pooldbapi-token-")]


WORKER = r"""
import json, sys, time
import pooldbapi
containers, seconds = json.loads(sys.argv[1]), float(sys.argv[2])
conn = pooldbapi.connect(containers)
print("ready", flush=True)
sys.stdin.readline()
calls, errors = 0, []
until = time.monotonic() + seconds
while time.monotonic() < until:
    for alias in containers:
        try:
            conn.execute(f"select count(*) from Journals@{alias}").fetchone()
            calls += 1
        except pooldbapi.Error as exc:
            errors.append(str(exc))
print(json.dumps({"calls": calls, "errors": errors[:3], "failed": len(errors)}), flush=True)
"""


def run_processes(containers, seconds, processes=4):
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(containers),
                               str(seconds)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True) for _ in range(processes)]
    assert [p.stdout.readline().strip() for p in procs] == ["ready"] * processes
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    return [json.loads(p.communicate(timeout=120)[0]) for p in procs]


def test_four_processes_share_two_apps_through_the_store(checked, redis_server):
    """Four processes, two apps, access tokens of 3 s, 12 s of calls: one refresh at a time
    per app (the lease), each new refresh token kept at once, so the server's log shows no
    refresh token used twice and no call is refused; requests at least token-interval apart."""
    redis_server.flush()
    server, gateway = checked({"app1": (SECRET, "rt-first-1"), "app2": (SECRET, "rt-first-2")},
                              lifetime=3)
    containers = {
        f"o{n}": spec(server, gateway, client=f"app{n}", refresh=f"rt-first-{n}",
                      **{"shared-state": redis_server.url, "token-interval": 2})
        for n in (1, 2)}
    outcomes = run_processes(containers, 12)
    assert [o["failed"] for o in outcomes] == [0] * 4, outcomes
    assert all(o["calls"] > 0 for o in outcomes)
    assert not refreshes_used_twice(server)
    assert all(e["ok"] for e in server.events("refresh"))
    for client in ("app1", "app2"):
        times = [e["at"] for e in server.events("issue") if e["client"] == client]
        assert len(times) >= 4  # more than three lifetimes
        assert all(b - a >= 1.9 for a, b in itertools.pairwise(times))
    assert not [c for c in gateway.calls() if c.startswith("401 ") and "/eol/" in c]


def test_without_a_store_processes_spend_each_others_refresh_tokens(checked):
    """The same four processes without shared-state or token-store: each refreshes on its own
    with the configured refresh token, which the server takes once (shown, not hidden)."""
    server, gateway = checked({"app1": (SECRET, "rt-first-1")}, lifetime=3)
    outcomes = run_processes({"o1": spec(server, gateway)}, 1)
    assert refreshes_used_twice(server) == [server.events("refresh")[0]["refresh"]]
    failed = [o for o in outcomes if o["failed"]]
    assert len(failed) == 3 and all("invalid_grant" in o["errors"][0] for o in failed)


def test_the_secret_and_the_tokens_are_redacted_in_repr_and_log_records(checked, caplog):
    import logging

    from pooldbapi.settings import make_spec
    server, gateway = checked({"app1": (SECRET, "rt-first-1")})
    text = spec(server, gateway)
    conn = pooldbapi.connect({"o1": text})
    assert conn.execute("select count(*) from Journals@o1").fetchone() == (2500,)
    (source,) = oauth._SOURCES.values()
    access, refresh = source.current.access, source.current.refresh
    assert access.startswith("tok-oa-") and refresh.startswith("rt-")
    shown = repr(make_spec("o1", text)) + repr(conn) + repr(source.current) + repr(source)
    assert SECRET not in shown and "rt-first-1" not in shown
    assert access not in shown and refresh not in shown
    with caplog.at_level(logging.DEBUG, logger="pooldbapi"):
        logging.getLogger("pooldbapi").warning("sent %s and %s", access, refresh)
    assert access not in caplog.text and refresh not in caplog.text
    conn.close()


def test_containers_of_two_services_sharing_one_app_share_its_token(checked):
    """The v4 and the v2 service behind one gateway, one app: one token for both, so the
    single-use refresh token is sent once (without any store)."""
    server, gateway = checked({"app1": (SECRET, "rt-first-1")}, lifetime=2)
    conn = pooldbapi.connect({"new": spec(server, gateway),
                              "old": spec(server, gateway, url=gateway.url_v2)})
    for _ in range(3):
        rows = conn.execute("select a.ID, b.description from Journals@new a join Journals@old b"
                            " on a.ID = b.ID where a.ID < 3 and b.ID < 3 order by a.ID"
                            ).fetchall()
        assert rows == [(1, "journal 1"), (2, "journal 2")]
        time.sleep(1)
    conn.close()
    assert len(oauth._SOURCES) == 1
    assert all(e["ok"] for e in server.events("refresh")) and not refreshes_used_twice(server)


@pytest.mark.parametrize("body", ['["Tok9xAccess"]', '"Tok9xAccess"',
                                  '{"access_token": "Tok9xAccess", "expires_in": "soon"}',
                                  '{"access_token": "Tok9xAccess", "expires_in": null}'])
def test_a_token_answer_of_the_wrong_shape_is_an_operational_error(body):
    """A token server (a plain HTTP server here) that answers 200 with a body that is no
    token object, or an expires_in that is no number: an OperationalError saying so, with no
    token in it; nothing is sent to the service."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        conn = pooldbapi.connect({"o1": "driver=odata;url=http://127.0.0.1:9/odata/;"
                                        f"auth=oauth2;token-url=http://127.0.0.1:"
                                        f"{server.server_address[1]}/token;client-id=c;"
                                        f"client-secret={SECRET}"})
        if "null" in body:  # no lifetime given: the default hour, and the call goes out
            with pytest.raises(pooldbapi.OperationalError, match="port=9"):
                conn.execute("select count(*) from Journals@o1").fetchone()
        else:
            with pytest.raises(pooldbapi.OperationalError, match="token server") as info:
                conn.execute("select count(*) from Journals@o1").fetchone()
            assert "Tok9x" not in str(info.value) and SECRET not in str(info.value)
        conn.close()
    finally:
        server.shutdown()
        server.server_close()


def test_the_refresh_lease_outlasts_a_slow_token_request(redis_server, monkeypatch):
    """The lease that lets one process ask at a time lasts as long as the request may: a
    token server that answers just within the timeout, after the lease's own seconds, sees
    the single-use refresh token once, though another process asks meanwhile (two token
    sources with their own leases, as two processes have)."""
    import http.server
    import threading

    monkeypatch.setattr(oauth, "LEASE", 0.3)
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            form = self.rfile.read(int(self.headers["Content-Length"])).decode()
            seen.append(form)
            time.sleep(1.2)  # past the lease, within the 2 s timeout
            body = json.dumps({"access_token": f"acc-{len(seen)}", "expires_in": 600,
                               "refresh_token": f"ref-{len(seen)}"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    redis_server.flush()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        text = (f"driver=odata;url=http://127.0.0.1:9/odata/;timeout=2;auth=oauth2;"
                f"token-url=http://127.0.0.1:{server.server_address[1]}/token;client-id=c;"
                f"client-secret={SECRET};refresh-token=ref-0;shared-state={redis_server.url}")
        spec = make_spec("o1", text)
        sources = [oauth.TokenSource(spec, 2.0, True) for _ in range(2)]
        tokens = []
        threads = [threading.Thread(target=lambda s=s: tokens.append(s.token()))
                   for s in sources]
        threads[0].start()
        time.sleep(0.6)  # the first asks; its lease of 0.3 s has run out meanwhile
        threads[1].start()
        for t in threads:
            t.join(10)
        assert [f for f in seen if "refresh_token=ref-0" in f] == seen[:1]
        assert len(seen) == 1 and tokens == ["acc-1", "acc-1"]
    finally:
        server.shutdown()
        server.server_close()


def test_aio_tasks_sharing_one_app_refresh_its_token_without_blocking_each_other(checked):
    """Through pooldbapi.aio both containers are read at once, in greenlets of one thread: the
    one that waits for the token another is refreshing awaits (a thread's lock held across the
    awaited token request would stop the event loop, and with it the request)."""
    import asyncio
    import threading

    import pooldbapi.aio
    server, gateway = checked({"app1": (SECRET, "rt-first-1")}, lifetime=1)
    outcome = []

    async def main():
        conn = await pooldbapi.aio.connect({"new": spec(server, gateway),
                                            "old": spec(server, gateway, url=gateway.url_v2)})
        assert conn.calls.native
        for _ in range(4):
            cur = await conn.execute("select a.ID, b.description from Journals@new a join"
                                     " Journals@old b on a.ID = b.ID where a.ID < 3 and"
                                     " b.ID < 3 order by a.ID")
            outcome.append(await cur.fetchall())
            await asyncio.sleep(0.7)
        await conn.close()

    loop_thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    loop_thread.start()
    loop_thread.join(60)
    assert not loop_thread.is_alive(), "the event loop is stuck"
    assert outcome == [[(1, "journal 1"), (2, "journal 2")]] * 4
    assert len(server.events("refresh")) >= 2 and not refreshes_used_twice(server)
