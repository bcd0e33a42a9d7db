"""A statement that runs whole on one container is prepared the first time it is routed there
(runner.Direct, kept by the context): a repeated execute neither parses nor routes it, and
does what the first did (the rows, the errors, the sessions); a change of the default list
drops what was prepared for the old one."""
from __future__ import annotations

import time

import psycopg
import pytest

import pooldbapi
from pooldbapi import cursor as cursor_module
from pooldbapi.pool import pool_for
from pooldbapi.router import Router


@pytest.fixture
def lite(tmp_path):
    conn = pooldbapi.connect({a: f"driver=sqlite;database={tmp_path / a}.db" for a in "ab"},
                             default="{a}", autocommit=True)
    for alias, n in (("a", 1), ("b", 2)):
        conn.execute(f"create table t@{alias} (x int)")
        conn.cursor().executemany(f"insert into t@{alias} values (?)", [(i,) for i in range(n)])
    yield conn
    conn.close()


def counting(monkeypatch, owner, name):
    calls = []
    real = getattr(owner, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)
    monkeypatch.setattr(owner, name, counted)
    return calls


@pytest.mark.parametrize("autocommit", [True, False])
def test_a_repeated_statement_is_neither_parsed_nor_routed_again(lite, monkeypatch, autocommit):
    lite.autocommit = autocommit
    parsed = counting(monkeypatch, cursor_module, "parse")
    routed = counting(monkeypatch, Router, "route")
    cur = lite.cursor()
    first = cur.execute("select x from t where x >= ?", (0,)).fetchall()
    assert (len(parsed), len(routed)) == (1, 1)
    again = [cur.execute("select x from t where x >= ?", (0,)).fetchall() for _ in range(3)]
    cur.execute("insert into t values (?)", (7,))
    cur.execute("insert into t values (?)", (8,))
    assert (len(parsed), len(routed)) == (2, 2)  # the insert's first time only
    assert again == [first] * 3 and first == [(0,)]
    assert cur.rowcount == 1 and cur.containers == {"a": 1} and cur.description is None
    assert cur.execute("select x from t where x >= ?", [7]).fetchall() == [(7,), (8,)]
    assert [d[0] for d in cur.description] == ["x"]
    if not autocommit:
        lite.rollback()
        assert cur.execute("select count(*) from t").fetchall() == [(1,)]


def test_a_prepared_statement_follows_a_new_default_list(lite):
    text = "select count(*) from t"
    assert [lite.execute(text).fetchall() for _ in range(2)] == [[(1,)], [(1,)]]
    assert text in lite.context.plans
    lite.default = "b"
    assert [lite.execute(text).fetchall() for _ in range(2)] == [[(2,)], [(2,)]]


def test_cursors_with_the_same_own_default_share_what_was_prepared(lite, monkeypatch):
    text = "select count(*) from t"
    one, two = lite.cursor(), lite.cursor()
    one.default = two.default = "b"
    assert one.execute(text).fetchall() == [(2,)]
    parsed = counting(monkeypatch, cursor_module, "parse")
    assert two.execute(text).fetchall() == [(2,)]
    assert lite.execute(text).fetchall() == [(1,)]  # the connection's own default: a
    assert len(parsed) == 1  # only the connection's first time


def test_bad_parameters_of_a_prepared_statement_take_no_session(lite):
    text = "select x from t where x = ?"
    lite.execute(text, (0,))
    pool = pool_for(lite.specs["a"])
    kept = lite.transaction.parked["a"]
    for params, words in (((1, 2), "takes 1 parameters, 2 given"),
                          ({"x": 1}, "must be a sequence"), ((), "takes 1 parameters")):
        with pytest.raises(pooldbapi.ProgrammingError, match=words):
            lite.execute(text, params)
        assert lite.transaction.parked["a"] is kept and not lite.transaction.borrowed
        assert pool.stats().parked == 1
    assert lite.execute(text, (0,)).fetchall() == [(0,)]


def test_a_statement_error_of_a_prepared_statement_fails_the_transaction(pg):
    conn = pooldbapi.connect({"p": pg.conninfo()})
    text = "select 10 / ?"
    assert conn.execute(text, (5,)).fetchall() == [(2,)]
    assert text in conn.context.plans
    with pytest.raises(pooldbapi.DataError, match="division by zero") as caught:
        conn.execute(text, (0,))
    assert caught.value.container == "p"
    with pytest.raises(pooldbapi.OperationalError, match="call rollback"):
        conn.execute(text, (5,))
    conn.rollback()
    assert conn.execute(text, (5,)).fetchall() == [(2,)]
    conn.close()


def test_an_insert_whose_session_is_lost_in_autocommit_is_unknown_on_a_prepared_path(pg):
    with psycopg.connect(pg.dsn, autocommit=True) as raw:
        raw.execute("create table prepared_lost (x int)")
    conn = pooldbapi.connect({"p": pg.conninfo()}, autocommit=True)
    text = ("insert into prepared_lost select ? where case when ? = 0 then true"
            " else pg_terminate_backend(pg_backend_pid()) end")
    conn.execute(text, (1, 0))
    assert text in conn.context.plans
    with pytest.raises(pooldbapi.OperationalError) as caught:
        conn.execute(text, (2, 1))
    err = caught.value
    assert err.connection_failure and err.lost_kind == "insert" and err.unknown == {"p": (0,)}
    assert not conn.transaction.borrowed and not conn.transaction.parked
    conn.execute(text, (3, 0))  # on a new session
    with psycopg.connect(pg.dsn) as raw:
        assert raw.execute("select x from prepared_lost order by x").fetchall() == [(1,), (3,)]
    conn.close()


def test_a_kept_session_the_server_ended_is_replaced_before_a_prepared_statement(pg):
    conn = pooldbapi.connect({"p": pg.conninfo(application_name="prepared-kill")},
                             autocommit=True)
    text = "select pg_backend_pid()"
    pid = conn.execute(text).fetchone()[0]
    assert conn.execute(text).fetchone()[0] == pid  # prepared, on the kept session
    assert text in conn.context.plans and "p" in conn.transaction.parked
    with psycopg.connect(pg.dsn, autocommit=True) as raw:
        raw.execute("select pg_terminate_backend(%s)", (pid,))
    time.sleep(0.2)
    assert conn.execute(text).fetchone()[0] != pid
    conn.close()


def test_a_long_generated_statement_is_prepared_apart_from_the_others(lite, monkeypatch):
    """A generated insert over cache.LARGEST (1,000 literal rows) is kept by the context's
    long tier, so that its batches repeated are neither parsed nor routed again, and do what
    the first did; the ordinary plans stay where they were."""
    from pooldbapi.cache import LARGEST
    text = "insert into t (x) values " + ", ".join(f"({i})" for i in range(1000, 5000))
    assert len(text) > LARGEST
    lite.execute("select count(*) from t")
    parsed = counting(monkeypatch, cursor_module, "parse")
    routed = counting(monkeypatch, Router, "route")
    for _ in range(3):
        cur = lite.execute(text)
        assert cur.rowcount == 4000 and cur.containers == {"a": 1}
    assert (len(parsed), len(routed)) == (1, 1)
    assert text in lite.context.plans.long and "select count(*) from t" in \
        lite.context.plans.short
    assert lite.execute("select count(*), sum(x) from t").fetchall() == [
        (1 + 3 * 4000, 3 * sum(range(1000, 5000)))]
