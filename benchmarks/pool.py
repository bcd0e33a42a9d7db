"""Pools on one PostgreSQL server: checkout plus return, and `select 1` per borrowed connection,
for pooldbapi, raw psycopg (one reused connection), psycopg_pool, DBUtils PooledDB and
SQLAlchemy QueuePool; interleaved rounds, medians. Then peak RSS while iterating a large select
through pooldbapi's streaming cursor against raw psycopg's server-side cursor (each in a
process of its own). Writes results/pool.json and results/memory.json."""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from common import HERE, report


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

    def du_checkout():
        dbutils.connection().close()

    def du_select():
        c = dbutils.connection()
        cur = c.cursor()
        cur.execute("select 1")
        cur.fetchall()
        c.close()

    def qp_checkout():
        qpool.connect().close()

    def qp_select():
        c = qpool.connect()
        cur = c.cursor()
        cur.execute("select 1")
        cur.fetchall()
        c.close()

    def raw_select():
        raw.execute("select 1").fetchall()

    return {
        "pooldbapi": (p_checkout, p_select),
        "raw psycopg (reused)": (None, raw_select),
        "psycopg_pool": (pp_checkout, pp_select),
        "DBUtils PooledDB": (du_checkout, du_select),
        "SQLAlchemy QueuePool": (qp_checkout, qp_select),
    }, lambda: (conn.close(), raw.close(), ppool.close(), dbutils.close(), qpool.dispose())


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    from pgcluster import ClusterFactory
    factory = ClusterFactory()
    try:
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
    finally:
        factory.close()


if __name__ == "__main__":
    main()
