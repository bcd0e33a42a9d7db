"""A quoted name the local engine cannot resolve is an error, as on a database: never the string
SQLite's double-quoted-string fallback would make of it. Against real servers (the CAP service,
PostgreSQL, SQLite files)."""
from __future__ import annotations

import sqlite3

import psycopg
import pytest

import pooldbapi
from pooldbapi.health import HEALTH


@pytest.fixture(autouse=True)
def _forget_health():
    HEALTH.reset()
    yield
    HEALTH.reset()


def test_a_misspelt_quoted_column_deletes_nothing_on_the_service(gateways):
    gateway = gateways()
    conn = pooldbapi.connect({"o1": f"driver=odata;url={gateway.url};token=tok-o1"},
                             autocommit=True)
    conn.cursor().executemany("insert into Journals@o1 (ID, amount, description) values"
                              " (?, 1, 'long enough')", [(96000 + i,) for i in range(3)])
    try:
        with pytest.raises(pooldbapi.ProgrammingError, match='"descripton"') as info:
            conn.execute('delete from Journals@o1 where ID >= 96000 and length("descripton") > 3')
        assert "Journals on o1" in str(info.value)
        assert not [line for line in gateway.calls() if " DELETE " in line]
        assert conn.execute("select count(*) from Journals@o1 where ID >= 96000"
                            ).fetchone() == (3,)
        # the column as it is spelt: the rows go
        assert conn.execute('delete from Journals@o1 where ID >= 96000 and'
                            ' length("description") > 3').rowcount == 3
    finally:
        conn.execute("delete from Journals@o1 where ID >= 96000")
        conn.close()


@pytest.fixture
def two_postgresql(pg):
    conn = pooldbapi.connect({"p1": pg.conninfo(), "p2": pg.conninfo()}, autocommit=True)
    conn.execute("create table qc_a@p1 (id int, description text)")
    conn.execute("insert into qc_a@p1 values (1, 'x')")
    yield conn
    conn.execute("drop table qc_a@p1")
    conn.close()


@pytest.mark.parametrize("text", [
    'select length("descripton") from qc_a@p1 a join qc_a@p2 b on a.id = b.id',
    'select a.id from qc_a@p1 a join qc_a@p2 b on a.id = b.id where "descripton" = \'x\'',
    'select a.id from qc_a@p1 a join qc_a@p2 b on a.id = b.id order by "descripton"',
])
def test_a_federated_select_raises_where_the_database_raises(two_postgresql, pg, text):
    native = psycopg.connect(pg.conninfo().replace("driver=postgresql;", "").replace(";", " "))
    with pytest.raises(psycopg.errors.UndefinedColumn):  # the same statement on the database
        native.execute(text.replace("@p1", "").replace("@p2", ""))
    native.close()
    with pytest.raises(pooldbapi.ProgrammingError, match='no such column: "descripton"'):
        two_postgresql.execute(text).fetchall()


@pytest.mark.parametrize(("text", "expected"), [
    # names the statement itself defines, and the columns as spelt, resolve as before
    ('select "n" from (select id as "n" from qc_a@p1) s join qc_a@p2 b on s."n" = b.id', [(1,)]),
    ('with w("k") as (select id from qc_a@p1) select "k" from w join qc_a@p2 b on "k" = b.id',
     [(1,)]),
    ('select a.id as "out" from qc_a@p1 a join qc_a@p2 b on a.id = b.id order by "out"',
     [(1,)]),
    (('select "description" from qc_a@p1 a join (select id as bid from qc_a@p2) b'
      ' on a.id = b.bid'), [("x",)]),
])
def test_names_the_statement_defines_still_resolve(two_postgresql, text, expected):
    assert two_postgresql.execute(text).fetchall() == expected


def test_a_sqlite_container_answers_as_sqlite3_does(tmp_path):
    # drop-in: a statement that runs whole on one SQLite container gives sqlite3's answer,
    # its double-quoted-string fallback included (the README says so)
    path = tmp_path / "a.db"
    native = sqlite3.connect(path)
    native.execute("create table t (id int)")
    native.execute("insert into t values (1)")
    native.commit()
    expected = native.execute('select "nope" from t').fetchall()
    native.close()
    conn = pooldbapi.connect({"a": f"driver=sqlite;database={path}",
                              "b": f"driver=sqlite;database={tmp_path / 'b.db'}"})
    assert conn.execute('select "nope" from t@a').fetchall() == expected == [("nope",)]
    conn.execute("create table t@b (id int)")
    with pytest.raises(pooldbapi.ProgrammingError, match='no such column: "nope"'):
        conn.execute('select "nope" from t@a x join t@b y on x.id = y.id').fetchall()
    conn.close()
