"""Does the invariant hold under many faults? Scenario x trials x violations, fault points drawn
at random (seedable), each trial checked against the databases themselves: PostgreSQL clusters,
OData services (CAP on SQLite files behind nginx) and SQLite files, each scenario through the
synchronous API and pooldbapi.aio (--api); then a load of many threads
with their own connections over few pooled sessions, once per strategy and once in autocommit
(one-row inserts on the sessions the connections keep): calls, pool timeouts, hangs, rows the
clusters hold against the rows committed, units left in flight.

    python benchmarks/faults.py [--trials 150] [--crash-trials 25] [--odata-trials 50]
                                [--sqlite-trials 100] [--seed 1] [--api both]
                                [--load-seconds 60] [--threads 16]
                                [--strategies round-robin,least-busy]

The full-file-system scenarios mount a small tmpfs (root only); elsewhere they are left out,
with the reason printed.
"""
from __future__ import annotations

import argparse
import logging
import random
import tempfile
import threading
import time
from pathlib import Path

import psycopg
from common import report
from faultlab import CRASH_SCENARIOS, SCENARIOS, Lab
from faultlab_odata import SCENARIOS as ODATA_SCENARIOS
from faultlab_odata import ODataLab
from faultlab_sqlite import (
    CONFLICT_SCENARIOS,
    FULL_SCENARIOS,
    LOCK_SCENARIOS,
    SqliteLab,
    full_lab,
)
from pgcluster import ClusterFactory

import pooldbapi
from pooldbapi.settings import make_spec
from pooldbapi.strategy import IN_FLIGHT


def trials(lab: Lab | ODataLab | SqliteLab, scenarios: dict, count: int, seed: str,
           prefix: str = "") -> list[dict]:
    rows = []
    for plain, scenario in scenarios.items():
        name = prefix + plain
        violations, errors, examples = 0, 0, []
        started = time.perf_counter()
        for trial in range(count):
            try:
                found = scenario(lab, random.Random(f"{seed}/{name}/{trial}"))
            except Exception as exc:  # noqa: BLE001 - an unexpected error is counted, not fatal
                errors += 1
                found = [f"raised {type(exc).__name__}: {exc}"]
                lab.ensure_up()
            if found:
                violations += 1
                examples.append(found[0])
        rows.append({"scenario": name, "trials": count, "violations": violations,
                     "errors": errors, "ms_per_trial": (time.perf_counter() - started) * 1000
                     / max(count, 1), "example": examples[0][:100] if examples else ""})
        print(f"  {name}: {violations} violations in {count} trials", flush=True)
    return rows


def load(factory: ClusterFactory, seconds: float, threads: int, strategy: str,
         autocommit: bool = False) -> dict:
    """Threads with their own connections over 3 containers, pool maximum 4 each: executemany
    over the list and commit, as fast as they can; then the rows the clusters hold are counted
    against the rows of the commits that returned (a commit that raised keeps none). In
    autocommit each thread instead inserts one row at a time into one container (thread t
    into p(t mod 3 + 1): five or six threads over a pool of four), the repeated statement
    running on the session its connection keeps while no other thread waits for it; the rows
    held are counted against the inserts that returned."""
    clusters = [factory.new() for _ in range(3)]
    extra = {"maximum-number-of-pooled-connections": "4", "pool-timeout": "10"}
    specs = {f"p{i + 1}": c.conninfo(**extra) for i, c in enumerate(clusters)}
    admin = pooldbapi.connect(specs, default="{p1,p2,p3}", broadcast_ddl=True, autocommit=True)
    admin.execute("create table load (id bigint primary key, t int)")
    admin.close()
    per_call = 1 if autocommit else 6
    calls = [0] * threads
    timeouts = [0] * threads
    other: list[str] = []
    stop = time.monotonic() + seconds

    def worker(t: int) -> None:
        if autocommit:
            conn = pooldbapi.connect(specs, default=f"p{t % 3 + 1}", autocommit=True)
        else:
            conn = pooldbapi.connect(specs, default="{p1,p2,p3}", seed=t, strategy=strategy)
        cur = conn.cursor()
        n = 0
        while time.monotonic() < stop:
            rows = [((t << 32) + n + j, t) for j in range(per_call)]
            n += per_call
            try:
                if autocommit:
                    cur.execute("insert into load (id, t) values (?, ?)", rows[0])
                else:
                    cur.executemany("insert into load (id, t) values (?, ?)", rows)
                    conn.commit()
                calls[t] += 1
            except pooldbapi.OperationalError as err:
                conn.rollback()
                if "no free physical connection" in str(err):
                    timeouts[t] += 1
                else:
                    other.append(str(err))
        conn.close()

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(seconds + 60)
    elapsed = time.perf_counter() - started
    hung = sum(thread.is_alive() for thread in pool)
    in_use = sum(s.in_use for s in pooldbapi.pool_stats())
    in_flight = sum(IN_FLIGHT.count(spec) for spec in _keys(specs))
    held = 0
    for cluster in clusters:
        with psycopg.connect(cluster.dsn) as raw:
            held += raw.execute("select count(*) from load").fetchone()[0]
        cluster.stop("immediate")
    return {"strategy": "one container each, autocommit" if autocommit else strategy,
            "threads": threads, "containers": 3, "pool_maximum": 4,
            "seconds": elapsed, "commits": sum(calls), "commits_per_s": sum(calls) / elapsed,
            "pool_timeouts": sum(timeouts), "other_errors": len(other), "hung_threads": hung,
            "in_use_after": in_use, "rows_off": held - per_call * sum(calls),
            "in_flight_after": in_flight}


def _keys(specs: dict[str, str]) -> list[str]:
    """The container definitions' keys, as the process-wide counts are kept."""
    return [make_spec(alias, text).key for alias, text in specs.items()]


def other_trials(args: argparse.Namespace, api: str, prefix: str) -> list[dict]:
    """The OData and SQLite scenarios (tests/faultlab_odata.py, tests/faultlab_sqlite.py)."""
    rows = []
    if args.odata_trials:
        odata = ODataLab(api=api)
        try:
            rows += trials(odata, ODATA_SCENARIOS, args.odata_trials, args.seed, prefix)
        finally:
            odata.close()
    if args.sqlite_trials:
        folder = Path(tempfile.mkdtemp(prefix="pooldbapi-faults-"))
        (folder / "locks").mkdir()
        locks = SqliteLab(folder / "locks", api=api)
        try:
            rows += trials(locks, LOCK_SCENARIOS, args.sqlite_trials, args.seed, prefix)
            rows += trials(locks, CONFLICT_SCENARIOS, args.sqlite_trials, args.seed, prefix)
        finally:
            locks.close()
        with full_lab(folder, api=api) as full:
            if isinstance(full, str):
                print(f"  left out: {', '.join(FULL_SCENARIOS)}: {full}")
            else:
                rows += trials(full, FULL_SCENARIOS, args.sqlite_trials, args.seed, prefix)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=150)
    parser.add_argument("--crash-trials", type=int, default=25)
    parser.add_argument("--odata-trials", type=int, default=50)
    parser.add_argument("--sqlite-trials", type=int, default=100)
    parser.add_argument("--seed", default="1")
    parser.add_argument("--load-seconds", type=float, default=60)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--api", choices=["sync", "aio", "both"], default="both",
                        help="the scenarios through the synchronous API, pooldbapi.aio,"
                             " or each through both")
    parser.add_argument("--strategies", default="round-robin,least-busy",
                        help="the load runs once per strategy (comma-separated)")
    args = parser.parse_args()
    for name in ("pooldbapi", "psycopg"):  # faults are the point here: no warnings for them
        logging.getLogger(name).setLevel(logging.CRITICAL)
    factory = ClusterFactory()
    try:
        clusters = [factory.new(synchronous_commit="on"), factory.new(synchronous_commit="on")]
        rows = []
        for api in (["sync", "aio"] if args.api == "both" else [args.api]):
            lab = Lab(clusters, api=api)
            prefix = "pooldbapi.aio: " if api == "aio" else ""
            rows += trials(lab, SCENARIOS, args.trials, args.seed, prefix)
            rows += trials(lab, CRASH_SCENARIOS, args.crash_trials, args.seed, prefix)
            rows += other_trials(args, api, prefix)
        total = {"scenario": "all", "trials": sum(r["trials"] for r in rows),
                 "violations": sum(r["violations"] for r in rows),
                 "errors": sum(r["errors"] for r in rows),
                 "ms_per_trial": sum(r["ms_per_trial"] * r["trials"] for r in rows)
                 / max(sum(r["trials"] for r in rows), 1), "example": ""}
        report("faults", [*rows, total],
               ["scenario", "trials", "violations", "errors", "ms_per_trial", "example"])
        if args.load_seconds > 0:
            print()
            results = [load(factory, args.load_seconds, args.threads, strategy)
                       for strategy in args.strategies.split(",")]
            results.append(load(factory, args.load_seconds, args.threads, "", autocommit=True))
            report("faults_load", results, list(results[0]))
    finally:
        factory.close()


if __name__ == "__main__":
    main()
