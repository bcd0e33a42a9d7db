"""Fault scenarios against SQLite files: two containers (s1, s2) written by executemany while
one file fails, then the check the PostgreSQL scenarios end with (faultlab.compare), reading
the files directly.

Faults:
- the database locked by another process past the containers' `timeout` (0.2 s): a process
  holding a write lock (BEGIN EXCLUSIVE) from before the call or from a drawn moment in it, or
  a reader holding a read transaction open (which a commit must wait for);
- the file system full: s2's file on a small tmpfs (mounted for the lab; root only) filled to
  a drawn number of free pages, so that a write, a journal or the commit finds no room.
"""
from __future__ import annotations

import contextlib
import gc
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from aio_blocking import Loop
from faultlab import Report, commit_and_report, compare, from_error, placement

import pooldbapi

TIMEOUT = 0.2
"""The containers' `timeout`: seconds sqlite3 waits for another process's lock."""
TMPFS_BYTES = 1 << 20
PAGE = 4096

_LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
if sys.argv[2] == "write":
    db.execute("begin exclusive")
else:  # a read transaction: its shared lock stays until it ends
    db.execute("begin")
    db.execute("select count(*) from ledger").fetchall()
print("locked", flush=True)
sys.stdin.read()
db.execute("rollback")
db.close()
"""


class Locker:
    """Another process holding a SQLite file: `write` (an exclusive lock) or `read` (a read
    transaction), from start() until release()."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.kind = path, kind
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _LOCKER, str(self.path), self.kind],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def wait_locked(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "locked":
            raise RuntimeError("the locking process did not take its lock")

    def release(self) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(60)
            assert self.proc.stdout is not None
            self.proc.stdout.close()


def mount_tmpfs(path: Path, size: int = TMPFS_BYTES) -> str | None:
    """Mount a tmpfs of `size` bytes on path; None, or why it cannot be done here."""
    if os.geteuid() != 0:
        return "mounting a small tmpfs (a file system to fill) needs root"
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                           str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return f"mount -t tmpfs is not permitted here: {done.stderr.strip()}"
    return None


@contextlib.contextmanager
def full_lab(folder: Path, api: str = "sync") -> Iterator[SqliteLab | str]:
    """A lab whose s2 file is on a small tmpfs mounted under folder (unmounted after); or,
    where no tmpfs can be mounted, why not."""
    small = folder / "small"
    small.mkdir()
    why = mount_tmpfs(small)
    if why is not None:
        yield why
        return
    lab = SqliteLab(folder, full_dir=small, api=api)
    try:
        yield lab
    finally:
        lab.close()
        # lazily: a connection a cursor still holds may keep a file there open for a while
        subprocess.run(["umount", "--lazy", str(small)], check=True)


class SqliteLab:
    """Two SQLite containers s1, s2 with a ledger table each; s2's file on `full_dir` (a
    small tmpfs) where given."""

    def __init__(self, folder: Path | None = None, full_dir: Path | None = None,
                 api: str = "sync") -> None:
        self.folder = Path(folder or tempfile.mkdtemp(prefix="pooldbapi-sqlite-lab-"))
        # "aio": every connection is pooldbapi.aio's, driven from here (tests/aio_blocking.py)
        self.loop = None if api == "sync" else Loop()
        self.full_dir = full_dir
        self.files = {"s1": self.folder / "s1.db",
                      "s2": (full_dir or self.folder) / "s2.db"}

    @property
    def aliases(self) -> list[str]:
        return list(self.files)

    def connect(self, **kwargs: object) -> pooldbapi.Connection:
        kwargs.pop("conninfo", None)
        containers = {a: f"driver=sqlite;database={f};timeout={TIMEOUT}"
                      for a, f in self.files.items()}
        connect = pooldbapi.connect if self.loop is None else self.loop.connect
        return connect(containers, default="{s1,s2}", **kwargs)  # type: ignore[arg-type]

    def reset(self, free_pages: int | None = None) -> None:
        """New, empty ledgers; on the tmpfs, a filler leaving `free_pages` pages free."""
        pooldbapi.close_all()  # (no pooled connection keeps a removed file open)
        # nor a closed one: sqlite3 keeps a connection's file open while a statement of it
        # lives, and an error's traceback can hold its cursor in a cycle until the collector
        # runs; on the small tmpfs those removed files would fill it
        gc.collect()
        if self.full_dir is not None:
            (self.full_dir / "filler").unlink(missing_ok=True)
        for path in self.files.values():
            for suffix in ("", "-journal", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
                db.execute("create table ledger (id int primary key, note text)")
        if self.full_dir is not None:
            filler = self.full_dir / "filler"
            if free_pages is not None:
                stat = os.statvfs(self.full_dir)
                size = max(stat.f_bavail * stat.f_frsize - free_pages * PAGE, 0)
                with filler.open("wb") as out:
                    out.truncate(0)
                    out.write(b"\0" * size)  # (written, not sparse: tmpfs counts pages used)

    def ensure_up(self) -> None:
        """(Files are always there: nothing to bring back.)"""

    def held(self) -> dict[str, list[int]]:
        found = {}
        for alias, path in self.files.items():
            with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
                found[alias] = [r[0] for r in db.execute("select id from ledger order by id")]
        return found

    def close(self) -> None:
        pooldbapi.close_all()
        shutil.rmtree(self.folder, ignore_errors=True)


def _write(lab: SqliteLab, rng: random.Random, autocommit: bool, n: int, note: int,
           words: tuple[str, ...], during: threading.Timer | None = None
           ) -> tuple[list[str], Report]:
    """executemany of n rows over {s1,s2}, then commit in a transaction; an error must name
    its container and say one of `words`. Returns the problems and what pooldbapi reported."""
    report = Report(ids=set(range(n)))
    problems: list[str] = []
    conn = lab.connect(autocommit=autocommit, seed=rng.random())
    try:
        if during is not None:
            during.start()
        cur = conn.cursor()
        try:
            cur.executemany("insert into ledger (id, note) values (?, ?)",
                            [(i, "x" * note) for i in range(n)])
        except pooldbapi.OperationalError as err:
            from_error(report, err)
            if err.container not in lab.aliases or not any(w in str(err) for w in words):
                problems.append(f"an unclear error: {err}")
            if getattr(err, "unknown", None):  # a SQLite statement is all or nothing
                problems.append(f"rows reported unknown on SQLite: {err.unknown}")
            pending = {a: set(ids) for a, ids in report.acknowledged.items()}
        else:
            pending = placement(cur)
            if autocommit:
                report.counted = cur.containers
        if not autocommit:
            # what a commit that returns keeps is acknowledged (nothing, if the transaction
            # failed): commit_and_report tells which
            report.acknowledged = {}
            report.counted = None
            commit_and_report(conn, report, pending)
    finally:
        if during is not None:
            during.cancel()
            during.join()
        conn.close()
    return problems, report


def locked(lab: SqliteLab, rng: random.Random, autocommit: bool) -> list[str]:
    """Another process locks a drawn container's file (a write lock, or a read transaction),
    from before the call or from a drawn moment in it, and holds it past the timeout."""
    lab.reset()
    n = rng.randint(20, 3000)
    victim = rng.choice(lab.aliases)
    locker = Locker(lab.files[victim], rng.choice(["write", "read"]))
    before = rng.random() < 0.5
    try:
        if before:
            locker.start()
            locker.wait_locked()
        timer = None if before else threading.Timer(rng.uniform(0.0, 0.05), locker.start)
        problems, report = _write(lab, rng, autocommit, n, 20, ("database is locked",), timer)
    finally:
        locker.release()
    held = lab.held()
    if before and held[victim]:  # (held all along: nothing could be written or committed)
        problems.append(f"{victim} was locked throughout, yet holds {len(held[victim])} rows")
    return problems + compare(held, report)


def disk_full(lab: SqliteLab, rng: random.Random, autocommit: bool) -> list[str]:
    """s2's file system full after a drawn number of pages: executemany of rows of 300 bytes
    over {s1,s2} meets SQLITE_FULL in a statement, its journal or the commit."""
    lab.reset(free_pages=rng.randint(0, 60))
    n = rng.randint(20, 1500)
    problems, report = _write(lab, rng, autocommit, n, 300, ("database or disk is full",))
    return problems + compare(lab.held(), report)


def conflict(lab: SqliteLab, rng: random.Random, autocommit: bool) -> list[str]:
    """A drawn row's key already in every file: a multi-row VALUES or an executemany over
    {s1,s2} meets a unique violation there, under a drawn conflict clause (SQLite's ABORT,
    FAIL, which keeps what the statement wrote before its error, or ROLLBACK, which undoes the
    whole transaction). The error must name that row, except where the transaction is gone
    with it (ROLLBACK in a transaction: nothing is kept, and no row is replayed)."""
    lab.reset()
    n = rng.randint(2, 400)
    bad = rng.randrange(n)
    clause = rng.choice(["", " or abort", " or fail", " or rollback"])
    for path in lab.files.values():
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
            db.execute("insert into ledger (id, note) values (?, 'there before')", (bad,))
    report = Report(ids=set(range(n)))
    problems: list[str] = []
    pending: dict[str, set[int]] = {}
    conn = lab.connect(autocommit=autocommit, seed=rng.random())
    try:
        text = f"insert{clause} into ledger (id, note) values "
        try:
            if rng.random() < 0.5:
                conn.cursor().execute(text + ", ".join(["(?, ?)"] * n),
                                      [v for i in range(n) for v in (i, "x")])
            else:
                conn.cursor().executemany(text + "(?, ?)", [(i, "x") for i in range(n)])
        except pooldbapi.IntegrityError as err:
            from_error(report, err)
            gone = clause == " or rollback" and not autocommit
            if err.row != bad and not gone:
                problems.append(f"the error names row {err.row}; row {bad} was the bad one")
            if gone and (err.written or not err.transaction_failed):
                problems.append(f"{clause.strip()} undid the transaction, yet: {err}")
            pending = {a: set(ids) for a, ids in report.acknowledged.items()}
        else:
            problems.append(f"no error for row {bad}, whose key was there before")
        if not autocommit:
            report.acknowledged = {}
            commit_and_report(conn, report, pending)
    finally:
        conn.close()
    # less the row there before (a key: no second row of it can be in a file)
    held = {alias: [i for i in ids if i != bad] for alias, ids in lab.held().items()}
    return problems + compare(held, report)


CONFLICT_SCENARIOS = {
    "SQLite: a key there before, conflict clause drawn, autocommit":
        lambda lab, rng: conflict(lab, rng, autocommit=True),
    "SQLite: a key there before, conflict clause drawn, transaction":
        lambda lab, rng: conflict(lab, rng, autocommit=False),
}
LOCK_SCENARIOS = {
    "SQLite: locked by another process, autocommit":
        lambda lab, rng: locked(lab, rng, autocommit=True),
    "SQLite: locked by another process, transaction":
        lambda lab, rng: locked(lab, rng, autocommit=False),
}
FULL_SCENARIOS = {
    "SQLite: file system full, autocommit":
        lambda lab, rng: disk_full(lab, rng, autocommit=True),
    "SQLite: file system full, transaction":
        lambda lab, rng: disk_full(lab, rng, autocommit=False),
}
