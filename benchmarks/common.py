"""Shared by the benchmark scripts: printing a table and writing its JSON."""
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


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
