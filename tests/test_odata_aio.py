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
