"""The odata back-end against a real OData v4 service (SAP CAP) behind nginx, which rate-limits
each API token on its own."""
from __future__ import annotations

import collections
import decimal
import email.utils
import itertools
import time

import pytest
import requests

import pooldbapi
from pooldbapi.health import HEALTH

ALIASES = ("eol1", "eol2", "eol3", "eol4", "eol5")


def containers(gateway, aliases=ALIASES, **extra):
    tail = "".join(f";{k}={v}" for k, v in extra.items())
    return {a: f"driver=odata;url={gateway.url};token=tok-{a}{tail}" for a in aliases}


def tasks(gateway):
    response = requests.get(gateway.url + "Tasks/$count", headers={
        "Authorization": "Bearer tok-count"}, timeout=10)
    return int(response.text)


@pytest.fixture(autouse=True)
def _forget_health():
    HEALTH.reset()
    yield
    HEALTH.reset()


def test_count_over_five_tokens_runs_two_on_each(gateways):
    gateway = gateways()
    conn = pooldbapi.connect(containers(gateway))
    ran = {}
    for _ in range(10):
        cur = conn.execute("select count(*) from Journals@{eol1,eol2,eol3,eol4,eol5}")
        assert cur.fetchone() == (2500,)
        for alias, n in cur.containers.items():
            ran[alias] = ran.get(alias, 0) + n
    assert ran == {a: 2 for a in ALIASES}
    calls = gateway.calls()
    for alias in ALIASES:  # the service counts: $count, not the rows
        assert sum(f"tok-{alias}" in line and "/Journals/$count" in line for line in calls) == 2
    where = conn.execute("select count(*) from Journals@eol1 where amount > ?", (98,))
    assert where.fetchone() == (50,)  # 98.5 and 99.5 in every hundred
    assert gateway.wait_for("/Journals/$count?$filter=amount gt 98")
    grouped = conn.execute("select count(*) from Journals@eol1 group by entered")
    assert len(grouped.fetchall()) > 1  # not a bare count: evaluated locally
    conn.close()


def test_reads_page_through_next_links(gateways):
    gateway = gateways()
    conn = pooldbapi.connect(containers(gateway, ("eol1",)))
    rows = conn.execute("select ID from Journals@eol1 where ID <= 2500").fetchall()
    assert sorted(r[0] for r in rows) == list(range(1, 2501))  # the service pages by 1000
    assert sum("skiptoken" in line for line in gateway.calls()) == 2
    conn.close()


def test_rate_limit_headers_hold_the_container(gateways):
    gateway = gateways(headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"})
    conn = pooldbapi.connect(containers(gateway, ("eol1",)), autocommit=True)
    for i in range(3):
        conn.execute("insert into Tasks@eol1 (description) values (?)", (f"held {i}",))
    times = [float(line.split()[-1]) for line in gateway.calls() if "POST" in line]
    assert len(times) == 3
    # each answer said "none left, reset in 1 s": the next call waited for it
    assert all(later - earlier >= 0.9 for earlier, later in itertools.pairwise(times))
    conn.close()


def test_inserts_over_a_weighted_list_land_one_to_two(gateways):
    gateway = gateways()
    conn = pooldbapi.connect(containers(gateway, ("eol1", "eol2")))
    before = tasks(gateway)
    ran = {}
    for i in range(30):
        cur = conn.execute("insert into Tasks@{eol1,eol2,eol2} (description) values (?)",
                           (f"task {i}",))
        for alias, n in cur.containers.items():
            ran[alias] = ran.get(alias, 0) + n
    conn.rollback()  # writes are immediate: nothing to undo
    assert ran == {"eol1": 10, "eol2": 20}
    assert tasks(gateway) == before + 30
    posts = [line for line in gateway.calls() if "POST" in line]
    assert sum("tok-eol1" in line for line in posts) == 10
    assert sum("tok-eol2" in line for line in posts) == 20
    conn.close()


def test_columns_and_simple_predicates_are_pushed_down(gateways):
    gateway = gateways()
    conn = pooldbapi.connect(containers(gateway, ("eol1",)))
    cur = conn.execute("select j.ID, j.amount from Journals@eol1 j where j.amount > ? and"
                       " j.description like 'journal 1%' and j.ID between 100 and 199"
                       " order by j.ID", (98,))
    rows = cur.fetchall()
    assert [r[0] for r in rows] == [198, 199]
    assert isinstance(rows[0][1], decimal.Decimal) and rows[0][1] == decimal.Decimal("98.5")
    assert cur.description[1][1] == pooldbapi.NUMBER
    found = gateway.wait_for("$select=ID,amount,description&$filter=amount gt 98 and"
                             " startswith(description, 'journal 1') and"
                             " (ID ge 100 and ID le 199)&$orderby=ID asc")
    assert len(found) == 1  # 'entered' is not asked for
    conn.close()


def test_a_top_level_or_on_one_entity_set_goes_whole_into_the_filter(gateways):
    gateway = gateways()
    conn = pooldbapi.connect(containers(gateway, ("eol1",)))
    rows = conn.execute("select j.ID from Journals@eol1 j where j.ID = ? or j.ID between 7"
                        " and 8 order by j.ID", (3,)).fetchall()
    assert rows == [(3,), (7,), (8,)]
    found = gateway.wait_for("$select=ID&$filter=(ID eq 3 or (ID ge 7 and ID le 8))"
                             "&$orderby=ID asc")
    assert len(found) == 1  # three rows asked for, not the 2,500
    conn.close()


def test_join_of_odata_with_sqlite(gateways, tmp_path):
    gateway = gateways()
    conn = pooldbapi.connect({**containers(gateway, ("eol1",)),
                              "lite": f"driver=sqlite;database={tmp_path / 'l.db'}"},
                             autocommit=True)
    conn.execute("create table months@lite (m int, name text)")
    conn.cursor().executemany("insert into months@lite values (?, ?)", [(1, "jan"), (2, "feb")])
    rows = conn.execute("select m.name, count(*) from Journals@eol1 j join months@lite m"
                        " on m.m = j.ID where j.ID < 3 group by m.name order by m.name"
                        ).fetchall()
    assert rows == [("feb", 1), ("jan", 1)]
    conn.close()


def test_a_429_storm_is_retried_and_every_row_lands_once(gateways):
    gateway = gateways(rate=4, burst=1, retry_after=1)
    conn = pooldbapi.connect(containers(gateway, ("eol1", "eol2")), autocommit=True)
    before = tasks(gateway)
    cur = conn.cursor()
    cur.executemany("insert into Tasks@{eol1,eol2} (description) values (?)",
                    [(f"storm {i}",) for i in range(12)])
    assert cur.rowcount == 12 and cur.containers == {"eol1": 6, "eol2": 6}
    assert tasks(gateway) == before + 12
    statuses = [line.split()[0] for line in gateway.calls() if "POST" in line]
    assert statuses.count("201") == 12 and statuses.count("429") > 0
    conn.close()


def test_a_query_in_the_service_url_goes_with_every_call(gateways):
    gateway = gateways()
    conn = pooldbapi.connect(
        {"q": f"driver=odata;url={gateway.url}?sap-language=EN&access_token=Qs3cret;token=tok-q"})
    assert conn.execute("select count(*) from Journals@q").fetchone()[0] == 2500
    calls = gateway.wait_for("Journals")
    assert calls and all("sap-language=EN" in c and "access_token=Qs3cret" in c for c in calls)
    assert not [c for c in gateway.calls() if "EN/" in c or "Qs3cret/" in c]  # never in the path
    conn.close()


@pytest.mark.parametrize("token, code, first_call, statement", [
    # the write's first call reads $metadata: refused there
    ("wrong-secret", 401, "401 ", "insert into Tasks@bad (description) values ('x')"),
    ("tok-forbidden", 403, "403 GET ", "select count(*) from Journals@bad"),  # known, not allowed
])
def test_a_refused_token_is_raised_at_once_naming_the_container_and_never_retried(
        gateways, token, code, first_call, statement):
    """README: a 401 or 403 is raised at once, naming the container, never retried (and the
    container is not marked unhealthy: the service is up, the token is not allowed)."""
    gateway = gateways()
    conn = pooldbapi.connect({"bad": f"driver=odata;url={gateway.url};token={token}"})
    with pytest.raises(pooldbapi.OperationalError, match=f"bad: HTTP {code}") as info:
        conn.execute(statement)
    assert token not in str(info.value)
    calls = [c for c in gateway.calls() if token in c]
    assert len(calls) == 1 and calls[0].startswith(first_call)  # the first, not retried
    assert "bad" not in pooldbapi.health()
    conn.close()


def test_rejected_keys(gateways):
    conn = pooldbapi.connect({"o": "driver=odata;url=http://127.0.0.1:1/;colour=red"})
    with pytest.raises(pooldbapi.InterfaceError, match="'o'.*rejects the key 'colour'"):
        conn.execute("select 1 from Tasks@o")


def test_a_service_that_goes_away_mid_run(gateways):
    one, two = gateways(), gateways()
    conn = pooldbapi.connect({"eol1": f"driver=odata;url={one.url};token=tok-1",
                              "eol2": f"driver=odata;url={two.url};token=tok-2"})
    for i in range(12):
        if i == 4:
            two.stop()
        assert conn.execute("select count(*) from Journals@{eol1,eol2} where ID <= 10"
                            ).fetchone() == (10,)
    assert not pooldbapi.health()["eol2"].healthy
    conn.close()


def test_delete_and_update_by_key(gateways):
    gateway = gateways()
    conn = pooldbapi.connect(containers(gateway, ("eol1",)), autocommit=True)
    conn.execute("insert into Journals@eol1 (ID, amount, description) values (?, ?, ?)",
                 (90001, 1.5, "to change"))
    cur = conn.execute("update Journals@eol1 set description = ? where ID = ?",
                       ("changed", 90001))
    assert cur.rowcount == 1
    assert conn.execute("select description from Journals@eol1 where ID = 90001"
                        ).fetchall() == [("changed",)]
    assert conn.execute("delete from Journals@eol1 where ID = ?", (90001,)).rowcount == 1
    assert conn.execute("delete from Journals@eol1 where ID = ?", (90001,)).rowcount == 0
    conn.close()


def test_update_and_delete_by_predicate_go_row_by_row_over_the_list(gateways):
    gateway = gateways()
    conn = pooldbapi.connect(containers(gateway, ("eol1", "eol2")), autocommit=True)
    cur = conn.cursor()
    cur.executemany("insert into Journals@{eol1,eol2} (ID, amount, description) values"
                    " (?, ?, ?)", [(80000 + i, 1.0, "bulk-upd") for i in range(6)])
    cur.execute("update Journals@{eol1,eol2} set description = ? where description = ?",
                ("bulk-done", "bulk-upd"))
    assert cur.rowcount == 6 and cur.containers == {"eol1": 3, "eol2": 3}
    patches = [c for c in gateway.calls() if "PATCH" in c]
    assert len(patches) == 6 and all(c.startswith(("200 ", "204 "))
                                     for c in patches)
    assert conn.execute("select count(*) from Journals@eol1 where description = 'bulk-done'"
                        ).fetchone() == (6,)
    cur.execute("delete from Journals@{eol1,eol2} where ID >= ? and description = 'bulk-done'",
                (80000,))
    assert cur.rowcount == 6 and sum(cur.containers.values()) == 6
    assert conn.execute("select count(*) from Journals@eol2 where ID >= 80000").fetchone() \
        == (0,)
    conn.close()


def test_ordering_and_limit_are_pushed_where_the_statement_allows(gateways):
    gateway = gateways()
    conn = pooldbapi.connect(containers(gateway, ("eol1",)))
    rows = conn.execute("select ID, amount from Journals@eol1 where amount > 98"
                        " order by amount desc, ID limit 3").fetchall()
    assert [r[0] for r in rows] == [99, 199, 299]
    assert gateway.wait_for("$orderby=amount desc,ID asc&$top=3")
    grouped = conn.execute("select entered, count(*) from Journals@eol1 group by entered"
                           " order by 2 desc limit 1").fetchall()
    assert len(grouped) == 1
    assert gateway.wait_for("$select=entered")  # the grouped read: columns only
    assert not gateway.wait_for("$select=entered&$orderby", 0.5)  # grouped: evaluated locally
    conn.close()
    conn = pooldbapi.connect(containers(gateway, ("eol1",)))
    rows = conn.execute("select ID from Journals@eol1 where ID < 5 order by 1 desc limit 2")
    assert rows.fetchall() == [(4,), (3,)]  # ordering by position: evaluated locally
    conn.close()


def test_an_update_whose_literal_holds_where_sets_exactly_that_literal(gateways):
    gateway = gateways()
    conn = pooldbapi.connect(containers(gateway, ("eol1", "eol2")), autocommit=True)
    cur = conn.cursor()
    cur.executemany("insert into Journals@{eol1,eol2} (ID, amount, description) values"
                    " (?, ?, ?)", [(70000 + i, 1.0, "lit-upd") for i in range(2)])
    cur.execute("update Journals@{eol1,eol2} set description = 'x where y; (a),(b)'"
                " where description = ?", ("lit-upd",))
    assert cur.rowcount == 2
    assert conn.execute("select count(*) from Journals@eol1 where description ="
                        " 'x where y; (a),(b)'").fetchone() == (2,)
    conn.execute("delete from Journals@{eol1,eol2} where ID >= 70000 and ID < 70002")
    conn.close()


@pytest.mark.parametrize(("update", "params", "delete", "key"), [
    ("update Journals@{eol1,eol2} set description = :d where description = :old",
     {"d": "styled", "old": "style-upd"}, "delete from Journals@{eol1,eol2} where ID >= :lo",
     {"lo": 60000}),
    ("update Journals@{eol1,eol2} set description = :1 where description = :2",
     ["styled", "style-upd"], "delete from Journals@{eol1,eol2} where ID >= :1", [60000]),
    ("update Journals@{eol1,eol2} set description = %(d)s where description = %(old)s",
     {"d": "styled", "old": "style-upd"},
     "delete from Journals@{eol1,eol2} where ID >= %(lo)s", {"lo": 60000}),
])
def test_updates_and_deletes_by_predicate_take_every_placeholder_style(gateways, update, params,
                                                                        delete, key):
    gateway = gateways()
    conn = pooldbapi.connect(containers(gateway, ("eol1", "eol2")), autocommit=True)
    cur = conn.cursor()
    cur.executemany("insert into Journals@{eol1,eol2} (ID, amount, description) values"
                    " (?, ?, ?)", [(60000 + i, 1.0, "style-upd") for i in range(4)])
    assert cur.execute(update, params).rowcount == 4
    assert conn.execute("select count(*) from Journals@{eol1,eol2} where description ="
                        " 'styled'").fetchone() == (4,)
    assert cur.execute(delete, key).rowcount == 4
    assert conn.execute("select count(*) from Journals@eol1 where ID >= 60000").fetchone() \
        == (0,)
    conn.close()


MULTI = """
import json, sys, pooldbapi
conn = pooldbapi.connect(json.loads(sys.argv[1]), default="{eol1,eol2}", autocommit=True)
tag, n = sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()  # every process starts its calls together (their start-up differs)
try:
    conn.cursor().executemany("insert into Tasks (description) values (?)",
                              [(f"{tag} {i}",) for i in range(n)])
    print("ok")
except pooldbapi.Error as exc:
    print("error", exc)
"""


def _processes(containers, tag, processes=4, rows=20):
    import json
    import subprocess
    import sys
    procs = [subprocess.Popen([sys.executable, "-c", MULTI, json.dumps(containers),
                               f"{tag}-{p}", str(rows)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
             for p in range(processes)]
    assert [p.stdout.readline().strip() for p in procs] == ["ready"] * processes
    for p in procs:  # every one told before any is waited for
        p.stdin.write("go\n")
        p.stdin.flush()
    return [p.communicate(timeout=300)[0].strip() for p in procs]


def _stored(gateway, tag):
    import requests
    response = requests.get(gateway.url + f"Tasks?$filter=startswith(description,'{tag}-')"
                            "&$select=description", timeout=30,
                            headers={"Authorization": "Bearer tok-count"})
    return [row["description"] for row in response.json()["value"]]


def test_processes_sharing_a_store_stay_within_each_tokens_limit(gateways, redis_server):
    """Four processes, the same two API tokens, nginx allowing 20 calls a second a token: with
    shared-state the processes share each token's 20 calls, every row lands once and nginx
    answers no insert with 429; without it they send four times that (shown, not hidden)."""
    gateway = gateways(rate=20, burst=2)
    redis_server.flush()

    def containers(token, shared, gateway=gateway, rate=20):
        tail = f";shared-state={redis_server.url}" if shared else ""
        return {a: f"driver=odata;url={gateway.url};token=tok-{token}-{a};"
                   f"max-calls-per-second={rate};rate-limit-wait=3{tail}"
                for a in ("eol1", "eol2")}

    assert _processes(containers("shared", True), "mp-shared") == ["ok"] * 4
    stored = _stored(gateway, "mp-shared")
    assert sorted(stored) == sorted(f"mp-shared-{p} {i}" for p in range(4) for i in range(20))
    posts = [c for c in gateway.calls() if " POST " in c and "tok-shared" in c]
    assert len(posts) == 80 and not [c for c in posts if c.startswith("429 ")]

    # without the store: a gateway allowing 5 calls a second a token, and processes each
    # sending 5 (a rate the service serves four times over, whatever the machine's load)
    slow = gateways(rate=5, burst=1)
    outcomes = _processes(containers("alone", False, slow, 5), "mp-alone")
    refused = [c for c in slow.calls() if c.startswith("429 ") and "tok-alone" in c]
    assert refused  # per-process limits: four processes send four times a token's rate
    assert any(o.startswith("error") for o in outcomes) or len(refused) >= 4


def test_429s_are_retried_until_rate_limit_wait_is_spent(gateways):
    gateway = gateways(rate=1, burst=1)
    short = pooldbapi.connect({"s": f"driver=odata;url={gateway.url};token=tok-short;"
                                    "rate-limit-wait=0.3"}, autocommit=True)
    with pytest.raises(pooldbapi.OperationalError, match="HTTP 429") as info:
        short.cursor().executemany("insert into Tasks (description) values (?)",
                                   [(f"short {i}",) for i in range(4)])
    assert info.value.row is not None and info.value.row >= 1
    short.close()
    patient = pooldbapi.connect({"p": f"driver=odata;url={gateway.url};token=tok-patient;"
                                      "rate-limit-wait=30"}, autocommit=True)
    patient.cursor().executemany("insert into Tasks (description) values (?)",
                                 [(f"patient {i}",) for i in range(4)])
    calls = [c for c in gateway.calls() if "tok-patient" in c and " POST " in c]
    assert sum(c.startswith("201 ") for c in calls) == 4  # every row, once
    assert any(c.startswith("429 ") for c in calls)      # after being told to slow down
    patient.close()


def test_a_read_that_meets_503_is_tried_max_tries_times(gateways):
    gateway = gateways(unavailable=True)
    conn = pooldbapi.connect({"m": f"driver=odata;url={gateway.url};token=tok-maint;"
                                   "max-tries=3"}, autocommit=True)
    with pytest.raises(pooldbapi.Error, match="503"):
        conn.execute("select count(*) from Journals@m")
    calls = [c for c in gateway.calls() if "tok-maint" in c]
    assert len(calls) == 3 and all(c.startswith("503 GET ") for c in calls)
    conn.close()


def test_a_5xx_marks_the_container_unhealthy_and_the_list_goes_on_without_it(gateways):
    """README: a refused connection or a 5xx marks the container unhealthy; strategies skip
    it while another container of the list is healthy."""
    down = gateways(unavailable=True)
    up = gateways()
    conn = pooldbapi.connect({"down": f"driver=odata;url={down.url};token=tok-5xx;max-tries=1",
                              "up": f"driver=odata;url={up.url};token=tok-ok"},
                             autocommit=True, seed=2)
    with pytest.raises(pooldbapi.Error, match="503"):
        conn.execute("select count(*) from Journals@down")
    state = pooldbapi.health()["down"]
    assert not state.healthy and state.failures >= 1 and "503" in (state.last_error or "")
    ran = collections.Counter()
    for _ in range(6):
        cur = conn.execute("select count(*) from Journals@{down,up} where ID = 1")
        ran.update(cur.containers)
    assert ran == {"up": 6}  # skipped while unhealthy
    conn.close()


def test_a_retry_after_http_date_is_waited_until_and_a_past_one_backs_off(gateways):
    """README: 429 is retried after Retry-After, seconds or an HTTP date. The date is absolute:
    the retry waits until it; once it is past, retries back off instead of calling in a loop."""
    until = int(time.time()) + 3
    gateway = gateways(rate=1, burst=1, retry_after=email.utils.formatdate(until, usegmt=True))
    conn = pooldbapi.connect({"d": f"driver=odata;url={gateway.url};token=tok-date;"
                                   "rate-limit-wait=30"}, autocommit=True)
    conn.cursor().executemany("insert into Tasks (description) values (?)",
                              [(f"dated {i}",) for i in range(6)])
    calls = [c for c in gateway.calls() if "tok-date" in c and " POST " in c]
    assert sum(c.startswith("201 ") for c in calls) == 6  # every row, once
    first = next(i for i, c in enumerate(calls) if c.startswith("429 "))
    assert float(calls[first].split()[-1]) < until - 1   # refused well before the date
    assert float(calls[first + 1].split()[-1]) >= until - 0.01  # the retry waited for it
    # the date is past for the later 429s: a back-off each, not hundreds of calls a second
    assert len(calls) < 6 + 30
    conn.close()
