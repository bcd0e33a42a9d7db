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
from pooldbapi.sql.parse import parse
from pooldbapi.sql.render import render

CUSTOMERS = [(1, "ann", datetime.date(2020, 1, 1)), (2, "bob", datetime.date(2021, 2, 2)),
             (3, "cy", None), (4, "dee", datetime.date(2022, 3, 3))]
ORDERS = [(1, 1, decimal.Decimal("2.50"), "a"), (2, 1, decimal.Decimal("3.00"), "b"),
          (3, 2, decimal.Decimal("1.25"), "c"), (4, 4, decimal.Decimal("7.00"), "d"),
          (5, 9, decimal.Decimal("1.00"), "e")]

QUERIES = [
    "select c.name, o.id from customers@lite c join orders@pg o on o.cust_id = c.id",
    "select c.name, o.id from customers@lite c left join orders@pg o on o.cust_id = c.id",
    "select name from customers@lite where id in (select cust_id from orders@pg)",
    "select name from customers@lite c where not exists"
    " (select 1 from orders@pg o where o.cust_id = c.id)",
    "select t.cust_id, t.n from (select cust_id, count(*) as n from orders@pg group by cust_id)"
    " t join customers@lite c on c.id = t.cust_id",
    "with big as (select cust_id from orders@pg where amount > 2) select c.name from"
    " customers@lite c join big on big.cust_id = c.id",
    "select c.name, count(*) as n, sum(o.amount) as total from customers@lite c join orders@pg o"
    " on o.cust_id = c.id group by c.name having count(*) >= 1",
    "select c.name from customers@lite c join orders@pg o on o.cust_id = c.id"
    " where o.amount > 2 and c.name <> 'zed' order by o.amount desc limit 2",
    "select c.name, o.note from customers@lite c, orders@pg o where o.cust_id = c.id"
    " and o.note between 'a' and 'c'",
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


@pytest.mark.parametrize("query", QUERIES)
def test_federated_select_matches_one_database(mixed, query):
    conn, single = mixed
    cur = conn.execute(query)
    assert cur.containers == {"lite": 1, "pg": 1} or set(cur.containers) == {"lite", "pg"}
    expected = single.execute(render(parse(query), None).text).fetchall()
    assert normal(cur.fetchall()) == normal(expected)


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
    conn, single = mixed
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
    "select b.k, max(b.v) from a@x a join b@y b on a.k = b.k where b.v is not null group by"
    " b.k having count(*) > 1",
]


@given(ROWS, ROWS, st.sampled_from(SHAPES))
@settings(max_examples=40, deadline=None)
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
        got = conn.execute(shape).fetchall()
        expected = single.execute(render(parse(shape), None).text).fetchall()
        assert normal(got) == normal(expected)
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
