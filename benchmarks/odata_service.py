"""What the OData test service sustains by itself, without pooldbapi: a plain async HTTP
client (httpx.AsyncClient) sends benchmarks/aio.py's select (a $count with a $filter)
through the same nginx gateway (20 calls/s per token, burst 2) to the same CAP service
(50 ms added per call) as benchmarks/aio.py's selects do: two tasks per token, each call
after the next slot of its token's rate (evenly spaced).

For 1, 2, 4 and 8 tokens: calls answered per second against tokens x rate, 429s, the
latency's median and 95th percentile, the CPU the service (node) and nginx used, and per
token the calls nginx logged per second. Run with the service on every core (as a
deployment would) and pinned with the client to core 0 (as benchmarks/aio.py started it
before it was changed to leave the service unpinned). Writes
benchmarks/results/odata_service.json.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from pathlib import Path
from typing import Any

from common import children, report


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its reaped children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(f) for f in fields[11:15]) / ticks


async def paced(url: str, tokens: int, rate: int, seconds: float) -> tuple[list[float], int,
                                                                              float]:
    """What benchmarks/aio.py's selects do, without pooldbapi: 2 x tokens tasks, two per
    token, each sending its calls one after another, each call after the next slot of its
    token's rate (slots spaced evenly, as pooldbapi's limiter spaces them); return the
    latencies (s) of the answered calls, the 429s and the wall time."""
    import httpx
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        latencies: list[float] = []
        refused = 0
        slots = [0.0] * tokens

        async def worker(token: int, calls: int) -> None:
            nonlocal refused
            for _ in range(calls):
                now = time.perf_counter()
                start = slots[token] = max(now, slots[token])
                slots[token] += 1.0 / rate
                if start > now:
                    await asyncio.sleep(start - now)
                sent = time.perf_counter()
                answer = await client.get(f"{url}Journals/$count?$filter=ID%20le%2010",
                                          headers={"Authorization": f"Bearer tok-s{token}"})
                if answer.status_code == 429:
                    refused += 1
                else:
                    answer.raise_for_status()
                    latencies.append(time.perf_counter() - sent)

        for token in range(tokens):  # warm: a connection per token
            await client.get(f"{url}$metadata", headers={"Authorization": f"Bearer tok-s{token}"})
        await asyncio.sleep(1.5)  # the allowances refill
        total = int(tokens * rate * seconds)
        tasks = 2 * tokens
        share = [total // tasks + (1 if t < total % tasks else 0) for t in range(tasks)]
        start = time.perf_counter()
        await asyncio.gather(*(worker(t % tokens, k) for t, k in enumerate(share)))
        return latencies, refused, time.perf_counter() - start


def per_token(lines: list[str]) -> dict[str, float]:
    """Answered calls per second nginx logged per token, first to last ($metadata left
    out): what each token's schedule gave the service."""
    times: dict[str, list[float]] = {}
    for line in lines:
        status, _method, uri, rest = line.split(" ", 3)
        auth, msec = rest.rsplit(" ", 1)
        if status.startswith("2") and "$metadata" not in uri:
            times.setdefault(auth.strip('"'), []).append(float(msec))
    return {token: round((len(t) - 1) / (max(t) - min(t)), 1) for token, t in times.items()
            if len(t) > 1 and max(t) > min(t)}


def start_service(rate: int, delay_ms: int) -> tuple[Any, Any]:
    """The CAP service (delay_ms added to every call) and nginx (rate calls/s per token,
    burst 2), on every core of the machine whatever this process is pinned to (they would
    inherit its affinity): a service shares no core with its client by design."""
    from odata_service_fixture import CapService, Gateway
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    os.environ["POOLDBAPI_CAP_DELAY_MS"] = str(delay_ms)
    try:
        cap = CapService()
        try:
            gateway = Gateway(cap.port, rate, burst=2)
        except BaseException:
            cap.close()
            raise
    finally:
        os.sched_setaffinity(0, before)
        os.environ.pop("POOLDBAPI_CAP_DELAY_MS", None)
    return cap, gateway


async def service_row(gateway: Any, cap: Any, tokens: int, rate: int, seconds: float
                            ) -> dict:
    """The service alone at tokens x rate (paced()), with its and nginx's CPU."""
    workers = [gateway.proc.pid, *children(gateway.proc.pid)]
    gateway.forget_calls()
    node0 = cpu_seconds(cap.proc.pid)
    nginx0 = sum(cpu_seconds(p) for p in workers)
    latencies, refused, elapsed = await paced(gateway.url, tokens, rate, seconds)
    return _row(gateway, cap, tokens, rate, latencies, refused, elapsed, node0, nginx0,
                workers)


def _row(gateway: Any, cap: Any, tokens: int, rate: int, latencies: list[float], refused: int,
         elapsed: float, node0: float, nginx0: float, workers: list[int]) -> dict:
    node = cpu_seconds(cap.proc.pid) - node0
    nginx = sum(cpu_seconds(p) for p in workers) - nginx0
    rates = per_token(gateway.calls())
    quantiles = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else [0.0] * 19
    return {"tokens": tokens, "limit": tokens * rate,
            "calls_per_s": round(len(latencies) / elapsed, 1),
            "efficiency": round(len(latencies) / elapsed / (tokens * rate), 3),
            "refused_429": refused,
            "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else 0.0,
            "p95_ms": round(quantiles[18] * 1000, 1),
            "node_cpu": round(node / elapsed, 2), "nginx_cpu": round(nginx / elapsed, 2),
            "per_token": f"{min(rates.values(), default=0.0)}-{max(rates.values(), default=0.0)}"}


def run(pinned: bool, rate: int, delay_ms: int, seconds: float) -> list[dict]:
    before = os.sched_getaffinity(0)
    if pinned:  # the service inherits the client's core
        os.sched_setaffinity(0, {min(before)})
        os.environ["POOLDBAPI_CAP_DELAY_MS"] = str(delay_ms)
        from odata_service_fixture import CapService, Gateway
        try:
            cap = CapService()
            gateway = Gateway(cap.port, rate, burst=2)
        finally:
            os.environ.pop("POOLDBAPI_CAP_DELAY_MS", None)
    else:
        cap, gateway = start_service(rate, delay_ms)
    out = []
    try:
        for n in (1, 2, 4, 8):
            row = asyncio.run(service_row(gateway, cap, n, rate, seconds))
            out.append({"service": "pinned with the client" if pinned else "every core",
                        **row})
    finally:
        os.sched_setaffinity(0, before)
        gateway.close()
        cap.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=20, help="calls/s the service allows a token")
    parser.add_argument("--delay-ms", type=int, default=50, help="added to every call")
    parser.add_argument("--seconds", type=float, default=5.0, help="calls per token: rate x s")
    parser.add_argument("--pinned", action="store_true", help="also with the service pinned"
                        " to the client's core")
    args = parser.parse_args()
    rows = run(False, args.rate, args.delay_ms, args.seconds)
    if args.pinned:
        rows += run(True, args.rate, args.delay_ms, args.seconds)
    report("odata_service", rows, list(rows[0]))


if __name__ == "__main__":
    main()
