"""Throughput over N containers each throttled to R calls per second, against the physical
limit N x R: single-row executes in a loop, and one executemany. Writes results/scaling.json."""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import report

import pooldbapi


def run(n: int, rate: float, seconds: float, mode: str, folder: Path) -> dict:
    aliases = [f"c{i}" for i in range(n)]
    where = folder / f"{mode}-{n}"
    where.mkdir()
    containers = {a: f"driver=sqlite;database={where / a}.db;max-calls-per-second={rate}"
                  for a in aliases}
    lst = "{" + ",".join(aliases) + "}"
    conn = pooldbapi.connect(containers, default=lst, broadcast_ddl=True)
    conn.execute(f"create table t@{lst} (id int)")
    conn.commit()
    rows = int(n * rate * seconds)
    cur = conn.cursor()
    start = time.perf_counter()
    if mode == "execute":
        for i in range(rows):
            cur.execute(f"insert into t@{lst} values (?)", (i,))
    else:
        cur.executemany(f"insert into t@{lst} values (?)", [(i,) for i in range(rows)])
    conn.commit()
    elapsed = time.perf_counter() - start
    stored = sum(conn.execute(f"select count(*) from t@{a}").fetchone()[0] for a in aliases)
    conn.close()
    pooldbapi.close_all()
    throughput = rows / elapsed
    return {"mode": mode, "containers": n, "rate_per_container": rate, "rows": rows,
            "rows_stored": stored, "rows_per_s": round(throughput, 1),
            "limit_per_s": n * rate, "efficiency": round(throughput / (n * rate), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=50.0, help="calls/s per container")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each run")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("execute", "executemany"):
            for n in (1, 2, 4, 8, 16):
                rows.append(run(n, args.rate, args.seconds, mode, Path(tmp)))
    report("scaling", rows, ["mode", "containers", "rows", "rows_stored", "rows_per_s",
                             "limit_per_s", "efficiency"])


if __name__ == "__main__":
    main()
