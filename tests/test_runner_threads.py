"""Where a statement's work runs: one container's on the calling thread, several containers'
each on a worker thread; stops and interruptions stay at row boundaries and say exactly what
was written, and rows a call had in flight when it was interrupted are named (real SQLite
files)."""
from __future__ import annotations

import sqlite3
import threading
from contextlib import closing

import pytest

import pooldbapi
from pooldbapi import runner


@pytest.fixture
def files(tmp_path):
    paths = {a: tmp_path / f"{a}.db" for a in ("a", "b", "c")}
    for path in paths.values():
        with closing(sqlite3.connect(path)) as raw, raw:
            raw.execute("create table t (id integer primary key, v text)")
    return paths


def connect(files, **options):
    return pooldbapi.connect({a: f"driver=sqlite;database={p}" for a, p in files.items()},
                             default="{a,b,c}", **options)


def stored(files):
    out = {}
    for alias, path in files.items():
        with closing(sqlite3.connect(path)) as raw:
            out[alias] = [r[0] for r in raw.execute("select id from t order by id")]
    return out


@pytest.mark.parametrize("shape", ["executemany", "multi-row VALUES"])
def test_every_share_of_a_write_over_several_containers_runs_on_a_worker(files, shape):
    # an interruption of the calling thread then lands while it waits, never inside a driver's
    # call with a batch written and not yet recorded
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
    assert set(threads) == {"a", "b", "c"}
    assert all(threading.get_ident() not in seen for seen in threads.values())
    conn.close()


def test_an_interruption_in_one_worker_stops_the_others_at_a_row_boundary(files, monkeypatch):
    monkeypatch.setattr(runner, "CHUNK", 1)  # every row a call (and a commit) of its own
    conn = connect(files, autocommit=True)
    first: list[str] = []
    lock = threading.Lock()

    def progress(alias, n):
        with lock:
            if not first:
                first.append(alias)
        if alias == first[0]:
            raise KeyboardInterrupt  # this worker's first row boundary

    conn.progress = progress
    with pytest.raises(KeyboardInterrupt) as info:
        conn.cursor().executemany("insert into t@{a,b,c} (id, v) values (?, ?)",
                                  [(i, "x") for i in range(900)])
    (note,) = [n for n in info.value.__notes__ if "committed before the interruption" in n]
    rows = stored(files)
    # what the note says is exactly what each file holds, and the other workers stopped early
    assert note.endswith(pooldbapi.errors.rows_per_container(
        {a: ids for a, ids in rows.items() if ids}))
    assert len(rows[first[0]]) == 1
    assert all(len(ids) < 300 for ids in rows.values())  # of each container's 300 rows
    assert not conn.transaction.borrowed
    conn.close()


def test_an_interruption_inside_a_call_on_the_calling_thread_names_its_rows_in_flight(
        files, monkeypatch):
    """KeyboardInterrupt is raised between bytecodes: after the driver wrote a batch and before
    the runner recorded it. Those rows are reported as committed or not, not as unwritten."""
    monkeypatch.setattr(runner, "CHUNK", 2)
    real = runner._call
    calls = []

    def interrupted(phys, bound, values, out=None, indices=(0,)):
        written = real(phys, bound, values, out, indices)
        calls.append(len(values))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return written

    monkeypatch.setattr(runner, "_call", interrupted)
    conn = connect(files, autocommit=True)
    with pytest.raises(KeyboardInterrupt) as info:  # one container: on the calling thread
        conn.cursor().executemany("insert into t@a (id, v) values (?, ?)",
                                  [(i, "x") for i in range(30)])
    notes = info.value.__notes__
    (flight,) = [n for n in notes if "in flight" in n]
    assert flight.endswith("a: 2 rows")
    assert len(stored(files)["a"]) == 3 * 2  # the batch in flight was in fact committed
    (note,) = [n for n in notes if "committed before the interruption" in n]
    assert note.endswith("a: 4 rows")
    conn.close()
