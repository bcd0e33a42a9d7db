"""Rows of multi-row VALUES, from the one scan: single-row statements, or one statement of the
rows that land on one container (in their order). Each Statement is derived from the parsed one
(positions moved), never parsed again, so the work grows linearly with the rows."""
from __future__ import annotations

import bisect
import operator
from collections.abc import Callable, Sequence
from dataclasses import replace
from itertools import accumulate, repeat
from typing import Any, overload

from .paramstyle import source_style
from .parse import Derived, Markers, Occurrence, Placeholder, Statement
from .styles import BY_NAME, NUMERIC, SEQUENTIAL, Paramstyle


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


def _occurrence(occ: Occurrence, move: Callable[[int], int]) -> Occurrence:
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
    starts = stmt.placeholders.starts
    outside = [j for j, start in enumerate(starts) if start < first or start >= last]
    out: list[tuple[Statement, Any]] = []
    for lo, hi in stmt.values_rows:
        move = _Shift(first, last, lo, hi)
        inside = range(bisect.bisect_left(starts, lo), bisect.bisect_left(starts, hi))
        kept = sorted([*outside, *inside])
        row = Statement(
            prefix + text[lo:hi] + suffix, stmt.kind,
            tuple(_occurrence(o, move) for o in stmt.occurrences if move.keeps(o.position)),
            Markers.of(Placeholder(p.style, p.key, move(p.start), move(p.end))
                       for p in (stmt.placeholders[j] for j in kept)),
            tuple((move(a), move(b)) for a, b in stmt.removed if move.keeps(a)),
            ((first, first + hi - lo),), stmt.words, None, stmt.columns,
            # every clause lies before the first row or after the last (VALUES' body spans them)
            tuple((name, move(k), move(b), move(e)) for name, k, b, e in stmt.clauses),
            None if stmt.end is None else move(stmt.end))
        out.append((row, _row_params(style, params, kept, row)))
    return out


def _row_params(style: Paramstyle | None, params: Any, kept: Sequence[int], row: Statement) -> Any:
    if params is None:
        return ()
    if style in BY_NAME or style is None:
        return params
    if style == NUMERIC:  # :n refers to the caller's n-th value: the values up to the largest
        return _Prefix(params, max((p.key for p in row.placeholders if isinstance(p.key, int)),
                                   default=0))
    return [params[j] for j in kept]


class _Prefix(Sequence[Any]):
    """The first n of the caller's values, not copied: a copy for each row made a replay of a
    long statement's rows one by one quadratic."""

    __slots__ = ("n", "values")

    def __init__(self, values: Sequence[Any], n: int) -> None:
        self.values, self.n = values, n

    def __len__(self) -> int:
        return self.n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    @overload
    def __getitem__(self, i: int) -> Any: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Any]: ...

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return self.values[:self.n][i]
        if not -self.n <= i < self.n:
            raise IndexError(i)
        return self.values[i % self.n]


class _Segments:
    """Maps positions of the whole statement to positions in a statement made of some of its
    pieces (the prefix, chosen rows, the suffix), laid end to end with ', ' between rows."""

    def __init__(self, pieces: Sequence[tuple[int, int, int]]) -> None:
        self.pieces = pieces  # (source start, source end, target start), by source start
        self.starts = [lo for lo, _, _ in pieces]

    def _piece(self, pos: int) -> tuple[int, int, int] | None:
        i = bisect.bisect_right(self.starts, pos) - 1
        if i < 0:
            return None
        piece = self.pieces[i]
        return piece if pos <= piece[1] else None

    def keeps(self, pos: int) -> bool:
        piece = self._piece(pos)
        return piece is not None and (pos < piece[1] or piece is self.pieces[-1])

    def __call__(self, pos: int) -> int:
        piece = self._piece(pos)
        assert piece is not None, pos
        return pos - piece[0] + piece[2]


_LO, _HI = operator.itemgetter(0), operator.itemgetter(1)

GROUP_CACHE = 8
"""Row sets kept per statement (at most; also bounded by text): a round-robin over a list gives
the same few row sets again."""


def group_rows(stmt: Statement, params: Any, rows: Sequence[int], keep: bool = True
               ) -> tuple[Statement, Any]:
    """Return one insert of the given rows of a multi-row VALUES list (their indices, in their
    order), and its parameters: the rows' own values and those of placeholders outside the
    rows. Derived from the one scan, never parsed again; kept on the statement by rows (not
    with keep=False)."""
    groups = stmt.derived.groups
    if groups is None:
        groups = stmt.derived.groups = {}
    key = rows if type(rows) is range else tuple(rows)  # a range hashes in one step
    made = groups.get(key)
    if made is None:
        made = _group(stmt, rows)
        if keep:
            # bounded by entries and by text (twice the statement's: the row sets of two
            # executions), so that the parse cache's bound in bytes stays within three times
            if len(groups) >= GROUP_CACHE or len(made.text) + sum(
                    len(g.text) for g in list(groups.values())) > 2 * len(stmt.text):
                groups.clear()  # a plain dict: safe where threads share the statement
            groups[key] = made
    style = source_style(stmt) if params is not None else None
    if style in SEQUENTIAL:
        pick = made.derived.pick
        assert pick is not None  # (every row set's insert is made with one)
        return made, pick(params)
    return made, _row_params(style, params, (), made)


class _Around:
    """_Segments where every position to map lies before the rows or after them (the common
    case: a table's name, the column list, RETURNING): no piece per row to look through."""

    def __init__(self, first: int, last: int, rows_end: int) -> None:
        self.first, self.shift = first, rows_end - last

    def keeps(self, pos: int) -> bool:
        return True

    def __call__(self, pos: int) -> int:
        return pos if pos <= self.first else pos + self.shift


def _outside(stmt: Statement, first: int, last: int) -> bool:
    """Whether the positions a group maps all lie outside the rows (those it may drop, before
    the first row or after the last; the others may also be the first row's start)."""
    kept = [o.position for o in stmt.occurrences]
    kept.extend(a for a, _ in stmt.removed)
    moved = [p for o in stmt.occurrences for p in (o.suffix_position, *o.alias_positions)
             if p is not None]
    moved.extend(b for _, b in stmt.removed)
    moved.extend(p for _, k, b, e in stmt.clauses for p in (k, b, e))
    if stmt.end is not None:
        moved.append(stmt.end)
    return all(p < first or p >= last for p in kept) and \
        all(p <= first or p >= last for p in moved)


def _picker(kept: Sequence[int]) -> Callable[[Any], tuple[Any, ...]]:
    """The values at the kept positions of the caller's sequence, as a tuple, at C speed."""
    if not kept:
        return lambda params: ()
    if len(kept) == 1:
        only = kept[0]
        return lambda params: (params[only],)
    return operator.itemgetter(*kept)


def _strided(rows: range, width: int, other: Callable[[Any], tuple[Any, ...]] | None = None
             ) -> Callable[[Any], tuple[Any, ...]]:
    """The values of every k-th row from the j-th (rows: range(j, n, k)), `width` values a
    row and none outside the rows: `width` extended slices of the caller's list or tuple, at
    C speed (a round-robin's share of a generated statement: some 60% of an itemgetter's
    time over a thousand values); other picks from any other sequence (which may not slice)."""
    count, start, step = len(rows), rows.start * width, rows.step * width
    last = (count - 1) * step

    def pick(params: Any) -> tuple[Any, ...]:
        if other is not None and type(params) is not list and type(params) is not tuple:
            return other(params)
        out: list[Any] = [None] * (count * width)
        for column in range(width):
            out[column::width] = params[start + column:start + column + last + 1:step]
        return tuple(out)
    return pick


def _group(stmt: Statement, rows: Sequence[int]) -> Statement:
    text = stmt.text
    spans = tuple(stmt.values_rows)
    first, last = spans[0][0], spans[-1][1]
    # no Python step per row where there are no markers in the rows: maps and slices only
    chosen = list(map(spans.__getitem__, rows))
    los, his = list(map(_LO, chosen)), list(map(_HI, chosen))
    lengths = list(map(operator.sub, his, los))
    # where each row starts in the group: after the prefix, rows joined by ', '
    ats = list(accumulate(map(operator.add, lengths[:-1], repeat(2)), initial=first))
    made_rows = list(zip(ats, map(operator.add, ats, lengths), strict=True))
    out = [text[:first], ", ".join(map(text.__getitem__, map(slice, los, his))), text[last:]]
    starts = stmt.placeholders.starts
    head, tail = bisect.bisect_left(starts, first), bisect.bisect_left(starts, last)
    inside: list[int] = []  # the rows' placeholders (indices), in the group's order
    shifts: list[int] = []  # and how far each moves (its row's shift)
    if head < tail:
        for (lo, hi), at in zip(chosen, ats, strict=True):
            a, b = bisect.bisect_left(starts, lo, head, tail), bisect.bisect_left(starts, hi,
                                                                                head, tail)
            inside.extend(range(a, b))
            shifts.extend(repeat(at - lo, b - a))
    move: _Segments | _Around
    if _outside(stmt, first, last):
        move = _Around(first, last, made_rows[-1][1])
    else:  # a row later in the text may come first in the group: the mapper wants source order
        move = _Segments(sorted([(0, first, 0), *((lo, hi, at) for (lo, hi), at in zip(chosen, ats, strict=True)),
                                 (last, len(text), made_rows[-1][1])]))
    marks = stmt.placeholders
    # in the statement's order: those before the rows, the rows' (in the group's order), those
    # after (a row's own keep their place in it, moved with it)
    ordered = [*range(head), *inside, *range(tail, len(marks))]
    # the text before the first row stays where it was; the rows' markers move with them
    placeholders = marks[:head] + marks.pick(inside, shifts) + Markers.of(
        Placeholder(p.style, p.key, move(p.start), move(p.end)) for p in marks[tail:])
    made = replace(
        stmt, text="".join(out),
        occurrences=tuple(_occurrence(o, move) for o in stmt.occurrences
                          if move.keeps(o.position)),
        placeholders=placeholders,
        removed=tuple(sorted((move(a), move(b)) for a, b in stmt.removed if move.keeps(a))),
        values_rows=tuple(made_rows),
        select_start=None,
        clauses=tuple((name, move(k), move(b), move(e)) for name, k, b, e in stmt.clauses),
        end=None if stmt.end is None else move(stmt.end), derived=Derived())
    width = len(marks) // len(spans) if spans else 0
    if type(rows) is range and rows and rows.step > 0 and width and \
            len(marks) == width * len(spans) and \
            _strided(rows, width)(range(len(marks))) == tuple(ordered):
        # (the strided pick of the markers' own indices is the order wanted: so it is for
        # the values, whatever they are)
        made.derived.pick = _strided(rows, width, _picker(ordered))
    else:
        made.derived.pick = _picker(ordered)
    return made
