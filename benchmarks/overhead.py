"""Per-execute latency through pooldbapi against the raw driver, same statement, same process.

Interleaved rounds (raw, pooldbapi, raw, ...); prints the median microseconds per execute,
the added microseconds and the ratio, and writes benchmarks/results/overhead.json.
"""
from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from common import report

import pooldbapi


def per_call(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def compare(name, raw_fn, pool_fn, rounds: int, n: int) -> dict:
    raw_fn(), pool_fn()  # warm up: connections open, statements cached
    raw, pooled = [], []
    for _ in range(rounds):
        raw.append(per_call(raw_fn, n))
        pooled.append(per_call(pool_fn, n))
    r, p = statistics.median(raw), statistics.median(pooled)
    return {"case": name, "raw_us": round(r, 2), "pooldbapi_us": round(p, 2),
            "added_us": round(p - r, 2), "ratio": round(p / r, 3)}


def sqlite_cases(rounds: int, n: int, tmp: Path) -> list[dict]:
    out = []
    for label, database in (("sqlite :memory:", ":memory:"), ("sqlite file", str(tmp / "b.db"))):
        raw = sqlite3.connect(database, isolation_level=None)
        conn = pooldbapi.connect({"s": f"driver=sqlite;database={database}"})
        pcur = conn.cursor()
        rcur = raw.cursor()
        for stmt, params in (("select 1", None), ("select ?", (1,))):
            def raw_fn(stmt=stmt, params=params, rcur=rcur):
                (rcur.execute(stmt, params) if params else rcur.execute(stmt)).fetchall()

            def pool_fn(stmt=stmt, params=params, pcur=pcur):
                pcur.execute(stmt, params).fetchall()

            out.append(compare(f"{label}: {stmt}", raw_fn, pool_fn, rounds, n))
        conn.close()
        raw.close()
    return out


def postgresql_cases(rounds: int, n: int) -> list[dict]:
    """select over loopback; new server sessions every round for both sides, because where
    the scheduler puts a client and its server process moves the round trip far more than
    anything the driver does."""
    import psycopg
    from pgcluster import ClusterFactory
    factory = ClusterFactory()
    try:
        cluster = factory.new()
        out = []
        for stmt, raw_stmt, params in (("select 1", "select 1", None),
                                       ("select ?", "select %s", (1,))):
            raw_times, pool_times = [], []
            for _ in range(rounds * 2):
                raw = psycopg.connect(cluster.dsn)
                rcur = raw.cursor()
                pooldbapi.close_all()
                conn = pooldbapi.connect({"pg": cluster.conninfo()})
                pcur = conn.cursor()

                def raw_fn(raw_stmt=raw_stmt, params=params, rcur=rcur):
                    rcur.execute(raw_stmt, params)
                    rcur.fetchall()

                def pool_fn(stmt=stmt, params=params, pcur=pcur):
                    pcur.execute(stmt, params).fetchall()

                row = compare("", raw_fn, pool_fn, 1, n // 10)
                raw_times.append(row["raw_us"])
                pool_times.append(row["pooldbapi_us"])
                conn.close()
                raw.close()
            r, p = statistics.median(raw_times), statistics.median(pool_times)
            out.append({"case": f"postgresql: {stmt}", "raw_us": round(r, 2),
                        "pooldbapi_us": round(p, 2), "added_us": round(p - r, 2),
                        "ratio": round(p / r, 3)})
        return out
    finally:
        factory.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--n", type=int, default=5000, help="executes per round")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = sqlite_cases(args.rounds, args.n, Path(tmp)) + postgresql_cases(args.rounds,
                                                                               args.n)
    report("overhead", rows, ["case", "raw_us", "pooldbapi_us", "added_us", "ratio"])


if __name__ == "__main__":
    main()
