"""Hypothesis properties: exact shares, suffix removal changes nothing else, literals."""
from __future__ import annotations

import collections
import random

from hypothesis import given, settings
from hypothesis import strategies as st

import pooldbapi
from pooldbapi.sql.parse import parse
from pooldbapi.sql.render import render
from pooldbapi.strategy import RoundRobin

ALIASES = st.sampled_from(["eol1", "eol2", "eol3", "pg1", "lite"])
LISTS = st.lists(ALIASES, min_size=1, max_size=8).map(tuple)


@given(LISTS, st.integers(0, 10_000), st.integers(1, 6))
def test_round_robin_gives_exact_shares(aliases, start, k):
    rr = RoundRobin(aliases, random.Random(start))
    got = collections.Counter(rr.choose() for _ in range(k * len(aliases)))
    assert got == {a: k * m for a, m in collections.Counter(aliases).items()}


@given(LISTS, st.integers(1, 4), st.integers(0, 2**32))
@settings(max_examples=50)
def test_connection_routing_gives_exact_shares(aliases, k, seed):
    containers = {a: "driver=sqlite;database=:memory:" for a in set(aliases)}
    conn = pooldbapi.connect(containers, seed=seed)
    stmt = parse("select count(*) from Journals@{" + ",".join(aliases) + "}")
    conn.check(stmt)
    got = collections.Counter(conn.route(stmt)[aliases] for _ in range(k * len(aliases)))
    assert got == {a: k * m for a, m in collections.Counter(aliases).items()}


NAMES = st.sampled_from(["t", "Journals", "s.t", '"Odd Name"', "x_1"])
LITERALS = st.text(alphabet="ab ?:%@{}'$-*/\n", max_size=12).map(
    lambda s: "'" + s.replace("'", "''") + "'")


@st.composite
def statements(draw):
    """A select with suffixed occurrences, and the same text with the suffixes left out."""
    cols = draw(st.lists(st.one_of(LITERALS, st.sampled_from(["a", "count(*)", "1 % 2"])),
                         min_size=1, max_size=3))
    head = ", ".join(cols)
    parts_s, parts_p = [f"select {head} from "], [f"select {head} from "]
    tables = draw(st.lists(st.tuples(NAMES, st.one_of(st.none(), LISTS),
                                     st.sampled_from(["", " x", " as y"])),
                           min_size=1, max_size=3))
    for i, (name, lst, alias) in enumerate(tables):
        sep = "" if i == 0 else draw(st.sampled_from([", ", " join "]))
        on = " on true" if sep == " join " else ""
        suffix = "" if lst is None else ("@" + lst[0] if len(lst) == 1 and draw(st.booleans())
                                         else "@{" + ",".join(lst) + "}")
        catalog = draw(st.sampled_from(["", "cat.."])) if "." not in name else ""
        parts_s.append(f"{sep}{catalog}{name}{suffix}{alias}{on}")
        parts_p.append(f"{sep}{name}{alias}{on}")
    tail = draw(st.sampled_from(["", " where a = 1", " where b in (select 1 from u@eol1)"]))
    parts_s.append(tail)
    parts_p.append(tail.replace("@eol1", ""))
    return "".join(parts_s), "".join(parts_p), tables


@given(statements())
def test_rendering_removes_suffixes_and_changes_nothing_else(case):
    text, plain, tables = case
    stmt = parse(text)
    assert render(stmt, None).text == plain
    suffixed = [lst for _, lst, _ in tables if lst is not None]
    assert [o.aliases for o in stmt.occurrences if o.aliases][:len(suffixed)] == suffixed


@given(st.lists(st.one_of(LITERALS, st.just("?")), min_size=1, max_size=6))
def test_placeholders_are_never_found_inside_literals(items):
    text = "select " + ", ".join(items) + " from t@eol1"
    stmt = parse(text)
    assert len(stmt.placeholders) == items.count("?")
    rendered = render(stmt, "numeric").text
    assert rendered.count(":") - sum(i.count(":") for i in items if i != "?") == items.count("?")
