"""Shared by the benchmark scripts: printing a table and writing its JSON; a process's
children."""
from __future__ import annotations

import json
import sys
from pathlib import Path

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


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
