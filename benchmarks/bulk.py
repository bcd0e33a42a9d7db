"""Rows per second: `bulk insert` into PostgreSQL against raw psycopg COPY of the same rows, and
executemany through pooldbapi against raw sqlite3 executemany on one SQLite file. Interleaved
rounds, medians. Writes results/bulk.json."""
from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from common import clusters, report

import pooldbapi


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(case: str, rows: list[tuple], rounds: int, raw_fn, conn, statement: str,
            empty) -> dict:
    """Rounds of raw_fn then of conn's executemany of statement over rows and its commit, the
    table emptied (outside the clock) before each: the median rows per second of each side
    and the ratio of the median times. Closes conn."""
    def pooled():
        conn.cursor().executemany(statement, rows)
        conn.commit()

    raw_t, pool_t = [], []
    for _ in range(rounds):
        empty()
        raw_t.append(timed(raw_fn))
        empty()
        pool_t.append(timed(pooled))
    conn.close()
    r, p = statistics.median(raw_t), statistics.median(pool_t)
    n = len(rows)
    return {"case": case, "rows": n, "raw_rows_per_s": round(n / r),
            "pooldbapi_rows_per_s": round(n / p), "time_ratio": round(p / r, 3)}


def postgresql(rows: list[tuple], rounds: int) -> dict:
    import psycopg
    with clusters() as factory:
        cluster = factory.new()
        raw = psycopg.connect(cluster.dsn, autocommit=True)
        raw.execute("create table b (id int, label text, amount numeric)")
        conn = pooldbapi.connect({"pg": cluster.conninfo(page_size=str(len(rows)))})

        def raw_copy():
            with raw.transaction(), raw.cursor() as cur, \
                    cur.copy("COPY b (id, label, amount) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

        out = compare("postgresql: bulk insert vs raw COPY", rows, rounds, raw_copy, conn,
                      "bulk insert into b@pg (id, label, amount) values (?, ?, ?)",
                      lambda: raw.execute("truncate b"))
        raw.close()
    return out


def sqlite(rows: list[tuple], rounds: int, folder: Path) -> dict:
    path = folder / "b.db"
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("create table b (id int, label text, amount numeric)")
    conn = pooldbapi.connect({"s": f"driver=sqlite;database={path}"})

    def raw_many():
        raw.execute("begin")
        raw.executemany("insert into b values (?, ?, ?)", rows)
        raw.execute("commit")

    out = compare("sqlite: executemany vs raw executemany", rows, rounds, raw_many, conn,
                  "insert into b@s values (?, ?, ?)", lambda: raw.execute("delete from b"))
    raw.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rows = [(i, f"label {i}", i * 1.25) for i in range(args.rows)]
    with tempfile.TemporaryDirectory() as tmp:
        results = [postgresql(rows, args.rounds), sqlite(rows, args.rounds, Path(tmp))]
    report("bulk", results, ["case", "rows", "raw_rows_per_s", "pooldbapi_rows_per_s",
                             "time_ratio"])


if __name__ == "__main__":
    main()
