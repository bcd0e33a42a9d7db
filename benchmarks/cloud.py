"""The headline case: a cloud API (SAP CAP behind nginx) that allows R calls per second per API
token. Inserts (one executemany) and reads (one select a call) through 1, 2, 4 and 8 tokens,
against the physical limit tokens x R; rows lost counted; and four processes reading through two
OAuth2 apps (access tokens of 3 s, refresh tokens single-use) sharing limits and tokens through
redis. Writes results/cloud.json."""
from __future__ import annotations

import argparse
import json
import time
from typing import Any

import requests
from common import report

import pooldbapi

WORKER = """
import json, sys, pooldbapi
conn = pooldbapi.connect(json.loads(sys.argv[1]), default="{a,b}", autocommit=True)
conn.execute("select count(*) from Journals where ID = 1")  # $metadata, before the clock runs
print("ready", flush=True)
sys.stdin.readline()
conn.cursor().executemany("insert into Tasks (description) values (?)",
                          [(f"{sys.argv[2]} {i}",) for i in range(int(sys.argv[3]))])
print("done", flush=True)
"""


def _started(code: str, argvs: list[list[str]], refill: float
             ) -> tuple[list[Any], float]:
    """A worker process running code per argv; once every one is ready and `refill` seconds
    have let the limits' allowances refill, each is told to go: the workers and the clock's
    start."""
    import subprocess
    import sys
    procs = [subprocess.Popen([sys.executable, "-c", code, *argv], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for argv in argvs]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(refill)
    start = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    return procs, start


def processes(gateway: Any, store: str, rate: int, seconds: float) -> list[dict[str, Any]]:
    """N processes through the same two tokens, limits shared through the store: calls/s
    against 2 x rate, and the calls nginx refused."""
    rows = []
    for n in (1, 2, 4, 8):
        tag = f"mp{n}"
        containers = {a: f"driver=odata;url={gateway.url};token=tok-{tag}-{a};"
                         f"max-calls-per-second={rate};shared-state={store}"
                      for a in ("a", "b")}
        total = int(2 * rate * seconds)
        share = [total // n + (1 if p < total % n else 0) for p in range(n)]
        procs, start = _started(WORKER, [[json.dumps(containers), f"{tag}-{p}", str(share[p])]
                                         for p in range(n)], 1.5)
        # the clock stops at each worker's last acknowledged row, not at interpreter shutdown
        outs = [proc.stdout.readline().strip() for proc in procs if proc.stdout is not None]
        elapsed = time.perf_counter() - start
        for proc in procs:
            proc.communicate(timeout=600)
        refused = sum(1 for c in gateway.calls() if c.startswith("429 ") and f"tok-{tag}-" in c)
        rows.append({"processes": n, "tokens": 2, "calls": total,
                     "calls_per_s": round(total / elapsed, 1), "limit": 2 * rate,
                     "efficiency": round(total / elapsed / (2 * rate), 3),
                     "refused_429": refused, "all_done": all(o == "done" for o in outs)})
    return rows


OAUTH_WORKER = """
import json, sys, time, pooldbapi
containers, seconds = json.loads(sys.argv[1]), float(sys.argv[2])
conn = pooldbapi.connect(containers)
for alias in containers:  # $metadata and the first token, before the clock runs
    conn.execute(f"select count(*) from Journals@{alias} where ID = 1").fetchone()
print("ready", flush=True)
sys.stdin.readline()
calls, failed, until = 0, 0, time.monotonic() + seconds
while time.monotonic() < until:
    for alias in containers:
        try:
            conn.execute(f"select count(*) from Journals@{alias} where ID <= 10").fetchone()
            calls += 1
        except pooldbapi.Error:
            failed += 1
print(json.dumps([calls, failed]), flush=True)
"""


def _read_for(containers: dict[str, str], seconds: float) -> tuple[int, int, float]:
    """Four processes reading through `containers` for `seconds`: calls, failures, elapsed."""
    procs, start = _started(OAUTH_WORKER, [[json.dumps(containers), str(seconds)]] * 4, 1.0)
    outs = [json.loads(proc.stdout.readline()) for proc in procs if proc.stdout is not None]
    elapsed = time.perf_counter() - start
    for proc in procs:
        proc.communicate(timeout=60)
    return sum(o[0] for o in outs), sum(o[1] for o in outs), elapsed


def oauth_processes(cap: Any, store: str, rate: int, seconds: float) -> list[dict[str, Any]]:
    """Four processes, two apps, max-calls-per-second=rate per app shared through the store,
    for `seconds` (more than three token lifetimes): calls/s against 2 x rate, with static
    tokens and then with OAuth2 (nginx checking every token with the token server); the 401s
    nginx answered, the refresh tokens the server saw used twice."""
    import collections

    from oauth_fixture import TokenServer
    from odata_service_fixture import Gateway
    lifetime = 3.0
    server = TokenServer({"app1": ("bench-secret", "rt-b1"), "app2": ("bench-secret", "rt-b2")},
                         lifetime)
    plain = Gateway(cap.port, rate * 4, burst=rate * 4)
    gateway = Gateway(cap.port, rate * 4, burst=rate * 4, check_url=f"{server.base}/check")
    rows = []
    try:
        limits = f"max-calls-per-second={rate};shared-state={store}"
        static = {f"s{n}": f"driver=odata;url={plain.url};token=tok-static-{n};{limits}"
                  for n in (1, 2)}
        oauth = {f"o{n}": f"driver=odata;url={gateway.url};auth=oauth2;"
                          f"token-url={server.token_url};client-id=app{n};"
                          f"client-secret=bench-secret;refresh-token=rt-b{n};{limits}"
                 for n in (1, 2)}
        for name, containers, seen in (("static token", static, plain),
                                       ("oauth2", oauth, gateway)):
            calls, failed, elapsed = _read_for(containers, seconds)
            uses = collections.Counter(e["refresh"] for e in server.events("refresh"))
            rows.append({"auth": name, "processes": 4, "apps": 2, "seconds": round(elapsed, 1),
                         "calls": calls, "calls_per_s": round(calls / elapsed, 1),
                         "limit": 2 * rate, "efficiency": round(calls / elapsed / (2 * rate), 3),
                         "failed": failed,
                         "tokens_issued": len(server.events("issue")) if name == "oauth2"
                         else "-",
                         "refresh_reused": sum(1 for n in uses.values() if n > 1)
                         if name == "oauth2" else "-",
                         "answered_401": sum(1 for c in seen.calls()
                                             if c.startswith("401 ") and "/eol/" in c)})
    finally:
        plain.close()
        gateway.close()
        server.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=20, help="calls/s the service allows a token")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--no-processes", action="store_true",
                        help="skip the multi-process runs (they start a redis-server)")
    parser.add_argument("--oauth-only", action="store_true",
                        help="only the OAuth2 run: four processes, two apps")
    parser.add_argument("--oauth-seconds", type=float, default=12.0,
                        help="length of the OAuth2 run (tokens live 3 s)")
    args = parser.parse_args()
    from odata_service_fixture import CapService, Gateway
    cap = CapService()
    gateway = Gateway(cap.port, args.rate, burst=2)
    rows: list[dict[str, Any]] = []
    oauth: list[dict[str, Any]] = []
    try:
        def count() -> int:
            return int(requests.get(gateway.url + "Tasks/$count", timeout=10,
                                    headers={"Authorization": "Bearer tok-count"}).text)

        for n in () if args.oauth_only else (1, 2, 4, 8):
            aliases = [f"t{n}_{i}" for i in range(n)]
            conn = pooldbapi.connect(
                {a: f"driver=odata;url={gateway.url};token=tok-{a};"
                    f"max-calls-per-second={args.rate}" for a in aliases}, autocommit=True)
            lst = "{" + ",".join(aliases) + "}"
            conn.execute(f"select count(*) from Journals@{lst} where ID = 1")  # $metadata
            for a in aliases:
                conn.execute(f"select count(*) from Journals@{a} where ID = 1")
            time.sleep(1.5)  # let every token's allowance refill
            total = int(n * args.rate * args.seconds)
            before = count()
            start = time.perf_counter()
            conn.cursor().executemany(f"insert into Tasks@{lst} (description) values (?)",
                                      [(f"bench {i}",) for i in range(total)])
            elapsed = time.perf_counter() - start
            lost = before + total - count()
            rows.append({"operation": "insert", "tokens": n, "calls": total,
                         "calls_per_s": round(total / elapsed, 1), "limit": n * args.rate,
                         "efficiency": round(total / elapsed / (n * args.rate), 3),
                         "rows_lost": lost})
            time.sleep(1.5)
            start = time.perf_counter()
            for _ in range(total):
                conn.execute(f"select count(*) from Journals@{lst} where ID <= 10").fetchone()
            elapsed = time.perf_counter() - start
            rows.append({"operation": "select", "tokens": n, "calls": total,
                         "calls_per_s": round(total / elapsed, 1), "limit": n * args.rate,
                         "efficiency": round(total / elapsed / (n * args.rate), 3),
                         "rows_lost": "-"})
            conn.close()
        calls = gateway.calls()
        too_many = sum(line.startswith("429 ") for line in calls)
        for row in rows:  # what the service refused, per operation and token count
            method = "POST" if row["operation"] == "insert" else "GET"
            row["refused_429"] = sum(1 for line in calls if line.startswith(f"429 {method} ")
                                     and f"tok-t{row['tokens']}_" in line)
        multi: list[dict[str, Any]] = []
        if not args.no_processes:
            from redisserver import RedisServer
            store = RedisServer()
            try:
                if not args.oauth_only:
                    multi = processes(gateway, store.url, args.rate, args.seconds * 2)
                store.flush()
                oauth = oauth_processes(cap, store.url, args.rate, args.oauth_seconds)
            finally:
                store.stop()
    finally:
        gateway.close()
        cap.close()
    if rows:
        report("cloud", rows, ["operation", "tokens", "calls", "calls_per_s", "limit",
                               "efficiency", "rows_lost", "refused_429"])
        print(f"429 answers from the service during the run: {too_many}")
    if multi:
        print()
        report("cloud_processes", multi, list(multi[0]))
    if oauth:
        print()
        report("cloud_oauth", oauth, list(oauth[0]))


if __name__ == "__main__":
    main()
