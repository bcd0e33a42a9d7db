"""The headline case: a cloud API (SAP CAP behind nginx) that allows R calls per second per API
token. Inserts (one executemany) and reads (one select a call) through 1, 2, 4 and 8 tokens,
against the physical limit tokens x R; rows lost counted. Writes results/cloud.json."""
from __future__ import annotations

import argparse
import time

import requests
from common import report

import pooldbapi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=20, help="calls/s the service allows a token")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    from odata_service_fixture import CapService, Gateway
    cap = CapService()
    gateway = Gateway(cap.port, args.rate, burst=2)
    rows = []
    try:
        def count() -> int:
            return int(requests.get(gateway.url + "Tasks/$count", timeout=10,
                                    headers={"Authorization": "Bearer tok-count"}).text)

        for n in (1, 2, 4, 8):
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
        too_many = sum(line.startswith("429 ") for line in gateway.calls())
    finally:
        gateway.close()
        cap.close()
    report("cloud", rows, ["operation", "tokens", "calls", "calls_per_s", "limit",
                           "efficiency", "rows_lost"])
    print(f"429 answers from the service during the run: {too_many}")


if __name__ == "__main__":
    main()
