"""Where a statement's work over several containers runs: the largest container's share on the
calling thread, the others on the worker threads; stops and interruptions stay at row
boundaries and say exactly what was written (real SQLite files)."""
from __future__ import annotations

import sqlite3
import threading

import pytest

import pooldbapi
from pooldbapi import runner


@pytest.fixture
def files(tmp_path):
    paths = {a: tmp_path / f"{a}.db" for a in ("a", "b", "c")}
    for path in paths.values():
        with sqlite3.connect(path) as raw:
            raw.execute("create table t (id integer primary key, v text)")
    return paths


def connect(files, **options):
    return pooldbapi.connect({a: f"driver=sqlite;database={p}" for a, p in files.items()},
                             default="{a,b,c}", **options)


def stored(files):
    out = {}
    for alias, path in files.items():
        with sqlite3.connect(path) as raw:
            out[alias] = [r[0] for r in raw.execute("select id from t order by id")]
    return out


@pytest.mark.parametrize("shape", ["executemany", "multi-row VALUES"])
def test_the_largest_share_runs_on_the_calling_thread_and_the_others_on_workers(files, shape):
    conn = connect(files)
    threads: dict[str, set[int]] = {}
    conn.progress = lambda alias, n: threads.setdefault(alias, set()).add(threading.get_ident())
    cur = conn.cursor()
    if shape == "executemany":
        cur.executemany("insert into t@{a,b,c} (id, v) values (?, ?)",
                        [(i, "x") for i in range(10)])
    else:
        cur.execute("insert into t@{a,b,c} (id, v) values " + ", ".join(["(?, 'x')"] * 10),
                    list(range(10)))
    conn.commit()
    rows = {a: len(ids) for a, ids in stored(files).items()}
    assert sum(rows.values()) == 10 and all(rows.values())
    caller = threading.get_ident()
    on_caller = [a for a, seen in threads.items() if seen == {caller}]
    assert len(on_caller) == 1  # exactly one share ran here, every other on a worker
    assert all(caller not in seen for a, seen in threads.items() if a not in on_caller)
    assert rows[on_caller[0]] == max(rows.values())
    conn.close()


def test_an_interruption_in_a_worker_stops_the_callers_share_at_a_row_boundary(
        files, monkeypatch):
    monkeypatch.setattr(runner, "CHUNK", 1)  # every row a call (and a commit) of its own
    conn = connect(files, autocommit=True)
    caller = threading.get_ident()
    mine = set()

    def progress(alias, n):
        if threading.get_ident() != caller:
            raise KeyboardInterrupt  # a worker's first row boundary
        mine.add(alias)

    conn.progress = progress
    with pytest.raises(KeyboardInterrupt) as info:
        conn.cursor().executemany("insert into t@{a,b,c} (id, v) values (?, ?)",
                                  [(i, "x") for i in range(900)])
    (note,) = [n for n in info.value.__notes__ if "committed before the interruption" in n]
    rows = stored(files)
    # what the note says is exactly what each file holds, and the caller's share stopped
    assert note.endswith(pooldbapi.errors.rows_per_container(
        {a: ids for a, ids in rows.items() if ids}))
    (alias,) = mine
    assert len(rows[alias]) < 300  # of its 300 rows: stopped by the worker's interruption
    assert not conn.transaction.borrowed
    conn.close()


def test_an_interruption_inside_a_call_on_the_calling_thread_names_its_rows_in_flight(
        files, monkeypatch):
    """KeyboardInterrupt is raised between bytecodes: after the driver wrote a batch and before
    the runner recorded it. Those rows are reported as committed or not, not as unwritten."""
    monkeypatch.setattr(runner, "CHUNK", 2)
    real = runner._call
    calls = []
    caller = threading.get_ident()

    def interrupted(phys, bound, values, out=None, indices=(0,)):
        written = real(phys, bound, values, out, indices)
        if threading.get_ident() == caller:
            calls.append(len(values))
            if len(calls) == 3:
                raise KeyboardInterrupt
        return written

    monkeypatch.setattr(runner, "_call", interrupted)
    conn = connect(files, autocommit=True)
    with pytest.raises(KeyboardInterrupt) as info:
        conn.cursor().executemany("insert into t@{a,b,c} (id, v) values (?, ?)",
                                  [(i, "x") for i in range(30)])
    notes = info.value.__notes__
    (flight,) = [n for n in notes if "in flight" in n]
    rows = stored(files)
    (mine,) = [a for a in rows if f"{a}: 2 rows" in flight]
    assert len(rows[mine]) == 3 * 2  # the batch in flight was in fact committed
    (note,) = [n for n in notes if "committed before the interruption" in n]
    assert f"{mine}: 4 rows" in note
    conn.close()
