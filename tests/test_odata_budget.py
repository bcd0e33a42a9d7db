"""Error budgets (max-errors-per-hour) against the real OData service behind nginx: the call
after the budget is spent is refused by pooldbapi and never reaches the service."""
from __future__ import annotations

import pytest

import pooldbapi
from pooldbapi.backends.odata import budget
from pooldbapi.health import HEALTH

TOO_LONG = "x" * 101  # longer than String(100): the service answers 400


@pytest.fixture(autouse=True)
def _fresh():
    HEALTH.reset()
    budget._BUDGETS.clear()
    yield
    HEALTH.reset()
    budget._BUDGETS.clear()


def bad_insert(conn, alias="o1"):
    conn.execute(f"insert into Journals@{alias} (ID, description) values (?, ?)",
                 (1, TOO_LONG))


def test_a_budget_of_three_refuses_the_fourth_failing_call_unsent(gateways):
    gateway = gateways()
    conn = pooldbapi.connect(
        {"o1": f"driver=odata;url={gateway.url};token=tok-budget;max-errors-per-hour=3"},
        autocommit=True)
    for _ in range(3):
        with pytest.raises(pooldbapi.ProgrammingError, match="HTTP 400"):
            bad_insert(conn)
    with pytest.raises(pooldbapi.OperationalError,
                       match=r"3 client errors .* from 'Journals' within the hour"
                             r" \(max-errors-per-hour=3\): the call is not sent"):
        bad_insert(conn)
    with pytest.raises(pooldbapi.OperationalError, match="max-errors-per-hour"):
        conn.execute("select count(*) from Journals@o1").fetchone()  # the same endpoint
    # another endpoint's budget is its own
    conn.execute("insert into Tasks@o1 (description) values ('budget kept')")
    conn.close()
    journals = [c for c in gateway.calls() if "/Journals" in c]
    assert [c.split()[:2] for c in journals] == [["400", "POST"]] * 3  # the fourth: unsent


def test_the_budget_is_shared_through_the_store(gateways, redis_server):
    redis_server.flush()
    gateway = gateways()
    text = (f"driver=odata;url={gateway.url};token=tok-budget2;max-errors-per-hour=2;"
            f"shared-state={redis_server.url}")
    first = pooldbapi.connect({"o1": text}, autocommit=True)
    for _ in range(2):
        with pytest.raises(pooldbapi.ProgrammingError, match="HTTP 400"):
            bad_insert(first)
    first.close()
    budget._BUDGETS.clear()  # as another process starts
    second = pooldbapi.connect({"o1": text}, autocommit=True)
    with pytest.raises(pooldbapi.OperationalError, match="2 client errors"):
        bad_insert(second)
    second.close()
    assert len([c for c in gateway.calls() if "/Journals" in c]) == 2


def test_without_a_budget_every_failing_call_is_sent(gateways):
    gateway = gateways()
    conn = pooldbapi.connect({"o1": f"driver=odata;url={gateway.url};token=tok-nobudget"},
                             autocommit=True)
    for _ in range(5):
        with pytest.raises(pooldbapi.ProgrammingError, match="HTTP 400"):
            bad_insert(conn)
    conn.close()
    assert len([c for c in gateway.calls() if " POST " in c and c.startswith("400")]) == 5


@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_a_bad_budget_is_refused_at_connect(value):
    with pytest.raises(pooldbapi.InterfaceError, match="'max-errors-per-hour' is a whole"):
        pooldbapi.connect({"o1": f"driver=odata;url=http://127.0.0.1:9/;token=tok-x;"
                                 f"max-errors-per-hour={value}"}
                          ).execute("select count(*) from Journals@o1")


def test_endpoints():
    assert budget.endpoint_of("Journals(1)") == "Journals"
    assert budget.endpoint_of("Journals/$count?$filter=a") == "Journals"
    assert budget.endpoint_of("Tasks?$top=1") == "Tasks"
    assert budget.endpoint_of("$metadata") == "$metadata"


def test_a_sync_and_an_aio_connection_spend_one_budget_through_the_store(gateways,
                                                                          redis_server):
    import asyncio

    import pooldbapi.aio
    redis_server.flush()
    gateway = gateways()
    text = (f"driver=odata;url={gateway.url};token=tok-budget3;max-errors-per-hour=2;"
            f"shared-state={redis_server.url}")
    first = pooldbapi.connect({"o1": text}, autocommit=True)
    with pytest.raises(pooldbapi.ProgrammingError, match="HTTP 400"):
        bad_insert(first)
    first.close()
    budget._BUDGETS.clear()  # as another process starts

    async def main():
        conn = await pooldbapi.aio.connect({"o1": text}, autocommit=True)
        assert conn.calls.native  # the greenlet mode: the store's calls are awaited
        insert = ("insert into Journals@o1 (ID, description) values (?, ?)", (1, TOO_LONG))
        with pytest.raises(pooldbapi.ProgrammingError, match="HTTP 400"):
            await conn.execute(*insert)
        with pytest.raises(pooldbapi.OperationalError, match="2 client errors"):
            await conn.execute(*insert)
        await conn.close()

    asyncio.run(main())
    assert len([c for c in gateway.calls() if "/Journals" in c]) == 2
