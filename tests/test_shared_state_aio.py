"""shared-state in pooldbapi.aio's greenlet mode: the store's round trips are a redis.asyncio
client's of the event loop, awaited there (a real redis-server, a real PostgreSQL cluster)."""
from __future__ import annotations

import asyncio
import logging
import os
import threading
import time

import pytest

import pooldbapi
import pooldbapi.aio
from pooldbapi import waits
from pooldbapi.state.redis import store_for

redis = pytest.importorskip("redis")
pytestmark = pytest.mark.postgresql

# keeps the server busy (a script blocks it) for ARGV[1] microseconds
_BUSY = """
local t = redis.call('TIME') local start = t[1] * 1000000 + t[2]
while true do
  t = redis.call('TIME')
  if t[1] * 1000000 + t[2] - start > tonumber(ARGV[1]) then return 1 end
end
"""


def test_a_store_call_in_flight_lets_the_event_loop_run_other_tasks(pg, redis_server):
    redis_server.flush()
    url = redis_server.url
    containers = {"p": pg.conninfo(**{"max-calls-per-second": 1000, "shared-state": url})}
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def main():
        conn = await pooldbapi.aio.connect(containers, autocommit=True)
        cur = conn.cursor()
        await cur.execute("select 1")  # (the session and the loop's store client, made)
        busy = threading.Thread(target=redis.Redis.from_url(url).eval,
                                args=(_BUSY, 0, 400_000))
        busy.start()
        await asyncio.sleep(0.05)  # the server runs the script: every call waits for it
        task = asyncio.ensure_future(ticker())
        started = time.monotonic()
        await cur.execute("select 1")
        took = time.monotonic() - started
        task.cancel()
        busy.join()
        await conn.close()
        return took

    took = asyncio.run(main())
    assert took >= 0.2  # the call waited for the store...
    assert ticks >= 10  # ...while the loop ran the ticker


def test_sync_and_aio_connections_count_in_the_same_store_keys(pg, redis_server):
    redis_server.flush()
    url = redis_server.url
    containers = {"p": pg.conninfo(**{"max-calls-per-day": 3, "shared-state": url})}
    sync = pooldbapi.connect(containers, autocommit=True)
    sync.execute("select 1")
    sync.execute("select 1")
    sync.close()
    loops = []  # the event loop whose client the aio call went through

    async def main():
        conn = await pooldbapi.aio.connect(containers, autocommit=True)
        cur = conn.cursor()
        await cur.execute("select 1")
        loops.extend(store_for(url)._loops)
        with pytest.raises(pooldbapi.OperationalError,
                           match=r"max-calls-per-day \(3\) is used up"):
            await cur.execute("select 1")
        await conn.close()

    asyncio.run(main())
    assert len(loops) == 1 and not store_for(url)._loops  # closed with its loop
    raw = redis.Redis.from_url(url)
    assert [int(raw.get(key)) for key in raw.scan_iter("*:w86400:*")] == [3]


def test_an_unreachable_store_in_aio_falls_back_with_one_warning_and_no_password(pg, caplog):
    from redisserver import RedisServer
    server = RedisServer()
    server.stop()
    url = server.url.replace("redis://", "redis://:s3cretpw@")
    containers = {"p": pg.conninfo(**{"max-calls-per-second": 50, "shared-state": url})}

    async def main():
        conn = await pooldbapi.aio.connect(containers, autocommit=True)
        cur = conn.cursor()
        for _ in range(20):
            await cur.execute("select 1")
            assert await cur.fetchall() == [(1,)]
        await conn.close()

    with caplog.at_level(logging.WARNING, logger="pooldbapi"):
        started = time.monotonic()
        asyncio.run(main())
        elapsed = time.monotonic() - started
    warnings = [r.getMessage() for r in caplog.records if "cannot be reached" in
                r.getMessage()]
    assert len(warnings) == 1
    assert "***" in warnings[0]
    assert not [r for r in caplog.records if "s3cretpw" in r.getMessage() + (r.exc_text or "")]
    assert elapsed < 10  # bounded: one short timeout, then in-process limits


def test_a_forked_child_never_uses_its_parents_async_client(redis_server):
    redis_server.flush()
    url = redis_server.url
    store = store_for(url)

    async def main():
        await waits.spawn(lambda: store.put("k", "parent", 60))
        assert len(store._loops) == 1
        child = os.fork()
        if child == 0:
            code = 1
            try:  # the child's sync client connects afresh; no loop client inherited
                code = 0 if (not store._loops and store_for(url) is not store
                             and store.get("k") == "parent") else 1
            finally:
                os._exit(code)
        return child

    assert os.waitstatus_to_exitcode(os.waitpid(asyncio.run(main()), 0)[1]) == 0
