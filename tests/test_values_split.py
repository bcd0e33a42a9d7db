"""Multi-row VALUES split into rows, or grouped into a statement of some of its rows, without
parsing again: each row's (each group's) Statement must be exactly what parsing its own text
gives, and its parameters exactly its rows' values (and those of placeholders outside the rows),
in every placeholder style."""
from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pooldbapi.sql.paramstyle import bind
from pooldbapi.sql.parse import parse
from pooldbapi.sql.render import render
from pooldbapi.sql.values import GROUP_CACHE, _outside, group_rows, split_rows

STYLES = ("qmark", "numeric", "named", "format", "pyformat")
LITERALS = ("1", "'a, (b)'", "'?'", "null", "-2.5", "'it''s'", "(3 + 4)", "lower('X')")


class Writer:
    """Writes placeholders of one style and keeps the value each one binds."""

    def __init__(self, style: str) -> None:
        self.style, self.n, self.values = style, 0, {}

    def marker(self, value: object) -> str:
        self.n += 1
        key = f"p{self.n}"
        self.values[key] = value
        return {"qmark": "?", "numeric": f":{self.n}", "named": f":{key}", "format": "%s",
                "pyformat": f"%({key})s"}[self.style]

    def params(self) -> object:
        if self.style in ("named", "pyformat"):
            return dict(self.values)
        return list(self.values.values())


@st.composite
def inserts(draw):
    style = draw(st.sampled_from(STYLES))
    width = draw(st.integers(1, 3))
    rows = draw(st.integers(2, 5))
    table = draw(st.sampled_from(("t", "t@{a,b}", "s.t@a", '"T x"@{a,a,b}')))
    writer = Writer(style)
    expected_rows = []
    row_texts = []
    for _ in range(rows):
        cells, bound = [], []
        for c in range(width):
            if draw(st.booleans()):
                value = draw(st.integers(-5, 5))
                cells.append(writer.marker(value))
                bound.append(value)
            else:
                cells.append(draw(st.sampled_from(LITERALS)))
        expected_rows.append(bound)
        row_texts.append("(" + ", ".join(cells) + ")")
    tail_values = []
    tail = draw(st.sampled_from(("", " returning c0", " on conflict (c0) do update set c0 = {}",
                                 " -- done\n")))
    if "{}" in tail:
        tail = tail.format(writer.marker(99))
        tail_values.append(99)
    columns = ", ".join(f"c{i}" for i in range(width))
    sep = draw(st.sampled_from((", ", ",\n  ", " /* , (1) */ ,")))
    text = f"insert into {table} ({columns}) values {sep.join(row_texts)}{tail}"
    return text, writer.params(), expected_rows, tail_values


@settings(max_examples=300, deadline=None)
@given(inserts())
def test_each_split_row_is_what_parsing_its_text_gives(case):
    text, params, expected_rows, tail_values = case
    stmt = parse(text)
    assert len(stmt.values_rows) == len(expected_rows)
    split = split_rows(stmt, params)
    assert len(split) == len(expected_rows)
    for (row, row_params), values in zip(split, expected_rows, strict=True):
        fresh = parse(row.text)
        assert row == fresh  # occurrences, placeholders, removed spans, rows, clauses, columns
        assert render(row, "qmark") == render(fresh, "qmark")
        assert list(bind(row, render(row, "qmark").keys, row_params)) == values + tail_values


def test_rows_without_parameters_get_an_empty_parameter_set():
    stmt = parse("insert into t@{a,b} (x) values (1), ('two'), (3)")
    split = split_rows(stmt, None)
    assert [r.text for r, _ in split] == ["insert into t (x) values (1)"
                                          .replace("t (x)", "t@{a,b} (x)"),
                                          "insert into t@{a,b} (x) values ('two')",
                                          "insert into t@{a,b} (x) values (3)"]
    assert [p for _, p in split] == [(), (), ()]


@settings(max_examples=300, deadline=None)
@given(inserts(), st.data())
def test_a_group_of_rows_is_what_parsing_its_text_gives(case, data):
    """Any rows, in any order: the group's text is the rows joined by ', ' between the text
    before the first row and after the last, its Statement what parsing that text gives, its
    parameters the rows' values in the group's order, then the tail's."""
    text, params, expected_rows, tail_values = case
    stmt = parse(text)
    rows = data.draw(st.lists(st.integers(0, len(expected_rows) - 1), min_size=1,
                              max_size=len(expected_rows), unique=True))
    made, made_params = group_rows(stmt, params, rows)
    spans = stmt.values_rows
    assert made.text == text[:spans[0][0]] + ", ".join(
        text[lo:hi] for lo, hi in (spans[i] for i in rows)) + text[spans[-1][1]:]
    fresh = parse(made.text)
    assert made == fresh
    assert render(made, "qmark") == render(fresh, "qmark")
    assert list(bind(made, render(made, "qmark").keys, made_params)) == \
        [v for i in rows for v in expected_rows[i]] + tail_values
    again, again_params = group_rows(stmt, params, rows)
    assert again is made and again_params == made_params


def test_row_sets_are_kept_per_statement_within_their_bounds():
    stmt = parse("insert into t (x) values " + ", ".join(f"({i})" for i in range(20)))
    for i in range(GROUP_CACHE):
        assert group_rows(stmt, None, [i])[1] == ()
    groups = stmt.derived.groups
    assert len(groups) == GROUP_CACHE
    assert group_rows(stmt, None, [0])[0] is groups[(0,)]
    group_rows(stmt, None, [GROUP_CACHE])  # one more set than the bound: the others go
    assert list(groups) == [(GROUP_CACHE,)]
    group_rows(stmt, None, [19], keep=False)
    assert (19,) not in groups
    # by text: the sets kept hold at most twice the statement's text
    whole = list(range(20))
    groups.clear()
    for order, kept in ((whole, 1), (whole[::-1], 2), (whole[1:] + whole[:1], 1)):
        made, _ = group_rows(stmt, None, order)
        assert len(made.text) == len(stmt.text)
        assert len(stmt.derived.groups) == kept


def test_a_group_picks_its_values_from_a_sequence_of_any_kind():
    stmt = parse("insert into t (x, y) values (?, 1), (?, 2), (?, 3)")
    assert group_rows(stmt, [10, 20, 30], [2])[1] == (30,)
    assert group_rows(stmt, (10, 20, 30), [2, 0])[1] == (30, 10)
    assert group_rows(stmt, [10, 20, 30], [0, 1, 2])[1] == (10, 20, 30)
    literal = parse("insert into t (x) values (1), (2)")
    assert list(group_rows(literal, [], [1])[1]) == []


@pytest.mark.parametrize(("text", "around"), [
    ("insert into t@{a,b} (x, y) values (?, 1), (?, 2), (?, 3) returning x", True),
    ("insert into t (x) values (1), /* a comment between rows */ (2), (3)", True),
    ("insert into t (x) values (1), ((select max(y) from u@{a,b})), (3)", False),
])
def test_a_group_maps_positions_without_a_piece_per_row_only_where_none_is_inside_the_rows(
        text, around):
    stmt = parse(text)
    spans = stmt.values_rows
    assert _outside(stmt, spans[0][0], spans[-1][1]) is around
    for rows in ([2, 0], [1], [0, 1, 2]):
        made, _ = group_rows(stmt, [10, 20, 30] if "?" in text else None, rows)
        assert made == parse(made.text)


class Values(Sequence):
    """A sequence of values that takes integer indices only (no slices), as PEP 249 allows."""

    def __init__(self, values):
        self._values = list(values)

    def __len__(self):
        return len(self._values)

    def __getitem__(self, index):
        if not isinstance(index, int):
            raise TypeError("integer indices only")
        return self._values[index]


@given(st.integers(1, 40), st.integers(1, 4), st.integers(1, 5), st.data())
@settings(max_examples=100)
def test_a_round_robin_share_takes_its_rows_values_in_order(rows, width, k, data):
    """Every k-th row from the j-th of a generated statement (the shares a round-robin makes):
    exactly those rows' values, in order, from a list, a tuple or a sequence that does not
    slice; with a marker outside the rows, or rows of other widths, the same."""
    j = data.draw(st.integers(0, min(k, rows) - 1))  # (a share has a row at least)
    row = "(" + ", ".join(["?"] * width) + ")"
    suffix = data.draw(st.sampled_from(["", " returning a", " on conflict do update set a = ?"]))
    text = "insert into t@{a,b} (a) values " + ", ".join([row] * rows) + suffix
    stmt = parse(text)
    values = [f"v{i}" for i in range(len(stmt.placeholders))]
    share = range(j, rows, k)
    wanted = tuple(v for r in share for v in values[r * width:(r + 1) * width]) + \
        tuple(values[rows * width:])
    for given_values in (values, tuple(values), Values(values)):
        made, picked = group_rows(stmt, given_values, share, keep=False)
        assert tuple(picked) == wanted
        assert tuple(bind(made, render(made, "qmark").keys, picked)) == wanted
        # rows alone (no marker after them) are picked by slices, not value by value
        if "?" not in suffix:
            assert "_strided" in getattr(made.derived.pick, "__qualname__", "")
    uneven = parse("insert into t@{a,b} (a) values (?), (?, ?), (?)")
    assert group_rows(uneven, [1, 2, 3, 4], range(0, 3, 2))[1] == (1, 4)
    assert group_rows(uneven, [1, 2, 3, 4], range(1, 3, 2))[1] == (2, 3)


class _NoCopies(Sequence):
    """The caller's values, refusing to be sliced (copied)."""

    def __init__(self, values):
        self.values = list(values)

    def __len__(self):
        return len(self.values)

    def __getitem__(self, i):
        assert not isinstance(i, slice), "the caller's values were copied"
        return self.values[i]


def test_each_row_of_a_numeric_statement_takes_the_caller_s_values_without_a_copy():
    """:n names the caller's n-th value, so a row's statement keeps its numbers and needs the
    values up to its largest: seen through, not copied (a copy for each row made a replay of a
    long statement row by row quadratic)."""
    n = 50
    stmt = parse("insert into t (a, b) values " + ", ".join(
        f"(:{2 * i + 1}, :{2 * i + 2})" for i in range(n)))
    values = _NoCopies(range(2 * n))
    rows = split_rows(stmt, values)
    for i, (row, params) in enumerate(rows):
        assert len(params) == 2 * i + 2
        assert list(bind(row, render(row, "qmark").keys, params)) == [2 * i, 2 * i + 1]
    _, grouped = group_rows(stmt, values, [3, 7])
    assert (grouped[14], grouped[15], len(grouped)) == (14, 15, 16)
