"""Selects whose occurrences land on different containers, evaluated locally, compared with the
same statement on one database holding all the data."""
from __future__ import annotations

import datetime
import decimal
import os
import sqlite3

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pooldbapi

CUSTOMERS = [(1, "ann", datetime.date(2020, 1, 1)), (2, "bob", datetime.date(2021, 2, 2)),
             (3, "cy", None), (4, "dee", datetime.date(2022, 3, 3))]
ORDERS = [(1, 1, decimal.Decimal("2.50"), "a"), (2, 1, decimal.Decimal("3.00"), "b"),
          (3, 2, decimal.Decimal("1.25"), "c"), (4, 4, decimal.Decimal("7.00"), "d"),
          (5, 9, decimal.Decimal("1.00"), "e")]

QUERIES = [
    "select c.name, o.id from customers@lite c join orders@pg o on o.cust_id = c.id",
    "select c.name, o.id from customers@lite c left join orders@pg o on o.cust_id = c.id",
    "select name from customers@lite where id in (select cust_id from orders@pg)",
    ("select name from customers@lite c where not exists"
     " (select 1 from orders@pg o where o.cust_id = c.id)"),
    ("select t.cust_id, t.n from (select cust_id, count(*) as n from orders@pg group by cust_id)"
     " t join customers@lite c on c.id = t.cust_id"),
    ("with big as (select cust_id from orders@pg where amount > 2) select c.name from"
     " customers@lite c join big on big.cust_id = c.id"),
    ("select c.name, count(*) as n, sum(o.amount) as total from customers@lite c join orders@pg o"
     " on o.cust_id = c.id group by c.name having count(*) >= 1"),
    ("select c.name from customers@lite c join orders@pg o on o.cust_id = c.id"
     " where o.amount > 2 and c.name <> 'zed' order by o.amount desc limit 2"),
    ("select c.name, o.note from customers@lite c, orders@pg o where o.cust_id = c.id"
     " and o.note between 'a' and 'c'"),
]


@pytest.fixture
def mixed(tmp_path, pg):
    conn = pooldbapi.connect({"lite": f"driver=sqlite;database={tmp_path / 'l.db'}",
                              "pg": pg.conninfo()}, autocommit=True)
    conn.execute("create table customers@lite (id int, name text, since date)")
    conn.execute("create table orders@pg (id int, cust_id int, amount numeric(10,2),"
                 " note text)")
    conn.cursor().executemany("insert into customers@lite values (?, ?, ?)", CUSTOMERS)
    conn.cursor().executemany("insert into orders@pg values (?, ?, ?, ?)", ORDERS)
    single = sqlite3.connect(tmp_path / "single.db")
    single.execute("create table customers (id int, name text, since date)")
    single.execute("create table orders (id int, cust_id int, amount numeric, note text)")
    single.executemany("insert into customers values (?, ?, ?)",
                       [(i, n, d.isoformat() if d else None) for i, n, d in CUSTOMERS])
    single.executemany("insert into orders values (?, ?, ?, ?)",
                       [(i, c, float(a), n) for i, c, a, n in ORDERS])
    yield conn, single
    conn.execute("drop table orders@pg")
    conn.close()
    single.close()


def normal(rows):
    out = []
    for row in rows:
        out.append(tuple(float(v) if isinstance(v, decimal.Decimal) else
                         v.isoformat() if isinstance(v, datetime.date) else v for v in row))
    return sorted(out, key=repr)


def plain(query):
    """The statement for one database: without its suffixes (not by the code under test)."""
    for suffix in ("@lite", "@pg", "@x", "@y"):
        query = query.replace(suffix, "")
    return query


def same_rows(got, expected, query):
    """Equal rows; in the same order where the statement orders them."""
    if "order by" in query:
        assert [normal([r]) for r in got] == [normal([r]) for r in expected]
    else:
        assert normal(got) == normal(expected)


@pytest.mark.parametrize("query", QUERIES)
def test_federated_select_matches_one_database(mixed, query):
    conn, single = mixed
    cur = conn.execute(query)
    assert cur.containers == {"lite": 1, "pg": 1} or set(cur.containers) == {"lite", "pg"}
    same_rows(cur.fetchall(), single.execute(plain(query)).fetchall(), query)


def test_grouped_join_sends_partial_aggregates_and_matches_one_postgresql(mixed, pg):
    """Eager aggregation: the container of the occurrence whose columns the aggregates read
    groups by the join key (the server log shows the group by) and the result equals the
    same statement inside one PostgreSQL holding both tables."""
    conn, _ = mixed
    query = ("select c.name, count(*) as n, sum(o.amount) as total, avg(o.amount) as mean,"
             " min(o.note), max(o.amount) as top, count(o.note) from customers@lite c join"
             " orders@pg o on o.cust_id = c.id where o.amount > ? and c.name <> 'zed'"
             " group by c.name order by c.name desc")
    with pg.statement_log() as log:
        cur = conn.execute(query, (1,))
        got = cur.fetchall()
        sent = [line for line in log().splitlines() if "from orders o" in line]
    assert sent and all('group by "cust_id"' in line for line in sent)
    assert 'count(*) as pooldbapi_a0' in sent[-1] and "where (o.amount > $1)" in sent[-1]
    # few groups expected (the planner's estimate, asked first): read in one plain query,
    # which PostgreSQL may run in parallel, not through a cursor
    assert "explain (format json) select" in sent[0]
    assert not [line for line in sent if "DECLARE" in line]
    assert [d[0] for d in cur.description] == ["name", "n", "total", "mean", "min(o.note)",
                                               "top", "count(o.note)"]
    with psycopg.connect(pg.dsn, autocommit=True) as raw:
        raw.execute("create table customers (id int, name text, since date)")
        with raw.cursor().copy("copy customers from stdin") as copy:
            for row in CUSTOMERS:
                copy.write_row(row)
        try:
            expected = raw.execute(plain(query).replace("?", "%s"), (1,)).fetchall()
        finally:
            raw.execute("drop table customers")
    assert len(expected) == 3
    same_rows(got, expected, query)


def test_types_of_source_columns_are_kept(mixed):
    conn, _ = mixed
    cur = conn.execute("select c.since, o.amount, c.name from customers@lite c join orders@pg o"
                       " on o.cust_id = c.id where c.id = 1 order by o.id")
    rows = cur.fetchall()
    assert rows[0][0] == datetime.date(2020, 1, 1)
    assert rows[0][1] == decimal.Decimal("2.5") and isinstance(rows[0][1], decimal.Decimal)
    codes = [d[1] for d in cur.description]
    assert codes[0] == pooldbapi.DATETIME
    assert codes[1] == pooldbapi.NUMBER and str(codes[1]) == "numeric"
    assert codes[2] == pooldbapi.STRING


def test_only_needed_columns_and_own_conjuncts_are_pushed_down(mixed, pg):
    conn, _ = mixed
    with pg.statement_log() as log:
        rows = conn.execute("select c.name from customers@lite c join orders@pg o"
                            " on o.cust_id = c.id where o.amount > ? and c.name like 'a%'"
                            " and o.cust_id + c.id > 0", (2,)).fetchall()
        assert sorted(rows) == [("ann",), ("ann",)]
        pushed = [line for line in log().splitlines() if 'from orders o where' in line]
    assert pushed, "no pushed-down select reached the server"
    line = pushed[-1]
    assert 'select "cust_id", "amount" from orders o where (o.amount > $1)' in line
    assert "note" not in line and "c.name" not in line and "c.id" not in line


def test_parameters_bind_locally_and_remotely(mixed):
    conn, _single = mixed
    query = ("select c.name, o.id from customers@lite c join orders@pg o on o.cust_id = c.id"
             " where c.id = :cid and o.amount >= :low")
    got = conn.execute(query, {"cid": 1, "low": 2.5}).fetchall()
    assert sorted(tuple(r) for r in got) == [("ann", 1), ("ann", 2)]


def test_local_data_is_removed_also_on_error(mixed, tmp_path, monkeypatch):
    conn, _ = mixed
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "scratch"))
    os.mkdir(tmp_path / "scratch")
    conn.execute("select c.name from customers@lite c join orders@pg o on o.cust_id = c.id")
    assert os.listdir(tmp_path / "scratch") == []
    with pytest.raises(pooldbapi.ProgrammingError, match="evaluated locally"):
        conn.execute("select to_char(o.amount, '999') from customers@lite c join orders@pg o"
                     " on o.cust_id = c.id")  # a PostgreSQL function SQLite does not know
    assert os.listdir(tmp_path / "scratch") == []


def test_lists_on_both_sides(tmp_path):
    containers = {a: f"driver=sqlite;database={tmp_path / a}.db" for a in ("a1", "a2", "b1")}
    conn = pooldbapi.connect(containers, broadcast_ddl=True, autocommit=True, seed=4)
    conn.execute("create table l@{a1,a2} (k int, v text)")
    conn.execute("create table r@b1 (k int, w text)")
    for alias in ("a1", "a2"):
        conn.cursor().executemany(f"insert into l@{alias} values (?, ?)", [(1, "x"), (2, "y")])
    conn.cursor().executemany("insert into r@b1 values (?, ?)", [(1, "p"), (3, "q")])
    seen = set()
    for _ in range(4):
        cur = conn.execute("select l.v, r.w from l@{a1,a2} l join r@b1 r on r.k = l.k")
        assert cur.fetchall() == [("x", "p")]
        seen.update(cur.containers)
    assert seen == {"a1", "a2", "b1"}
    conn.close()


ROWS = st.lists(st.tuples(st.integers(0, 5), st.one_of(st.none(), st.integers(-3, 3))),
                max_size=8)
SHAPES = [
    "select a.k, a.v, b.v from a@x a join b@y b on a.k = b.k",
    "select a.k, b.v from a@x a left join b@y b on a.k = b.k",
    "select k, count(*), sum(v) from a@x where k in (select k from b@y) group by k",
    "select a.k from a@x a where a.v > 0 and exists (select 1 from b@y b where b.k = a.k)",
    ("select b.k, max(b.v) from a@x a join b@y b on a.k = b.k where b.v is not null group by"
     " b.k having count(*) > 1"),
    # eager aggregation: every aggregate kind over the join, grouped by the other side
    ("select b.v, count(*), sum(a.v), min(a.v), max(a.v), avg(a.v), count(a.v) from a@x a"
     " join b@y b on a.k = b.k group by b.v order by b.v"),
    ("select a.k, count(*) as n from a@x a join b@y b on a.k = b.k where a.v > 0 group by a.k"
     " having count(*) > 1 order by n desc, a.k"),
    "select count(*), sum(a.v), avg(a.v) from a@x a join b@y b on a.k = b.k",
    ("select b.k, sum(a.v) as s from a@x a, b@y b where a.k = b.k and a.v <> b.v group by b.k"
     " order by b.k"),
]


@given(ROWS, ROWS, st.sampled_from(SHAPES))
@settings(max_examples=80, deadline=None)
def test_generated_tables_give_the_rows_of_one_database(left, right, shape):
    import tempfile
    folder = tempfile.mkdtemp()
    conn = pooldbapi.connect({"x": f"driver=sqlite;database={folder}/x.db",
                              "y": f"driver=sqlite;database={folder}/y.db"}, autocommit=True)
    single = sqlite3.connect(":memory:")
    try:
        for table, alias, rows in (("a", "x", left), ("b", "y", right)):
            conn.execute(f"create table {table}@{alias} (k int, v int)")
            conn.cursor().executemany(f"insert into {table}@{alias} values (?, ?)", rows)
            single.execute(f"create table {table} (k int, v int)")
            single.executemany(f"insert into {table} values (?, ?)", rows)
        same_rows(conn.execute(shape).fetchall(), single.execute(plain(shape)).fetchall(),
                  shape)
    finally:
        conn.close()
        single.close()
        pooldbapi.close_all()
        import shutil
        shutil.rmtree(folder, ignore_errors=True)


def test_large_inputs_stream_into_the_local_engine(tmp_path, pg):
    import tracemalloc
    conn = pooldbapi.connect({"lite": f"driver=sqlite;database={tmp_path / 's.db'}",
                              "pg": pg.conninfo()}, autocommit=True)
    conn.execute("create table small@lite (id int, label text)")
    conn.cursor().executemany("insert into small@lite values (?, ?)",
                              [(i, f"s{i}") for i in range(100)])
    with psycopg.connect(pg.dsn, autocommit=True) as raw:
        raw.execute("create table large (id int, ref int, pad text)")
        raw.execute("insert into large select i, i % 100, repeat('x', 50) from"
                    " generate_series(1, 150000) i")
    query = ("select s.label, count(*), max(l.pad) from large@pg l join small@lite s"
             " on s.id = l.ref group by s.label")
    try:
        conn.execute(query).fetchall()  # warm up: connections, type caches
        tracemalloc.start()
        try:
            rows = conn.execute(query).fetchall()
            federated = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            whole = conn.execute("select id, ref, pad from large@pg").fetchall()
            eager = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert len(rows) == 100 and all(r[1] == 1500 for r in rows)
        assert len(whole) == 150000
        assert federated * 5 < eager  # batches, not the whole input, pass through Python
    finally:
        conn.execute("drop table large@pg")
        conn.close()


def test_explain_shows_each_fetch_with_the_servers_estimate_and_runs_nothing(mixed, pg):
    """cursor.explain(): per occurrence its container, the statement sent there (what the
    server then receives on execute) and the rows its planner estimates; then the local
    statement. Nothing is fetched: the server sees only the explain."""
    conn, _ = mixed
    query = ("select c.name, count(*) as n, sum(o.amount) from customers@lite c join orders@pg o"
             " on o.cust_id = c.id where o.amount > ? group by c.name")
    with pg.statement_log() as log:
        cur = conn.cursor().explain(query, (1,))
        steps = cur.fetchall()
        seen = log()
    assert [d[0] for d in cur.description] == ["step", "container", "statement",
                                               "estimated_rows"]
    assert [s[:2] for s in steps] == [("fetch customers as pooldbapi_t0", "lite"),
                                      ("fetch partial aggregates of orders as pooldbapi_t1",
                                       "pg"), ("run locally (sqlite3)", "local")]
    assert steps[0][2] == 'select "id", "name" from customers c' and steps[0][3] == 4
    assert steps[1][2] == ('select "cust_id", count(*) as pooldbapi_a0, sum("amount") as'
                           ' pooldbapi_a1 from orders o where (o.amount > ?) group by'
                           ' "cust_id"')
    assert isinstance(steps[1][3], int) and steps[1][3] >= 1  # the planner's estimate
    assert "pooldbapi_t1" in steps[2][2] and "SUM(o.pooldbapi_a1)" in steps[2][2]
    assert "explain (format json) select" in seen
    assert not [line for line in seen.splitlines() if "statement: select" in line and
                "group by" in line]  # the partial aggregates were not run
    with pg.statement_log() as log:
        conn.execute(query, (1,)).fetchall()
        assert steps[1][2].replace("?", "$1") in log()


def test_explain_of_a_select_on_one_container_and_of_a_write(mixed):
    conn, _ = mixed
    steps = conn.cursor().explain("select name from customers@lite where id < ?",
                                  (3,)).fetchall()
    assert steps == [("run", "lite", "select name from customers where id < ?", 2)]
    with pytest.raises(pooldbapi.NotSupportedError, match="explain takes a select, not"
                                                          " insert"):
        conn.cursor().explain("insert into customers@lite values (9, 'x', null)")
    assert conn.execute("select count(*) from customers@lite").fetchone() == (4,)


@pytest.mark.parametrize("sizes, partial", [((50, 5), "a"), ((5, 50), "b")])
def test_a_count_alone_sends_partial_aggregates_from_the_larger_occurrence(tmp_path, sizes,
                                                                          partial):
    """count(*) reads no column: either occurrence could send partial counts; the one whose
    container says it would send more rows (here SQLite's limit probe) does."""
    conn = pooldbapi.connect({"x": f"driver=sqlite;database={tmp_path / 'x.db'}",
                              "y": f"driver=sqlite;database={tmp_path / 'y.db'}"},
                             autocommit=True)
    for table, alias, n in (("a", "x", sizes[0]), ("b", "y", sizes[1])):
        conn.execute(f"create table {table}@{alias} (k int)")
        conn.cursor().executemany(f"insert into {table}@{alias} values (?)",
                                  [(i % 5,) for i in range(n)])
    query = "select count(*) from a@x a join b@y b on a.k = b.k"
    steps = conn.cursor().explain(query).fetchall()
    assert [s[0] for s in steps if s[0].startswith("fetch partial")] == [
        f"fetch partial aggregates of {partial} as pooldbapi_t{'ab'.index(partial)}"]
    # the partial side sends one row per group (5 keys); the other side its rows
    assert sorted(s[3] for s in steps[:2]) == [5, min(sizes)]
    assert conn.execute(query).fetchone() == (sizes[0] * sizes[1] // 5,)
    conn.close()


@pytest.fixture
def two_postgresql(pg, pg2):
    """people on one cluster, their orders on another; the same two tables together in a
    schema of the first, for the one-database result."""
    conn = pooldbapi.connect({"p1": pg.conninfo(), "p2": pg2.conninfo()}, autocommit=True)
    people = [(1, "ann", datetime.date(2020, 1, 5)), (2, "Bob", datetime.date(2021, 2, 6)),
              (3, "bea", None), (4, "cy", datetime.date(2022, 3, 7))]
    orders = [(1, 1, decimal.Decimal("2.50")), (2, 1, decimal.Decimal("3.00")),
              (3, 2, decimal.Decimal("1.25")), (4, 3, None), (5, 4, decimal.Decimal(9))]
    conn.execute("create table people@p1 (id int, name text, born date)")
    conn.execute("create table orders@p2 (id int, person int, amount numeric(10,2))")
    conn.cursor().executemany("insert into people@p1 values (?, ?, ?)", people)
    conn.cursor().executemany("insert into orders@p2 values (?, ?, ?)", orders)
    with psycopg.connect(pg.dsn, autocommit=True) as raw:
        raw.execute("create schema one")
        raw.execute("create table one.people as select * from people")
        raw.execute("create table one.orders (id int, person int, amount numeric(10,2))")
        raw.cursor().executemany("insert into one.orders values (%s, %s, %s)", orders)
    yield conn
    conn.execute("drop table people@p1")
    conn.execute("drop table orders@p2")
    with psycopg.connect(pg.dsn, autocommit=True) as raw:
        raw.execute("drop schema one cascade")
    conn.close()


def on_one_postgresql(pg, query, params=None):
    with psycopg.connect(pg.dsn, autocommit=True) as raw:
        raw.execute("set search_path = one")
        return raw.execute(query.replace("@p1", "").replace("@p2", "").replace("?", "%s"),
                           params).fetchall()


@pytest.mark.parametrize("query, params", [
    # ilike and ~ under a top-level or (evaluated locally), casts, coalesce, upper
    (("select upper(p.name) as who, coalesce(sum(o.amount), 0)::int as total, count(*) as n"
     " from people@p1 p join orders@p2 o on o.person = p.id where p.name ilike ? or"
     " p.name ~ '^b' group by upper(p.name) order by who"), ("A%",)),
    # PostgreSQL sorts NULLs last in ascending order: the translation keeps that
    (("select p.name, p.born from people@p1 p join orders@p2 o on o.person = p.id"
     " where o.id > 0 order by p.born, p.name"), None),
    (("select to_char(p.born, 'YYYY') as year, p.name::varchar(2) as short from people@p1 p"
     " join orders@p2 o on o.person = p.id where o.amount is null or o.amount > 2"
     " order by p.name"), None),
])
def test_a_statement_in_the_containers_dialect_is_translated_for_the_local_engine(
        two_postgresql, pg, query, params):
    """Both containers are PostgreSQL: the statement is read as PostgreSQL's dialect and
    what runs locally is translated to SQLite's; the rows equal one PostgreSQL's."""
    got = two_postgresql.execute(query, params).fetchall()
    assert got  # the comparison is not of two empty results
    same_rows(got, on_one_postgresql(pg, query, params), query)


def test_a_function_sqlite_lacks_is_named_before_anything_runs(two_postgresql, pg, pg2):
    query = ("select date_trunc('month', p.born), count(*) from people@p1 p join orders@p2 o"
             " on o.person = p.id group by 1")
    with pg.statement_log() as log1, pg2.statement_log() as log2:
        with pytest.raises(pooldbapi.ProgrammingError, match="(?i)date_trunc.*cannot be"
                                                             " evaluated locally"):
            two_postgresql.execute(query)
        assert "people" not in log1() and "orders" not in log2()  # nothing was asked


def test_dialect_given_to_connect_translates_where_the_containers_differ(mixed, pg, tmp_path):
    containers = {"lite": f"driver=sqlite;database={tmp_path / 'l.db'}", "pg": pg.conninfo()}
    query = ("select c.name, o.amount::int from customers@lite c join orders@pg o"
             " on o.cust_id = c.id where c.name ilike 'A%' or o.amount::int > 5 order by o.id")
    with pooldbapi.connect(containers, dialect="postgres", autocommit=True) as conn:
        # PostgreSQL's cast of 2.50 to an integer rounds
        assert conn.execute(query).fetchall() == [("ann", 3), ("ann", 3), ("dee", 7)]
    with pooldbapi.connect(containers, autocommit=True) as conn:
        # read as SQLite's (the containers differ), where the same cast truncates
        assert conn.execute(query).fetchall() == [("ann", 2), ("ann", 3), ("dee", 7)]


def test_an_unknown_dialect_is_an_error_naming_the_known_ones(tmp_path):
    with pytest.raises(pooldbapi.InterfaceError, match="unknown dialect 'klingon'.*postgres"):
        pooldbapi.connect({"a": f"driver=sqlite;database={tmp_path / 'a.db'}"},
                          dialect="klingon")


@pytest.mark.parametrize("autocommit", [True, False])
def test_different_containers_are_read_at_the_same_time_and_given_back(mixed, pg, tmp_path,
                                                                       monkeypatch, autocommit):
    """A federated select hands each container's reads to the worker pool, all before waiting
    for any (a slow container does not hold the others back); the caller's thread reads none;
    in autocommit every connection is back in its pool after."""
    import threading

    from pooldbapi.federated import engine as local
    from pooldbapi.pool import pool_for
    threads, handed_over = {}, {}
    submitted = []
    both = threading.Event()
    real_load, real_executor = local._load, local.executor

    def recording(conn_, engine, n, src, *args, **kwargs):
        threads[src.alias] = threading.get_ident()
        # each read waits until both are handed over: read one after the other, the first
        # would wait in vain
        handed_over[src.alias] = both.wait(10)
        return real_load(conn_, engine, n, src, *args, **kwargs)

    class Recording:
        def submit(self, fn, alias):
            submitted.append(alias)
            if len(submitted) == 2:
                both.set()
            return real_executor().submit(fn, alias)

    monkeypatch.setattr(local, "_load", recording)
    monkeypatch.setattr(local, "executor", Recording)
    conn = pooldbapi.connect({"lite": f"driver=sqlite;database={tmp_path / 'l.db'}",
                              "pg": pg.conninfo()}, autocommit=autocommit)
    try:
        rows = conn.execute("select c.name, o.id from customers@lite c join orders@pg o"
                            " on o.cust_id = c.id order by o.id").fetchall()
        assert rows == [("ann", 1), ("ann", 2), ("bob", 3), ("dee", 4)]
        assert sorted(submitted) == ["lite", "pg"]
        assert handed_over == {"lite": True, "pg": True}
        assert set(threads) == {"lite", "pg"}
        assert threading.get_ident() not in threads.values()
        in_use = [pool_for(conn.specs[a]).stats().in_use for a in ("lite", "pg")]
        assert in_use == ([0, 0] if autocommit else [1, 1])  # a transaction keeps them
    finally:
        conn.close()
