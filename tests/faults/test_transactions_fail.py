"""A failed container fails the transaction: commit rolls every container back and raises."""
from __future__ import annotations

import psycopg
import pytest

import pooldbapi


@pytest.fixture
def two(pg, pg2):
    conn = pooldbapi.connect({"p1": pg.conninfo(), "p2": pg2.conninfo()}, default="{p1,p2}",
                             broadcast_ddl=True, autocommit=True)
    conn.execute("create table ft (id int primary key)")
    conn.autocommit = False
    yield conn
    conn.close()
    admin = pooldbapi.connect({"p1": pg.conninfo(), "p2": pg2.conninfo()}, default="{p1,p2}",
                              broadcast_ddl=True, autocommit=True)
    admin.execute("drop table ft")
    admin.close()


def ids(cluster):
    with psycopg.connect(cluster.dsn) as raw:
        return [r[0] for r in raw.execute("select id from ft order by id")]


def test_a_statement_error_on_postgresql_fails_the_whole_transaction(two, pg, pg2):
    cur = two.cursor()
    cur.execute("insert into ft@p1 (id) values (1)")
    cur.execute("insert into ft@p2 (id) values (2)")
    with pytest.raises(pooldbapi.IntegrityError):
        cur.execute("insert into ft@p2 (id) values (2)")
    with pytest.raises(pooldbapi.OperationalError, match="(?s)failed on container 'p2'.*rollback"):
        cur.execute("insert into ft@p1 (id) values (3)")
    with pytest.raises(pooldbapi.OperationalError, match="rolled back") as info:
        two.commit()
    assert isinstance(info.value.__cause__, pooldbapi.IntegrityError)
    assert ids(pg) == [] and ids(pg2) == []
    assert not two.transaction.borrowed
    cur.execute("insert into ft@p1 (id) values (4)")  # the next transaction starts afresh
    two.commit()
    assert ids(pg) == [4]


def test_two_phase_commit_never_prepares_an_aborted_branch(pg, pg2):
    conn = pooldbapi.connect({"p1": pg.conninfo(), "p2": pg2.conninfo()}, default="{p1,p2}",
                             broadcast_ddl=True, autocommit=True, two_phase=True)
    conn.execute("create table ft (id int primary key)")
    conn.autocommit = False
    try:
        conn.execute("insert into ft@p1 (id) values (1)")
        conn.execute("insert into ft@p2 (id) values (1)")
        with pytest.raises(pooldbapi.IntegrityError):
            conn.execute("insert into ft@p2 (id) values (1)")
        with pytest.raises(pooldbapi.OperationalError, match="rolled back"):
            conn.commit()
        for cluster in (pg, pg2):
            with psycopg.connect(cluster.dsn) as raw:
                assert raw.execute("select count(*) from pg_prepared_xacts").fetchone()[0] == 0
            assert ids(cluster) == []
    finally:
        conn.rollback()
        conn.autocommit = True
        conn.execute("drop table ft")
        conn.close()


def test_an_error_outside_pooldbapi_view_is_caught_at_commit(two, pg):
    """A branch aborted where pooldbapi did not see the error (a streamed read failing late)
    is found before anything commits."""
    two.execute("insert into ft@p1 (id) values (7)")
    two.execute("insert into ft@p2 (id) values (7)")
    phys = two.transaction.borrowed["p2"]
    with pytest.raises(psycopg.errors.DivisionByZero):
        phys.raw.execute("select 1/0")
    with pytest.raises(pooldbapi.OperationalError, match="p2.*aborted"):
        two.commit()
    assert ids(pg) == []


def test_sqlite_statement_errors_undo_only_the_statement(tmp_path):
    conn = pooldbapi.connect({"a": f"driver=sqlite;database={tmp_path / 'a.db'}"})
    conn.autocommit = True
    conn.execute("create table t (id integer primary key)")
    conn.autocommit = False
    conn.execute("insert into t values (1)")
    with pytest.raises(pooldbapi.IntegrityError):
        conn.execute("insert into t values (1)")
    conn.execute("insert into t values (2)")  # the transaction goes on, as sqlite3's does
    conn.commit()
    assert [r[0] for r in conn.execute("select id from t order by id").fetchall()] == [1, 2]
    conn.close()


def test_a_commit_that_fails_first_rolls_the_others_back(two, pg, pg2):
    two.autocommit = True
    two.execute("alter table ft@p1 add column v int")
    two.execute("alter table ft@p1 add constraint later unique (v)"
                " deferrable initially deferred")
    two.autocommit = False
    two.execute("insert into ft@p1 (id, v) values (1, 5)")
    two.execute("insert into ft@p1 (id, v) values (2, 5)")  # fails only at commit
    two.execute("insert into ft@p2 (id) values (1)")
    with pytest.raises(pooldbapi.IntegrityError, match="nothing was committed; rolled back: p2"):
        two.commit()
    assert ids(pg) == [] and ids(pg2) == []


def test_a_commit_on_a_lost_server_marks_it_unhealthy_and_says_so(clusters):
    a, b = clusters.new(synchronous_commit="on"), clusters.new(synchronous_commit="on")
    conn = pooldbapi.connect({"p1": a.conninfo(), "p2": b.conninfo()}, default="{p1,p2}",
                             broadcast_ddl=True, autocommit=True)
    conn.execute("create table ft (id int primary key)")
    conn.autocommit = False
    conn.execute("insert into ft@p1 (id) values (1)")
    conn.execute("insert into ft@p2 (id) values (1)")
    b.stop("immediate")
    with pytest.raises(pooldbapi.PartialCommitError) as info:
        conn.commit()
    assert info.value.committed == ("p1",)
    assert info.value.in_doubt == ("p2",)
    assert "unknown" in str(info.value)
    assert pooldbapi.health()["p2"].healthy is False
    b.start()
    assert ids(a) == [1] and ids(b) == []
    conn.close()
