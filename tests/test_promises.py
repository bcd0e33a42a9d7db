"""Promises of the README's tables and sections that no other test checks, each named after
the promise (SQLite containers; no server needed)."""
from __future__ import annotations

import sys

import pytest

import pooldbapi
from pooldbapi.health import Health
from pooldbapi.settings import make_spec
from pooldbapi.strategy import Adaptive, LeastBusy, RoundRobin, WeightedRandom


def _lite(tmp_path, *names, **keys):
    tail = "".join(f";{k}={v}" for k, v in keys.items())
    return {n: f"driver=sqlite;database={tmp_path / n}.db{tail}" for n in names}


@pytest.mark.parametrize("name, cls", [("round-robin", RoundRobin),
                                       ("weighted-random", WeightedRandom),
                                       ("least-busy", LeastBusy), ("adaptive", Adaptive)])
def test_connect_strategy_chooses_the_strategy_of_every_list(tmp_path, name, cls):
    conn = pooldbapi.connect(_lite(tmp_path, "a", "b"), strategy=name)
    assert type(conn.router.strategy("select 1 from t@{a,b}", ("a", "b"))) is cls
    conn.close()


def test_an_unknown_strategy_is_an_error_naming_the_known_ones(tmp_path):
    with pytest.raises(pooldbapi.InterfaceError) as info:
        pooldbapi.connect(_lite(tmp_path, "a"), strategy="fastest")
    assert str(info.value) == ("unknown strategy 'fastest' (known: round-robin,"
                               " weighted-random, least-busy, adaptive)")


def test_the_strategy_cache_keeps_1024_statement_list_pairs_least_recently_used(tmp_path):
    conn = pooldbapi.connect(_lite(tmp_path, "a", "b"))
    pair = ("a", "b")
    first = conn.router.strategy("s0", pair)
    others = [conn.router.strategy(f"s{i}", pair) for i in range(1, 1024)]  # 1024 pairs in all
    assert conn.router.strategy("s0", pair) is first          # kept, and now the most recent
    conn.router.strategy("s1024", pair)                        # the 1025th pair evicts s1
    assert conn.router.strategy("s0", pair) is first
    assert conn.router.strategy("s2", pair) is others[1]
    assert conn.router.strategy("s1", pair) is not others[0]   # evicted: a new strategy
    conn.close()


def test_health_back_off_starts_at_a_quarter_second_and_doubles_up_to_eight(monkeypatch):
    health = Health()
    monkeypatch.setattr(health, "_start_prober", lambda: None)
    # pooldbapi.health is also the name of a function: reach the module itself
    monkeypatch.setattr(sys.modules["pooldbapi.health"].time, "monotonic", lambda: 1000.0)
    spec = make_spec("h", "driver=sqlite;database=nowhere.db")
    waits = []
    for _ in range(8):
        health.failed(spec, "refused")
        waits.append(health._states[spec.key].next_probe - 1000.0)
    assert waits == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert not health.is_healthy(spec)
    health.succeeded(spec)
    assert health.is_healthy(spec) and health._states[spec.key].failures == 0


def test_exclude_unhealthy_false_keeps_a_container_in_its_turn(monkeypatch):
    health = Health()
    monkeypatch.setattr(health, "_start_prober", lambda: None)
    kept = make_spec("k", "driver=sqlite;database=k.db;exclude-unhealthy=false")
    health.failed(kept, "refused")
    assert health.is_healthy(kept)


def test_bulk_pages_take_the_smallest_page_size_of_the_target_list(tmp_path):
    containers = _lite(tmp_path, "a", "b")
    containers["a"] += ";page-size=2"
    containers["b"] += ";page-size=5"
    conn = pooldbapi.connect(containers, broadcast_ddl=True, seed=1)
    conn.execute("create table t@{a,b} (x int)")
    cur = conn.cursor()
    cur.executemany("bulk insert into t@{a,b} values (?)", [(i,) for i in range(9)])
    conn.commit()
    assert sum(cur.containers.values()) == 5  # pages of 2: 2, 2, 2, 2, 1
    held = {a: sorted(r[0] for r in conn.execute(f"select x from t@{a}")) for a in ("a", "b")}
    assert sorted(held["a"] + held["b"]) == list(range(9))
    for rows in held.values():                # whole pages of consecutive rows
        pages = [rows[i:i + 2] for i in range(0, len(rows), 2)]
        assert all(p[0] % 2 == 0 and p == list(range(p[0], p[0] + len(p))) for p in pages)
    conn.close()


def test_synchronize_matches_rows_by_a_multi_column_key_and_insert_or_update_deletes_nothing(
        tmp_path):
    conn = pooldbapi.connect(_lite(tmp_path, "a", "b"), autocommit=True)
    for alias in ("a", "b"):
        conn.execute(f"create table m@{alias} (k1 int, k2 text, v text)")
    conn.cursor().executemany("insert into m@a values (?, ?, ?)",
                              [(1, "x", "new"), (1, "y", "same"), (2, "x", "added")])
    conn.cursor().executemany("insert into m@b values (?, ?, ?)",
                              [(1, "x", "old"), (1, "y", "same"), (9, "z", "kept")])
    cur = conn.execute("synchronize m@a to m@b with insert or update identified by k1, k2")
    assert cur.rowcount == 2  # (1, x) updated, (2, x) inserted; (9, z) not deleted
    held = sorted(tuple(r) for r in conn.execute("select k1, k2, v from m@b"))
    assert held == [(1, "x", "new"), (1, "y", "same"), (2, "x", "added"), (9, "z", "kept")]
    conn.close()


@pytest.fixture
def two_sources(tmp_path, monkeypatch):
    """Two SQLite containers, and the texts each occurrence's container was asked."""
    from pooldbapi.federated import engine as local
    conn = pooldbapi.connect(_lite(tmp_path, "x", "y"), autocommit=True)
    conn.execute("create table a@x (id int, v int)")
    conn.execute("create table b@y (id int, w int)")
    conn.cursor().executemany("insert into a@x values (?, ?)", [(1, 1), (2, 5), (3, 9)])
    conn.cursor().executemany("insert into b@y values (?, ?)", [(1, 7), (3, 0)])
    asked: list[str] = []
    real = local.Stream

    def recording(conn_, alias, stmt, *args, **kwargs):
        asked.append(stmt.text)
        return real(conn_, alias, stmt, *args, **kwargs)

    monkeypatch.setattr(local, "Stream", recording)
    yield conn, asked
    conn.close()


def _reads(asked):
    """The reads that fetch rows (not the 'where 1 = 0' probes that learn a table's columns)."""
    return [t for t in asked if not t.endswith("where 1 = 0")]


def test_own_conjuncts_are_pushed_to_each_occurrence(two_sources):
    conn, asked = two_sources
    rows = conn.execute("select a.id from a@x a join b@y b on a.id = b.id"
                        " where a.v > 2 and b.w < 5 order by a.id").fetchall()
    assert rows == [(3,)]
    assert sorted(_reads(asked)) == ['select "id", "v" from a a where (a.v > 2)',
                                     'select "id", "w" from b b where (b.w < 5)']


def test_no_conjunct_is_pushed_below_an_outer_join(two_sources):
    conn, asked = two_sources
    rows = conn.execute("select a.id, b.w from a@x a left join b@y b on a.id = b.id"
                        " where b.w is null or b.w > 5 order by a.id").fetchall()
    assert rows == [(1, 7), (2, None)]
    asked.clear()
    rows = conn.execute("select a.id, b.w from a@x a left join b@y b on a.id = b.id"
                        " where b.w is null order by a.id").fetchall()
    assert rows == [(2, None)]  # pushed to b, 'w is null' would have kept row 3's match
    assert [t for t in _reads(asked) if " from b" in t] == ['select "id", "w" from b b']


def test_a_top_level_or_across_occurrences_is_not_pushed(two_sources):
    conn, asked = two_sources
    rows = conn.execute("select a.id from a@x a join b@y b on a.id = b.id"
                        " where a.v > 2 or b.w > 5 order by a.id").fetchall()
    assert rows == [(1,), (3,)]
    assert sorted(_reads(asked)) == ['select "id", "v" from a a', 'select "id", "w" from b b']


def test_a_top_level_or_whose_branches_touch_one_occurrence_is_pushed_whole(two_sources):
    conn, asked = two_sources
    rows = conn.execute("select a.id, b.w from a@x a join b@y b on a.id = b.id"
                        " where a.v < 2 or a.v > 8 and a.id in (3, ?) order by a.id",
                        (4,)).fetchall()
    assert rows == [(1, 7), (3, 0)]
    assert sorted(_reads(asked)) == [
        'select "id", "v" from a a where (a.v < 2 OR a.v > 8 AND a.id IN (3, :pooldbapi_p0))',
        'select "id", "w" from b b']


@pytest.mark.parametrize("given, low, high", [
    ("7", 7.0, 7.0),                 # seconds
    ("+30", None, None),             # neither seconds nor a date: the back-off
    ("0", None, None),               # at once would be a loop: the back-off
    ("garbage", None, None),
    ("in-future", 9.0, 10.0),        # an HTTP date: the seconds until it
    ("in-past", None, None),         # past: the back-off
])
def test_retry_after_is_seconds_or_an_http_date_else_the_back_off(given, low, high):
    import email.utils
    import time

    from pooldbapi.backends.odata.client import retry_after
    if given == "in-future":
        given = email.utils.formatdate(time.time() + 10, usegmt=True)
    elif given == "in-past":
        given = email.utils.formatdate(time.time() - 10, usegmt=True)
    waited = retry_after(given, attempt=3)
    if low is None:  # the back-off of attempt 3: 0.4 s, jittered to 0.2-0.6 s
        assert 0.2 <= waited <= 0.6
    else:
        assert low <= waited <= high


@pytest.mark.parametrize("drivers, equal", [
    ({"sqlite", "oracle"}, True),      # Oracle involved: '' and NULL are the same value
    ({"oracle"}, True),
    ({"sqlite", "postgresql"}, False),  # elsewhere they differ
    ({"sqlite"}, False),
])
def test_synchronize_treats_empty_string_and_null_as_equal_where_oracle_is_involved(drivers,
                                                                                   equal):
    """README (Oracle containers): synchronize treats an empty string and NULL as equal where
    Oracle is involved. The rest of the comparison is unchanged: 1 == 1.0, 'a' != NULL."""
    from pooldbapi.ops.synchronize import value_comparer
    same = value_comparer(drivers)
    assert (same("") == same(None)) is equal
    assert same(1) == same(1.0) and same("a") != same(None) and same("") != same("a")
