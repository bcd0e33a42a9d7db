"""A cursor call hands the layers below its context: a cursor with its own default list routes
by it through a view of the connection's router, and never sets the connection's default."""
from __future__ import annotations

import pytest

import pooldbapi
from pooldbapi.router import Router


@pytest.fixture
def conn(tmp_path):
    conn = pooldbapi.connect({a: f"driver=sqlite;database={tmp_path / a}.db" for a in "ab"},
                             default="{a}", autocommit=True)
    for alias in "ab":
        conn.execute(f"create table t@{alias} (x int)")
    conn.execute("insert into t@b values (2)")
    yield conn
    conn.close()


def test_a_cursor_with_its_own_default_never_sets_the_connections(conn, monkeypatch):
    sets = []
    real = Router.default
    monkeypatch.setattr(Router, "default", property(
        real.fget, lambda self, value: (sets.append(value), real.fset(self, value))))
    cur = conn.cursor()
    cur.default = "b"
    assert cur.execute("select x from t").fetchall() == [(2,)]
    cur.executemany("insert into t values (?)", [(3,), (4,)])
    assert cur.explain("select x from t").fetchall()[0][1] == "b"
    assert conn.execute("select count(*) from t").fetchall() == [(0,)]  # the connection's: a
    assert sorted(cur.execute("select x from t").fetchall()) == [(2,), (3,), (4,)]
    assert sets == [] and conn.default == ("a",)


def test_the_connections_fixed_choices_survive_a_call_with_a_cursors_own_default(conn):
    text = "select count(*) from t"
    assert conn.execute(text).fetchall() == [(0,)]
    assert conn.router._fixed.get(text) == ({("a",): "a"}, "a")
    cur = conn.cursor()
    cur.default = "{b}"
    assert cur.execute(text).fetchall() == [(1,)]
    assert conn.router._fixed.get(text) == ({("a",): "a"}, "a")  # kept: not cleared by the cursor


def test_a_list_takes_its_turns_alike_through_the_connection_and_a_cursors_view(conn):
    """The view shares the connection's strategies: one statement naming {a,b} goes round
    the list whichever of them runs it, as when the cursor set the connection's default."""
    text = "select count(*) from t@{a,b}"
    cur = conn.cursor()
    cur.default = "b"
    landed = [next(iter((conn if turn % 2 else cur).execute(text).containers))
              for turn in range(4)]
    assert landed in (["a", "b", "a", "b"], ["b", "a", "b", "a"])


def test_the_views_of_cursors_default_lists_are_bounded_least_recently_used_out_first(conn):
    from pooldbapi.router import VIEWS

    router, context = conn.router, conn.context
    lists = [("a",) * n + ("b",) for n in range(1, VIEWS + 2)]
    first = router.view(lists[0])
    first_context = context.with_router(first)
    for default in lists[1:VIEWS]:
        context.with_router(router.view(default))
    assert router.view(lists[0]) is first  # used again: now the most recently used
    assert context.with_router(first) is first_context
    context.with_router(router.view(lists[VIEWS]))  # one more: the least recently used goes
    assert len(router._views) == len(context._views) == VIEWS
    assert router.view(lists[0]) is first and context.with_router(first) is first_context
    assert lists[1] not in router._views
