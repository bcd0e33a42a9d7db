"""What pooldbapi sends PostgreSQL for a container's share of a write: the statement and what
makes it atomic (SAVEPOINT / RELEASE in a transaction, nothing but the Sync in autocommit) in
one pipeline, one round trip (a statement without parameters in a transaction: the three as one
simple Query); an error at any place in it undoes exactly that share. The round
trips are counted from libpq's protocol trace of each session: one ReadyForQuery answers each
Sync (or simple Query) the client waits for."""
from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import pq

import pooldbapi
from pooldbapi.backends.postgresql import BACKEND, PostgreSQLBackend, PostgreSQLLink
from pooldbapi.settings import make_spec


class Traces:
    """Every PostgreSQL session opened while installed, traced to a file per session.

    libpq writes its trace through a buffered stream: what a session sent and read may sit in
    the buffer for a while. mark() and since() flush every open session's trace first (tracing
    ends, which flushes, and starts again on the same file), so that a mark falls between
    statements and a count holds exactly what was exchanged since it."""

    def __init__(self) -> None:
        self.paths: dict[str, list[str]] = {}
        self._traced: list[tuple[pq.abc.PGconn, int]] = []

    def add(self, alias: str, pgconn: pq.abc.PGconn, fd: int, path: str) -> None:
        self._traced.append((pgconn, fd))
        self.paths.setdefault(alias, []).append(path)
        self._trace(pgconn, fd)

    @staticmethod
    def _trace(pgconn: pq.abc.PGconn, fd: int) -> None:
        pgconn.trace(fd)
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)

    def flush(self) -> None:
        for pgconn, fd in self._traced:
            if pgconn.status != pq.ConnStatus.BAD:  # (a session closed: nothing to flush)
                pgconn.untrace()
                self._trace(pgconn, fd)

    def mark(self) -> dict[str, int]:
        """Where each session's trace file ends now."""
        self.flush()
        return {path: os.path.getsize(path) for paths in self.paths.values() for path in paths}

    def since(self, mark: dict[str, int], alias: str) -> list[str]:
        """The trace's lines written since mark by the sessions of alias that carried the
        test's statements (on table pipe): a session the health prober opened meanwhile (it
        does on a loaded machine, when a connect is slow) is traced too, but is not counted."""
        self.flush()
        out = []
        for path in self.paths.get(alias, []):
            with open(path, encoding="utf-8", errors="replace") as f:
                f.seek(mark.get(path, 0))
                lines = _messages(f.read())
            if any("pipe" in line for line in lines if line.startswith("F")):
                # (a session opened since the mark would count its connect's exchanges)
                assert path in mark, f"a session of {alias} was opened after the mark"
                out.extend(lines)
        return out

    def round_trips(self, mark: dict[str, int], alias: str) -> int:
        return sum("\tReadyForQuery\t" in line for line in self.since(mark, alias))


def _messages(trace: str) -> list[str]:
    """The trace's messages, one an item (a query's text may span lines)."""
    out: list[str] = []
    for line in trace.splitlines():
        if line[:2] in ("F\t", "B\t") or not out:
            out.append(line)
        else:
            out[-1] += "\n" + line
    return out


@pytest.fixture
def traces(monkeypatch, tmp_path) -> Iterator[Traces]:
    found = Traces()
    connect = PostgreSQLBackend.connect

    def traced(self, spec, limiter=None):
        link = connect(self, spec, limiter)
        fd, path = tempfile.mkstemp(dir=tmp_path, prefix=spec.alias)
        found.add(spec.alias, link.raw.pgconn, fd, path)
        return link

    monkeypatch.setattr(PostgreSQLBackend, "connect", traced)
    yield found
    pooldbapi.close_all()  # the traced sessions closed before their files go


def _table(*clusters, ddl: str = "create table pipe (id int primary key check (id >= 0),"
                                 " v text)") -> None:
    for cluster in clusters:
        cluster.sql("drop table if exists pipe")
        cluster.sql(ddl)


def _held(cluster) -> list[int]:
    return [r[0] for r in cluster.sql("select id from pipe order by id")]


def _values(ids: list[int], literal: bool) -> tuple[str, list[object] | None]:
    if literal:
        return ("insert into pipe@{p1,p2} (id, v) values "
                + ", ".join(f"({i}, 'v{i}')" for i in ids)), None
    return ("insert into pipe@{p1,p2} (id, v) values " + ", ".join(["(?, ?)"] * len(ids)),
            [x for i in ids for x in (i, f"v{i}")])


def _connect(pg, pg2, **kwargs) -> pooldbapi.Connection:
    return pooldbapi.connect({"p1": pg.conninfo(), "p2": pg2.conninfo()}, seed=3, **kwargs)


@pytest.mark.parametrize("literal", [True, False], ids=["literals", "parameters"])
def test_multi_row_values_in_a_transaction_is_one_round_trip_per_container(
        pg, pg2, traces, literal):
    """With parameters a pipeline of three statements and one Sync; without, one simple
    Query of the three (as a native execute without parameters sends its statement)."""
    _table(pg, pg2)
    conn = _connect(pg, pg2)
    cur = conn.cursor()
    cur.execute(*_values(list(range(6)), literal))  # the sessions opened, BEGIN sent
    mark = traces.mark()
    cur.execute(*_values(list(range(6, 12)), literal))
    assert cur.rowcount == 6
    for alias in ("p1", "p2"):
        assert traces.round_trips(mark, alias) == 1, alias
        sent = [line for line in traces.since(mark, alias) if line.startswith("F")]
        kinds = [line.split("\t")[2] for line in sent]
        if literal:
            assert kinds == ["Query"], sent
            assert sent[0].split("\t", 3)[3].lstrip().startswith(
                '"SAVEPOINT pooldbapi_page;\ninsert into pipe (id, v) values (')
            assert sent[0].endswith('\n;RELEASE SAVEPOINT pooldbapi_page"'), sent
            continue
        assert [k for k in kinds if k in ("Parse", "Sync")] == [
            "Parse", "Parse", "Parse", "Sync"], sent
        parsed = [line for line in sent if "\tParse\t" in line]
        assert '"SAVEPOINT pooldbapi_page"' in parsed[0]
        assert "insert into pipe" in parsed[1]
        assert '"RELEASE SAVEPOINT pooldbapi_page"' in parsed[2]
    conn.commit()
    assert sorted(_held(pg) + _held(pg2)) == list(range(12))
    assert _held(pg) and _held(pg2)
    conn.close()


def test_executemany_in_autocommit_is_one_round_trip_per_container_begin_and_commit_in_it(
        pg, pg2, traces):
    _table(pg, pg2)
    conn = _connect(pg, pg2, autocommit=True)
    cur = conn.cursor()
    cur.execute("insert into pipe@{p1,p2} (id, v) values (100, 'w'), (101, 'w')")
    mark = traces.mark()
    cur.executemany("insert into pipe@{p1,p2} (id, v) values (?, ?)",
                    [(i, "x") for i in range(8)])
    assert cur.rowcount == 8
    for alias in ("p1", "p2"):
        assert traces.round_trips(mark, alias) == 1, alias
        parsed = [line.split("\t")[3] for line in traces.since(mark, alias)
                  if line.startswith("F") and "\tParse\t" in line]
        assert [p.split('"')[3] for p in parsed] == [
            "BEGIN", "insert into pipe (id, v) values ($1, $2)", "COMMIT"], parsed
    assert sorted(_held(pg) + _held(pg2)) == [*range(8), 100, 101]
    conn.close()


def test_returning_rows_come_back_in_row_order_in_one_round_trip(pg, pg2, traces):
    _table(pg, pg2)
    conn = _connect(pg, pg2)
    cur = conn.cursor()
    cur.execute("insert into pipe@{p1,p2} (id, v) values (50, 'w'), (51, 'w') returning id")
    mark = traces.mark()  # (both sessions opened, BEGIN sent)
    ids = [7, 3, 9, 1, 8, 2, 6]
    cur.execute("insert into pipe@{p1,p2} (id, v) values " +
                ", ".join(f"({i}, 'r{i}')" for i in ids) + " returning id, v")
    assert cur.fetchall() == [(i, f"r{i}") for i in ids]
    for alias in ("p1", "p2"):
        assert traces.round_trips(mark, alias) == 1, alias
    conn.commit()
    assert sorted(_held(pg) + _held(pg2)) == sorted([*ids, 50, 51])
    conn.close()


@pytest.mark.parametrize("autocommit", [False, True], ids=["transaction", "autocommit"])
def test_executemany_returning_is_one_round_trip_per_container_rows_in_row_order(
        pg, pg2, traces, autocommit):
    """Each container's share of an executemany with RETURNING goes as psycopg's
    executemany(returning=True) in the share's one pipeline; each row's RETURNING row comes
    back at its place, as native psycopg gives them for the same rows on one server."""
    _table(pg, pg2)
    conn = _connect(pg, pg2, autocommit=autocommit)
    cur = conn.cursor()
    cur.execute("insert into pipe@{p1,p2} (id, v) values (50, 'w'), (51, 'w') returning id")
    mark = traces.mark()  # (both sessions opened; in a transaction BEGIN sent)
    rows = [(i, f"r{i}") for i in (7, 3, 9, 1, 8, 2, 6, 4)]
    cur.executemany("insert into pipe@{p1,p2} (id, v) values (?, ?) returning id, v || '!'",
                    rows)
    got = cur.fetchall()
    assert cur.rowcount == 8 and cur.containers == {"p1": 4, "p2": 4}
    assert [d[0] for d in cur.description] == ["id", "?column?"]
    for alias in ("p1", "p2"):
        assert traces.round_trips(mark, alias) == 1, alias
    if not autocommit:
        conn.commit()
    conn.close()
    with psycopg.connect(pg.dsn, autocommit=True) as raw:
        raw.execute("create temporary table pipe (id int primary key, v text)")
        native = raw.cursor()
        native.executemany("insert into pipe (id, v) values (%s, %s) returning id, v || '!'",
                           rows, returning=True)
        expected = []
        while True:
            expected += native.fetchall()
            if not native.nextset():
                break
    assert got == expected == [(i, f"{v}!") for i, v in rows]
    assert sorted(_held(pg) + _held(pg2)) == sorted([i for i, _ in rows] + [50, 51])


@pytest.mark.parametrize("autocommit", [False, True], ids=["transaction", "autocommit"])
def test_executemany_returning_a_bad_row_is_named_and_its_share_replayed(pg, pg2, autocommit):
    _table(pg, pg2)
    conn = _connect(pg, pg2, autocommit=autocommit)
    cur = conn.cursor()
    rows = [(i if i != 5 else -5, "x") for i in range(10)]
    with pytest.raises(pooldbapi.IntegrityError) as info:
        cur.executemany("insert into pipe@{p1,p2} (id, v) values (?, ?) returning id", rows)
    err = info.value
    assert err.row == 5
    written = sorted(i for ids in err.written.values() for i in ids)
    if autocommit:  # what was written is there, the bad row and nothing else missing
        assert 5 not in written
        assert sorted(_held(pg) + _held(pg2)) == written
    else:
        conn.rollback()
        assert _held(pg) + _held(pg2) == []
    conn.close()


@pytest.mark.parametrize("autocommit", [False, True], ids=["transaction", "autocommit"])
@pytest.mark.parametrize("shape", ["executemany", "values"])
def test_a_returning_row_that_cannot_be_read_back_is_reported_written(pg, pg2, autocommit,
                                                                     shape):
    """A RETURNING value psycopg cannot load (a date past year 10,000): the row is on the
    server when its read fails; the error names it and counts it written, nothing is written
    twice, and the databases hold exactly what .written says."""
    _table(pg, pg2)
    conn = _connect(pg, pg2, autocommit=autocommit)
    cur = conn.cursor()
    sql = ("insert into pipe@p1 (id, v) values {} returning id,"
           " (case when v = 'bad' then 'infinity' else '2000-01-01' end)::date")
    rows = [(i, "bad" if i == 2 else "ok") for i in range(5)]
    with pytest.raises(pooldbapi.DataError, match="date too large") as info:
        if shape == "executemany":
            cur.executemany(sql.format("(?, ?)"), rows)
        else:
            cur.execute(sql.format(", ".join(["(?, ?)"] * 5)), [x for r in rows for x in r])
    err = info.value
    if shape == "executemany":  # the rows before it and the row itself, each a parameter set
        assert (err.row, err.written) == (2, {"p1": (0, 1, 2)})
        expected = [0, 1, 2]
    else:  # one statement on one container, run whole: the statement (0) written
        assert (err.row, err.written) == (None, {"p1": (0,)})
        assert "the statement was written on 'p1'" in err.__notes__[0]
        expected = [0, 1, 2, 3, 4]
    assert isinstance(err.__cause__, psycopg.DataError)
    if not autocommit:
        conn.commit()  # (nothing failed on the server: what was written is committed)
    conn.close()
    assert _held(pg) == expected and _held(pg2) == []


@pytest.mark.parametrize("ending", ["", ";", " -- the end", " /* the end */ ;"],
                         ids=["bare", "semicolon", "line-comment", "block-comment"])
def test_a_literal_share_ends_its_savepoint_whatever_ends_the_text(pg, pg2, traces, ending):
    """The text ends with a semicolon or a comment: the RELEASE after it in the one Query
    still runs (the server answers it), and every row, '%' signs and ';' in strings as
    written, is held."""
    _table(pg, pg2)
    conn = _connect(pg, pg2)
    cur = conn.cursor()
    cur.execute(*_values([100, 101], literal=True))
    mark = traces.mark()
    cur.execute("insert into pipe@{p1,p2} (id, v) values (1, '50%'), (2, 'a;b'),"
                " (3, '%%s'), (4, '-- no') " + ending)
    assert cur.rowcount == 4
    for alias in ("p1", "p2"):
        assert traces.round_trips(mark, alias) == 1, alias
        got = traces.since(mark, alias)
        assert [line.split("\t")[2] for line in got if line.startswith("F")] == ["Query"], got
        assert [line.split("\t")[3].strip() for line in got
                if "\tCommandComplete\t" in line] == [
            '"SAVEPOINT"', '"INSERT 0 2"', '"RELEASE"'], got
    conn.commit()
    rows = sorted(tuple(r) for c in (pg, pg2) for r in c.sql("select id, v from pipe"))
    assert rows == [(1, "50%"), (2, "a;b"), (3, "%%s"), (4, "-- no"), (100, "v100"),
                    (101, "v101")]
    conn.close()


@pytest.mark.parametrize("literal", [True, False], ids=["literals", "parameters"])
@pytest.mark.parametrize("autocommit", [False, True], ids=["transaction", "autocommit"])
@pytest.mark.parametrize("place", ["first", "middle", "last"])
def test_an_error_in_the_pipeline_undoes_that_share_only_and_names_the_row(
        pg, pg2, autocommit, place, literal):
    """A row violating a check at the first, a middle or the last place of one container's
    share of a multi-row VALUES (one pipeline with parameters, one simple query of literals):
    that share is undone (in a transaction back to its savepoint, what came before kept), the
    replay names the row, and what the error reports written is what the servers hold."""
    _table(pg, pg2)
    conn = _connect(pg, pg2, autocommit=autocommit)
    cur = conn.cursor()
    cur.execute(*_values([100, 101, 102, 103], literal=True))
    ids = list(range(10))
    bad = {"first": 0, "middle": 4, "last": 8}[place]  # (rows 0, 2, ... share a container)
    ids[bad] = -1
    with pytest.raises(pooldbapi.IntegrityError) as info:
        cur.execute(*_values(ids, literal=literal))
    err = info.value
    assert err.row == bad
    assert err.unknown is None
    written = {i for rows in (err.written or {}).values() for i in rows}
    assert bad not in written
    conn.commit()
    held = sorted(_held(pg) + _held(pg2))
    assert held == sorted([100, 101, 102, 103, *(ids[i] for i in written)])
    conn.close()


def test_a_deferred_constraint_failing_at_the_sync_undoes_the_batch_in_autocommit(pg):
    """In autocommit the Sync ends the batch's implicit transaction: a deferred unique
    constraint fails there, at the pipeline's last place. Nothing of the batch is kept; the
    replay then commits row by row and stops at the duplicate."""
    _table(pg, ddl="create table pipe (id int, v text, unique (id) deferrable initially"
                   " deferred)")
    conn = pooldbapi.connect({"p1": pg.conninfo()}, autocommit=True)
    rows = [(1, "a"), (2, "b"), (3, "c"), (2, "dup"), (4, "d")]
    with pytest.raises(pooldbapi.IntegrityError) as info:
        conn.cursor().executemany("insert into pipe (id, v) values (?, ?)", rows)
    assert info.value.row == 3
    assert info.value.written == {"p1": (0, 1, 2)}
    assert [tuple(r) for r in pg.sql("select id, v from pipe order by id")] == rows[:3]
    conn.close()


def test_a_statement_failing_in_pipelines_past_the_prepare_threshold_keeps_its_error(pg):
    """psycopg prepares a statement from its sixth execution, counting it prepared as its
    Parse is queued; a savepoint's RELEASE skipped after an error must not be left counted
    so (the next pipeline would name a prepared statement the server never made)."""
    _table(pg)
    conn = pooldbapi.connect({"p1": pg.conninfo()})
    cur = conn.cursor()
    for n in range(12):
        with pytest.raises(pooldbapi.IntegrityError) as info:
            cur.executemany("insert into pipe (id, v) values (?, 'x')",
                            [(1000 + 2 * n,), (-1,), (1001 + 2 * n,)])
        assert info.value.row == 1, n
    conn.commit()
    assert _held(pg) == [1000 + 2 * n for n in range(12)]
    conn.close()


@pytest.mark.parametrize("call", ["atomic_calls", "atomic_execute"])
def test_a_savepoint_refused_in_an_aborted_transaction_gives_its_own_error(pg, call):
    """The link on its own: the transaction was aborted before the block, so its SAVEPOINT
    fails, and the going back to a savepoint never made must not hide that error."""
    _table(pg)
    link = BACKEND.connect(make_spec("p1", pg.conninfo()))
    assert isinstance(link, PostgreSQLLink)
    raw = link.raw
    with pytest.raises(psycopg.errors.DivisionByZero):
        raw.execute("select 1 / 0")
    cur = raw.cursor()
    with pytest.raises(psycopg.errors.InFailedSqlTransaction):
        if call == "atomic_execute":
            link.atomic_execute(cur, "insert into pipe (id, v) values (1, 'x')")
        else:
            with link.atomic_calls():
                cur.execute("insert into pipe (id, v) values (1, 'x')")
    raw.rollback()
    assert _held(pg) == []
    link.close()


@pytest.mark.parametrize("autocommit", [False, True], ids=["transaction", "autocommit"])
def test_blocks_one_after_another_keep_their_statements_results_a_failed_one_between(
        pg, autocommit):
    """The link on its own: what makes a block atomic goes on a cursor the link keeps for
    it, never on the block's: after a block that failed, the next blocks' statements still
    have their own rowcount and RETURNING rows, and only the failed block is undone."""
    _table(pg)
    link = BACKEND.connect(make_spec("p1", pg.conninfo()))
    assert isinstance(link, PostgreSQLLink)
    link.set_autocommit(autocommit)
    raw = link.raw
    cur = raw.cursor()
    with link.atomic_calls():
        cur.executemany("insert into pipe (id, v) values (%s, 'a')", [(1,), (2,), (3,)])
    assert cur.rowcount == 3
    with pytest.raises(psycopg.errors.CheckViolation), link.atomic_calls():
        cur.executemany("insert into pipe (id, v) values (%s, 'b')", [(4,), (-1,)])
    with link.atomic_calls() as late:
        cur.executemany("insert into pipe (id, v) values (%s, 'c')", [(5,), (6,)])
    assert late
    assert cur.rowcount == 2
    with link.atomic_calls():
        cur.execute("insert into pipe (id, v) values (7, 'd'), (8, 'd') returning id")
    assert cur.rowcount == 2
    assert cur.fetchall() == [(7,), (8,)]
    if not autocommit:
        raw.commit()
    assert _held(pg) == [1, 2, 3, 5, 6, 7, 8]
    link.close()


@pytest.mark.parametrize("autocommit", [False, True], ids=["transaction", "autocommit"])
def test_a_statement_made_atomic_in_one_query_undoes_exactly_itself(pg, autocommit):
    """The link on its own: a statement without parameters that fails in its one simple
    query leaves the session as it was before it (in a transaction back to its savepoint,
    the work before kept; in autocommit no transaction open), and one that passes is kept,
    the cursor on its result (its rowcount, its RETURNING rows)."""
    _table(pg)
    link = BACKEND.connect(make_spec("p1", pg.conninfo()))
    assert isinstance(link, PostgreSQLLink)
    link.set_autocommit(autocommit)
    raw = link.raw
    raw.execute("insert into pipe (id, v) values (1, 'before')")
    cur = raw.cursor()
    with pytest.raises(psycopg.errors.CheckViolation):
        link.atomic_execute(cur, "insert into pipe (id, v) values (2, 'x'), (-1, 'x')")
    assert raw.pgconn.transaction_status == (
        pq.TransactionStatus.IDLE if autocommit else pq.TransactionStatus.INTRANS)
    assert link.atomic_execute(cur, "insert into pipe (id, v) values (3, 'y'), (4, 'y')"
                                    " returning id")
    assert cur.rowcount == 2
    assert cur.fetchall() == [(3,), (4,)]
    raw.commit()
    assert _held(pg) == [1, 3, 4]
    link.close()


def _slow_row(cluster, at: int) -> None:
    """A trigger that keeps the insert of id `at` busy for a while (to be killed meanwhile)."""
    cluster.sql("create or replace function pipe_slow() returns trigger language plpgsql as $$"
                f" begin if new.id = {at} then perform pg_sleep(30); end if; return new; end"
                " $$")
    cluster.sql("create trigger pipe_slow before insert on pipe for each row"
                " execute function pipe_slow()")


def _when_busy(cluster, then: Callable[[], object]) -> threading.Thread:
    """Call `then` once a session of the cluster waits in pg_sleep."""
    def watch() -> None:
        for _ in range(600):
            rows = cluster.sql("select count(*) from pg_stat_activity where"
                               " wait_event = 'PgSleep'")
            if rows[0][0]:
                then()
                return
            threading.Event().wait(0.05)
    thread = threading.Thread(target=watch)
    thread.start()
    return thread


def test_a_session_killed_mid_pipeline_in_autocommit_reports_its_rows_unknown(pg):
    _table(pg)
    _slow_row(pg, 5)
    conn = pooldbapi.connect({"p1": pg.conninfo(application_name="pipe-victim")},
                             autocommit=True)
    killer = _when_busy(pg, lambda: pg.sql("select pg_terminate_backend(pid) from"
                                           " pg_stat_activity where application_name ="
                                           " 'pipe-victim'"))
    try:
        with pytest.raises(pooldbapi.OperationalError) as info:
            conn.cursor().executemany("insert into pipe (id, v) values (?, 'x')",
                                      [(i,) for i in range(10)])
    finally:
        killer.join()
    err = info.value
    assert err.connection_failure
    assert err.unknown == {"p1": tuple(range(10))}
    assert not err.written
    assert _held(pg) == []  # the implicit transaction never reached its Sync
    conn.close()


@pytest.mark.parametrize("autocommit", [False, True], ids=["transaction", "autocommit"])
def test_a_server_killed_mid_pipeline_keeps_the_report_true(clusters, autocommit):
    victim = clusters.new(synchronous_commit="on")  # what the server acknowledged survives
    _table(victim)
    _slow_row(victim, 3)
    conn = pooldbapi.connect({"p1": victim.conninfo()}, autocommit=autocommit)
    killer = _when_busy(victim, lambda: victim.stop("immediate"))
    try:
        with pytest.raises(pooldbapi.OperationalError) as info:
            conn.cursor().executemany("insert into pipe (id, v) values (?, 'x')",
                                      [(i,) for i in range(6)])
    finally:
        killer.join()
    err = info.value
    assert err.connection_failure
    assert not err.written
    if autocommit:
        assert err.unknown == {"p1": tuple(range(6))}
    else:  # the transaction had nothing there before: nothing is lost, nothing in doubt
        assert err.unknown is None
    victim.start()
    assert _held(victim) == []  # nothing of the pipeline had reached its Sync
    conn.close()
