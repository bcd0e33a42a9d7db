"""Where pooldbapi.aio's microseconds over psycopg's AsyncConnection go: a one-row select
(execute + fetchall) on PostgreSQL (loopback) called at each layer, in one process and event
loop, blocks interleaved (each round every layer once), pinned as benchmarks/overhead.py pins:

- raw: psycopg's AsyncCursor, awaited by the task;
- greenlet: the same two coroutines awaited through waits.await_only in a call of waits.spawn
  (no cancellation shield; with the shield, as pooldbapi.aio's calls run);
- adapter: the same through backends/pg_async.py's Cursor in a shielded call;
- aio: pooldbapi.aio's cursor (the whole call: Calls, the core's prepared path, the adapter);
- sync raw / sync: psycopg's Connection and pooldbapi's synchronous API, for the core's own
  cost.

Per layer the median microseconds (wall, and the process's CPU) per statement, the CPU added
over the layer's reference (the async raw for the async layers, the sync raw for the sync
API), and the event loop's turns per statement (selector polls counted). --profile runs
pooldbapi.aio's statements under cProfile instead and prints the heaviest functions and their
calls per statement. Writes benchmarks/results/aio_layers.json.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from common import clusters, pin_client, pinned_cluster, report
from overhead import MODES

import pooldbapi
import pooldbapi.aio
from pooldbapi import waits
from pooldbapi.backends import pg_async


class Turns:
    """Counts the event loop's selector polls (one per turn of the loop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.count = 0
        selector = loop._selector  # type: ignore[attr-defined]
        select = selector.select

        def counted(timeout: float | None = None) -> Any:
            self.count += 1
            return select(timeout)
        selector.select = counted


async def block(fn: Callable[[], Awaitable[object]], n: int, turns: Turns
                ) -> tuple[float, float, float]:
    """Microseconds per statement (wall, the process's CPU) and loop turns per statement."""
    before = turns.count
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        await fn()
    return ((time.perf_counter() - start) / n * 1e6, (time.process_time() - cpu) / n * 1e6,
            (turns.count - before) / n)


async def cases(rounds: int, n: int) -> list[dict]:
    turns = Turns(asyncio.get_running_loop())
    out = []
    with pinned_cluster() as cluster:
        try:
            for mode, autocommit in MODES:
                out += await one_mode(cluster, mode, autocommit, rounds, n, turns)
            return out
        finally:
            pooldbapi.close_all()


async def one_mode(cluster: Any, mode: str, autocommit: bool, rounds: int, n: int,
                   turns: Turns) -> list[dict]:
    import psycopg
    raw = await psycopg.AsyncConnection.connect(cluster.dsn, autocommit=autocommit)
    rcur = raw.cursor()
    adapted = pg_async.Cursor(rcur)
    sync_raw = psycopg.connect(cluster.dsn, autocommit=autocommit)
    scur = sync_raw.cursor()
    pooldbapi.close_all()
    conn = await pooldbapi.aio.connect({"pg": cluster.conninfo()}, autocommit=autocommit)
    pcur = conn.cursor()
    sync = pooldbapi.connect({"pg": cluster.conninfo()}, autocommit=autocommit)
    spcur = sync.cursor()

    def in_greenlet() -> None:
        waits.await_only(rcur.execute("select %s", (1,)))
        waits.await_only(rcur.fetchall())

    def through_adapter() -> None:
        adapted.execute("select %s", (1,))
        adapted.fetchall()

    async def raw_call() -> None:
        await rcur.execute("select %s", (1,))
        await rcur.fetchall()

    async def greenlet_call() -> None:
        await waits.spawn(in_greenlet)

    async def shielded_call() -> None:
        await waits.spawn(in_greenlet, _ignore)

    async def adapter_call() -> None:
        await waits.spawn(through_adapter, _ignore)

    async def aio_call() -> None:
        await pcur.execute("select ?", (1,))
        await pcur.fetchall()

    async def sync_raw_call() -> None:
        scur.execute("select %s", (1,))
        scur.fetchall()

    async def sync_call() -> None:
        spcur.execute("select ?", (1,))
        spcur.fetchall()

    async def raw_end() -> None:
        if not autocommit:
            await raw.commit()

    async def sync_end() -> None:
        if not autocommit:
            sync_raw.commit()
            sync.commit()

    async def aio_end() -> None:
        if not autocommit:
            await conn.commit()

    Call = Callable[[], Awaitable[object]]
    layers: list[tuple[str, Call, Callable[[], Awaitable[None]], str]] = [
        ("raw: psycopg AsyncCursor", raw_call, raw_end, ""),
        ("greenlet: spawn + await_only", greenlet_call, raw_end, "raw"),
        ("greenlet, shielded", shielded_call, raw_end, "raw"),
        ("adapter: pg_async.Cursor, shielded", adapter_call, raw_end, "raw"),
        ("aio: pooldbapi.aio cursor", aio_call, aio_end, "raw"),
        ("sync raw: psycopg Cursor", sync_raw_call, sync_end, ""),
        ("sync: pooldbapi cursor", sync_call, sync_end, "sync raw"),
    ]
    for _, fn, end, _ in layers:  # warm: sessions, plans, prepared statements
        for _ in range(20):
            await fn()
        await end()
    times: dict[str, list[tuple[float, float, float]]] = {name: [] for name, *_ in layers}
    for _ in range(rounds):
        for name, fn, end, _ in layers:
            times[name].append(await block(fn, n, turns))
            await end()
    out = []
    for name, _, _, reference in layers:
        got = times[name]
        ref = times[next(k for k in times if k.startswith(reference + ":"))] \
            if reference else None
        added = statistics.median(b[1] - a[1] for a, b in zip(ref, got, strict=True)) \
            if ref is not None else 0.0
        out.append({"layer": name, "mode": mode,
                    "us": round(statistics.median(t[0] for t in got), 2),
                    "cpu_us": round(statistics.median(t[1] for t in got), 2),
                    "added_cpu_us": round(added, 2),
                    "loop_turns": round(statistics.median(t[2] for t in got), 2)})
    await conn.close()
    sync.close()
    await raw.close()
    sync_raw.close()
    return out


def _ignore() -> None:
    pass


async def profile(n: int, autocommit: bool, top: int) -> None:
    with clusters() as factory:
        cluster = factory.new()
        try:
            conn = await pooldbapi.aio.connect({"pg": cluster.conninfo()},
                                               autocommit=autocommit)
            cur = conn.cursor()
            for _ in range(200):
                await cur.execute("select ?", (1,))
                await cur.fetchall()
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(n):
                await cur.execute("select ?", (1,))
                await cur.fetchall()
            profiler.disable()
            await conn.close()
            stats = pstats.Stats(profiler)
            calls = sum(v[1] for v in stats.stats.values())  # type: ignore[attr-defined]
            print(f"{'autocommit' if autocommit else 'transaction'}: {calls / n:.1f} Python"
                  f" calls per statement")
            rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:top]  # type: ignore
            print(f"{'tottime us':>10}  {'calls':>6}  function")
            for (path, line, name), (_, ncalls, tottime, _, _) in rows:
                print(f"{tottime / n * 1e6:10.2f}  {ncalls / n:6.2f}"
                      f"  {path.rsplit('/', 2)[-1]}:{line} {name}")
        finally:
            pooldbapi.close_all()


async def main_async(args: argparse.Namespace) -> None:
    if args.profile:
        for _, autocommit in MODES:
            await profile(args.n, autocommit, args.top)
        return
    report("aio_layers", await cases(args.rounds, args.n),
           ["layer", "mode", "us", "cpu_us", "added_cpu_us", "loop_turns"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--n", type=int, default=300, help="statements per block")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    pin_client()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
