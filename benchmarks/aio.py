"""pooldbapi.aio against the raw async drivers, same statement, same process and event loop:
a one-row select (execute + fetchall) on PostgreSQL (loopback) against psycopg's
AsyncConnection, in a transaction and in autocommit; and the SQLite bridges a back-end could
use, each for a one-row select on a file: sqlite3 called through asyncio.to_thread, aiosqlite
(where installed: pip install aiosqlite), and pooldbapi.aio (which runs the core's call, the
sqlite3 one included, in one worker thread).

Interleaved blocks (raw, pooldbapi.aio, raw, ...), pinned as benchmarks/overhead.py pins: the
client on core 0, every PostgreSQL server process on core 1. CPU is the process's
(time.process_time: the worker threads' included), per execute.

OData (--only odata): per token count, first the service without pooldbapi
(benchmarks/odata_service.py: a plain httpx.AsyncClient, two tasks per token, each token's
calls evenly spaced at its rate, the same $count), then pooldbapi's rows; `of_service` is a row's calls/s against what the service alone answered in the same
run, `per_token` the answered calls/s per token nginx logged (the limiter's schedule as the
service saw it). The select rows' sessions are made before the clock runs. The service and nginx run on every core, not pinned with the client. Writes
benchmarks/results/aio.json, aio_sqlite.json and aio_odata.json.
"""
from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from common import pin_client, pinned_cluster, report
from overhead import MODES, row

import pooldbapi
import pooldbapi.aio

Call = Callable[[], Awaitable[object]]


async def per_call(fn: Call, n: int) -> tuple[float, float]:
    """Microseconds per awaited call: wall, and the process's CPU (all its threads)."""
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        await fn()
    return (time.perf_counter() - start) / n * 1e6, (time.process_time() - cpu) / n * 1e6


async def pairs(raw_fn: Call, pool_fn: Call, raw_end: Call, pool_end: Call, rounds: int,
                n: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    await raw_fn()
    await raw_end()
    await pool_fn()
    await pool_end()
    raw, pooled = [], []
    for _ in range(rounds):
        raw.append(await per_call(raw_fn, n))
        await raw_end()
        pooled.append(await per_call(pool_fn, n))
        await pool_end()
    return raw, pooled


async def nothing() -> None:
    return None


async def postgresql_cases(rounds: int, n: int) -> list[dict]:
    import psycopg
    with pinned_cluster() as cluster:
        out = []
        for mode, autocommit in MODES:
            raw_times, pool_times = [], []
            for _ in range(rounds):
                raw = await psycopg.AsyncConnection.connect(cluster.dsn, autocommit=autocommit)
                rcur = raw.cursor()
                pooldbapi.close_all()
                conn = await pooldbapi.aio.connect({"pg": cluster.conninfo()},
                                                   autocommit=autocommit)
                pcur = conn.cursor()

                async def raw_call(rcur: psycopg.AsyncCursor = rcur) -> None:
                    await rcur.execute("select %s", (1,))
                    await rcur.fetchall()

                async def pool_call(pcur: pooldbapi.aio.AsyncCursor = pcur) -> None:
                    await pcur.execute("select ?", (1,))
                    await pcur.fetchall()

                r, p = await pairs(raw_call, pool_call, nothing if autocommit else raw.commit,
                                   nothing if autocommit else conn.commit, 2, n)
                raw_times += r
                pool_times += p
                await conn.close()
                await raw.close()
            out.append(row("postgresql: select ? + fetchall (psycopg AsyncConnection)", mode,
                           raw_times, pool_times))
        return out


async def sqlite_bridges(rounds: int, n: int, tmp: Path) -> list[dict]:
    """A one-row select on a SQLite file in a transaction: each bridge's microseconds."""
    database = str(tmp / "bridge.db")
    sqlite3.connect(database).close()
    raw = sqlite3.connect(database, check_same_thread=False)

    def select_raw() -> list[object]:
        return raw.execute("select ?", (1,)).fetchall()

    async def to_thread() -> None:
        await asyncio.to_thread(select_raw)

    conn = await pooldbapi.aio.connect({"s": f"driver=sqlite;database={database}"})
    cur = conn.cursor()

    async def through_aio() -> None:
        await cur.execute("select ?", (1,))
        await cur.fetchall()

    bridges: dict[str, Call] = {"sqlite3 + asyncio.to_thread": to_thread,
                                "pooldbapi.aio (sqlite3 in a worker thread)": through_aio}
    try:
        import aiosqlite
        lite = await aiosqlite.connect(database)

        async def through_aiosqlite() -> None:
            async with lite.execute("select ?", (1,)) as c:
                await c.fetchall()
        bridges["aiosqlite"] = through_aiosqlite
    except ImportError:
        lite = None
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in bridges}
    for fn in bridges.values():
        await fn()
    for _ in range(rounds):  # interleaved: each round every bridge once
        for name, fn in bridges.items():
            times[name].append(await per_call(fn, n))
    await conn.close()
    if lite is not None:
        await lite.close()
    raw.close()
    return [{"bridge": name, "us": round(statistics.median(w for w, _ in t), 2),
             "cpu_us": round(statistics.median(c for _, c in t), 2)}
            for name, t in times.items()]


def rate_row(operation: str, api: str, tokens: int, calls: int, elapsed: float, rate: int,
             latency: float, gateway: object, service: float) -> dict:
    from odata_service import per_token
    rates = per_token(gateway.calls())  # type: ignore[attr-defined]
    refused = sum(line.startswith("429 ") for line in gateway.calls())  # type: ignore[attr-defined]
    gateway.forget_calls()  # type: ignore[attr-defined]
    per_s = calls / elapsed
    return {"operation": operation, "api": api, "tokens": tokens, "calls": calls,
            "calls_per_s": round(per_s, 1), "limit": tokens * rate,
            "efficiency": round(per_s / (tokens * rate), 3),
            "of_service": round(per_s / service, 3) if service else 0.0,
            "per_token": f"{min(rates.values(), default=0.0)}-{max(rates.values(), default=0.0)}",
            "refused_429": refused, "call_ms": round(latency, 1)}


async def odata_cases(rate: int, delay_ms: int, seconds: float,
                      strategy: str | None = None) -> list[dict]:
    import threading

    from odata_service import service_row, start_service
    cap, gateway = start_service(rate, delay_ms)  # on every core, not the client's
    out = []
    try:
        for n in (1, 2, 4, 8):
            await asyncio.sleep(1.5)  # the allowances refill
            alone = await service_row(gateway, cap, n, rate, seconds)
            service = alone["calls_per_s"]
            out.append({"operation": "select, plain httpx client",
                        "api": "plain", "tokens": n, "calls": int(n * rate * seconds),
                        "calls_per_s": service, "limit": n * rate,
                        "efficiency": alone["efficiency"], "of_service": 1.0,
                        "per_token": alone["per_token"], "refused_429": alone["refused_429"],
                        "call_ms": alone["p50_ms"]})
            aliases = [f"t{n}_{i}" for i in range(n)]
            specs = {a: f"driver=odata;url={gateway.url};token=tok-{a};max-calls-per-second={rate}"
                     for a in aliases}
            lst = "{" + ",".join(aliases) + "}"
            total = int(n * rate * seconds)
            tasks = 2 * n
            conns = [await pooldbapi.aio.connect(specs, autocommit=True, strategy=strategy)
                     for _ in range(tasks)]
            for a in aliases:  # $metadata, before the clock runs
                await conns[0].execute(f"select count(*) from Journals@{a} where ID = 1")
            start = time.perf_counter()
            await conns[0].execute(f"select count(*) from Journals@{aliases[0]} where ID = 1")
            latency = (time.perf_counter() - start) * 1000
            await asyncio.sleep(1.5)  # the tokens' allowances refill
            gateway.forget_calls()
            start = time.perf_counter()
            await conns[0].cursor().executemany(f"insert into Tasks@{lst} (description) values (?)",
                                                [(f"aio {i}",) for i in range(total)])
            elapsed = time.perf_counter() - start
            out.append(rate_row("insert (one executemany)", "aio", n, total, elapsed, rate,
                                latency, gateway, service))
            share = [total // tasks + (1 if t < total % tasks else 0) for t in range(tasks)]

            async def reads(conn: pooldbapi.aio.AsyncConnection, k: int, lst: str = lst
                            ) -> None:
                for _ in range(k):
                    cur = await conn.execute(f"select count(*) from Journals@{lst} where ID <= 10")
                    await cur.fetchone()

            # every session the run will use made first (each reads $metadata once, a call
            # the plain client never makes)
            await asyncio.gather(*(reads(c, n) for c in conns))
            await asyncio.sleep(1.5)
            gateway.forget_calls()
            start = time.perf_counter()
            await asyncio.gather(*(reads(c, k) for c, k in zip(conns, share, strict=True)))
            elapsed = time.perf_counter() - start
            out.append(rate_row(f"select ({tasks} tasks)", "aio", n, total, elapsed, rate,
                                latency, gateway, service))
            for conn in conns:
                await conn.close()
            syncs = [pooldbapi.connect(specs, autocommit=True, strategy=strategy)
                     for _ in range(tasks)]

            def sync_reads(conn: pooldbapi.Connection, k: int, lst: str = lst) -> None:
                for _ in range(k):
                    conn.execute(f"select count(*) from Journals@{lst} where ID <= 10").fetchone()

            warm = [threading.Thread(target=sync_reads, args=(c, n)) for c in syncs]
            for thread in warm:
                thread.start()
            for thread in warm:
                thread.join()
            await asyncio.sleep(1.5)
            gateway.forget_calls()
            threads = [threading.Thread(target=sync_reads, args=(c, k))
                       for c, k in zip(syncs, share, strict=True)]
            start = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - start
            out.append(rate_row(f"select ({tasks} threads)", "sync", n, total, elapsed, rate,
                                latency, gateway, service))
            for sync in syncs:
                sync.close()
    finally:
        gateway.close()
        cap.close()
    return out


async def main_async(args: argparse.Namespace) -> None:
    if args.only == "odata":
        report("aio_odata", await odata_cases(args.rate, args.delay_ms, args.seconds,
                                              args.strategy),
               ["operation", "api", "tokens", "calls", "calls_per_s", "limit", "efficiency",
                "of_service", "per_token", "refused_429", "call_ms"])
        return
    if args.only != "postgresql":
        with tempfile.TemporaryDirectory() as tmp:
            report("aio_sqlite", await sqlite_bridges(args.rounds, args.n, Path(tmp)),
                   ["bridge", "us", "cpu_us"])
        print()
    if args.only != "sqlite":
        report("aio", await postgresql_cases(args.rounds, args.pg_n),
               ["case", "mode", "raw_us", "pooldbapi_us", "added_us", "ratio", "raw_cpu_us",
                "pooldbapi_cpu_us", "added_cpu_us"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--n", type=int, default=1000, help="SQLite calls per block")
    parser.add_argument("--pg-n", type=int, default=300, help="PostgreSQL executes per block")
    parser.add_argument("--only", choices=["sqlite", "postgresql", "odata"])
    parser.add_argument("--rate", type=int, default=20, help="calls/s the service allows a token")
    parser.add_argument("--delay-ms", type=int, default=50, help="added to every OData call")
    parser.add_argument("--seconds", type=float, default=3.0, help="OData calls per case:"
                        " tokens x rate x seconds")
    parser.add_argument("--strategy", help="the OData connections' strategy (default: the"
                        " connect() default, round-robin)")
    args = parser.parse_args()
    pin_client()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
