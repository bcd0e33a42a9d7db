"""Strip @{...} suffixes and catalog.. prefixes, and produce the text for one back-end."""
from __future__ import annotations

from .paramstyle import render_markers
from .parse import Rendered, Statement
from .styles import Paramstyle


def strip(stmt: Statement, start: int = 0, end: int | None = None) -> list[tuple[int, str]]:
    """Return the (offset, text) pieces of stmt.text[start:end] without suffixes and catalogs."""
    end = len(stmt.text) if end is None else end
    pieces, pos = [], start
    for lo, hi in stmt.removed:
        if hi <= start or lo >= end:
            continue
        if lo > pos:
            pieces.append((pos, stmt.text[pos:lo]))
        pos = max(pos, hi)
    if pos < end:
        pieces.append((pos, stmt.text[pos:end]))
    return pieces


def render(stmt: Statement, style: Paramstyle | None) -> Rendered:
    """Return the back-end text (and parameter keys) of a statement; style None: no parameters."""
    cached = stmt.derived.rendered.get(style)
    if cached is None:
        pieces = strip(stmt)
        if style is None:
            cached = Rendered("".join(text for _, text in pieces), ())
        else:
            cached = render_markers(stmt, pieces, style)
        stmt.derived.rendered[style] = cached
    return cached
