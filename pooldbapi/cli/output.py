"""How the command prints results: an aligned table, CSV, or JSON lines."""
from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from typing import Any, TextIO

FORMATS = ("table", "csv", "json")


def table(rows: Sequence[Sequence[Any]], header: Sequence[str], out: TextIO) -> None:
    """Print rows as an aligned table under a header (numbers to the right)."""
    cells = [[str(c) for c in header]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) if n and c.replace(".", "").isdigit() else c.ljust(w)
                        for c, w in zip(row, widths, strict=True)).rstrip(), file=out)
        if n == 0:
            print("  ".join("-" * w for w in widths), file=out)


def result(fmt: str, number: int, columns: list[str] | None, rows: list[Sequence[Any]],
           rowcount: int, containers: dict[str, int], out: TextIO) -> None:
    """Print one statement's outcome in the chosen format."""
    ran = ", ".join(f"{a}={n}" for a, n in sorted(containers.items()))
    if fmt == "json":  # one JSON document per statement (JSON lines)
        doc: dict[str, Any] = {"statement": number, "containers": containers}
        if columns is not None:
            doc["columns"] = columns
            doc["rows"] = [list(r) for r in rows]
        else:
            doc["rowcount"] = rowcount
        print(json.dumps(doc, default=str), file=out)
    elif fmt == "csv":  # result sets only: the data, nothing else
        if columns is not None:
            writer = csv.writer(out)
            writer.writerow(columns)
            writer.writerows(rows)
    else:
        if columns is not None:
            table(rows, columns, out)
        else:
            print(f"rowcount: {rowcount}", file=out)
        print(f"containers: {ran}", file=out)
