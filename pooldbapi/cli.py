"""The `pooldbapi` command: `demo` on embedded SQLite containers, `sql` against a settings file."""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from . import Error, connect

ALIASES = ("eol1", "eol2", "eol3", "eol4", "eol5")


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str], out: TextIO) -> None:
    cells = [[str(c) for c in header]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) if n and c.replace(".", "").isdigit() else c.ljust(w)
                        for c, w in zip(row, widths)).rstrip(), file=out)
        if n == 0:
            print("  ".join("-" * w for w in widths), file=out)


def demo(directory: Path, out: TextIO) -> dict[str, dict[str, int]]:
    """Run the SPEC's scenarios on five SQLite containers and print who ran what."""
    containers = {a: f"driver=sqlite;database={directory / a}.db" for a in ALIASES}
    counts: dict[str, dict[str, int]] = {}
    with connect(containers, default="{" + ",".join(ALIASES) + "}", broadcast_ddl=True) as conn:
        conn.execute("drop table if exists Journals")
        conn.execute("drop table if exists Tasks")
        conn.execute("create table Journals (id integer primary key, amount numeric)")
        conn.execute("create table Tasks (id integer primary key, description text)")
        cur = conn.cursor()
        cur.executemany("insert into Journals (amount) values (?)", [(i,) for i in range(50)])
        counts["executemany: 50 journal rows, {eol1..eol5}"] = cur.containers
        conn.commit()

        ran: dict[str, int] = {}
        for _ in range(10):
            cur.execute("select count(*) from Journals@{eol1,eol2,eol3,eol4,eol5}")
            for alias, n in cur.containers.items():
                ran[alias] = ran.get(alias, 0) + n
        counts["select count(*) x10, {eol1..eol5}"] = ran

        ran = {}
        for i in range(30):
            cur.execute("insert into Tasks@{eol1,eol2,eol2} (description) values (?)",
                        (f"task {i}",))
            for alias, n in cur.containers.items():
                ran[alias] = ran.get(alias, 0) + n
        conn.commit()
        counts["insert x30, {eol1,eol2,eol2}"] = ran
        stored = {a: conn.execute(f"select count(*) from Tasks@{a}").fetchone()[0]
                  for a in ALIASES}
        counts["Tasks rows stored per container"] = stored
    print("pooldbapi demo: executions, rows or pages per container\n", file=out)
    _table([[name, *(counts[name].get(a, 0) for a in ALIASES)] for name in counts],
           ["scenario", *ALIASES], out)
    one, five = throughput(directory)
    print(f"\nthroughput: {THROTTLED_ROWS} single-row inserts into containers throttled to"
          f" {THROTTLE} calls/s each", file=out)
    _table([["one container", f"{one:.2f}", f"{THROTTLED_ROWS / one:.0f}"],
            ["five containers", f"{five:.2f}", f"{THROTTLED_ROWS / five:.0f}"]],
           ["list", "seconds", "rows/s"], out)
    print(f"speed-up: {one / five:.1f}x", file=out)
    return counts


THROTTLE = 50
THROTTLED_ROWS = 100


def throughput(directory: Path) -> tuple[float, float]:
    """Time single-row inserts through one and through five throttled containers."""
    containers = {f"slow{i}": f"driver=sqlite;database={directory / f'slow{i}'}.db;"
                              f"max-calls-per-second={THROTTLE}" for i in range(1, 6)}
    lst = "{" + ",".join(containers) + "}"
    with connect(containers, default=lst, broadcast_ddl=True) as conn:
        conn.execute("create table if not exists Calls (n int)")
        conn.commit()
        seconds = []
        for target in ("slow1", lst):
            start = time.perf_counter()
            for n in range(THROTTLED_ROWS):
                conn.execute(f"insert into Calls@{target} (n) values (?)", (n,))
            conn.commit()
            seconds.append(time.perf_counter() - start)
    return seconds[0], seconds[1]


def run_sql(settings: str, statements: Sequence[str], default: str | None, out: TextIO) -> None:
    """Run statements against a settings file; print rows and per-container counts."""
    with connect(settings=settings, default=default) as conn:
        for text in statements:
            cur = conn.execute(text)
            if cur.description is not None:
                _table(cur.fetchall(), [d[0] for d in cur.description], out)
            else:
                print(f"rowcount: {cur.rowcount}", file=out)
            ran = ", ".join(f"{a}={n}" for a, n in sorted(cur.containers.items()))
            print(f"containers: {ran}", file=out)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `pooldbapi` command."""
    parser = argparse.ArgumentParser(prog="pooldbapi", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="run the scenarios on embedded SQLite containers")
    p_demo.add_argument("--dir", type=Path, help="keep the SQLite files here")
    p_sql = sub.add_parser("sql", help="run statements against a settings file")
    p_sql.add_argument("--settings", required=True, help="a TOML settings file")
    p_sql.add_argument("--default", help="default container list, e.g. {a,b}")
    p_sql.add_argument("statements", nargs="+")
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            if args.dir:
                args.dir.mkdir(parents=True, exist_ok=True)
                demo(args.dir, sys.stdout)
            else:
                with tempfile.TemporaryDirectory(prefix="pooldbapi-demo-") as tmp:
                    demo(Path(tmp), sys.stdout)
        else:
            run_sql(args.settings, args.statements, args.default, sys.stdout)
    except Error as exc:
        print(f"pooldbapi: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0
