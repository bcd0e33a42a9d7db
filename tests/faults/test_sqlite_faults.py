"""The SQLite files hold exactly what pooldbapi reported when another process holds a file
locked past `timeout`, the file system fills up, or a row meets a key under any of SQLite's
conflict clauses (tests/faultlab_sqlite.py)."""
from __future__ import annotations

import contextlib
import random
import sqlite3

import faultlab_sqlite
import pytest
from faultlab_sqlite import (
    CONFLICT_SCENARIOS,
    FULL_SCENARIOS,
    LOCK_SCENARIOS,
    Locker,
    SqliteLab,
)

import pooldbapi


@pytest.fixture
def locks_lab(tmp_path):
    lab = SqliteLab(tmp_path)
    yield lab
    lab.close()


@pytest.fixture(scope="module")
def full_lab(tmp_path_factory):
    with faultlab_sqlite.full_lab(tmp_path_factory.mktemp("full-lab")) as lab:
        if isinstance(lab, str):
            pytest.skip(lab)
        yield lab


@pytest.mark.parametrize("name", list(LOCK_SCENARIOS))
def test_a_locked_database_keeps_the_files_as_reported(locks_lab, name):
    for trial in range(8):
        rng = random.Random(f"{name}/{trial}")
        assert LOCK_SCENARIOS[name](locks_lab, rng) == [], f"trial {trial}"


@pytest.mark.parametrize("name", list(CONFLICT_SCENARIOS))
def test_a_conflict_under_any_clause_keeps_the_files_as_reported(locks_lab, name):
    for trial in range(20):  # (OR FAIL in a multi-row VALUES in autocommit: three of them)
        rng = random.Random(f"{name}/{trial}")
        assert CONFLICT_SCENARIOS[name](locks_lab, rng) == [], f"trial {trial}"


@pytest.mark.parametrize("name", list(FULL_SCENARIOS))
def test_a_full_file_system_keeps_the_files_as_reported(full_lab, name):
    for trial in range(8):
        rng = random.Random(f"{name}/{trial}")
        assert FULL_SCENARIOS[name](full_lab, rng) == [], f"trial {trial}"


def test_a_commit_refused_by_a_reader_leaves_no_lock_behind(locks_lab):
    """A reader in another process makes COMMIT on s2 fail (SQLITE_BUSY) after s1 committed:
    PartialCommitError says so, and s2's transaction is rolled back, its lock gone (the file
    is writable at once by another process once the reader ends), nothing of it kept."""
    locks_lab.reset()
    conn = locks_lab.connect(autocommit=False)
    try:
        conn.cursor().executemany("insert into ledger (id) values (?)",
                                  [(i,) for i in range(10)])  # (over {s1,s2})
        reader = Locker(locks_lab.files["s2"], "read")
        reader.start()
        reader.wait_locked()
        try:
            with pytest.raises(pooldbapi.PartialCommitError) as caught:
                conn.commit()
        finally:
            reader.release()
        err = caught.value
        assert (err.committed, list(err.failed), err.in_doubt) == (("s1",), ["s2"], ())
        assert "database is locked" in str(err) and "nothing was committed" not in str(err)
        with contextlib.closing(sqlite3.connect(locks_lab.files["s2"], timeout=0.5,
                                                isolation_level=None)) as other:
            other.execute("insert into ledger (id) values (-1)")  # no lock left behind
    finally:
        conn.close()
    held = locks_lab.held()
    assert held["s2"] == [-1] and len(held["s1"]) == 5


def test_rows_a_full_disk_refused_at_commit_are_not_reported_written(full_lab):
    """In autocommit a batch's commit (its savepoint's RELEASE) meets SQLITE_FULL: the rows
    of the batch are not reported written; pooldbapi writes on one by one and reports
    exactly the rows the file holds."""
    full_lab.reset(free_pages=35)
    conn = full_lab.connect(autocommit=True)
    try:
        with pytest.raises(pooldbapi.OperationalError, match="database or disk is full") as err:
            conn.cursor().executemany("insert into ledger@s2 (id, note) values (?, ?)",
                                      [(i, "x" * 300) for i in range(600)])
    finally:
        conn.close()
    held = full_lab.held()["s2"]
    assert held and list(err.value.written["s2"]) == held


def test_a_batch_whose_commit_a_reader_refuses_raises_database_is_locked(locks_lab):
    """In autocommit a batch's commit waits for another process's reader past `timeout`:
    the error says the database is locked, at the batch's first row, nothing written (not
    a duplicate key from replaying rows of a batch that was left open)."""
    locks_lab.reset()
    reader = Locker(locks_lab.files["s1"], "read")
    reader.start()
    reader.wait_locked()
    conn = locks_lab.connect(autocommit=True)
    try:
        with pytest.raises(pooldbapi.OperationalError, match="database is locked") as err:
            conn.cursor().executemany("insert into ledger@s1 (id) values (?)",
                                      [(i,) for i in range(50)])
    finally:
        conn.close()
        reader.release()
    assert (err.value.row, err.value.written) == (0, {})
    assert locks_lab.held()["s1"] == []
