"""Pools on one PostgreSQL server: checkout plus return, and `select 1` per borrowed connection,
for pooldbapi, raw psycopg (one reused connection), psycopg_pool, DBUtils PooledDB and
SQLAlchemy QueuePool; interleaved rounds, medians. Then peak RSS while iterating a large select
through pooldbapi's streaming cursor against raw psycopg's server-side cursor (each in a
process of its own). Then fairness under contention: threads with their own connections loop
executemany of 3 rows over two SQLite containers whose pools hold 1 or 2 connections; per
thread its calls, the pool timeouts it met and its longest wait for a connection. Writes
results/pool.json, results/memory.json and results/pool_contention.json (--only contention
runs that part alone, e.g. against another checkout with PYTHONPATH).""" 
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import HERE, clusters, report


def per_call(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def contenders(cluster):
    import psycopg
    import psycopg_pool
    import sqlalchemy.pool
    from dbutils.pooled_db import PooledDB

    import pooldbapi
    from pooldbapi.pool import pool_for

    raw = psycopg.connect(cluster.dsn, autocommit=True)
    ppool = psycopg_pool.ConnectionPool(cluster.dsn, min_size=1, max_size=4,
                                        kwargs={"autocommit": True}, open=True)
    dbutils = PooledDB(psycopg, maxconnections=4, mincached=1, host="127.0.0.1",
                       port=cluster.port, user="postgres", dbname="postgres", autocommit=True)
    qpool = sqlalchemy.pool.QueuePool(lambda: psycopg.connect(cluster.dsn, autocommit=True),
                                      pool_size=4, reset_on_return=None)
    spec = {"pg": cluster.conninfo()}
    conn = pooldbapi.connect(spec, autocommit=True)
    pool = pool_for(conn.specs["pg"])

    def p_checkout():
        pool.release(pool.acquire())

    def p_select():
        conn.execute("select 1").fetchall()

    def pp_checkout():
        with ppool.connection():
            pass

    def pp_select():
        with ppool.connection() as c:
            c.execute("select 1").fetchall()

    def raw_select():
        raw.execute("select 1").fetchall()

    return {
        "pooldbapi": (p_checkout, p_select),
        "raw psycopg (reused)": (None, raw_select),
        "psycopg_pool": (pp_checkout, pp_select),
        "DBUtils PooledDB": borrowing(dbutils.connection),
        "SQLAlchemy QueuePool": borrowing(qpool.connect),
    }, lambda: (conn.close(), raw.close(), ppool.close(), dbutils.close(), qpool.dispose())


def borrowing(borrow):
    """Checkout plus return, and `select 1` on a borrowed connection, for a pool whose
    borrow() gives a DB-API connection that close() returns."""
    def checkout():
        borrow().close()

    def select():
        c = borrow()
        cur = c.cursor()
        cur.execute("select 1")
        cur.fetchall()
        c.close()
    return checkout, select


MEMORY = r"""
import resource, sys
sys.path.insert(0, {tests!r})
rows = 0
if {which!r} == "raw":
    import psycopg
    with psycopg.connect({dsn!r}) as c:
        cur = c.cursor(name="big")
        cur.itersize = 2000
        cur.execute({query!r})
        for row in cur:
            rows += 1
else:
    import pooldbapi
    conn = pooldbapi.connect({{"pg": {conninfo!r}}})
    for row in conn.cursor(stream=True).execute({query!r}):
        rows += 1
    conn.close()
print(rows, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def memory(cluster, rows: int) -> list[dict]:
    query = f"select i, 'row ' || i as label from generate_series(1, {rows}) i"
    out = {}
    for which in ("raw", "pooldbapi"):
        code = MEMORY.format(tests=str(HERE.parent / "tests"), which=which, dsn=cluster.dsn,
                             conninfo=cluster.conninfo(), query=query)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True)
        count, rss = map(int, done.stdout.split())
        assert count == rows
        out[which] = rss / 1024
    return [{"case": f"iterate {rows:,} rows", "raw_server_cursor_peak_mib":
             round(out["raw"], 1), "pooldbapi_stream_peak_mib": round(out["pooldbapi"], 1),
             "ratio": round(out["pooldbapi"] / out["raw"], 3)}]


def contention(maximum: int, threads: int, seconds: float, tmp: Path) -> dict:
    """Threads with their own connections each loop executemany of 3 rows over {a,b} (pools of
    `maximum`, pool-timeout 2 s) for `seconds`; a pool timeout is counted and the loop goes on.
    Each thread's longest wait is the longest any one of its Pool.acquire() calls took."""
    import pooldbapi
    from pooldbapi import pool as pool_module
    spec = {alias: f"driver=sqlite;database={tmp / f'{maximum}-{threads}-{alias}.db'};"
                   f"maximum-number-of-pooled-connections={maximum};pool-timeout=2"
            for alias in "ab"}
    setup = pooldbapi.connect(spec, default="{a,b}", broadcast_ddl=True, autocommit=True)
    setup.execute("create table t (x int)")
    setup.close()
    longest = [0.0] * threads
    calls = [0] * threads
    timeouts = [0] * threads
    mine = threading.local()
    acquire = pool_module.Pool.acquire

    def timed(self):
        start = time.perf_counter()
        try:
            return acquire(self)
        finally:
            index = getattr(mine, "index", None)
            if index is not None:
                longest[index] = max(longest[index], time.perf_counter() - start)

    stop = threading.Event()

    def worker(i: int) -> None:
        mine.index = i
        conn = pooldbapi.connect(spec, default="{a,b}", autocommit=True)
        cur = conn.cursor()
        while not stop.is_set():
            try:
                cur.executemany("insert into t values (?)", [(i,), (i,), (i,)])
                calls[i] += 1
            except pooldbapi.OperationalError as exc:
                if "no free physical connection" not in str(exc):
                    raise
                timeouts[i] += 1
        conn.close()

    pool_module.Pool.acquire = timed
    try:
        workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
        for w in workers:
            w.start()
        time.sleep(seconds)
        stop.set()
        for w in workers:
            w.join()
    finally:
        pool_module.Pool.acquire = acquire
        pooldbapi.close_all()
    return {"pool": maximum, "threads": threads, "seconds": seconds,
            "calls_per_thread": "/".join(str(c) for c in calls),
            "fewest_vs_most": round(min(calls) / max(calls), 3) if max(calls) else 0.0,
            "pool_timeouts": sum(timeouts),
            "longest_wait_ms_per_thread": "/".join(f"{w * 1e3:.1f}" for w in longest)}


CONTENTION = ["pool", "threads", "seconds", "calls_per_thread", "fewest_vs_most",
              "pool_timeouts", "longest_wait_ms_per_thread"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=8.0, help="per contention case")
    parser.add_argument("--only", choices=["contention"])
    args = parser.parse_args()
    if args.only != "contention":
        checkouts(args)
        print()
    # on tmpfs where there is one: the question is the pool's order, not the disk's fsync
    shm = "/dev/shm" if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(dir=shm) as tmp:
        report("pool_contention", [contention(m, t, args.seconds, Path(tmp))
                                   for m, t in ((1, 2), (1, 4), (2, 4), (2, 8))], CONTENTION)


def checkouts(args: argparse.Namespace) -> None:
    with clusters() as factory:
        cluster = factory.new()
        cases, close = contenders(cluster)
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            for name, (checkout, select) in cases.items():
                if checkout is not None:
                    times.setdefault((name, "checkout"), []).append(per_call(checkout, args.n))
                times.setdefault((name, "select"), []).append(per_call(select, args.n // 4))
        close()
        raw = statistics.median(times[("raw psycopg (reused)", "select")])
        ppool = statistics.median(times[("psycopg_pool", "checkout")])
        rows = []
        for name in cases:
            checkout = times.get((name, "checkout"))
            sel = statistics.median(times[(name, "select")])
            rows.append({"pool": name,
                         "checkout_return_us": round(statistics.median(checkout), 2)
                         if checkout else "-",
                         "vs_psycopg_pool": round(statistics.median(checkout) / ppool, 3)
                         if checkout else "-",
                         "select1_us": round(sel, 2), "vs_raw": round(sel / raw, 3)})
        report("pool", rows, ["pool", "checkout_return_us", "vs_psycopg_pool", "select1_us",
                              "vs_raw"])
        print()
        report("memory", memory(cluster, args.rows), ["case", "raw_server_cursor_peak_mib",
                                                      "pooldbapi_stream_peak_mib", "ratio"])


if __name__ == "__main__":
    main()
