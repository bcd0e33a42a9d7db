"""pooldbapi.aio over OData containers (SAP CAP behind nginx, each token its own limit): the
distribution promises and the service's own record of the calls, as with the synchronous API."""
from __future__ import annotations

import asyncio

import pytest
import requests

import pooldbapi.aio
from pooldbapi.health import HEALTH

ALIASES = ("eol1", "eol2", "eol3")


def containers(gateway, aliases=ALIASES):
    return {a: f"driver=odata;url={gateway.url};token=tok-aio-{a}" for a in aliases}


def task_count(gateway):
    return int(requests.get(gateway.url + "Tasks/$count", timeout=10,
                            headers={"Authorization": "Bearer tok-count"}).text)


@pytest.fixture(autouse=True)
def _forget_health():
    HEALTH.reset()
    yield
    HEALTH.reset()


def test_counts_and_inserts_over_three_tokens_from_tasks(gateways):
    gateway = gateways()
    before = task_count(gateway)

    async def main():
        conns = [await pooldbapi.aio.connect(containers(gateway), seed=s, autocommit=True)
                 for s in range(3)]

        async def counts(conn):
            ran = {}
            for _ in range(6):
                cur = await conn.execute("select count(*) from Journals@{eol1,eol2,eol3}")
                assert await cur.fetchone() == (2500,)
                for alias, n in cur.containers.items():
                    ran[alias] = ran.get(alias, 0) + n
            return ran

        ran = await asyncio.wait_for(asyncio.gather(*(counts(c) for c in conns)), 120)
        cur = conns[0].cursor()
        await cur.executemany("insert into Tasks@{eol1,eol2,eol3} (description) values (?)",
                              [(f"aio {i}",) for i in range(9)])
        inserted = cur.containers
        for conn in conns:
            await conn.close()
        return ran, inserted

    ran, inserted = asyncio.run(main())
    assert ran == [{a: 2 for a in ALIASES}] * 3  # per connection: two executions on each
    assert inserted == {a: 3 for a in ALIASES}
    assert task_count(gateway) == before + 9
    posts = [line for line in gateway.calls() if "POST" in line and "tok-aio-" in line]
    assert {a: sum(f"tok-aio-{a}" in line for line in posts) for a in ALIASES} == \
        {a: 3 for a in ALIASES}


def test_odata_calls_run_on_the_loop_with_waits_and_http_requests_awaited(
        gateways, monkeypatch):
    """No worker thread per connection, per container or per request: the limiter's waits
    are awaited (a sleep of the loop's thread fails the test) and every HTTP request is an
    httpx.AsyncClient's, sent on the event loop's thread (no synchronous client)."""
    import threading

    import httpx

    from pooldbapi import runner, waits
    from pooldbapi.aio import calls

    def refuse(*args, **kwargs):
        raise AssertionError("a worker thread was asked for")
    monkeypatch.setattr(calls.Calls, "_worker", refuse)
    monkeypatch.setattr(runner, "executor", refuse)
    loop_thread = threading.get_ident()
    real_sleep = waits.time.sleep

    def sleep(seconds):
        import traceback
        assert threading.get_ident() != loop_thread, \
            "the event loop's thread slept:\n" + "".join(traceback.format_stack())
        real_sleep(seconds)
    request_threads = []
    real_send = httpx.AsyncClient.send

    async def send(self, *args, **kwargs):
        request_threads.append(threading.get_ident())
        return await real_send(self, *args, **kwargs)
    monkeypatch.setattr(httpx.AsyncClient, "send", send)
    monkeypatch.setattr(httpx.Client, "send", refuse)
    gateway = gateways()
    specs = {a: f"driver=odata;url={gateway.url};token=tok-nat-{a};max-calls-per-second=10"
             for a in ("eol1", "eol2")}
    before = task_count(gateway)
    monkeypatch.setattr(waits.time, "sleep", sleep)  # (time.sleep itself, from here on)
    request_threads.clear()

    async def main():
        conn = await pooldbapi.aio.connect(specs, autocommit=True)
        # (connect() itself runs on the process's shared connect threads, made at the first
        # connect of the process: counted from here, the calls' threads)
        threads = set(threading.enumerate())
        assert conn.calls.native
        cur = conn.cursor()
        await cur.executemany("insert into Tasks@{eol1,eol2} (description) values (?)",
                              [(f"nat {i}",) for i in range(8)])
        written = cur.containers
        await conn.close()
        # (but for the pools' one reaper of the process, started with its first pool)
        started = {t.name for t in set(threading.enumerate()) - threads}
        assert not started - {"pooldbapi-reaper"}, f"a thread was started: {started}"
        return written

    assert asyncio.run(main()) == {"eol1": 4, "eol2": 4}
    # $metadata and 8 rows, each on the loop's thread
    assert len(request_threads) >= 9 and set(request_threads) == {loop_thread}
    assert task_count(gateway) == before + 8


def test_a_service_that_never_answers_fails_the_call_at_its_timeout():
    """httpx's timeout is a cancellation inside the request's own task: it ends the call
    with the driver's error (the wait for a call is never cancelled from outside)."""
    import socket

    with socket.socket() as silent:  # accepts connections (the kernel's backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/odata/"

        async def main():
            conn = await pooldbapi.aio.connect({"hung": f"driver=odata;url={url};timeout=1"})
            try:
                with pytest.raises(pooldbapi.OperationalError, match="ReadTimeout") as info:
                    await asyncio.wait_for(conn.execute("select count(*) from Journals@hung"),
                                           60)  # (a hang guard, far beyond the timeout)
                return info.value
            finally:
                await conn.close()

        error = asyncio.run(main())
    assert "host='127.0.0.1'" in str(error)


def test_the_sessions_http_clients_are_closed_when_their_event_loop_ends(gateways, monkeypatch):
    """A session goes back to its loop's pool at close(); asyncio.run()'s shutdown closes its
    AsyncClient and its sockets (nothing is left for the garbage collector to warn about)."""
    from pooldbapi.backends.odata import http
    made = []
    real_init = http.Client.__init__

    def init(self, settings):
        real_init(self, settings)
        made.append(self)
    monkeypatch.setattr(http.Client, "__init__", init)
    gateway = gateways()

    async def main():
        conn = await pooldbapi.aio.connect(containers(gateway, ("eol1", "eol2")))
        await conn.execute("select count(*) from Journals@{eol1,eol2}")
        await conn.execute("select count(*) from Journals@{eol1,eol2}")
        await conn.close()
        assert made and not any(c.client.is_closed for c in made)  # pooled, open

    asyncio.run(main())
    assert made and all(c.client.is_closed for c in made)
