"""Reads over a primary and two streaming standbys: reads per second over {pri,rep1,rep2}
through pooldbapi against psycopg sending the same reads in turn over three raw sessions, with
every standby keeping up and with one standby lagging (replay paused: pooldbapi leaves it
out); and what read_your_writes costs per read, reading only and right after a write of the
connection's own.

One client thread; blocks of reads interleaved (raw, pooldbapi, raw, ...), medians over the
blocks; the client pinned to core 0 and the three servers to core 1 where there are two
cores. Writes benchmarks/results/replicas.json.
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from common import clusters, pin_client, pin_server, pinned, report

import pooldbapi

ROWS = 1000


def per_second(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def interleaved(sides: dict[str, Callable[[], object]], rounds: int, n: int
                ) -> dict[str, list[float]]:
    """Blocks of n calls of each side in turn, rounds times (after one warm-up block)."""
    for fn in sides.values():
        per_second(fn, max(1, n // 10))
    out: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, fn in sides.items():
            out[name].append(per_second(fn, n))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--n", type=int, default=400, help="reads per block")
    args = parser.parse_args()

    import psycopg
    with clusters() as factory:
        primary = pinned(factory, synchronous_commit="on")  # (the test clusters' is off)
        primary.sql("create table t (id int primary key, v text)")
        primary.sql(f"insert into t select g, 'v' || g from generate_series(1, {ROWS}) g")
        rep1, rep2 = factory.standby(primary), factory.standby(primary)
        pin_client()
        for standby in (rep1, rep2):
            pin_server(standby.data)
        containers = {"pri": primary.conninfo(),
                      **{name: c.conninfo(**{"replica-of": "pri", "max-replication-lag": "1"})
                         for name, c in (("rep1", rep1), ("rep2", rep2))}}
        time.sleep(1.0)  # the standbys replay the load

        raws = [psycopg.connect(c.dsn, autocommit=True) for c in (primary, rep1, rep2)]
        turn = [0]
        key = [0]

        def next_key() -> int:
            key[0] = key[0] % ROWS + 1
            return key[0]

        def raw_read() -> None:
            turn[0] = (turn[0] + 1) % 3
            raws[turn[0]].execute("select v from t where id = %s", (next_key(),)).fetchall()

        plain = pooldbapi.connect(containers, autocommit=True, seed=1)
        ryw = pooldbapi.connect(containers, autocommit=True, seed=1, read_your_writes=True)
        read_sql = "select v from t@{pri,rep1,rep2} where id = ?"

        def raw_write_then_read() -> None:
            k = next_key()
            raws[0].execute("update t set v = v where id = %s", (k,))
            turn[0] = (turn[0] + 1) % 3
            raws[turn[0]].execute("select v from t where id = %s", (k,)).fetchall()

        def read(conn: pooldbapi.Connection, sql: str = read_sql) -> Callable[[], None]:
            def call() -> None:
                conn.execute(sql, (next_key(),)).fetchall()
            return call

        def write_then_read(conn: pooldbapi.Connection, sql: str = read_sql
                            ) -> Callable[[], None]:
            def call() -> None:
                k = next_key()
                conn.execute("update t@pri set v = v where id = ?", (k,))
                conn.execute(sql, (k,)).fetchall()
            return call

        def where(conn: pooldbapi.Connection, n: int = 300) -> str:
            seen: dict[str, int] = {}
            for _ in range(n):
                for alias, count in conn.execute(read_sql, (next_key(),)).containers.items():
                    seen[alias] = seen.get(alias, 0) + count
            return " ".join(f"{a}:{seen[a]}" for a in sorted(seen))

        def where_after_write(conn: pooldbapi.Connection, sql: str, n: int = 60) -> str:
            seen: dict[str, int] = {}
            for _ in range(n):
                k = next_key()
                conn.execute("update t@pri set v = v where id = ?", (k,))
                for alias, count in conn.execute(sql, (k,)).containers.items():
                    seen[alias] = seen.get(alias, 0) + count
            return " ".join(f"{a}:{seen[a]}" for a in sorted(seen))

        rows = []

        def add(case: str, found: dict[str, list[float]], spread: str = "-") -> None:
            raw = statistics.median(found["raw"])
            for name, values in found.items():
                if name == "raw":
                    continue
                ratios = statistics.median(p / r for p, r in zip(values, found["raw"],
                                                                  strict=True))
                rows.append({"case": case, "side": name, "raw_reads_s": round(raw),
                             "reads_s": round(statistics.median(values)),
                             "ratio_to_raw": round(ratios, 3), "spread": spread})

        add("{pri,rep1,rep2}, none lagging",
            interleaved({"raw": raw_read, "pooldbapi": read(plain)}, args.rounds, args.n),
            where(plain))
        add("read_your_writes, reads only",
            interleaved({"raw": raw_read, "pooldbapi": read(plain),
                         "pooldbapi read_your_writes": read(ryw)}, args.rounds, args.n))
        standbys_sql = "select v from t@{rep1,rep2} where id = ?"
        for listed, sql in (("{pri,rep1,rep2}", read_sql), ("{rep1,rep2}", standbys_sql)):
            pairs = interleaved({"raw": raw_write_then_read,
                                 "pooldbapi": write_then_read(plain, sql),
                                 "pooldbapi read_your_writes": write_then_read(ryw, sql)},
                                args.rounds, max(10, args.n // 4))
            add(f"write, then read over {listed}", pairs, where_after_write(ryw, sql))
            plain_pair = statistics.median(pairs["pooldbapi"])
            ryw_pair = statistics.median(pairs["pooldbapi read_your_writes"])
            rows.append({"case": f"read_your_writes: added per read after a write, {listed}",
                         "side": "us", "raw_reads_s": "-", "reads_s": "-",
                         "ratio_to_raw": round((1 / ryw_pair - 1 / plain_pair) * 1e6, 1),
                         "spread": "-"})

        rep1.sql("select pg_wal_replay_pause()")
        primary.sql("update t set v = v where id = 1")
        deadline = time.monotonic() + 20
        while (pooldbapi.health()["rep1"].replication_lag or 0) <= 1.0:
            assert time.monotonic() < deadline, "rep1 did not fall behind"
            time.sleep(0.05)
        add("{pri,rep1,rep2}, rep1 lagging (paused)",
            interleaved({"raw": raw_read, "pooldbapi": read(plain)}, args.rounds, args.n),
            where(plain))
        rep1.sql("select pg_wal_replay_resume()")
        plain.close()
        ryw.close()
        for raw in raws:
            raw.close()
    print("shared machine: compare the ratios, not the absolute figures")
    report("replicas", rows, ["case", "side", "raw_reads_s", "reads_s", "ratio_to_raw",
                              "spread"])


if __name__ == "__main__":
    main()
