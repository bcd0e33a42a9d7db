"""Multi-row VALUES split into single-row statements from the one scan: each row's Statement is
derived from the parsed one (positions moved), never parsed again nor cached, so the work grows
linearly with the rows."""
from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from .paramstyle import source_style
from .parse import Occurrence, Placeholder, Statement


class _Shift:
    """Maps positions of the whole statement to positions in one row's statement: the prefix
    before the first row, the row itself, and the suffix after the last row."""

    def __init__(self, first: int, last: int, lo: int, hi: int) -> None:
        self.first, self.last, self.lo, self.hi = first, last, lo, hi

    def keeps(self, pos: int) -> bool:
        return pos < self.first or self.lo <= pos < self.hi or pos >= self.last

    def __call__(self, pos: int) -> int:
        if pos < self.first:
            return pos
        if pos < self.hi:
            return pos - self.lo + self.first
        return pos - self.last + self.first + self.hi - self.lo


def _occurrence(occ: Occurrence, move: _Shift) -> Occurrence:
    return replace(occ, position=move(occ.position),
                   suffix_position=None if occ.suffix_position is None
                   else move(occ.suffix_position),
                   alias_positions=tuple(move(p) for p in occ.alias_positions))


def split_rows(stmt: Statement, params: Any) -> list[tuple[Statement, Any]]:
    """Return one single-row insert (and its parameters) per row of a multi-row VALUES list.
    Without parameters each row gets an empty parameter set."""
    text = stmt.text
    first, last = stmt.values_rows[0][0], stmt.values_rows[-1][1]
    prefix, suffix = text[:first], text[last:]
    style = source_style(stmt) if params is not None else None
    starts = [p.start for p in stmt.placeholders]
    outside = [j for j, p in enumerate(stmt.placeholders) if p.start < first or p.start >= last]
    out: list[tuple[Statement, Any]] = []
    for lo, hi in stmt.values_rows:
        move = _Shift(first, last, lo, hi)
        inside = range(bisect.bisect_left(starts, lo), bisect.bisect_left(starts, hi))
        kept = sorted([*outside, *inside])
        row = Statement(
            prefix + text[lo:hi] + suffix, stmt.kind,
            tuple(_occurrence(o, move) for o in stmt.occurrences if move.keeps(o.position)),
            tuple(Placeholder(p.style, p.key, move(p.start), move(p.end))
                  for p in (stmt.placeholders[j] for j in kept)),
            tuple((move(a), move(b)) for a, b in stmt.removed if move.keeps(a)),
            ((first, first + hi - lo),), stmt.words, None, stmt.columns,
            # every clause lies before the first row or after the last (VALUES' body spans them)
            tuple((name, move(k), move(b), move(e)) for name, k, b, e in stmt.clauses),
            None if stmt.end is None else move(stmt.end))
        out.append((row, _row_params(style, params, kept, row)))
    return out


def _row_params(style: str | None, params: Any, kept: Sequence[int], row: Statement) -> Any:
    if params is None:
        return ()
    if style in ("named", "pyformat") or style is None:
        return params
    if style == "numeric":  # :n refers to the caller's n-th value: the values up to the largest
        return params[:max((p.key for p in row.placeholders if isinstance(p.key, int)),
                           default=0)]
    return [params[j] for j in kept]
