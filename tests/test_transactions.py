"""Transactions across containers: commit/rollback fan-out, partial commits, two-phase commit."""
from __future__ import annotations

import psycopg
import pytest

import pooldbapi


@pytest.fixture
def two(pg, pg2):
    conn = pooldbapi.connect({"p1": pg.conninfo(), "p2": pg2.conninfo()}, default="{p1,p2}",
                             broadcast_ddl=True, autocommit=True)
    conn.execute("create table tx (id int primary key, v text)")
    conn.autocommit = False
    yield conn
    if not conn.closed:
        conn.rollback()
    admin = pooldbapi.connect({"p1": pg.conninfo(), "p2": pg2.conninfo()}, default="{p1,p2}",
                              broadcast_ddl=True, autocommit=True)
    admin.execute("drop table tx")
    admin.close()
    conn.close()


def count(cluster, table="tx"):
    with psycopg.connect(cluster.dsn) as raw:
        return raw.execute(f"select count(*) from {table}").fetchone()[0]


def test_commit_and_rollback_reach_every_touched_container(two, pg, pg2):
    two.execute("insert into tx@p1 values (1, 'a')")
    two.execute("insert into tx@p2 values (1, 'b')")
    assert count(pg) == 0 and count(pg2) == 0  # separate sessions, not yet committed
    two.commit()
    assert count(pg) == 1 and count(pg2) == 1
    two.execute("insert into tx@p1 values (2, 'a')")
    two.execute("insert into tx@p2 values (2, 'b')")
    two.rollback()
    assert count(pg) == 1 and count(pg2) == 1
    assert not two.transaction.borrowed


def test_containers_are_separate_sessions_inside_a_transaction(pg):
    conn = pooldbapi.connect({"a": pg.conninfo(), "b": pg.conninfo()}, autocommit=True)
    conn.execute("create table sess@a (x int)")
    conn.autocommit = False
    try:
        conn.execute("insert into sess@a values (1)")
        assert conn.execute("select count(*) from sess@b").fetchone()[0] == 0
        conn.commit()
        assert conn.execute("select count(*) from sess@b").fetchone()[0] == 1
    finally:
        conn.rollback()
        conn.autocommit = True
        conn.execute("drop table sess@a")
        conn.close()


def test_partial_commit_lists_committed_and_failed(two, pg, pg2):
    two.autocommit = True
    two.execute("alter table tx@p2 add constraint later unique (v) deferrable initially deferred")
    two.autocommit = False
    two.execute("insert into tx@p1 values (10, 'x')")
    two.execute("insert into tx@p2 values (10, 'same')")
    two.execute("insert into tx@p2 values (11, 'same')")  # fails only at commit
    with pytest.raises(pooldbapi.PartialCommitError) as info:
        two.commit()
    assert isinstance(info.value, pooldbapi.OperationalError)
    assert info.value.committed == ("p1",)
    assert set(info.value.failed) == {"p2"}
    assert isinstance(info.value.failed["p2"], pooldbapi.IntegrityError)
    assert not two.transaction.borrowed  # no open transaction afterwards
    assert count(pg) == 1 and count(pg2) == 0
    two.execute("insert into tx@p2 values (12, 'fine')")
    two.commit()
    assert count(pg2) == 1


def test_autocommit_across_containers(two, pg, pg2):
    two.autocommit = True
    cur = two.cursor()
    cur.executemany("insert into tx values (?, ?)", [(i, "x") for i in range(10)])
    assert count(pg) + count(pg2) == 10
    assert not two.transaction.borrowed


def test_two_phase_commit_across_servers(two, pg, pg2):
    xid = two.xid(7, "global-1", "branch")
    two.tpc_begin(xid)
    two.execute("insert into tx@p1 values (1, 'a')")
    two.execute("insert into tx@p2 values (1, 'b')")
    two.tpc_prepare()
    for cluster in (pg, pg2):
        with psycopg.connect(cluster.dsn) as raw:
            gids = [r[0] for r in raw.execute("select gid from pg_prepared_xacts")]
            assert len(gids) == 1
    assert two.tpc_recover() == [xid]
    two.tpc_commit()
    assert count(pg) == 1 and count(pg2) == 1
    assert two.tpc_recover() == []


def test_two_phase_recovery_from_another_connection(two, pg, pg2):
    xid = two.xid(1, "global-2", "b")
    two.tpc_begin(xid)
    two.execute("insert into tx@p1 values (5, 'a')")
    two.execute("insert into tx@p2 values (5, 'b')")
    two.tpc_prepare()
    two.close()  # prepared transactions outlive the sessions
    other = pooldbapi.connect({"p1": pg.conninfo(), "p2": pg2.conninfo()})
    assert other.tpc_recover() == [xid]
    other.tpc_rollback(xid)
    assert other.tpc_recover() == []
    assert count(pg) == 0 and count(pg2) == 0
    with pytest.raises(pooldbapi.ProgrammingError, match="no prepared transaction"):
        other.tpc_commit(xid)
    other.close()


def test_two_phase_connection_prepares_before_commit(pg, pg2, tmp_path):
    conn = pooldbapi.connect({"p1": pg.conninfo(), "p2": pg2.conninfo(),
                              "lite": f"driver=sqlite;database={tmp_path / 'l.db'}"},
                             default="{p1,p2}", broadcast_ddl=True, two_phase=True)
    conn.autocommit = True
    conn.execute("create table tp (id int primary key)")
    conn.autocommit = False
    try:
        conn.execute("insert into tp@p1 values (1)")
        conn.execute("insert into tp@p2 values (1)")
        conn.commit()
        assert count(pg, "tp") == 1 and count(pg2, "tp") == 1
        conn.execute("insert into tp@p1 values (2)")
        with pytest.raises(pooldbapi.NotSupportedError, match="'lite'.*two-phase"):
            conn.execute("select 1 from sqlite_master@lite")
        conn.rollback()
        assert count(pg, "tp") == 1
    finally:
        conn.rollback()
        conn.autocommit = True
        conn.execute("drop table tp")
        conn.close()


def test_two_phase_refuses_a_container_without_it(tmp_path):
    conn = pooldbapi.connect({"lite": f"driver=sqlite;database={tmp_path / 'l.db'}"})
    conn.tpc_begin(conn.xid(1, "g", "b"))
    with pytest.raises(pooldbapi.NotSupportedError, match="sqlite driver has no two-phase"):
        conn.execute("select 1")
    conn.tpc_rollback()
    conn.close()
