"""Shared by the benchmark scripts: printing a table and writing its JSON; a process's
children; throwaway PostgreSQL clusters, and pinning the client and the servers to cores."""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # pgcluster: throwaway PostgreSQL clusters


def report(name: str, rows: list[dict], columns: list[str]) -> None:
    """Print rows as a table and write them to benchmarks/results/NAME.json."""
    widths = [max(len(c), *(len(_fmt(r[c])) for r in rows)) for c in columns]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)))
    for row in rows:
        print("  ".join(_fmt(row[c]).rjust(w) for c, w in zip(columns, widths, strict=True)))
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(rows, indent=2))


def children(pid: int) -> list[int]:
    """The pids whose parent is pid (read from /proc: a server's workers)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # ended meanwhile
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


PIN = hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2


def pin_client() -> None:
    """The client (this process) on core 0."""
    if PIN:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def pin_server(data: Path) -> None:
    """The postmaster and every process it started on core 1 (backends forked later inherit
    it)."""
    if not PIN:
        return
    core = sorted(os.sched_getaffinity(0) | set(range(os.cpu_count() or 2)))[1]
    postmaster = int((data / "postmaster.pid").read_text().split()[0])
    for pid in [postmaster, *children(postmaster)]:
        try:
            os.sched_setaffinity(pid, {core})
        except OSError:
            pass  # ended meanwhile


@contextmanager
def clusters() -> Iterator[Any]:
    """A factory of throwaway PostgreSQL clusters (tests/pgcluster.py: new, standby); every
    cluster it started is removed on leaving."""
    from pgcluster import ClusterFactory
    factory = ClusterFactory()
    try:
        yield factory
    finally:
        factory.close()


def pinned(factory: Any, **settings: str) -> Any:
    """A new cluster of factory (server settings as ClusterFactory.new takes them), its server
    pinned (pin_server)."""
    cluster = factory.new(**settings)
    pin_server(cluster.data)
    return cluster


@contextmanager
def pinned_cluster(**settings: str) -> Iterator[Any]:
    """One throwaway PostgreSQL cluster, its server pinned (pinned); removed on leaving."""
    with clusters() as factory:
        yield pinned(factory, **settings)


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
