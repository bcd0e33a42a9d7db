"""The one-row select (execute + fetchall) through two versions of pooldbapi in one process:
this checkout's and another's (--other: a directory holding a pooldbapi package, such as a
`git worktree` or `git archive` of an earlier commit), against the raw driver.

The other version is loaded as the package `pooldbapi_other` (its modules import each other
relatively; the back-end registry's module names are rewritten to match), so blocks of raw,
other and this version interleave in one run and see the same load from the rest of the
machine. Prints, per driver and mode, the median client CPU per execute
(time.thread_time) of each and the CPU each adds over the raw driver (the median of each
block's difference to the raw block next to it), and writes benchmarks/results/versions.json.
The client is pinned to core 0 and the PostgreSQL server to core 1, as in overhead.py.
"""
from __future__ import annotations

import argparse
import importlib.util
import shutil
import sqlite3
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from common import pin_client, pinned_cluster, report
from overhead import MODES, per_call

import pooldbapi

OTHER = "pooldbapi_other"


def load_other(directory: Path, scratch: Path) -> ModuleType:
    """Import directory/pooldbapi as the package pooldbapi_other."""
    copy = scratch / OTHER
    shutil.copytree(directory / "pooldbapi", copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    registry = copy / "backends" / "__init__.py"
    registry.write_text(registry.read_text().replace('"pooldbapi.backends.',
                                                     f'"{OTHER}.backends.'))
    spec = importlib.util.spec_from_file_location(
        OTHER, copy / "__init__.py", submodule_search_locations=[str(copy)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[OTHER] = module
    spec.loader.exec_module(module)
    return module


def blocks(calls: dict[str, Callable[[], object]], ends: dict[str, Callable[[], object]],
           rounds: int, n: int) -> dict[str, list[float]]:
    """CPU per call of each side, in blocks of n calls, the sides' order turned each round."""
    for name, call in calls.items():
        call(), ends[name]()  # warm up: connections open, statements cached
    out: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            out[name].append(per_call(calls[name], n)[1])
            ends[name]()
    return out


def rows_of(driver: str, mode: str, cpu: dict[str, list[float]]) -> dict:
    def added(name: str) -> float:
        return statistics.median(b - a for a, b in zip(cpu["raw"], cpu[name], strict=True))
    return {"case": f"{driver}: select one row + fetchall", "mode": mode,
            "raw_cpu_us": round(statistics.median(cpu["raw"]), 2),
            "other_cpu_us": round(statistics.median(cpu["other"]), 2),
            "this_cpu_us": round(statistics.median(cpu["this"]), 2),
            "other_added_cpu_us": round(added("other"), 2),
            "this_added_cpu_us": round(added("this"), 2)}


def fetch(cur: object, text: str) -> Callable[[], object]:
    def call() -> object:
        cur.execute(text, (1,))  # type: ignore[attr-defined]
        return cur.fetchall()  # type: ignore[attr-defined]
    return call


def sqlite_cases(other: ModuleType, rounds: int, n: int, tmp: Path) -> list[dict]:
    out = []
    database = str(tmp / "v.db")
    sqlite3.connect(database).close()
    for mode, autocommit in MODES:
        raw = sqlite3.connect(database, isolation_level=None if autocommit else "DEFERRED")
        conns = {name: package.connect({"s": f"driver=sqlite;database={database}"},
                                       autocommit=autocommit)
                 for name, package in (("other", other), ("this", pooldbapi))}
        calls = {"raw": fetch(raw.cursor(), "select ?"),
                 **{name: fetch(conn.cursor(), "select ?") for name, conn in conns.items()}}
        ends = {"raw": (lambda: None) if autocommit else raw.commit,
                **{name: (lambda: None) if autocommit else conn.commit
                   for name, conn in conns.items()}}
        out.append(rows_of("sqlite", mode, blocks(calls, ends, rounds, n)))
        for conn in conns.values():
            conn.close()
        raw.close()
    return out


def postgresql_cases(other: ModuleType, rounds: int, n: int) -> list[dict]:
    import psycopg
    with pinned_cluster() as cluster:
        out = []
        for mode, autocommit in MODES:
            cpu: dict[str, list[float]] = {"raw": [], "other": [], "this": []}
            for _ in range(rounds):  # new server sessions every round, as overhead.py does
                raw = psycopg.connect(cluster.dsn, autocommit=autocommit)
                other.close_all()
                pooldbapi.close_all()
                conns = {name: package.connect({"pg": cluster.conninfo()},
                                               autocommit=autocommit)
                         for name, package in (("other", other), ("this", pooldbapi))}
                calls = {"raw": fetch(raw.cursor(), "select %s"),
                         **{name: fetch(conn.cursor(), "select ?")
                            for name, conn in conns.items()}}
                ends = {"raw": (lambda: None) if autocommit else raw.commit,
                        **{name: (lambda: None) if autocommit else conn.commit
                           for name, conn in conns.items()}}
                for name, got in blocks(calls, ends, 3, n).items():
                    cpu[name] += got
                for conn in conns.values():
                    conn.close()
                raw.close()
            out.append(rows_of("postgresql", mode, cpu))
        return out


async def postgresql_aio_cases(other: ModuleType, rounds: int, n: int) -> list[dict]:
    """The same through each version's pooldbapi.aio, against psycopg's AsyncConnection (one
    event loop; CPU: time.thread_time, the calls running on the loop's thread)."""
    import time

    import psycopg

    import pooldbapi.aio
    other_aio = importlib.import_module(f"{OTHER}.aio")

    async def per_block(call: Callable[[], Any], k: int) -> float:
        cpu = time.thread_time()
        for _ in range(k):
            await call()
        return (time.thread_time() - cpu) / k * 1e6

    def afetch(cur: Any, text: str) -> Callable[[], Any]:
        async def call() -> object:
            await cur.execute(text, (1,))
            return await cur.fetchall()
        return call

    async def nothing() -> None:
        return None

    with pinned_cluster() as cluster:
        out = []
        for mode, autocommit in MODES:
            cpu: dict[str, list[float]] = {"raw": [], "other": [], "this": []}
            for _ in range(rounds):  # new server sessions every round
                raw = await psycopg.AsyncConnection.connect(cluster.dsn, autocommit=autocommit)
                other.close_all()
                pooldbapi.close_all()
                conns = {name: await package.connect({"pg": cluster.conninfo()},
                                                     autocommit=autocommit)
                         for name, package in (("other", other_aio), ("this", pooldbapi.aio))}
                calls = {"raw": afetch(raw.cursor(), "select %s"),
                         **{name: afetch(conn.cursor(), "select ?")
                            for name, conn in conns.items()}}
                ends = {"raw": nothing if autocommit else raw.commit,
                        **{name: nothing if autocommit else conn.commit
                           for name, conn in conns.items()}}
                for name, call in calls.items():  # warm up: sessions open, statements prepared
                    await call()
                    await ends[name]()
                names = list(calls)
                for r in range(3):
                    for name in names[r % 3:] + names[:r % 3]:
                        cpu[name].append(await per_block(calls[name], n))
                        await ends[name]()
                for conn in conns.values():
                    await conn.close()
                await raw.close()
            row = rows_of("postgresql", mode, cpu)
            row["case"] = "postgresql (aio): select one row + fetchall"
            out.append(row)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--other", type=Path, required=True,
                        help="a directory holding the pooldbapi package to compare with")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--n", type=int, default=2000, help="SQLite executes per block")
    parser.add_argument("--pg-n", type=int, default=300, help="PostgreSQL executes per block")
    parser.add_argument("--only", choices=["sqlite", "postgresql", "aio"],
                        help="aio: PostgreSQL through pooldbapi.aio against psycopg's"
                        " AsyncConnection (not run otherwise)")
    args = parser.parse_args()
    pin_client()
    with tempfile.TemporaryDirectory() as tmp:
        other = load_other(args.other, Path(tmp))
        rows = []
        if args.only in (None, "sqlite"):
            rows += sqlite_cases(other, args.rounds, args.n, Path(tmp))
        if args.only in (None, "postgresql"):
            rows += postgresql_cases(other, args.rounds, args.pg_n)
        if args.only == "aio":
            import asyncio
            rows += asyncio.run(postgresql_aio_cases(other, args.rounds, args.pg_n))
    report("versions", rows, ["case", "mode", "raw_cpu_us", "other_cpu_us", "this_cpu_us",
                              "other_added_cpu_us", "this_added_cpu_us"])


if __name__ == "__main__":
    main()
