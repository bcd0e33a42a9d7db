"""Transactions across containers: commit/rollback fan-out, partial commits, two-phase commit;
a failed container fails the transaction, and commit then rolls every container back."""
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


def ids(cluster):
    with psycopg.connect(cluster.dsn) as raw:
        return [r[0] for r in raw.execute("select id from tx order by id")]


def test_a_statement_error_on_postgresql_fails_the_whole_transaction(two, pg, pg2):
    cur = two.cursor()
    cur.execute("insert into tx@p1 (id) values (1)")
    cur.execute("insert into tx@p2 (id) values (2)")
    with pytest.raises(pooldbapi.IntegrityError):
        cur.execute("insert into tx@p2 (id) values (2)")
    with pytest.raises(pooldbapi.OperationalError, match="(?s)failed on container 'p2'.*rollback"):
        cur.execute("insert into tx@p1 (id) values (3)")
    with pytest.raises(pooldbapi.OperationalError, match="rolled back") as info:
        two.commit()
    assert isinstance(info.value.__cause__, pooldbapi.IntegrityError)
    assert ids(pg) == [] and ids(pg2) == []
    assert not two.transaction.borrowed
    cur.execute("insert into tx@p1 (id) values (4)")  # the next transaction starts afresh
    two.commit()
    assert ids(pg) == [4]


def test_two_phase_commit_never_prepares_an_aborted_branch(pg, pg2):
    conn = pooldbapi.connect({"p1": pg.conninfo(), "p2": pg2.conninfo()}, default="{p1,p2}",
                             broadcast_ddl=True, autocommit=True, two_phase=True)
    conn.execute("create table tx (id int primary key)")
    conn.autocommit = False
    try:
        conn.execute("insert into tx@p1 (id) values (1)")
        conn.execute("insert into tx@p2 (id) values (1)")
        with pytest.raises(pooldbapi.IntegrityError):
            conn.execute("insert into tx@p2 (id) values (1)")
        with pytest.raises(pooldbapi.OperationalError, match="rolled back"):
            conn.commit()
        for cluster in (pg, pg2):
            with psycopg.connect(cluster.dsn) as raw:
                assert raw.execute("select count(*) from pg_prepared_xacts").fetchone()[0] == 0
            assert ids(cluster) == []
    finally:
        conn.rollback()
        conn.autocommit = True
        conn.execute("drop table tx")
        conn.close()


def test_an_error_outside_pooldbapi_view_is_caught_at_commit(two, pg):
    """A branch aborted where pooldbapi did not see the error (a streamed read failing late)
    is found before anything commits."""
    two.execute("insert into tx@p1 (id) values (7)")
    two.execute("insert into tx@p2 (id) values (7)")
    phys = two.transaction.borrowed["p2"]
    with pytest.raises(psycopg.errors.DivisionByZero):
        phys.link.raw.execute("select 1/0")
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
    two.execute("alter table tx@p1 add constraint later unique (v)"
                " deferrable initially deferred")
    two.autocommit = False
    two.execute("insert into tx@p1 (id, v) values (1, 5)")
    two.execute("insert into tx@p1 (id, v) values (2, 5)")  # fails only at commit
    two.execute("insert into tx@p2 (id) values (1)")
    with pytest.raises(pooldbapi.IntegrityError, match="nothing was committed; rolled back: p2"):
        two.commit()
    assert ids(pg) == [] and ids(pg2) == []


def test_a_commit_on_a_lost_server_marks_it_unhealthy_and_says_so(clusters):
    a, b = clusters.new(synchronous_commit="on"), clusters.new(synchronous_commit="on")
    conn = pooldbapi.connect({"p1": a.conninfo(), "p2": b.conninfo()}, default="{p1,p2}",
                             broadcast_ddl=True, autocommit=True)
    conn.execute("create table tx (id int primary key)")
    conn.autocommit = False
    conn.execute("insert into tx@p1 (id) values (1)")
    conn.execute("insert into tx@p2 (id) values (1)")
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


def _interrupt_after(conn, rows):
    seen = []

    def progress(alias, n):
        seen.append(n)
        if sum(seen) >= rows:
            raise KeyboardInterrupt

    conn.progress = progress


@pytest.mark.parametrize("chunk", [1, 4])
def test_an_interrupted_executemany_fails_the_transaction(two, pg, pg2, chunk, monkeypatch):
    from pooldbapi import runner
    monkeypatch.setattr(runner, "CHUNK", chunk)
    _interrupt_after(two, 6)
    with pytest.raises(KeyboardInterrupt):
        two.cursor().executemany("insert into tx@p1 (id) values (?)", [(i,) for i in range(20)])
    two.progress = None
    with pytest.raises(pooldbapi.OperationalError, match="interrupted"):
        two.commit()  # rows were written but never reported: nothing of them may be kept
    assert ids(pg) == [] and not two.transaction.borrowed


def test_an_interrupted_executemany_in_autocommit_says_what_was_written(two, pg, monkeypatch):
    from pooldbapi import runner
    monkeypatch.setattr(runner, "CHUNK", 1)  # each row a call of its own, committed alone
    two.autocommit = True
    _interrupt_after(two, 3)
    with pytest.raises(KeyboardInterrupt) as info:
        two.cursor().executemany("insert into tx@p1 (id) values (?)", [(i,) for i in range(20)])
    two.progress = None
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "p1: 3 rows" in notes
    assert ids(pg) == [0, 1, 2]
    assert not two.transaction.borrowed  # the session went back to its pool


def test_affinity_pins_a_list_for_one_transaction_only(tmp_path):
    conn = pooldbapi.connect({a: f"driver=sqlite;database={tmp_path / a}.db" for a in "ab"},
                             default="{a,b}", affinity="transaction", seed=3)
    firsts = []
    for _ in range(4):
        picked = {next(iter(conn.execute("select 1").containers)) for _ in range(5)}
        assert len(picked) == 1  # the whole transaction on one container
        firsts.append(picked.pop())
        conn.commit()  # the pin ends with the transaction
    assert set(firsts) == {"a", "b"}  # the next transaction chooses again, in turn
    conn.close()


def test_a_failing_prepare_rolls_every_participant_back(clusters):
    good = clusters.new()
    refusing = clusters.new(max_prepared_transactions="0")  # PREPARE TRANSACTION fails
    conn = pooldbapi.connect({"g": good.conninfo(), "r": refusing.conninfo()},
                             default="{g,r}", broadcast_ddl=True, autocommit=True,
                             two_phase=True)
    conn.execute("create table tp (id int)")
    conn.autocommit = False
    conn.execute("insert into tp@g values (1)")
    conn.execute("insert into tp@r values (1)")
    with pytest.raises(pooldbapi.DatabaseError, match="r: prepared transactions are disabled"):
        conn.commit()
    assert not conn.transaction.borrowed
    for cluster in (good, refusing):
        with psycopg.connect(cluster.dsn) as raw:
            assert raw.execute("select count(*) from tp").fetchone()[0] == 0
            assert raw.execute("select count(*) from pg_prepared_xacts").fetchone()[0] == 0
    conn.close()


def test_borrow_gives_back_in_autocommit_wraps_driver_errors_and_keeps_for_streams(tmp_path):
    """Transaction.borrow(): the one place a statement borrows a container's session."""
    import sqlite3

    from pooldbapi.pool import pool_for
    conn = pooldbapi.connect({"a": f"driver=sqlite;database={tmp_path / 'a.db'}"},
                             autocommit=True)
    tx, spec = conn.transaction, conn.specs["a"]
    try:
        with tx.borrow(spec) as phys:
            assert tx.borrowed == {"a": phys}
        assert tx.borrowed == {} and pool_for(spec).stats().in_use == 0  # given back
        with tx.borrow(spec, keep=True):
            pass
        assert "a" in tx.borrowed  # a stream holds it
        tx.give_back("a")
        with pytest.raises(pooldbapi.ProgrammingError, match=r"^a: no such table: nope") as info, \
                tx.borrow(spec, lost_kind="insert") as phys:
            phys.link.raw.execute("select * from nope")
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
        assert info.value.container == "a" and info.value.lost_kind is None  # not a lost link
        assert tx.borrowed == {}
        conn.autocommit = False
        with tx.borrow(spec) as phys:
            phys.link.raw.execute("create table t (x int)")
        assert tx.borrowed == {"a": phys}  # in a transaction it stays until commit
        conn.rollback()
        assert tx.borrowed == {}
    finally:
        conn.close()


def test_borrow_all_takes_each_session_in_the_definitions_order_and_gives_back_but_a_failed_one(
        tmp_path):
    """Transaction.borrow_all(): several containers' sessions for one statement, a Borrow each:
    taken in the one order of container definitions, given back at the end in autocommit;
    one told failed() fails the transaction where it lost work; a connect that fails gives
    back those taken before it."""
    from pooldbapi.pool import pool_for
    conn = pooldbapi.connect({"b": f"driver=sqlite;database={tmp_path / 'b.db'}",
                              "a": f"driver=sqlite;database={tmp_path / 'a.db'}",
                              "gone": f"driver=sqlite;database={tmp_path / 'no' / 'x.db'}"},
                             autocommit=True)
    tx, specs = conn.transaction, conn.specs
    ordered = sorted(("a", "b"), key=lambda a: specs[a].order)
    try:
        with tx.borrow_all([specs["b"], specs["a"]]) as borrows:
            assert list(borrows.physicals) == ordered
            assert tx.borrowed == borrows.physicals
        assert tx.borrowed == {}
        assert pool_for(specs["a"]).stats().in_use == pool_for(specs["b"]).stats().in_use == 0
        with pytest.raises(pooldbapi.OperationalError, match="cannot open SQLite database"), \
                tx.borrow_all([specs[a] for a in ("a", "b", "gone")]):
            pass  # (not reached: the missing directory's database cannot be opened)
        assert tx.borrowed == {}  # those taken before the failed connect went back
        assert pool_for(specs["a"]).stats().in_use == pool_for(specs["b"]).stats().in_use == 0
        conn.autocommit = False
        with tx.borrow_all([specs["a"], specs["b"]]) as borrows:
            borrows.physicals["a"].link.raw.execute("create table t (x int)")
            lost = pooldbapi.OperationalError("a: the link went")
            lost.container, lost.connection_failure = "a", True
            borrows.failed("a", lost, wrote=True)
        assert tx.failed is lost and set(tx.borrowed) == {"b"}  # b stays until rollback
        conn.rollback()
        assert tx.borrowed == {} and tx.failed is None
    finally:
        conn.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize("autocommit", [False, True])
def test_work_on_one_container_runs_on_the_callers_thread(backend, autocommit, tmp_path,
                                                          request, monkeypatch):
    """Selects, single-row and multi-row writes, executemany and streams on one container
    hand nothing to the worker pool and start no thread."""
    import threading

    from pooldbapi import runner
    from pooldbapi.federated import engine as local
    dsn = f"driver=sqlite;database={tmp_path / 'one.db'}" if backend == "sqlite" else \
        request.getfixturevalue("pg").conninfo()
    conn = pooldbapi.connect({"one": dsn}, autocommit=True)
    conn.execute("drop table if exists solo")
    conn.execute("create table solo (id int, v text)")
    conn.autocommit = autocommit

    def refuse(*args, **kwargs):
        raise AssertionError("work on one container was handed to the worker pool")

    started = []
    real_start = threading.Thread.start
    monkeypatch.setattr(runner, "executor", refuse)
    monkeypatch.setattr(local, "executor", refuse)
    monkeypatch.setattr(threading.Thread, "start",
                        lambda self: (started.append(self.name), real_start(self))[1])
    try:
        cur = conn.cursor()
        cur.execute("insert into solo@one values (?, ?)", (1, "a"))
        cur.execute("insert into solo@{one,one} values (2, 'b'), (3, 'c')")
        cur.executemany("insert into solo values (?, ?)", [(i, "m") for i in range(4, 40)])
        assert cur.execute("select count(*) from solo").fetchone() == (39,)
        streamed = conn.cursor(stream=True)
        streamed.execute("select id from solo order by id")
        assert [r[0] for r in streamed.fetchall()] == list(range(1, 40))
        conn.commit()
    finally:
        conn.close()
    assert started == []
