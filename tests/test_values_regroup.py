"""Multi-row VALUES over a list: each row goes where its turn sends it (one round-robin choice
per row, as before), and the rows of one container go there together, as one statement of
exactly those rows in their order (more only where a back-end's limits require). Checked on
real SQLite files (every statement each container ran, recorded by sqlite3's own trace) and
on two PostgreSQL clusters (the server's statement log)."""
from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pooldbapi
from pooldbapi.backends import sqlite as sqlite_backend
from pooldbapi.backends.postgresql import PostgreSQLBackend
from pooldbapi.strategy import RoundRobin, seeded_random

STYLES = ("qmark", "numeric", "named", "format", "pyformat")
ALIASES = ("a", "b", "c")


class Traced:
    """The statements each SQLite database file was sent, as sqlite3 saw them."""

    def __init__(self) -> None:
        self.sent: dict[str, list[str]] = {}

    def of(self, path: str) -> list[str]:
        return [s for s in self.sent.get(path, ()) if s.lower().startswith("insert")]


@pytest.fixture(scope="module")
def traced() -> Iterator[Traced]:
    """Every physical SQLite connection opened meanwhile records what it executes."""
    trace = Traced()
    original = sqlite_backend.SQLiteBackend.connect

    def connect(self, spec, limiter=None):  # type: ignore[no-untyped-def]
        link = original(self, spec, limiter)
        path = spec.param("database")
        link.raw.set_trace_callback(lambda s: trace.sent.setdefault(path, []).append(s))
        return link

    pooldbapi.close_all()
    sqlite_backend.SQLiteBackend.connect = connect  # type: ignore[method-assign]
    try:
        yield trace
    finally:
        sqlite_backend.SQLiteBackend.connect = original  # type: ignore[method-assign]
        pooldbapi.close_all()


@pytest.fixture(scope="module")
def files(tmp_path_factory, traced) -> dict[str, str]:
    base = tmp_path_factory.mktemp("regroup")
    paths = {a: str(base / f"{a}.db") for a in ALIASES}
    for path in paths.values():
        raw = sqlite3.connect(path)
        raw.execute("create table t (id integer primary key, c0 int, c1 int, c2 int)")
        raw.close()
    return paths


def marker(style: str, n: int) -> str:
    return {"qmark": "?", "numeric": f":{n}", "named": f":p{n}", "format": "%s",
            "pyformat": f"%(p{n})s"}[style]


@st.composite
def cases(draw):
    style = draw(st.sampled_from(STYLES))
    width = draw(st.integers(1, 3))
    n = draw(st.integers(2, 14))
    lst = draw(st.sampled_from((("a", "b"), ("a", "b", "b", "c"), ("c", "a"), ("b", "a", "c"))))
    rows, texts, values = [], [], {}
    for i in range(n):
        cells, row = [], []
        for c in range(width):
            v = i * 10 + c
            if draw(st.booleans()):
                k = len(values) + 1
                values[k] = v
                cells.append(marker(style, k))
            else:
                cells.append(str(v))
            row.append(v)
        rows.append(tuple(row))
        texts.append("(" + ", ".join(cells) + ")")
    returning = draw(st.booleans())
    autocommit = draw(st.booleans())
    seed = draw(st.integers(0, 10**6))
    columns = ", ".join(f"c{c}" for c in range(width))
    text = (f"insert into t@{{{','.join(lst)}}} ({columns}) values {', '.join(texts)}"
            + (" returning id, c0" if returning else ""))
    if style in ("named", "pyformat"):
        params = {f"p{k}": v for k, v in values.items()}
    else:
        params = list(values.values())
    return text, params if values else None, lst, rows, returning, autocommit, seed


def expected_turns(seed: int, text: str, lst: tuple[str, ...], n: int) -> list[str]:
    """The container of each row: the list's round-robin from the seeded start, one turn per
    row (what the README promises, independent of how the rows travel)."""
    strategy = RoundRobin(lst, seeded_random(seed, text, lst))
    return [strategy.choose() for _ in range(n)]


@settings(max_examples=60, deadline=None)
@given(cases())
def test_each_container_gets_its_rows_as_one_statement_in_their_order(files, traced, case):
    text, params, lst, rows, returning, autocommit, seed = case
    conn = pooldbapi.connect({a: f"driver=sqlite;database={p}" for a, p in files.items()},
                             seed=seed, autocommit=autocommit)
    try:
        for alias in ALIASES:
            conn.execute(f"delete from t@{alias}")
        conn.commit()
        traced.sent.clear()
        cur = conn.execute(text, params)
        returned = cur.fetchall() if returning else None
        conn.commit()
        turns = expected_turns(seed, text, lst, len(rows))
        width = len(rows[0])
        assert cur.rowcount == len(rows)
        assert cur.containers == {a: turns.count(a) for a in set(turns)}
        for alias in ALIASES:
            mine = [r for r, t in zip(rows, turns, strict=True) if t == alias]
            held = conn.execute(f"select id, c0, c1, c2 from t@{alias} order by id").fetchall()
            assert [tuple(h[1:1 + width]) for h in held] == mine  # ids grow in receipt order
            sent = traced.of(files[alias])
            assert len(sent) == (1 if mine else 0), sent
        if returning:
            by_container = {a: iter(conn.execute(f"select id, c0 from t@{a} order by id")
                                    .fetchall()) for a in set(turns)}
            assert [tuple(r) for r in returned] == \
                [tuple(next(by_container[t])) for t in turns]
    finally:
        conn.close()


def test_a_row_set_over_the_parameter_limit_is_split_and_stays_right(files, traced,
                                                                    monkeypatch):
    monkeypatch.setattr(sqlite_backend.SQLiteBackend, "max_parameters", 5)
    conn = pooldbapi.connect({a: f"driver=sqlite;database={p}" for a, p in files.items()},
                             seed=3)
    for alias in ALIASES:
        conn.execute(f"delete from t@{alias}")
    conn.commit()
    traced.sent.clear()
    n = 21
    text = ("insert into t@{a,b} (c0, c1) values " + ", ".join("(?, ?)" for _ in range(n))
            + " returning c0")
    cur = conn.execute(text, [v for i in range(n) for v in (i, -i)])
    assert [r[0] for r in cur.fetchall()] == list(range(n))
    conn.commit()
    turns = expected_turns(3, text, ("a", "b"), n)
    for alias in ("a", "b"):
        mine = [i for i, t in enumerate(turns) if t == alias]
        held = conn.execute(f"select c0, c1 from t@{alias} order by id").fetchall()
        assert [tuple(h) for h in held] == [(i, -i) for i in mine]
        # two parameters a row, at most five a statement: two rows a statement
        assert len(traced.of(files[alias])) == (len(mine) + 1) // 2
    conn.close()


def test_a_row_set_over_the_statement_size_limit_is_split(files, traced, monkeypatch):
    """Literal rows: the text limit (bytes, counted as 4 a character) cuts a container's rows."""
    conn = pooldbapi.connect({a: f"driver=sqlite;database={p}" for a, p in files.items()},
                             seed=6)
    for alias in ALIASES:
        conn.execute(f"delete from t@{alias}")
    conn.commit()
    n = 12
    text = "insert into t@{a,b} (c0) values " + ", ".join(f"({1000 + i})" for i in range(n))
    head = len("insert into t@{a,b} (c0) values ")
    # the fixed text and three rows of '(1000), ' a statement
    monkeypatch.setattr(sqlite_backend.SQLiteBackend, "max_statement_bytes", 4 * (head + 24))
    traced.sent.clear()
    assert conn.execute(text).rowcount == n
    conn.commit()
    turns = expected_turns(6, text, ("a", "b"), n)
    for alias in ("a", "b"):
        mine = [1000 + i for i, t in enumerate(turns) if t == alias]
        assert [h[0] for h in conn.execute(f"select c0 from t@{alias} order by id")] == mine
        assert len(traced.of(files[alias])) == -(-len(mine) // 3)
    conn.close()


def test_sqlite_limit_is_read_from_the_running_library():
    probe = sqlite3.connect(":memory:")
    assert sqlite_backend.SQLiteBackend.max_parameters == \
        probe.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    assert sqlite_backend.SQLiteBackend.max_statement_bytes == \
        probe.getlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH)
    probe.close()


@pytest.mark.parametrize("insert, autocommit", [
    ("insert", False), ("insert", True), ("insert or fail", False), ("insert or fail", True),
    ("insert or rollback", True)])  # (in a transaction: the test after this one)
def test_a_failing_row_in_a_row_set_is_named_and_written_is_exact(files, autocommit, insert):
    """A duplicate key inside one container's row set: that statement is undone, replayed row
    by row to name the row; .written is exactly what the databases keep. Also where SQLite
    itself would keep the rows before the bad one (OR FAIL: a statement that is not all or
    nothing; in autocommit there is no savepoint to undo them) or, out of a transaction,
    undoes the statement alone (OR ROLLBACK)."""
    conn = pooldbapi.connect({a: f"driver=sqlite;database={p}" for a, p in files.items()},
                             seed=5, autocommit=autocommit)
    for alias in ALIASES:
        conn.execute(f"delete from t@{alias}")
    conn.commit()
    text = f"{insert} into t@{{a,b}} (id, c0) values " + ", ".join("(?, ?)" for _ in range(10))
    turns = expected_turns(5, text, ("a", "b"), 10)
    on_a = [i for i, t in enumerate(turns) if t == "a"]
    ids = list(range(1, 11))
    bad = on_a[2]
    ids[bad] = ids[on_a[0]]  # a's third row repeats the key of its first
    with pytest.raises(pooldbapi.IntegrityError) as caught:
        conn.execute(text, [v for i in ids for v in (i, i * 10)])
    err = caught.value
    assert err.row == bad and err.container == "a"
    assert err.written["a"] == tuple(on_a[:2])
    if not autocommit:
        conn.commit()
    for alias in ("a", "b"):
        held = [h[0] for h in conn.execute(f"select id from t@{alias} order by id")]
        assert held == sorted(ids[i] for i in err.written.get(alias, ()))
    conn.close()


@pytest.mark.parametrize("call", ["execute", "executemany"])
def test_a_row_that_rolls_the_sqlite_transaction_back_fails_it_and_nothing_is_kept(files,
                                                                                 call):
    """OR ROLLBACK in a transaction: SQLite undoes the whole transaction at the bad row (the
    savepoint around the rows goes with it). The pooldbapi transaction fails, says nothing
    of it is kept, and nothing is: no row is replayed outside a transaction."""
    conn = pooldbapi.connect({a: f"driver=sqlite;database={p}" for a, p in files.items()},
                             seed=5)
    for alias in ALIASES:
        conn.execute(f"delete from t@{alias}")
    conn.commit()
    conn.execute("insert into t@a (id) values (100)")
    ids = list(range(1, 9))
    ids[7] = ids[1]  # (a and b get four of the eight each, alternately: 1 and 7 on one)
    text = "insert or rollback into t@{a,b} (id, c0) values "
    with pytest.raises(pooldbapi.IntegrityError) as caught:
        if call == "execute":
            conn.execute(text + ", ".join("(?, ?)" for _ in ids),
                         [v for i in ids for v in (i, i * 10)])
        else:
            conn.cursor().executemany(text + "(?, ?)", [(i, i * 10) for i in ids])
    err = caught.value
    assert err.transaction_failed and not err.written
    assert "nothing of it is kept" in str(err)
    with pytest.raises(pooldbapi.OperationalError):
        conn.commit()
    for alias, path in files.items():
        with contextlib.closing(sqlite3.connect(path)) as raw:
            assert raw.execute("select id from t").fetchall() == [], alias
    conn.close()


def test_a_failing_row_over_a_list_is_named_and_written_is_exact(files):
    """In autocommit: the other containers' row sets commit, the failing one is replayed up to
    its bad row; .written says exactly that."""
    conn = pooldbapi.connect({a: f"driver=sqlite;database={p}" for a, p in files.items()},
                             seed=9, autocommit=True)
    for alias in ALIASES:
        conn.execute(f"delete from t@{alias}")
    n = 12
    text = "insert into t@{a,b,c} (id) values " + ", ".join("(?)" for _ in range(n))
    turns = expected_turns(9, text, ("a", "b", "c"), n)
    on_b = [i for i, t in enumerate(turns) if t == "b"]
    bad = on_b[1]  # the second row of b's row set
    ids = [100 + i for i in range(n)]
    conn.execute("insert into t@b (id) values (?)", (ids[bad],))
    with pytest.raises(pooldbapi.IntegrityError) as caught:
        conn.execute(text, ids)
    err = caught.value
    assert err.row == bad and err.container == "b"
    assert err.written["b"] == (on_b[0],)
    held = {a: {h[0] for h in conn.execute(f"select id from t@{a}")} for a in ("a", "b", "c")}
    held["b"].discard(ids[bad])
    assert {a: {ids[i] for i in rows} for a, rows in err.written.items()} == \
        {a: got for a, got in held.items() if got}
    assert all(turns[i] == a for a, rows in err.written.items() for i in rows)
    conn.close()


def test_rest_or_throttled_containers_keep_a_statement_per_row(files, traced):
    conn = pooldbapi.connect({a: f"driver=sqlite;database={p}"
                              + (";max-calls-per-second=1000" if a == "b" else "")
                              for a, p in files.items()}, seed=1)
    for alias in ALIASES:
        conn.execute(f"delete from t@{alias}")
    conn.commit()
    traced.sent.clear()
    text = "insert into t@{a,b} (c0) values (1), (2), (3), (4), (5), (6)"
    conn.execute(text)
    conn.commit()
    turns = expected_turns(1, text, ("a", "b"), 6)
    assert len(traced.of(files["a"])) == 1
    assert len(traced.of(files["b"])) == turns.count("b")
    conn.close()


@contextlib.contextmanager
def logged(*clusters) -> Iterator[list]:
    """The clusters' statement logs, read by sessions opened once each server logs every
    statement (a reload reaches running sessions at no fixed moment)."""
    with contextlib.ExitStack() as stack:
        logs = [stack.enter_context(c.statement_log()) for c in clusters]
        for cluster in clusters:
            for _ in range(200):
                with psycopg.connect(cluster.dsn) as raw:
                    if raw.execute("show log_statement").fetchone()[0] == "all":
                        break
                time.sleep(0.05)
        pooldbapi.close_all()  # pooled sessions may have missed the reload
        yield logs


@pytest.fixture
def two_servers(pg, pg2):
    conn = pooldbapi.connect({"p1": pg.conninfo(), "p2": pg2.conninfo()}, default="{p1,p2}",
                             broadcast_ddl=True, seed=4)
    conn.execute("drop table if exists rg")
    conn.execute("create table rg (id serial primary key, v int, w text)")
    conn.commit()
    yield conn
    conn.rollback()
    conn.execute("drop table rg")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("style", STYLES)
def test_postgresql_gets_one_statement_per_server_and_returning_in_row_order(
        two_servers, pg, pg2, style):
    n = 9
    cells = [f"({marker(style, 2 * i + 1)}, {marker(style, 2 * i + 2)})" for i in range(n)]
    text = f"insert into rg (v, w) values {', '.join(cells)} returning id, v, w"
    flat = [x for i in range(n) for x in (i, f"it's {i}%")]
    params = {f"p{k + 1}": x for k, x in enumerate(flat)} if style in ("named", "pyformat") \
        else flat
    with logged(pg, pg2) as (log1, log2):
        cur = two_servers.execute(text, params)
        returned = [tuple(r) for r in cur.fetchall()]
        two_servers.commit()
        sent = [sum(1 for line in log().splitlines() if "insert into rg" in line)
                for log in (log1, log2)]
    assert [r[1:] for r in returned] == [(i, f"it's {i}%") for i in range(n)]
    turns = expected_turns(4, text, ("p1", "p2"), n)
    for alias, count in zip(("p1", "p2"), sent, strict=True):
        held = [tuple(r) for r in two_servers.execute(f"select id, v, w from rg@{alias}"
                                                      " order by id")]
        assert held == [r for r, t in zip(returned, turns, strict=True) if t == alias]
        assert count == (1 if alias in turns else 0)


def test_postgresql_parameter_limit_splits_a_container_s_rows(two_servers, pg, pg2):
    """More than 65,535 parameters land on each server: each server's rows go as two
    statements, and every row is there once."""
    width, n = 40, 3400  # 136,000 parameters, about 68,000 a server
    row = "(" + ", ".join("?" for _ in range(width)) + ")"
    columns = ", ".join(f"x{i}" for i in range(width))
    two_servers.execute(f"create table wide ({columns.replace(',', ' int,')} int)")
    two_servers.commit()
    try:
        text = f"insert into wide ({columns}) values {', '.join(row for _ in range(n))}"
        with logged(pg, pg2) as (log1, log2):
            cur = two_servers.execute(text, [r for r in range(n) for _ in range(width)])
            assert cur.rowcount == n
            two_servers.commit()
            sent = [log().count("insert into wide") for log in (log1, log2)]
        assert sent == [2, 2]
        got = sorted(r[0] for a in ("p1", "p2")
                     for r in two_servers.execute(f"select x0 from wide@{a}"))
        assert got == list(range(n))
        assert PostgreSQLBackend.max_parameters == 65535
    finally:
        two_servers.rollback()
        two_servers.execute("drop table wide")
        two_servers.commit()


def test_a_row_set_that_fails_whole_is_written_row_by_row(two_servers):
    """PostgreSQL refuses one statement whose `on conflict do update` touches a key twice; the
    replay writes the rows one by one, as single-row statements would, RETURNING rows kept."""
    two_servers.execute("create table up (k int primary key, v text)")
    two_servers.commit()
    try:
        keys = [1, 2, 1, 2, 1, 2, 3, 3]  # every server gets some key twice
        text = ("insert into up (k, v) values " + ", ".join("(?, ?)" for _ in keys)
                + " on conflict (k) do update set v = excluded.v returning k, v")
        cur = two_servers.execute(text, [x for i, k in enumerate(keys) for x in (k, f"v{i}")])
        assert [tuple(r) for r in cur.fetchall()] == [(k, f"v{i}") for i, k in enumerate(keys)]
        assert cur.rowcount == len(keys)
        two_servers.commit()
        turns = expected_turns(4, text, ("p1", "p2"), len(keys))
        for alias in ("p1", "p2"):
            last = {k: f"v{i}" for i, k in enumerate(keys) if turns[i] == alias}
            assert dict(two_servers.execute(f"select k, v from up@{alias}").fetchall()) == last
    finally:
        two_servers.rollback()
        two_servers.execute("drop table up")
        two_servers.commit()


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.lists(st.sampled_from("abc"), min_size=1, max_size=40),  # any picks
    st.builds(lambda turn, n: (turn * 40)[:n],                  # picks going round a turn
              st.lists(st.sampled_from("abcd"), min_size=1, max_size=4), st.integers(1, 40))))
def test_each_container_s_rows_are_the_rows_that_picked_it_in_order(picks):
    from pooldbapi.ops.dml import _rows_by_container
    expected: dict[str, list[int]] = {}
    for index, alias in enumerate(picks):
        expected.setdefault(alias, []).append(index)
    got = _rows_by_container(picks)
    assert {a: list(rows) for a, rows in got.items()} == expected
    assert list(got) == list(expected)  # containers in the order of their first row


def test_a_round_robin_s_rows_are_ranges_and_their_row_sets_kept_by_range():
    from pooldbapi.ops.dml import _rows_by_container
    from pooldbapi.sql.parse import parse
    from pooldbapi.sql.values import group_rows
    got = _rows_by_container(list("abcabcab"))
    assert got == {"a": range(0, 8, 3), "b": range(1, 8, 3), "c": range(2, 8, 3)}
    assert all(type(rows) is range for rows in got.values())
    stmt = parse("insert into t (x) values " + ", ".join(["(?)"] * 8))
    made, values = group_rows(stmt, list(range(8)), got["b"])
    assert values == (1, 4, 7) and stmt.derived.groups[range(1, 8, 3)] is made
    assert group_rows(stmt, list(range(8)), range(1, 8, 3))[0] is made
