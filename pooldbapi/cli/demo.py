"""`pooldbapi demo`: the scenarios of the contract on five embedded SQLite containers."""
from __future__ import annotations

import time
from pathlib import Path
from typing import TextIO

from .. import connect
from .output import table

ALIASES = ("eol1", "eol2", "eol3", "eol4", "eol5")


def demo(directory: Path, out: TextIO) -> dict[str, dict[str, int]]:
    """Run the example scenarios on five SQLite containers and print who ran what."""
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
        stored = {a: conn.execute(f"select count(*) from Tasks@{a}").fetchall()[0][0]
                  for a in ALIASES}
        counts["Tasks rows stored per container"] = stored
    print("pooldbapi demo: executions, rows or pages per container\n", file=out)
    table([[name, *(counts[name].get(a, 0) for a in ALIASES)] for name in counts],
           ["scenario", *ALIASES], out)
    one, five = throughput(directory)
    print(f"\nthroughput: {THROTTLED_ROWS} single-row inserts into containers throttled to"
          f" {THROTTLE} calls/s each", file=out)
    table([["one container", f"{one:.2f}", f"{THROTTLED_ROWS / one:.0f}"],
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
