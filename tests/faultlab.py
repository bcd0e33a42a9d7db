"""Fault scenarios against real PostgreSQL clusters, and the one check every scenario ends with:
the databases hold exactly what pooldbapi reported.

Each scenario draws its fault point from a random.Random, runs one unit of work through
pooldbapi while the fault happens, and returns the violations found by reading the clusters
themselves (an empty list when the invariant holds). The tests run a few draws of each; the
benchmark (benchmarks/faults.py) runs many.

Faults:
- a statement error at a drawn row (a check constraint; a duplicate key);
- a session killed at a drawn row: a trigger on the ledger table terminates its own backend when
  it sees an id listed in `kill_at` (the server, not the client, ends the connection);
- a session killed between the statements and the commit (pg_terminate_backend from outside);
- a server stopped with `pg_ctl -m immediate` at a drawn moment (a crash), then restarted.
"""
from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psycopg
from aio_blocking import Loop
from pgcluster import Cluster

import pooldbapi
from pooldbapi import runner
from pooldbapi.backends.postgresql import PostgreSQLBackend

SETUP = """
create table if not exists ledger (id int primary key check (id >= 0), note text);
create table if not exists kill_at (id int primary key);
create or replace function ledger_kill() returns trigger language plpgsql as $$
begin
  if exists (select 1 from kill_at where id = new.id) then
    perform pg_terminate_backend(pg_backend_pid());
    perform pg_sleep(10);  -- interrupted by the termination
  end if;
  return new;
end $$;
drop trigger if exists ledger_kill on ledger;
create trigger ledger_kill before insert on ledger for each row execute function ledger_kill();
"""


@dataclass
class Report:
    """What pooldbapi told the application: rows acknowledged per container, rows whose
    outcome it reported unknown, and rows it reported as not written (everything else)."""

    acknowledged: dict[str, set[int]] = field(default_factory=dict)
    unknown: dict[str, set[int]] = field(default_factory=dict)
    # a successful call reports counts per container rather than which row went where
    counted: dict[str, int] | None = None
    ids: set[int] = field(default_factory=set)  # every id the call tried to write

    def ack(self, alias: str, ids: set[int] | list[int] | tuple[int, ...]) -> None:
        self.acknowledged.setdefault(alias, set()).update(ids)

    def maybe(self, alias: str, ids: set[int] | list[int] | tuple[int, ...]) -> None:
        self.unknown.setdefault(alias, set()).update(ids)


class Lab:
    """Two or more PostgreSQL clusters (aliases p1, p2, ...) with a ledger table each."""

    def __init__(self, clusters: list[Cluster], api: str = "sync") -> None:
        self.clusters = {f"p{i + 1}": c for i, c in enumerate(clusters)}
        # "aio": every connection is pooldbapi.aio's, driven from here (tests/aio_blocking.py)
        self.loop = None if api == "sync" else Loop()
        for cluster in self.clusters.values():
            with psycopg.connect(cluster.dsn, autocommit=True) as raw:
                raw.execute(SETUP)

    @property
    def aliases(self) -> list[str]:
        return list(self.clusters)

    def connect(self, **kwargs: object) -> pooldbapi.Connection:
        extra = kwargs.pop("conninfo", {})
        assert isinstance(extra, dict)
        containers = {a: c.conninfo(**extra) for a, c in self.clusters.items()}
        connect = pooldbapi.connect if self.loop is None else self.loop.connect
        return connect(containers, default="{" + ",".join(self.clusters) + "}",
                                 **kwargs)  # type: ignore[arg-type]

    def ensure_up(self) -> None:
        for cluster in self.clusters.values():
            try:
                psycopg.connect(cluster.dsn, connect_timeout=2).close()
            except psycopg.OperationalError:
                cluster.start()

    def reset(self) -> None:
        """Empty the ledgers, disarm the kill points, finish stray prepared transactions."""
        self.ensure_up()
        for cluster in self.clusters.values():
            with psycopg.connect(cluster.dsn, autocommit=True) as raw:
                for (gid,) in raw.execute("select gid from pg_prepared_xacts").fetchall():
                    raw.execute(f"rollback prepared '{gid}'")
                raw.execute("truncate ledger, kill_at")

    def arm(self, row_id: int) -> None:
        """Kill whichever session inserts this id (on every cluster: routing decides where)."""
        for cluster in self.clusters.values():
            with psycopg.connect(cluster.dsn, autocommit=True) as raw:
                raw.execute("insert into kill_at values (%s)", (row_id,))

    def held(self) -> dict[str, list[int]]:
        """The ids each cluster holds now (restarting a stopped one to ask it)."""
        self.ensure_up()
        found = {}
        for alias, cluster in self.clusters.items():
            with psycopg.connect(cluster.dsn) as raw:
                found[alias] = [r[0] for r in raw.execute("select id from ledger order by id")]
        return found

    def check(self, report: Report) -> list[str]:
        """Compare what the clusters hold with what pooldbapi reported."""
        return compare(self.held(), report)


def compare(held: dict[str, list[int]], report: Report) -> list[str]:
    """The violations of the invariant: what the databases hold (ids per container, as read
    from the databases themselves) against what pooldbapi reported."""
    problems = []
    seen: dict[int, str] = {}
    for alias, ids in held.items():
        for i in ids:
            if i in seen:
                problems.append(f"id {i} written twice ({seen[i]} and {alias})")
            seen[i] = alias
    if report.counted is not None:  # a call that succeeded: every row once, counts agree
        if set(seen) != report.ids:
            problems.append(f"success reported, but held {len(seen)} of {len(report.ids)}"
                            f" rows (missing {sorted(report.ids - set(seen))[:5]},"
                            f" extra {sorted(set(seen) - report.ids)[:5]})")
        counts = {a: len(ids) for a, ids in held.items() if ids}
        if counts != {a: n for a, n in report.counted.items() if n}:
            problems.append(f"cursor.containers {report.counted} but held {counts}")
        return problems
    for alias, ids in held.items():
        acked = report.acknowledged.get(alias, set())
        maybe = report.unknown.get(alias, set())
        lost = acked - set(ids)
        if lost:
            problems.append(f"{alias}: {len(lost)} acknowledged rows lost, e.g."
                            f" {sorted(lost)[:5]}")
        extra = set(ids) - acked - maybe
        if extra:
            problems.append(f"{alias}: {len(extra)} rows held that were reported unwritten,"
                            f" e.g. {sorted(extra)[:5]}")
    return problems


@contextlib.contextmanager
def batch_size(n: int) -> Iterator[None]:
    """Rows of one container sent as one driver batch (small, so that batches and replays
    happen with few rows)."""
    was = runner.CHUNK
    runner.CHUNK = n
    try:
        yield
    finally:
        runner.CHUNK = was


def from_error(report: Report, err: pooldbapi.Error) -> None:
    for alias, rows in (err.written or {}).items():
        report.ack(alias, rows)
    for alias, rows in (getattr(err, "unknown", None) or {}).items():
        report.maybe(alias, rows)


def commit_and_report(conn: pooldbapi.Connection, report: Report, pending: dict[str, set[int]]) -> None:
    """Commit; what a commit that returned keeps is acknowledged, per its report."""
    try:
        conn.commit()
    except pooldbapi.PartialCommitError as err:
        for alias in err.committed:
            report.ack(alias, pending.get(alias, set()))
        for alias in err.in_doubt:
            report.maybe(alias, pending.get(alias, set()))
        return
    except pooldbapi.Error:
        return  # nothing was committed
    for alias, ids in pending.items():
        report.ack(alias, ids)


@contextlib.contextmanager
def parameter_limit(n: int) -> Iterator[None]:
    """PostgreSQL's limit on parameters per statement lowered, so that the rows of one container
    in a multi-row VALUES go as several statements."""
    was = PostgreSQLBackend.max_parameters
    PostgreSQLBackend.max_parameters = n
    try:
        yield
    finally:
        PostgreSQLBackend.max_parameters = was


def _write_with_fault(lab: Lab, rng: random.Random, autocommit: bool, statement: str,
                      rows: list[tuple[int]], fault: type[pooldbapi.Error],
                      conninfo: dict[str, str] | None = None,
                      bad_row: int | None = None, values: bool = False,
                      literal: bool = False) -> list[str]:
    """Run one executemany (values: one multi-row VALUES statement of the rows, with literal:
    the rows written as literals, no parameters) that must meet the fault; in a transaction
    commit afterwards; then compare the clusters with what the error (and the commit)
    reported."""
    report = Report(ids={r[0] for r in rows if r[0] >= 0})
    conn = lab.connect(autocommit=autocommit, seed=rng.random(), conninfo=conninfo or {})
    try:
        with batch_size(rng.choice([1, 3, 16, 5000])), \
                parameter_limit(rng.choice([1, 3, 16, 65535])):
            try:
                if literal:
                    conn.cursor().execute(f"{statement} values "
                                          + ", ".join(f"({r[0]})" for r in rows))
                elif values:
                    markers = ", ".join("(?)" for _ in rows)
                    conn.cursor().execute(f"{statement} values {markers}",
                                          [r[0] for r in rows])
                else:
                    conn.cursor().executemany(statement, rows)
            except fault as err:
                if bad_row is not None and err.row != bad_row:
                    return [f"the error names row {err.row}, the bad row is {bad_row}"]
                from_error(report, err)
            else:
                return [f"the fault went unnoticed ({fault.__name__} expected)"]
        if not autocommit:
            # what the error reported written is what a commit keeps (nothing, where the
            # transaction failed): acknowledged only once the commit returns
            pending = {a: set(ids) for a, ids in report.acknowledged.items()}
            report.acknowledged = {}
            commit_and_report(conn, report, pending)
    finally:
        conn.close()
    return lab.check(report)


def _insert(returning: bool) -> str:
    """The ledger's insert; with returning each row's RETURNING row is read back."""
    return "insert into ledger (id) values (?)" + (" returning id" if returning else "")


def executemany_statement_error(lab: Lab, rng: random.Random, autocommit: bool,
                                returning: bool = False) -> list[str]:
    """executemany over the list, one row violating a check constraint at a drawn position."""
    lab.reset()
    n = rng.randint(1, 150)
    bad = rng.randrange(n)
    rows = [(-1 if i == bad else i,) for i in range(n)]
    return _write_with_fault(lab, rng, autocommit, _insert(returning), rows,
                             pooldbapi.IntegrityError, bad_row=bad)


def executemany_unreadable_returning(lab: Lab, rng: random.Random, autocommit: bool
                                     ) -> list[str]:
    """executemany with RETURNING whose row at a drawn position returns a value the driver
    cannot load (a date past year 10,000): the row is written, reading it back fails, and
    what the error says was written must be what the databases hold."""
    lab.reset()
    n = rng.randint(1, 150)
    bad = rng.randrange(n)
    statement = ("insert into ledger (id) values (?) returning id, (case when id ="
                 f" {bad} then 'infinity' else '2000-01-01' end)::date")
    return _write_with_fault(lab, rng, autocommit, statement, [(i,) for i in range(n)],
                             pooldbapi.DataError, bad_row=bad)


def executemany_session_killed(lab: Lab, rng: random.Random, autocommit: bool,
                               returning: bool = False) -> list[str]:
    """executemany over the list; the session that inserts a drawn row is killed there."""
    lab.reset()
    n = rng.randint(1, 150)
    lab.arm(rng.randrange(n))
    return _write_with_fault(lab, rng, autocommit, _insert(returning),
                             [(i,) for i in range(n)], pooldbapi.OperationalError)


def values_statement_error(lab: Lab, rng: random.Random, autocommit: bool,
                           literal: bool = False) -> list[str]:
    """One multi-row VALUES over the list (the rows of each container sent together; literal:
    the rows as literals), one row violating a check constraint at a drawn position."""
    lab.reset()
    n = rng.randint(2, 150)
    bad = rng.randrange(n)
    rows = [(-1 if i == bad else i,) for i in range(n)]
    return _write_with_fault(lab, rng, autocommit, "insert into ledger (id)", rows,
                             pooldbapi.IntegrityError, bad_row=bad, values=True,
                             literal=literal)


def values_session_killed(lab: Lab, rng: random.Random, autocommit: bool,
                          literal: bool = False) -> list[str]:
    """One multi-row VALUES over the list (literal: the rows as literals); the session that
    inserts a drawn row is killed."""
    lab.reset()
    n = rng.randint(2, 150)
    lab.arm(rng.randrange(n))
    return _write_with_fault(lab, rng, autocommit, "insert into ledger (id)",
                             [(i,) for i in range(n)], pooldbapi.OperationalError, values=True,
                             literal=literal)


def bulk_session_killed(lab: Lab, rng: random.Random, autocommit: bool) -> list[str]:
    """bulk insert in pages over the list; the session writing a drawn row is killed."""
    lab.reset()
    n = rng.randint(1, 200)
    lab.arm(rng.randrange(n))
    return _write_with_fault(lab, rng, autocommit, "bulk insert into ledger (id) values (?)",
                             [(i,) for i in range(n)], pooldbapi.OperationalError,
                             conninfo={"page-size": str(rng.choice([1, 7, 25]))})


def statements_then_commit(lab: Lab, rng: random.Random, two_phase: bool) -> list[str]:
    """Single-row inserts on drawn containers; at a drawn statement a duplicate key on the
    container holding the original; later statements must raise, and so must commit, which
    keeps nothing anywhere."""
    lab.reset()
    n = rng.randint(2, 12)
    bad = rng.randrange(1, n)
    conn = lab.connect(two_phase=two_phase)
    report = Report(ids=set(range(n)))
    placed: dict[int, str] = {}
    cur = conn.cursor()
    problems = []
    try:
        for i in range(n):
            if i == bad:
                row = rng.randrange(i)
                alias = placed[row]
            else:
                row, alias = i, rng.choice(lab.aliases)
            try:
                cur.execute(f"insert into ledger@{alias} (id) values (?)", (row,))
                placed[row] = alias
                if i > bad:
                    problems.append(f"statement {i} ran after the transaction failed")
            except pooldbapi.Error:
                if i < bad:
                    problems.append(f"statement {i} failed before the drawn error")
        commit_and_report(conn, report, {})  # a failed transaction: commit must raise and keep nothing
        held = lab.held()
        count = sum(len(v) for v in held.values())
        if count:
            problems.append(f"a transaction with a failed statement kept {count} rows: {held}")
    finally:
        conn.close()
    return problems


def kill_server_during(lab: Lab, rng: random.Random, what: str) -> list[str]:
    """A server stopped with pg_ctl -m immediate at a drawn moment during executemany in
    autocommit, executemany in a transaction, or the commit; restarted afterwards."""
    lab.reset()
    n = rng.randint(200, 3000)
    autocommit = what == "autocommit"
    conn = lab.connect(autocommit=autocommit, seed=rng.random(),
                       conninfo={"connect_timeout": "2"})
    victim = lab.clusters[rng.choice(lab.aliases)]
    delay = rng.uniform(0.0, 0.15)
    report = Report(ids=set(range(n)))
    killer = threading.Timer(delay, victim.stop, args=("immediate",))
    pending: dict[str, set[int]] = {}
    try:
        with batch_size(rng.choice([16, 200, 5000])):
            if what == "commit":
                cur = conn.cursor()
                cur.executemany("insert into ledger (id) values (?)", [(i,) for i in range(n)])
                pending = placement(cur)
                killer.start()
                time.sleep(delay * rng.random())
                commit_and_report(conn, report, pending)
            else:
                killer.start()
                try:
                    cur = conn.cursor()
                    cur.executemany("insert into ledger (id) values (?)",
                                    [(i,) for i in range(n)])
                    pending = placement(cur)
                except pooldbapi.Error as err:
                    from_error(report, err)
                    if not autocommit:
                        pending = {a: set(ids) for a, ids in report.acknowledged.items()}
                        report.acknowledged = {}
                else:
                    if autocommit:
                        for alias, ids in pending.items():
                            report.ack(alias, ids)
                        pending = {}
                if not autocommit:
                    commit_and_report(conn, report, pending)
    finally:
        killer.join()
        conn.close()
        victim.start()
    return lab.check(report)


def _one_row(cur: pooldbapi.Cursor, alias: str, row: int, report: Report
             ) -> pooldbapi.Error | None:
    """Insert one row on alias (one statement text for every row: prepared after the first, so
    that each repeat runs on the session at hand); an error's unknown outcome goes to the
    report, the error is returned."""
    try:
        cur.execute(f"insert into ledger@{alias} (id) values (?)", (row,))
    except pooldbapi.Error as err:
        if getattr(err, "unknown", None):  # (row 0 of the statement: this row)
            report.maybe(alias, {row})
        return err
    return None


def single_rows_with_fault(lab: Lab, rng: random.Random, autocommit: bool,
                           killed: bool) -> list[str]:
    """Single-row inserts on one drawn container, one of them meeting a fault at a drawn
    position (a check violation, or its session killed); in autocommit the statements after
    it go on (on another session where it was killed), in a transaction they and the commit
    must raise and nothing is kept."""
    lab.reset()
    n = rng.randint(2, 40)
    # (in a transaction a session lost before it held any work fails nothing: from the second)
    bad = rng.randrange(0 if autocommit else 1, n)
    alias = rng.choice(lab.aliases)
    if killed:
        lab.arm(bad)
    conn = lab.connect(autocommit=autocommit, seed=rng.random())
    report = Report(ids=set(range(n)))
    pending: set[int] = set()
    problems = []
    failed = False
    cur = conn.cursor()
    try:
        for i in range(n):
            err = _one_row(cur, alias, -1 if i == bad and not killed else i, report)
            if err is not None:
                if i != bad and (autocommit or not failed):
                    problems.append(f"statement {i} failed: {err}")
                failed = True
            elif i == bad:
                problems.append(f"the fault at statement {i} went unnoticed")
            elif failed and not autocommit:
                problems.append(f"statement {i} ran after the transaction failed")
            elif autocommit:
                report.ack(alias, {i})
            else:
                pending.add(i)
        if not autocommit:
            commit_and_report(conn, report, {alias: pending})
    finally:
        conn.close()
    return problems + lab.check(report)


def savepoints_with_fault(lab: Lab, rng: random.Random, killed: bool) -> list[str]:
    """Single-row inserts over drawn containers in a transaction whose savepoints are set,
    rolled back to and released at drawn statements; one insert meets a fault (a check
    violation, or its session killed). After the violation the transaction goes on from a
    drawn savepoint set before it; a lost session that held work, or a violation with no
    savepoint set, fails it for good (statements and the commit raise). The commit keeps
    exactly the rows no rollback to a savepoint undid."""
    lab.reset()
    n = rng.randint(4, 40)
    bad = rng.randrange(1, n)
    if killed:
        lab.arm(bad)
    conn = lab.connect(autocommit=False, seed=rng.random())
    report = Report(ids=set(range(n)))
    pending: dict[str, set[int]] = {}
    marks: list[tuple[str, dict[str, set[int]]]] = []  # name, the rows kept at it
    joined: set[str] = set()  # containers with a statement in this transaction (a session)
    problems: list[str] = []
    cur = conn.cursor()

    def back_to(j: int) -> dict[str, set[int]]:
        conn.rollback_to_savepoint(marks[j][0])
        del marks[j + 1:]
        return {a: set(rows) for a, rows in marks[j][1].items()}

    try:
        for i in range(n):
            draw = rng.random()
            if draw < 0.2:
                conn.savepoint(f"s{i}")
                marks.append((f"s{i}", {a: set(rows) for a, rows in pending.items()}))
            elif draw < 0.3 and marks:
                pending = back_to(rng.randrange(len(marks)))
            elif draw < 0.35 and marks:
                j = rng.randrange(len(marks))
                conn.release_savepoint(marks[j][0])
                del marks[j:]
            alias = rng.choice(lab.aliases)
            err = _one_row(cur, alias, -1 if i == bad and not killed else i, report)
            held_work = alias in joined
            joined.add(alias)
            if i != bad:
                if err is not None:
                    problems.append(f"statement {i} failed: {err}")
                    break
                pending.setdefault(alias, set()).add(i)
                continue
            if err is None:
                problems.append(f"the fault at statement {i} went unnoticed")
                break
            if killed and not held_work:
                joined.discard(alias)  # (a session lost before it held work fails nothing)
                continue
            if killed or not marks:  # nothing brings the transaction back
                if marks:
                    try:
                        back_to(len(marks) - 1)
                    except pooldbapi.OperationalError:
                        pass
                    else:
                        problems.append("a savepoint brought back a transaction whose session"
                                        " was lost")
                if _one_row(cur, alias, n + 1, report) is None:
                    problems.append("a statement ran after the transaction failed")
                pending = {}
                break
            pending = back_to(rng.randrange(len(marks)))
        commit_and_report(conn, report, pending)
    finally:
        conn.close()
    return problems + lab.check(report)


def kill_server_during_single_rows(lab: Lab, rng: random.Random, autocommit: bool
                                   ) -> list[str]:
    """A server stopped with pg_ctl -m immediate at a drawn moment while single-row inserts
    of one statement text run on it (on the session at hand); in a transaction committed
    after; restarted afterwards."""
    lab.reset()
    alias = rng.choice(lab.aliases)
    victim = lab.clusters[alias]
    conn = lab.connect(autocommit=autocommit, conninfo={"connect_timeout": "2"})
    report = Report()
    pending: set[int] = set()
    killer = threading.Timer(rng.uniform(0.0, 0.15), victim.stop, args=("immediate",))
    cur = conn.cursor()
    deadline = None
    try:
        row = 0
        while deadline is None or time.monotonic() < deadline:
            if _one_row(cur, alias, row, report) is not None:
                break
            if autocommit:
                report.ack(alias, {row})
            else:
                pending.add(row)
            if deadline is None:  # (the first row prepares the statement)
                killer.start()
                deadline = time.monotonic() + 0.5
            row += 1
        report.ids = set(range(row + 1))
        if deadline is not None:
            killer.join()
        if not autocommit:
            commit_and_report(conn, report, {alias: pending})
    finally:
        conn.close()
        if deadline is not None:  # (the timer was started)
            killer.join()
            victim.start()
    return lab.check(report)


def placement(cur: pooldbapi.Cursor) -> dict[str, set[int]]:
    """Which ids a successful executemany wrote where (its result's per-container rows)."""
    result = cur._result
    assert result is not None
    return {alias: set(rows) for alias, rows in result.written.items()}


def two_phase_server_lost(lab: Lab, rng: random.Random) -> list[str]:
    """A two-phase transaction whose second phase meets a crashed server: after the server is
    back, recovery commits the prepared branch; all or nothing, never a half."""
    lab.reset()
    conn = lab.connect(two_phase=True, conninfo={"connect_timeout": "2"})
    n = rng.randint(1, 20)
    try:
        xid = conn.xid(1, f"fault-{rng.random()}", "b")
        conn.tpc_begin(xid)
        for alias in lab.aliases:
            conn.execute(f"insert into ledger@{alias} (id) values (?)",
                         (lab.aliases.index(alias) * 1000 + n,))
        conn.tpc_prepare()
        victim = lab.clusters[rng.choice(lab.aliases)]
        victim.stop("immediate")
        with contextlib.suppress(pooldbapi.PartialCommitError):
            conn.tpc_commit()
        victim.start()
        other = lab.connect()
        for pending in other.tpc_recover():
            other.tpc_commit(pending)
        other.close()
    finally:
        conn.close()
    held = lab.held()
    counts = {a: len(ids) for a, ids in held.items()}
    if set(counts.values()) != {1}:
        return [f"two-phase commit was not atomic after recovery: {counts}"]
    return []


Scenario = Callable[[Lab, random.Random], list[str]]

SCENARIOS: dict[str, Scenario] = {
    "executemany, statement error, transaction":
        lambda lab, rng: executemany_statement_error(lab, rng, autocommit=False),
    "executemany, statement error, autocommit":
        lambda lab, rng: executemany_statement_error(lab, rng, autocommit=True),
    "executemany, session killed, transaction":
        lambda lab, rng: executemany_session_killed(lab, rng, autocommit=False),
    "executemany, session killed, autocommit":
        lambda lab, rng: executemany_session_killed(lab, rng, autocommit=True),
    "executemany with returning, statement error, transaction":
        lambda lab, rng: executemany_statement_error(lab, rng, False, returning=True),
    "executemany with returning, statement error, autocommit":
        lambda lab, rng: executemany_statement_error(lab, rng, True, returning=True),
    "executemany with returning, session killed, transaction":
        lambda lab, rng: executemany_session_killed(lab, rng, False, returning=True),
    "executemany with returning, session killed, autocommit":
        lambda lab, rng: executemany_session_killed(lab, rng, True, returning=True),
    "executemany with returning, a row not readable, transaction":
        lambda lab, rng: executemany_unreadable_returning(lab, rng, autocommit=False),
    "executemany with returning, a row not readable, autocommit":
        lambda lab, rng: executemany_unreadable_returning(lab, rng, autocommit=True),
    "multi-row values, statement error, transaction":
        lambda lab, rng: values_statement_error(lab, rng, autocommit=False),
    "multi-row values, statement error, autocommit":
        lambda lab, rng: values_statement_error(lab, rng, autocommit=True),
    "multi-row values, session killed, transaction":
        lambda lab, rng: values_session_killed(lab, rng, autocommit=False),
    "multi-row values, session killed, autocommit":
        lambda lab, rng: values_session_killed(lab, rng, autocommit=True),
    "multi-row values of literals, statement error, transaction":
        lambda lab, rng: values_statement_error(lab, rng, autocommit=False, literal=True),
    "multi-row values of literals, statement error, autocommit":
        lambda lab, rng: values_statement_error(lab, rng, autocommit=True, literal=True),
    "multi-row values of literals, session killed, transaction":
        lambda lab, rng: values_session_killed(lab, rng, autocommit=False, literal=True),
    "multi-row values of literals, session killed, autocommit":
        lambda lab, rng: values_session_killed(lab, rng, autocommit=True, literal=True),
    "bulk insert, session killed, transaction":
        lambda lab, rng: bulk_session_killed(lab, rng, autocommit=False),
    "bulk insert, session killed, autocommit":
        lambda lab, rng: bulk_session_killed(lab, rng, autocommit=True),
    "single-row inserts, statement error, transaction":
        lambda lab, rng: single_rows_with_fault(lab, rng, autocommit=False, killed=False),
    "single-row inserts, statement error, autocommit":
        lambda lab, rng: single_rows_with_fault(lab, rng, autocommit=True, killed=False),
    "single-row inserts, session killed, transaction":
        lambda lab, rng: single_rows_with_fault(lab, rng, autocommit=False, killed=True),
    "single-row inserts, session killed, autocommit":
        lambda lab, rng: single_rows_with_fault(lab, rng, autocommit=True, killed=True),
    "savepoints, statement error, transaction":
        lambda lab, rng: savepoints_with_fault(lab, rng, killed=False),
    "savepoints, session killed, transaction":
        lambda lab, rng: savepoints_with_fault(lab, rng, killed=True),
    "statement error, then commit":
        lambda lab, rng: statements_then_commit(lab, rng, two_phase=False),
    "statement error, then two-phase commit":
        lambda lab, rng: statements_then_commit(lab, rng, two_phase=True),
}
CRASH_SCENARIOS: dict[str, Scenario] = {
    "server crash during executemany, autocommit":
        lambda lab, rng: kill_server_during(lab, rng, "autocommit"),
    "server crash during executemany, transaction":
        lambda lab, rng: kill_server_during(lab, rng, "transaction"),
    "server crash during single-row inserts, autocommit":
        lambda lab, rng: kill_server_during_single_rows(lab, rng, autocommit=True),
    "server crash during single-row inserts, transaction":
        lambda lab, rng: kill_server_during_single_rows(lab, rng, autocommit=False),
    "server crash around commit":
        lambda lab, rng: kill_server_during(lab, rng, "commit"),
    "server crash in two-phase commit, then recovery": two_phase_server_lost,
}
