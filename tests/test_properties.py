"""Hypothesis properties: exact shares, suffix removal changes nothing else, literals."""
from __future__ import annotations

import collections
import random

from hypothesis import given, settings
from hypothesis import strategies as st

import pooldbapi
from pooldbapi.sql.parse import parse
from pooldbapi.sql.render import render
from pooldbapi.strategy import STRATEGIES, RoundRobin, seeded_random

ALIASES = st.sampled_from(["eol1", "eol2", "eol3", "pg1", "lite"])
LISTS = st.lists(ALIASES, min_size=1, max_size=8).map(tuple)


@given(LISTS, st.integers(0, 10_000), st.integers(1, 6))
def test_round_robin_gives_exact_shares(aliases, start, k):
    rr = RoundRobin(aliases, random.Random(start))
    got = collections.Counter(rr.choose() for _ in range(k * len(aliases)))
    assert got == {a: k * m for a, m in collections.Counter(aliases).items()}


def _turn(aliases, start, n, healthy=lambda a: True):
    """The list as written, in turn from start, skipping what is not healthy (if any is)."""
    usable = [i for i, a in enumerate(aliases) if healthy(a)] or list(range(len(aliases)))
    out, pos = [], start
    while len(out) < n:
        if pos % len(aliases) in usable:
            out.append(aliases[pos % len(aliases)])
        pos += 1
    return out


@given(LISTS, st.integers(0, 10_000), st.integers(0, 30))
def test_round_robin_goes_through_the_list_in_turn_from_the_seeded_start(aliases, seed, n):
    start = random.Random(seed).randrange(len(aliases))
    one = RoundRobin(aliases, random.Random(seed))
    assert [one.choose() for _ in range(n)] == _turn(aliases, start, n)
    many = RoundRobin(aliases, random.Random(seed))
    assert many.choose_many(n) == _turn(aliases, start, n)
    assert many.choose() == _turn(aliases, start, n + 1)[-1]  # and goes on from there


@given(LISTS, st.integers(0, 10_000), st.integers(0, 30), st.sets(ALIASES))
def test_unhealthy_containers_are_skipped_and_the_rest_keep_their_turn(aliases, seed, n, down):
    def healthy(alias):
        return alias not in down

    start = random.Random(seed).randrange(len(aliases))
    rr = RoundRobin(aliases, random.Random(seed))
    picks = rr.choose_many(n, healthy)
    if any(healthy(a) for a in aliases):
        assert all(healthy(a) for a in picks)
    assert picks == _turn(aliases, start, n, healthy)


@given(LISTS, st.sampled_from(sorted(STRATEGIES)), st.integers(0, 10_000), st.integers(0, 20))
def test_choose_many_is_n_calls_of_choose(aliases, name, seed, n):
    one, many = (STRATEGIES[name](aliases, random.Random(seed)) for _ in range(2))
    assert many.choose_many(n) == [one.choose() for _ in range(n)]


@given(LISTS, st.integers(1, 3), st.integers(0, 2**16))
@settings(max_examples=30, deadline=None)
def test_executemany_puts_each_row_on_the_next_container_of_the_list(aliases, k, seed):
    """Row by row, what each database holds is the list in turn from the seeded start."""
    conn = _connect(aliases, seed)
    try:
        conn.execute("create table t (id int)")
        n = k * len(aliases) + seed % len(aliases)
        statement = "insert into t@{" + ",".join(aliases) + "} values (?)"
        cur = conn.cursor()
        cur.executemany(statement, [(i,) for i in range(n)])
        start = seeded_random(seed, statement, aliases).randrange(len(aliases))
        expected: dict[str, list[int]] = {a: [] for a in set(aliases)}
        for i, alias in enumerate(_turn(aliases, start, n)):
            expected[alias].append(i)
        assert _stored(conn, aliases) == expected
        assert dict(cur.containers) == {a: len(v) for a, v in expected.items() if v}
    finally:
        conn.close()
        pooldbapi.close_all()


@given(LISTS, st.integers(1, 4), st.integers(0, 2**32))
@settings(max_examples=50)
def test_connection_routing_gives_exact_shares(aliases, k, seed):
    containers = {a: "driver=sqlite;database=:memory:" for a in set(aliases)}
    conn = pooldbapi.connect(containers, seed=seed)
    stmt = parse("select count(*) from Journals@{" + ",".join(aliases) + "}")
    conn.router.check(stmt)
    got = collections.Counter(conn.context.route(stmt)[aliases] for _ in range(k * len(aliases)))
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


_DB_COUNTER = iter(range(10**9))


def _memory_containers(aliases, **extra):
    tail = "".join(f";{k}={v}" for k, v in extra.items())
    # distinct shared-cache memory databases: one per alias, none shared between examples
    return {a: f"driver=sqlite;uri=true;database=file:pooldbapi{next(_DB_COUNTER)}"
               f"?mode=memory&cache=shared{tail}" for a in set(aliases)}


def _connect(aliases, seed, **extra):
    """A connection over one memory database per distinct alias, the list's containers as
    the default, DDL broadcast."""
    return pooldbapi.connect(_memory_containers(aliases, **extra), seed=seed,
                             broadcast_ddl=True,
                             default="{" + ",".join(sorted(set(aliases))) + "}")


def _stored(conn, aliases):
    return {a: sorted(r[0] for r in conn.execute(f"select id from t@{a}")) for a in set(aliases)}


@given(LISTS, st.integers(1, 3), st.integers(0, 2**16))
@settings(max_examples=30, deadline=None)
def test_executemany_lands_every_row_once_with_exact_shares(aliases, k, seed):
    conn = _connect(aliases, seed)
    try:
        conn.execute("create table t (id int)")
        n = k * len(aliases)
        cur = conn.cursor()
        cur.executemany("insert into t@{" + ",".join(aliases) + "} values (?)",
                        [(i,) for i in range(n)])
        stored = _stored(conn, aliases)
        assert sorted(i for ids in stored.values() for i in ids) == list(range(n))
        shares = collections.Counter(aliases)
        assert {a: len(ids) for a, ids in stored.items()} == {a: k * m for a, m in
                                                               shares.items()}
        assert cur.rowcount == n
    finally:
        conn.close()
        pooldbapi.close_all()


@given(LISTS, st.integers(0, 60), st.integers(1, 9), st.integers(0, 2**16))
@settings(max_examples=30, deadline=None)
def test_bulk_pages_are_whole_and_every_row_lands_once(aliases, n, size, seed):
    conn = _connect(aliases, seed, page_size=size)
    try:
        conn.execute("create table t (id int)")
        cur = conn.cursor()
        cur.executemany("bulk insert into t@{" + ",".join(aliases) + "} values (?)",
                        [(i,) for i in range(n)])
        stored = _stored(conn, aliases)
        assert sorted(i for ids in stored.values() for i in ids) == list(range(n))
        for ids in stored.values():
            pages = {i // size for i in ids}
            assert len(ids) == sum(min(size, n - p * size) for p in pages)  # whole pages
        pages = -(-n // size)
        if pages % len(aliases) == 0:
            shares = collections.Counter(aliases)
            assert dict(cur.containers) == {a: pages // len(aliases) * m
                                            for a, m in shares.items() if pages}
    finally:
        conn.close()
        pooldbapi.close_all()


TRICKY = st.text(alphabet=st.sampled_from(list("ab'();,@?:%{}\\\n -*/")), max_size=12)


@given(LISTS, st.lists(TRICKY, min_size=1, max_size=12), st.integers(0, 2**16))
@settings(max_examples=30, deadline=None)
def test_multi_row_literal_values_land_once_where_the_strategy_says(aliases, texts, seed):
    """Literal rows full of quotes, parentheses, ';', '@' and markers: each row lands once,
    with its exact value, on the next container of the list."""
    conn = _connect(aliases, seed)
    try:
        conn.execute("create table t (id int, s text)")
        rows = ", ".join(f"({i}, '{s.replace(chr(39), chr(39) * 2)}')"
                         for i, s in enumerate(texts))
        statement = "insert into t@{" + ",".join(aliases) + "} (id, s) values " + rows
        conn.execute(statement)
        distinct = len(set(aliases))
        start = seeded_random(seed, statement, aliases).randrange(len(aliases))
        picks = _turn(aliases, start, len(texts)) if distinct > 1 else [aliases[0]] * len(texts)
        for alias in set(aliases):
            held = conn.execute(f"select id, s from t@{alias} order by id").fetchall()
            assert held == [(i, s) for i, s in enumerate(texts) if picks[i] == alias]
    finally:
        conn.close()
        pooldbapi.close_all()


@given(LISTS, st.integers(0, 12), st.integers(0, 2**16),
       st.sampled_from(["execute", "insert-select", "synchronize"]))
@settings(max_examples=40, deadline=None)
def test_row_writes_land_once_where_the_cursor_says(aliases, n, seed, path):
    """Single-row executes, insert ... select across containers and synchronize: every row
    lands once; cursor.containers equals what each database holds; rows read in order go to
    the list's containers in turn (execute and insert ... select)."""
    containers = _memory_containers([*aliases, "src"])
    conn = pooldbapi.connect(containers, seed=seed, broadcast_ddl=True, autocommit=True)
    target = "t@{" + ",".join(aliases) + "}"
    try:
        conn.execute("create table t@{" + ",".join(sorted(set(aliases))) + "} (id int)")
        conn.execute("create table s@src (id int)")
        conn.cursor().executemany("insert into s@src values (?)", [(i,) for i in range(n)])
        reported: collections.Counter[str] = collections.Counter()
        if path == "execute":
            for i in range(n):
                reported.update(conn.execute(f"insert into {target} values (?)", (i,))
                                .containers)
            statement = f"insert into {target} values (?)"
        elif path == "insert-select":
            reported.update(conn.execute(f"insert into {target} (id) select id from s@src"
                                         " order by id").containers)
            statement = f"insert into {target} (id) values (?)"  # what each row runs
        else:
            statement = f"synchronize s@src to {target} with insert identified by id"
            reported.update(conn.execute(statement).containers)
        stored = _stored(conn, aliases)
        assert sorted(i for ids in stored.values() for i in ids) == list(range(n))
        assert {a: len(ids) for a, ids in stored.items() if ids} == \
            {a: c for a, c in reported.items() if c}
        if path != "synchronize" and len(set(aliases)) > 1 and n:
            start = seeded_random(seed, statement, aliases).randrange(len(aliases))
            picks = _turn(aliases, start, n)
            assert stored == {a: [i for i in range(n) if picks[i] == a] for a in set(aliases)}
    finally:
        conn.close()
        pooldbapi.close_all()
