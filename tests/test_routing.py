"""Per-execution routing over real SQLite files: shares, shared choices, DDL, defaults."""
from __future__ import annotations

import pytest

import pooldbapi


def count(conn, alias, table="journals"):
    return conn.execute(f"select count(*) from {table}@{alias}").fetchone()[0]


def test_count_over_five_containers_runs_two_on_each(lite):
    lite.execute("create table journals (x int)")
    ran = {}
    cur = lite.cursor()
    for _ in range(10):
        cur.execute("select count(*) from Journals@{eol1,eol2,eol3,eol4,eol5}")
        for alias, n in cur.containers.items():
            ran[alias] = ran.get(alias, 0) + n
    assert ran == {f"eol{i}": 2 for i in range(1, 6)}


def test_inserts_over_a_weighted_list_land_one_to_two(lite):
    lite.execute("create table tasks (description text)")
    for i in range(30):
        lite.execute("insert into Tasks@{eol1,eol2,eol2} (description) values (?)", (f"t{i}",))
    lite.commit()
    assert count(lite, "eol1", "tasks") == 10
    assert count(lite, "eol2", "tasks") == 20
    assert count(lite, "eol3", "tasks") == 0


def test_identical_lists_share_one_choice_per_execution(lite):
    lite.execute("create table a (id int)")
    lite.execute("create table b (id int)")
    for alias in ("eol1", "eol2"):
        lite.execute(f"insert into a@{alias} values (1)")
        lite.execute(f"insert into b@{alias} values (1)")
    seen = set()
    for _ in range(6):
        cur = lite.execute("select count(*) from a@{eol1,eol2} join b@{eol1,eol2} using (id)")
        assert cur.fetchone()[0] == 1
        seen.update(cur.containers)
    assert seen == {"eol1", "eol2"}


def test_different_lists_landing_apart_are_evaluated_locally(lite):
    lite.execute("create table a (id int)")
    lite.execute("insert into a@eol1 values (1), (2)")
    lite.execute("insert into a@eol2 values (2), (3)")
    cur = lite.execute("select x.id from a@eol1 x join a@eol2 y on x.id = y.id")
    assert cur.fetchall() == [(2,)] and cur.containers == {"eol1": 1, "eol2": 1}


def test_unsuffixed_occurrences_use_the_default(lite):
    lite.execute("create table j (x int)")
    ran = {}
    for _ in range(10):
        cur = lite.execute("insert into j values (1)")
        ran.update({a: ran.get(a, 0) + n for a, n in cur.containers.items()})
    assert ran == {f"eol{i}": 2 for i in range(1, 6)}


def test_ddl_must_resolve_to_one_container_unless_broadcast(tmp_path):
    containers = {a: f"driver=sqlite;database={tmp_path / a}.db" for a in ("x", "y")}
    conn = pooldbapi.connect(containers, default="{x,y}")
    with pytest.raises(pooldbapi.ProgrammingError, match="broadcast_ddl=True"):
        conn.execute("create table t (i int)")
    conn.execute("create table t@x (i int)")
    conn.execute("create table t@{y,y} (i int)")
    conn.commit()
    conn.close()
    conn = pooldbapi.connect(containers, default="{x,y}", broadcast_ddl=True)
    cur = conn.execute("create table u@{x,y} (i int)")
    assert cur.containers == {"x": 1, "y": 1}
    conn.commit()
    assert conn.execute("select count(*) from u@y").fetchone() == (0,)


def test_executemany_of_a_select_is_refused(lite):
    with pytest.raises(pooldbapi.ProgrammingError, match="executemany takes insert"):
        lite.cursor().executemany("select ?", [(1,)])


def test_executemany_gives_each_row_the_next_container(lite):
    lite.execute("create table r (i int)")
    cur = lite.cursor()
    cur.executemany("insert into r@{eol1,eol2,eol2} values (?)", [(i,) for i in range(9)])
    assert cur.rowcount == 9
    assert cur.containers == {"eol1": 3, "eol2": 6}
    lite.commit()
    assert count(lite, "eol1", "r") == 3 and count(lite, "eol2", "r") == 6


def test_other_statements_run_on_one_container_per_execution(lite):
    ran = {}
    for _ in range(5):
        cur = lite.execute("pragma user_version")  # no occurrence: the default list
        assert len(cur.containers) == 1
        ran.update(cur.containers)
    assert set(ran) == {f"eol{i}" for i in range(1, 6)}
    with pytest.raises(pooldbapi.ProgrammingError, match="one container per execution"):
        lite.execute("merge into a@eol1 using b@eol2 on true when matched then delete")


def test_affinity_transaction_pins_a_list_until_commit(tmp_path):
    containers = {a: f"driver=sqlite;database={tmp_path / a}.db" for a in ("x", "y")}
    conn = pooldbapi.connect(containers, default="{x,y}", broadcast_ddl=True,
                             affinity="transaction")
    conn.execute("create table t (i int)")
    conn.commit()
    picks = {next(iter(conn.execute("insert into t values (1)").containers))
             for _ in range(6)}
    assert len(picks) == 1
    assert conn.execute("select count(*) from t").fetchone()[0] == 6  # read your writes
    conn.commit()
    picks = {next(iter(conn.execute("insert into t values (1)").containers))
             for _ in range(6)}
    assert len(picks) == 1
    conn.close()


def test_a_list_of_one_container_takes_no_strategy(tmp_path):
    """Nothing to choose: a one-container list goes straight to its container, keeps no
    strategy and leaves nothing for a learning strategy to hear."""
    conn = pooldbapi.connect({a: f"driver=sqlite;database={tmp_path / a}.db" for a in "ab"},
                             strategy="least-busy", affinity="transaction")
    conn.execute("create table t@a (x int)")
    assert conn.execute("select count(*) from t@a").containers == {"a": 1}
    assert conn.execute("select count(*) from t@{a}").containers == {"a": 1}
    assert not conn.router._strategies and not conn.router._pending and not conn.transaction.pinned
    conn.execute("create table t@b (x int)")
    conn.execute("select count(*) from t@{a,b}")
    assert list(conn.router._strategies) == [("select count(*) from t@{a,b}", ("a", "b"))]
    conn.close()
