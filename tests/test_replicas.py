"""Standbys (replica-of) over real streaming replication: one primary and two standbys made by
pg_basebackup -R, shared by this module's tests; lag made by pausing replay and by
recovery_min_apply_delay."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pooldbapi
from pooldbapi.lag import LAG, Lag, lag_from, lsn, replayed_past
from pooldbapi.settings import load_settings

LIMIT = 0.5  # max-replication-lag of both standbys, seconds


@pytest.fixture(scope="module")
def replication(clusters):
    """(primary, rep1, rep2): running, replaying, no delay."""
    primary = clusters.new()
    primary.sql("create table t (id int primary key, v text)")
    rep1 = clusters.standby(primary)
    rep2 = clusters.standby(primary)
    return primary, rep1, rep2


def _containers(replication, limit=LIMIT, **extra):
    primary, rep1, rep2 = replication
    lag = {"max-replication-lag": str(limit)} if limit is not None else {}
    return {"pri": primary.conninfo(**extra),
            "rep1": rep1.conninfo(**{"replica-of": "pri", **lag, **extra}),
            "rep2": rep2.conninfo(**{"replica-of": "pri", **lag, **extra})}


def _caught_up(replication):
    """Wait until both standbys have replayed everything the primary holds now."""
    primary, *standbys = replication
    position = lsn(primary.sql("select pg_current_wal_insert_lsn()::text")[0][0])
    for standby in standbys:
        _until(lambda s=standby: replayed_past(
            lsn(s.sql("select pg_last_wal_replay_lsn()::text")[0][0]), position))


@pytest.fixture
def standbys(replication):
    """The three clusters, the standbys replaying without delay and caught up (and so again
    afterwards)."""
    _caught_up(replication)
    yield replication
    for standby in replication[1:]:
        standby.sql("select pg_wal_replay_resume()")
        standby.apply_delay("0")


def _until(condition, seconds=15.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _lag(conn, alias):
    """The lag the connection's routing reads (its definition's prober)."""
    return LAG.lag(conn.specs[alias], conn.specs["pri"]).seconds


def _within_limits(conn, *aliases):
    """Wait until the connection's probers find the standbys within their limits (a first
    measure taken while a standby was a moment behind goes by its last commit's age)."""
    _until(lambda: all((_lag(conn, a) is not None and
                        _lag(conn, a) <= conn.specs[a].options.max_replication_lag)
                       for a in aliases))


def _next_id(conn):
    return conn.execute("select coalesce(max(id), 0) + 1 from t@pri").fetchone()[0]


def _where_reads_go(conn, n=20, sql="select count(*) from t@{rep1,rep2}"):
    seen: dict[str, int] = {}
    for _ in range(n):
        cur = conn.execute(sql)
        for alias, count in cur.containers.items():
            seen[alias] = seen.get(alias, 0) + count
    return seen


# -- the lag from its samples, the positions (no server) ------------------------------------
A, B = 0x3001000, 0x3002000  # two positions of the primary's, mid-page


@pytest.mark.parametrize(("history", "replayed", "by_timestamp", "expected"), [
    ([], A, None, 0.0),                          # nothing sampled yet, no commit replayed
    ([], A, 4.0, 4.0),                           # nothing sampled: the last commit's age
    ([(1.0, A), (2.0, B)], B, 99.0, 0.0),        # replayed the last position seen
    ([(1.0, A), (2.0, B)], A + 5, None, 8.0),    # the primary passed A + 5 at 2.0; now 10.0
    ([(1.0, A), (2.0, B)], A - 5, None, 9.0),    # behind the first sample: since then at least
    ([(1.0, A), (2.0, B)], A - 5, 30.0, 30.0),   # ... or since its last replayed commit
    ([(1.0, 0x3004018)], 0x3004000, None, 0.0),  # a page's start: the insert position stands
])                                               # past the page header, the replay before it
def test_the_lag_is_how_long_ago_the_primary_passed_the_replay(history, replayed,
                                                              by_timestamp, expected):
    from collections import deque
    assert lag_from(deque(history), replayed, by_timestamp, 10.0) == expected


def test_lsn_numbers_compare_as_positions():
    assert lsn("0/3000000") < lsn("0/3000001") < lsn("1/0")
    assert lsn(None) is None


# -- never a write on a standby -------------------------------------------------------------
def test_a_write_over_standbys_only_raises_before_anything_is_sent(standbys):
    primary, rep1, rep2 = standbys
    conn = pooldbapi.connect(_containers(standbys), autocommit=True)
    try:
        with rep1.statement_log() as log1, rep2.statement_log() as log2:
            for sql in ("insert into t@{rep1,rep2} (id, v) values (-1, 'never')",
                        "update t@rep1 set v = 'never'", "delete from t@{rep2,rep1}",
                        "create table never@{rep1,rep2} (x int)"):
                with pytest.raises(pooldbapi.ProgrammingError) as caught:
                    conn.execute(sql)
                assert "holds only standbys" in str(caught.value)
                assert "rep1 is replica-of pri" in str(caught.value)
            with pytest.raises(pooldbapi.ProgrammingError, match="holds only standbys"):
                conn.cursor().executemany("insert into t@{rep1,rep2} (id) values (?)",
                                          [(-2,), (-3,)])
            with pytest.raises(pooldbapi.ProgrammingError, match="holds only standbys"):
                conn.cursor().executemany("bulk insert into t@{rep1,rep2} (id) values (?)",
                                          [(-2,), (-3,)])
            time.sleep(0.2)
            assert "never" not in log1() + log2()
            assert "-2" not in log1() + log2()
        with primary.statement_log() as log0:
            for sql in ("insert into t@{rep1,rep2} (id, v) select -id, 'never' from t@pri",
                        "synchronize t@pri to t@{rep2,rep1} with insert identified by id"):
                with pytest.raises(pooldbapi.ProgrammingError, match="holds only standbys"):
                    conn.execute(sql)
            time.sleep(0.2)
            assert "from t" not in log0()  # the source was not read either
    finally:
        conn.close()
    assert primary.sql("select count(*) from t where id < 0") == [(0,)]


def test_writes_over_a_list_with_standbys_all_go_to_the_primary(standbys):
    conn = pooldbapi.connect(_containers(standbys), autocommit=True, seed=3)
    try:
        first = _next_id(conn)
        landed: dict[str, int] = {}
        for n in range(6):
            cur = conn.execute("insert into t@{rep1,pri,rep2} (id, v) values (?, 'w')",
                               (first + n,))
            for alias, count in cur.containers.items():
                landed[alias] = landed.get(alias, 0) + count
        cur = conn.cursor()
        cur.executemany("insert into t@{rep1,rep2,pri} (id, v) values (?, 'm')",
                        [(first + 6 + n,) for n in range(9)])
        assert cur.containers == {"pri": 9}
        cur.executemany("bulk insert into t@{pri,rep1} (id, v) values (?, 'b')",
                        [(first + 15 + n,) for n in range(5)])
        assert cur.containers == {"pri": 1}
        cur.execute("update t@{rep2,pri} set v = 'u' where id >= ?", (first,))
        assert cur.containers == {"pri": 1} and cur.rowcount == 20
        cur.execute("synchronize t@{rep1,rep2} to t@{rep1,pri} with insert or update"
                    " identified by id")
        assert set(cur.containers) <= {"pri"}
    finally:
        conn.close()
    assert landed == {"pri": 6}


def test_in_a_transaction_a_read_pinned_to_a_standby_never_takes_a_write_there(standbys):
    conn = pooldbapi.connect(_containers(standbys), affinity="transaction", seed=1)
    try:
        for _ in range(4):  # the read lands on a standby at least once in four
            conn.execute("select count(*) from t@{rep1,pri,rep2}")
        first = _next_id(conn)
        cur = conn.execute("insert into t@{rep1,pri,rep2} (id, v) values (?, 'a')", (first,))
        assert cur.containers == {"pri": 1}
        conn.commit()
    finally:
        conn.close()


# -- lag ------------------------------------------------------------------------------------
def test_a_paused_standby_is_skipped_and_readmitted_when_it_catches_up(standbys):
    _, rep1, _ = standbys
    conn = pooldbapi.connect(_containers(standbys), autocommit=True)
    try:
        _within_limits(conn, "rep1", "rep2")
        assert set(_where_reads_go(conn)) == {"rep1", "rep2"}
        rep1.sql("select pg_wal_replay_pause()")
        conn.execute("insert into t@pri (id, v) values (?, 'p')", (_next_id(conn),))
        _until(lambda: (_lag(conn, "rep1") or 0) > LIMIT)
        assert _where_reads_go(conn) == {"rep2": 20}
        assert pooldbapi.health()["rep1"].replica_of == "pri"
        rep1.sql("select pg_wal_replay_resume()")
        _until(lambda: _lag(conn, "rep1") == 0.0)
        assert set(_where_reads_go(conn)) == {"rep1", "rep2"}
    finally:
        conn.close()


def test_a_delayed_standby_is_skipped_while_its_lag_is_over_the_limit(standbys):
    _, rep1, _ = standbys
    # replayed 8 s late: on a loaded machine the wait for its lag to pass the limit may take
    # seconds, and the reads must still find it behind
    rep1.apply_delay("8s")
    conn = pooldbapi.connect(_containers(standbys), autocommit=True)
    try:
        conn.execute("insert into t@pri (id, v) values (?, 'd')", (_next_id(conn),))
        # (rep2 within its limit meanwhile: on a loaded machine its own lag may pass 0.5 s)
        _until(lambda: (_lag(conn, "rep1") or 0) > LIMIT and
               (_lag(conn, "rep2") if _lag(conn, "rep2") is not None else LIMIT + 1) <= LIMIT)
        reads = _where_reads_go(conn)
        assert "rep1" not in reads and reads.get("rep2"), (reads, LAG.snapshot())
        _until(lambda: _lag(conn, "rep1") == 0.0)  # replayed eight seconds later: back in
        assert set(_where_reads_go(conn)) == {"rep1", "rep2"}
    finally:
        conn.close()


def test_every_standby_over_its_limit_sends_reads_to_the_primary(standbys):
    _, rep1, rep2 = standbys
    conn = pooldbapi.connect(_containers(standbys), autocommit=True)
    try:
        rep1.sql("select pg_wal_replay_pause()")
        rep2.sql("select pg_wal_replay_pause()")
        conn.execute("insert into t@pri (id, v) values (?, 'o')", (_next_id(conn),))
        _until(lambda: min(_lag(conn, "rep1") or 0, _lag(conn, "rep2") or 0) > LIMIT)
        assert _where_reads_go(conn, 5) == {"pri": 5}
        assert _where_reads_go(conn, 6, "select count(*) from t@{pri,rep1,rep2}") == {"pri": 6}
    finally:
        conn.close()


def test_containers_command_and_health_show_each_standbys_lag(standbys, tmp_path):
    _, rep1, _ = standbys
    lines = ["[containers.pri]"]
    for alias, text in _containers(standbys).items():
        lines.append(f"[containers.{alias}]" if alias != "pri" else "")
        lines += [f'{k} = "{v}"' for k, v in (p.split("=", 1) for p in text.split(";"))]
    path = tmp_path / "s.toml"
    path.write_text("\n".join(lines) + "\n")
    conn = pooldbapi.connect(settings=path, autocommit=True)
    try:
        # a commit rep1 replays before it pauses (the clusters may be new): the lag of a
        # standby whose probers never saw it in step is its last replayed commit's age
        conn.execute("insert into t@pri (id, v) values (?, 'b')", (_next_id(conn),))
        _caught_up(standbys)
        rep1.sql("select pg_wal_replay_pause()")
        conn.execute("insert into t@pri (id, v) values (?, 'c')", (_next_id(conn),))
        _caught_up((standbys[0], standbys[2]))  # rep2 has replayed it, rep1 is paused
        done = subprocess.run([sys.executable, "-m", "pooldbapi", "containers", "--settings",
                               str(path), "--format", "json"], capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        rows = {r["container"]: r for r in json.loads(done.stdout)}
        assert rows["pri"]["lag"] == "-"
        assert rows["rep2"]["lag"] == "0.00 s"
        assert float(rows["rep1"]["lag"].split()[0]) > 0  # behind: its last commit's age
        shown = pooldbapi.health()
        assert shown["rep2"].replication_lag == 0.0 and not shown["rep2"].promoted
        assert "pri" not in shown or shown["pri"].replica_of is None
    finally:
        conn.close()


def test_containers_watch_shows_what_the_probers_measure(standbys):
    import io

    from pooldbapi.cli.watch import watch
    specs = load_settings(_containers(standbys)).containers
    _until(lambda: all(LAG.lag(specs[a], specs["pri"]).seconds == 0.0 for a in ("rep1", "rep2")))
    out = io.StringIO()
    assert watch(specs, interval=0.5, count=2, out=out, probe=False) == 0
    last = {}
    for line in out.getvalue().splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if cells and cells[0] in specs:
            last[cells[0]] = cells[-1]
    assert last == {"pri": "-", "rep1": "0.00 s", "rep2": "0.00 s"}


# -- read_your_writes -----------------------------------------------------------------------
def test_read_your_writes_sees_its_own_commit_on_a_delayed_standby(standbys):
    _, rep1, rep2 = standbys
    rep1.apply_delay("300ms")
    rep2.apply_delay("300ms")
    conn = pooldbapi.connect(_containers(standbys, limit=5), read_your_writes=True)
    plain = pooldbapi.connect(_containers(standbys, limit=5), autocommit=True)
    try:
        stale = 0
        for _ in range(4):
            new = _next_id(conn)
            conn.execute("insert into t@pri (id, v) values (?, 'r')", (new,))
            conn.commit()
            found = plain.execute("select count(*) from t@{rep1,rep2} where id = ?", (new,))
            stale += found.fetchone()[0] == 0  # without it: the standby has not replayed it
            cur = conn.execute("select count(*) from t@{rep1,rep2} where id = ?", (new,))
            assert cur.fetchone() == (1,)
            assert set(cur.containers) <= {"rep1", "rep2"}  # waited for it, within the limit
            conn.commit()
        assert stale >= 1
    finally:
        conn.close()
        plain.close()


def test_read_your_writes_reads_on_the_primary_when_the_wait_runs_out(standbys):
    _, rep1, rep2 = standbys
    rep1.apply_delay("3s")
    rep2.apply_delay("3s")
    conn = pooldbapi.connect(_containers(standbys, limit=1), read_your_writes=True,
                             autocommit=True)
    try:
        new = _next_id(conn)
        conn.execute("insert into t@pri (id, v) values (?, 'l')", (new,))
        # the standbys are within their limit (not a second behind yet), neither replays the
        # row within the second read_your_writes waits: the primary answers
        cur = conn.execute("select count(*) from t@{rep1,rep2} where id = ?", (new,))
        assert cur.fetchone() == (1,)
        assert cur.containers == {"pri": 1}
        cur = conn.execute("select count(*) from t@{pri,rep1,rep2} where id = ?", (new,))
        assert cur.fetchone() == (1,)
        assert cur.containers == {"pri": 1}  # naming the primary: no wait at all
    finally:
        conn.close()


def test_in_a_transaction_reads_after_a_write_go_to_the_primary(standbys):
    conn = pooldbapi.connect(_containers(standbys), read_your_writes=True)
    try:
        _within_limits(conn, "rep1", "rep2")
        assert set(_where_reads_go(conn, 10)) == {"rep1", "rep2"}
        new = _next_id(conn)
        conn.execute("insert into t@pri (id, v) values (?, 't')", (new,))
        cur = conn.execute("select count(*) from t@{rep1,rep2} where id = ?", (new,))
        assert cur.fetchone() == (1,) and cur.containers == {"pri": 1}  # not committed yet
        conn.rollback()
        assert set(_where_reads_go(conn, 10)) == {"rep1", "rep2"}
    finally:
        conn.close()


_ACTIONS = st.lists(st.tuples(
    st.sampled_from(["write", "write-autocommit", "read", "read", "pause", "resume",
                     "delay"]),
    st.sampled_from([1, 2]),
    st.sampled_from(["select count(*) from t@{rep1,rep2} where id = ?",
                     "select count(*) from t@{pri,rep1,rep2} where id = ?"])),
    min_size=4, max_size=12)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=_ACTIONS)
def test_property_no_read_with_read_your_writes_misses_its_own_commit(standbys, actions):
    clusters = dict(zip((1, 2), standbys[1:], strict=True))
    conn = pooldbapi.connect(_containers(standbys, limit=1), read_your_writes=True)
    try:
        last = None
        for action, which, read in actions:
            standby = clusters[which]
            if action == "pause":
                standby.sql("select pg_wal_replay_pause()")
            elif action == "resume":
                standby.sql("select pg_wal_replay_resume()")
            elif action == "delay":
                standby.apply_delay(f"{100 * which}ms")
            elif action.startswith("write"):
                if not conn.autocommit:
                    conn.commit()  # the reads' transaction
                conn.autocommit = action == "write-autocommit"
                last = _next_id(conn)
                conn.execute("insert into t@pri (id, v) values (?, 'h')", (last,))
                if not conn.autocommit:
                    conn.commit()
            elif last is not None:
                assert conn.execute(read, (last,)).fetchone() == (1,)
        if not conn.autocommit:
            conn.commit()
    finally:
        conn.close()
        for standby in standbys[1:]:
            standby.sql("select pg_wal_replay_resume()")
            standby.apply_delay("0")


# -- shared state ---------------------------------------------------------------------------
def test_with_shared_state_one_process_probes_and_the_others_read_its_lag(standbys,
                                                                        redis_server):
    from pooldbapi.lag import Prober
    redis_server.flush()
    specs = load_settings(_containers(standbys, **{"shared-state": redis_server.url}))
    prober = Prober(specs.containers["rep1"], specs.containers["pri"], "one")
    other = Prober(specs.containers["rep1"], specs.containers["pri"], "other")
    try:
        standbys[1].sql("select pg_wal_replay_pause()")
        standbys[0].sql("insert into t (id, v) values (-100, 's')")
        first = prober._shared_turn()  # the lease is its: it measures and publishes
        time.sleep(0.3)
        measured = prober._shared_turn()
        assert first.replayed is not None and measured.seconds is not None
        assert measured.seconds > 0
        seen = other._shared_turn()   # the lease is taken: it reads what was published
        assert isinstance(seen, Lag)
        assert (seen.seconds, seen.replayed) == (measured.seconds, measured.replayed)
        assert not other._sessions   # it opened no session of its own
    finally:
        prober._close()
        standbys[0].sql("delete from t where id = -100")


# -- promotion ------------------------------------------------------------------------------
def test_a_promoted_standby_is_noticed_reported_and_left_out(clusters, standbys, caplog):
    primary = standbys[0]
    rep3 = clusters.standby(primary)  # its own: a promoted standby stays a primary
    containers = {**_containers(standbys),
                  "rep3": rep3.conninfo(**{"replica-of": "pri", "max-replication-lag": "5"})}
    conn = pooldbapi.connect(containers, autocommit=True)
    try:
        _within_limits(conn, "rep1", "rep3")
        assert set(_where_reads_go(conn, 10, "select count(*) from t@{rep1,rep3}")) == \
            {"rep1", "rep3"}
        with caplog.at_level("WARNING", logger="pooldbapi"):
            rep3.promote()
            _until(lambda: pooldbapi.health()["rep3"].promoted)
        assert any("rep3 answers as a primary" in r.getMessage() for r in caplog.records)
        assert _where_reads_go(conn, 10, "select count(*) from t@{rep1,rep3}") == {"rep1": 10}
        with pytest.raises(pooldbapi.ProgrammingError, match="holds only standbys"):
            conn.execute("insert into t@rep3 (id) values (-5)")
    finally:
        conn.close()
        rep3.stop("immediate")


def test_a_measure_older_than_its_limit_allows_keeps_the_standby_out(standbys, monkeypatch):
    # a prober whose probes stop answering (a hung session) must not leave its last measure,
    # 0 s, in force: the lag may have grown since
    import threading

    from pooldbapi import lag as lag_module
    conn = pooldbapi.connect(_containers(standbys), autocommit=True)
    try:
        _within_limits(conn, "rep1", "rep2")
        assert set(_where_reads_go(conn)) == {"rep1", "rep2"}
        prober = LAG.prober(conn.specs["rep1"], conn.specs["pri"])
        hung = threading.Event()
        real = lag_module.Prober.measure

        def measure(self):
            if self is prober:
                hung.wait(30)  # the probe never answers (until the test ends)
            return real(self)

        monkeypatch.setattr(lag_module.Prober, "measure", measure)
        try:
            _until(lambda: prober.lag.seconds_at(time.monotonic()) > LIMIT)
            # the last measure itself still says the standby is within its limit (it was
            # taken before the hang: 0 s, or the age of a commit it had not yet replayed)
            assert prober.lag.seconds <= LIMIT
            assert _where_reads_go(conn) == {"rep2": 20}
        finally:
            hung.set()
    finally:
        conn.close()


def test_the_probers_sessions_have_a_statement_timeout(standbys):
    from pooldbapi import lag as lag_module
    conn = pooldbapi.connect(_containers(standbys), autocommit=True)
    try:
        prober = lag_module.Prober(conn.specs["rep1"], conn.specs["pri"], "test")
        try:
            link = prober._session(conn.specs["rep1"])
            assert link.first_row("show statement_timeout") == ("2s",)
        finally:
            prober._close()
    finally:
        conn.close()
