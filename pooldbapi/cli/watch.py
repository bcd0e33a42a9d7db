"""`pooldbapi containers --watch`: a live table of the containers, refreshed every interval:
health, the pool (in use, idle, waiting), calls/s, rows/s, throttle waits, 429s and errors.

The figures are this process's (telemetry.figures(), pool_stats(), health(); health as the
shared store says where a container shares it). The command probes each container every round,
so that its health and round-trip time are live; an application shows its own traffic by
running watch() in a thread of its own (probe=False)."""
from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Self, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table

from .. import Error, telemetry
from ..health import HEALTH, health
from ..lag import LAG, describe
from ..pool import acquire, pool_stats
from ..settings import ContainerSpec


@dataclass
class _Round:
    at: float
    figures: dict[str, telemetry.Figures]
    probes: dict[str, str]


def _probe(spec: ContainerSpec) -> str:
    """Borrow a connection, send the health probe's round trip, give it back: the time taken,
    or "failed" (the pool and health hear of a failure as they always do; the error's text is
    not shown, a driver's message may hold what the table must not)."""
    started = time.perf_counter()
    try:
        phys = acquire(spec)
    except Error:
        return "failed"
    pool = phys.pool
    try:
        with phys.lock:
            phys.link.probe()
    except Exception:  # noqa: BLE001 - any failure is shown; the connection is dropped
        pool.release(phys, broken=True)
        return "failed"
    pool.release(phys)
    return f"{(time.perf_counter() - started) * 1000:.1f} ms"


def table(specs: Mapping[str, ContainerSpec], now: _Round, before: _Round | None) -> Table:
    """The table of one round; rates over the time since the round before."""
    out = Table(title=f"pooldbapi containers  {time.strftime('%H:%M:%S')}",
                title_justify="left")
    for name in ("container", "driver", "health", "probe", "used", "idle", "waiting",
                 "calls/s", "rows/s", "throttled", "429s", "errors", "lag"):
        left = name in ("container", "driver", "health", "probe")
        out.add_column(name, justify="left" if left else "right", no_wrap=True,
                       min_width=len(name))
    pools: dict[str, list[int]] = {}
    for stats in pool_stats():
        found = pools.setdefault(stats.alias, [0, 0, 0])
        found[0] += stats.in_use
        found[1] += stats.idle
        found[2] += stats.waiting
    known = health()
    elapsed = now.at - before.at if before is not None else 0.0
    for alias, spec in specs.items():
        fig = now.figures.get(alias, telemetry.Figures())
        old = before.figures.get(alias, telemetry.Figures()) if before is not None else fig
        state = known.get(alias)
        if not HEALTH.is_healthy(spec) or (state is not None and not state.healthy):
            failures = state.failures if state is not None else 0
            shown = f"[red]unhealthy[/red] ({failures})" if failures else "[red]unhealthy[/red]"
        else:
            shown = "[green]healthy[/green]"
        in_use, idle, waiting = pools.get(alias, [0, 0, 0])

        def rate(name: str, fig: telemetry.Figures = fig, old: telemetry.Figures = old) -> str:
            if elapsed <= 0:
                return "-"
            return f"{(getattr(fig, name) - getattr(old, name)) / elapsed:.1f}"

        rows = (fig.rows_read + fig.rows_written - old.rows_read - old.rows_written) / elapsed \
            if elapsed > 0 else None
        out.add_row(alias, spec.driver, shown, now.probes.get(alias, "-"), str(in_use),
                    str(idle), str(waiting), rate("calls"),
                    "-" if rows is None else f"{rows:.1f}", f"{fig.throttle_wait:.2f} s",
                    str(fig.too_many_requests), str(fig.errors), _lag(specs, spec))
    return out


def _lag(specs: Mapping[str, ContainerSpec], spec: ContainerSpec) -> str:
    """A standby's lag as its prober (started here on the first round) last measured it."""
    if spec.options.replica_of is None:
        return "-"
    return describe(LAG.lag(spec, specs[spec.options.replica_of]))


def watch(specs: Mapping[str, ContainerSpec], interval: float = 1.0, count: int | None = None,
          out: TextIO | None = None, probe: bool = True) -> int:
    """Show the live table until interrupted (or for count rounds); 0 when it ends."""
    console = Console(file=out) if out is not None else Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 150  # a log or a pipe: room for every column
    telemetry.watch(True)
    before: _Round | None = None
    shown = 0
    try:
        live: Live | _Printer = Live(console=console, auto_refresh=False) \
            if console.is_terminal else _Printer(console)
        with live:
            while count is None or shown < count:
                if shown:
                    time.sleep(interval)
                probes = {alias: _probe(spec) for alias, spec in specs.items()} if probe else {}
                now = _Round(time.monotonic(), telemetry.figures(), probes)
                live.update(table(specs, now, before), refresh=True)
                before, shown = now, shown + 1
    except KeyboardInterrupt:
        pass
    finally:
        telemetry.watch(False)
    return 0


class _Printer:
    """Live's part where the output is no terminal: each round's table printed after the
    last (a log of rounds, not a redrawn screen)."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, renderable: Table, refresh: bool = False) -> None:
        self.console.print(renderable)
