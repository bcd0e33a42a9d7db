"""The back-ends' links (backends/base.py Link): one connection each, owning the driver's."""
from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

import pooldbapi
from pooldbapi import NotSupportedError
from pooldbapi.backends.sqlite import BACKEND, SQLiteLink
from pooldbapi.settings import make_spec


class InterruptedAfter:
    """A sqlite3 connection whose execute of a statement starting with `word` runs it, then
    raises KeyboardInterrupt (Ctrl-C landing just after the driver's call returned)."""

    def __init__(self, raw: sqlite3.Connection, word: str) -> None:
        self.raw, self.word = raw, word

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    def execute(self, sql: str) -> sqlite3.Cursor:
        cur = self.raw.execute(sql)
        if sql.startswith(self.word):
            raise KeyboardInterrupt
        return cur


def _link(tmp_path, word: str) -> tuple[SQLiteLink, sqlite3.Connection]:
    spec = make_spec("s", f"driver=sqlite;database={tmp_path / 's.db'}")
    raw = BACKEND.connect(spec).raw
    raw.execute("create table t (x int)")
    return SQLiteLink(InterruptedAfter(raw, word), spec, BACKEND), raw


def test_sqlite_page_interrupted_after_its_release_in_a_transaction_raises_the_interrupt(
        tmp_path):
    """Ctrl-C just after a page's savepoint was released (in a transaction): the interrupt
    goes on up, not the 'no such savepoint' of undoing a savepoint already gone."""
    link, raw = _link(tmp_path, "RELEASE")
    raw.execute("BEGIN")
    with pytest.raises(KeyboardInterrupt), link.atomic():
        raw.execute("insert into t values (1)")
    assert raw.in_transaction  # the caller's transaction is still there to roll back
    raw.execute("ROLLBACK")
    raw.close()


def test_sqlite_page_interrupted_before_its_release_undoes_the_page_only(tmp_path):
    """Ctrl-C inside a page (in a transaction): its rows are undone, what came before stays."""
    link, raw = _link(tmp_path, "insert into t values (2)")
    raw.execute("BEGIN")
    raw.execute("insert into t values (1)")
    with pytest.raises(KeyboardInterrupt), link.atomic():
        link.raw.execute("insert into t values (2)")
    assert raw.execute("select x from t").fetchall() == [(1,)]
    raw.execute("ROLLBACK")
    raw.close()


def test_first_row_is_a_select_s_first_row_and_none_for_a_statement_without_rows(tmp_path):
    """Link.first_row (the replicas' and lag probes' one-value questions): the first row of
    what the statement returns; None where it returns no row, or no rows at all."""
    link = BACKEND.connect(make_spec("s", f"driver=sqlite;database={tmp_path / 's.db'}"))
    assert link.first_row("create table t (x int)") is None
    link.raw.execute("insert into t values (2), (3)")
    assert link.first_row("select x from t order by x") == (2,)
    assert link.first_row("select x from t where x > 3") is None
    link.close()


def test_a_sql_link_has_no_entity_sets_and_says_so(tmp_path):
    """The REST calls (entity_keys, unsafe_key) on a SQL container's link: a NotSupportedError
    naming the container, not an AttributeError from the driver."""
    link = BACKEND.connect(make_spec("s", f"driver=sqlite;database={tmp_path / 's.db'}"))
    with pytest.raises(NotSupportedError, match="^s: a sqlite container has no entity sets$"):
        link.entity_keys("Books")
    with pytest.raises(NotSupportedError, match="^s: a sqlite container has no entity sets$"):
        link.unsafe_key("Books", {"ID": 1})
    link.close()


def test_only_the_back_ends_reach_the_driver_s_raw_connection():
    """Above backends/, every call on a driver's connection goes through its link: no module
    there names a link's (or a pooled connection's) `.raw`."""
    package = Path(pooldbapi.__file__).parent
    found = [f"{path.relative_to(package)}:{n}: {line.strip()}"
             for path in sorted(package.rglob("*.py"))
             if "backends" not in path.relative_to(package).parts
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if re.search(r"\.raw\b", line)]
    assert found == []


def test_each_end_of_a_transaction_names_the_link_method_that_does_it() -> None:
    from pooldbapi.backends.base import Link
    from pooldbapi.transaction import End

    assert {str(end) for end in End} == {"commit", "rollback", "tpc_commit", "tpc_rollback"}
    for end in End:
        assert callable(getattr(Link, end)), end
        assert f"{end} failed" == f"{end.value} failed"  # messages show the word itself
