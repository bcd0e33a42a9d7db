"""OpenTelemetry metrics and spans (pooldbapi[otel]), read back through the SDK's in-memory
metric reader and span exporter, against SQLite files, a real PostgreSQL and the OData service."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import pooldbapi
from pooldbapi import telemetry
from pooldbapi.health import HEALTH

POOL = "db.client.connection.pool.name"


@dataclass
class Otel:
    reader: InMemoryMetricReader
    exporter: InMemorySpanExporter

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """(attributes, value) of every data point of a metric; a histogram's value is its
        count of measurements."""
        found = []
        data = self.reader.get_metrics_data()
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name != name:
                        continue
                    for point in metric.data.data_points:
                        value = getattr(point, "value", None)
                        found.append((dict(point.attributes),
                                      point.count if value is None else value))
        return found

    def per_pool(self, name: str, **match: Any) -> dict[str, Any]:
        """A metric's values by container (pool name), over the points whose attributes match."""
        out: dict[str, Any] = {}
        for attrs, value in self.points(name):
            if all(attrs.get(k.replace("__", ".")) == v for k, v in match.items()):
                out[attrs[POOL]] = out.get(attrs[POOL], 0) + value
        return out

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def every_attribute(self) -> list[str]:
        """Every attribute key and value of every span, span event and metric point, and every
        span's name and status description, as text."""
        texts: list[str] = []
        for span in self.spans():
            texts += [span.name, str(span.status.description)]
            for attrs in [span.attributes, *(e.attributes for e in span.events)]:
                texts += [f"{k}={v}" for k, v in (attrs or {}).items()]
        data = self.reader.get_metrics_data()
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    for point in metric.data.data_points:
                        texts += [f"{k}={v}" for k, v in point.attributes.items()]
        return texts


@pytest.fixture
def otel() -> Iterator[Otel]:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    exporter = InMemorySpanExporter()
    tracers = TracerProvider()
    tracers.add_span_processor(SimpleSpanProcessor(exporter))
    pooldbapi.close_all()
    HEALTH.reset()
    with telemetry._LOCK:
        telemetry.FIGURES.clear()
    telemetry.instrument(meters, tracers)
    yield Otel(reader, exporter)
    telemetry.uninstrument()
    pooldbapi.close_all()
    HEALTH.reset()
    meters.shutdown()
    tracers.shutdown()


def sqlite_pair(tmp_path, **options: str) -> dict[str, str]:
    tail = "".join(f";{k}={v}" for k, v in options.items())
    return {a: f"driver=sqlite;database={tmp_path / f'{a}.db'}{tail}" for a in ("a", "b")}


def test_ten_executions_over_two_containers_give_five_each(otel, tmp_path):
    conn = pooldbapi.connect(sqlite_pair(tmp_path), autocommit=True, seed=3)
    cur = conn.cursor()
    cur.execute("create table t@a (x int)")
    cur.execute("create table t@b (x int)")
    for i in range(10):
        cur.execute("insert into t@{a,b} (x) values (?)", (i,))
    conn.close()
    durations = otel.per_pool("db.client.operation.duration", db__operation__name="INSERT",
                              db__system__name="sqlite", db__collection__name="t")
    assert durations == {"a": 5, "b": 5}
    assert otel.per_pool("pooldbapi.rows.written") == {"a": 5, "b": 5}
    assert otel.per_pool("pooldbapi.calls") == {"a": 6, "b": 6}  # create table + 5 inserts
    assert otel.per_pool("pooldbapi.errors") == {"a": 0, "b": 0}
    statements = [s for s in otel.spans() if s.parent is None and s.name == "INSERT t"]
    assert len(statements) == 10


def test_rows_counted_per_container_equal_the_rows_each_database_holds(otel, pg):
    with psycopg.connect(pg.dsn, autocommit=True) as raw:
        for name in ("tel_a", "tel_b"):
            raw.execute(f"drop database if exists {name}")
            raw.execute(f"create database {name}")
    conn = pooldbapi.connect({"a": pg.conninfo(dbname="tel_a"), "b": pg.conninfo(dbname="tel_b")},
                             autocommit=True, broadcast_ddl=True, seed=11)
    cur = conn.cursor()
    cur.execute("create table m@{a,b} (id int, note text)")
    cur.executemany("insert into m@{a,b} (id, note) values (?, ?)",
                    [(i, f"row {i}") for i in range(101)])
    held = {}
    for alias in ("a", "b"):
        with psycopg.connect(pg.dsn.replace("dbname=postgres", f"dbname=tel_{alias}")) as raw:
            held[alias] = raw.execute("select count(*) from m").fetchone()[0]
    assert sum(held.values()) == 101 and held == dict(cur.containers)
    assert otel.per_pool("pooldbapi.rows.written") == held
    cur.execute("select * from m@a")
    assert otel.per_pool("pooldbapi.rows.read") == {"a": held["a"], "b": 0}
    assert otel.per_pool("db.client.response.returned_rows") == {"a": 1}  # one read
    conn.close()

    spans = otel.spans()
    batch = next(s for s in spans if s.parent is None and s.name == "BATCH INSERT m")
    assert batch.kind == SpanKind.CLIENT
    assert batch.attributes["db.operation.name"] == "BATCH INSERT"
    assert batch.attributes["db.operation.batch.size"] == 101
    assert batch.attributes["db.system.name"] == "postgresql"
    assert batch.attributes["db.query.text"] == "insert into m@{a,b} (id, note) values (?, ?)"
    children = [s for s in spans if s.parent is not None and
                s.parent.span_id == batch.context.span_id]
    assert {c.attributes[POOL]: c.attributes["pooldbapi.rows.written"] for c in children} == held
    for child in children:
        assert child.context.trace_id == batch.context.trace_id
        assert child.attributes["db.namespace"] == f"tel_{child.attributes[POOL]}"
        assert child.attributes["server.address"] == "127.0.0.1"
        assert child.attributes["server.port"] == pg.port
        assert child.status.status_code == StatusCode.UNSET
    read = next(s for s in spans if s.parent is not None and s.name == "SELECT m")
    assert read.attributes["db.response.returned_rows"] == held["a"]


def test_pool_gauges_follow_borrows_waits_and_timeouts(otel, tmp_path):
    containers = sqlite_pair(tmp_path, **{"maximum-number-of-pooled-connections": "1",
                                          "pool-timeout": "0.3"})
    holder = pooldbapi.connect(containers)          # a transaction: keeps its connection
    holder.execute("create table if not exists t@a (x int)")
    used = otel.per_pool("db.client.connection.count", db__client__connection__state="used")
    idle = otel.per_pool("db.client.connection.count", db__client__connection__state="idle")
    assert used["a"] == 1 and idle["a"] == 0
    assert otel.per_pool("db.client.connection.max")["a"] == 1
    assert otel.per_pool("db.client.connection.idle.min")["a"] == 0

    other = pooldbapi.connect(containers, autocommit=True)
    with pytest.raises(pooldbapi.OperationalError, match="no free physical connection"):
        other.execute("select count(*) from t@a")
    assert otel.per_pool("db.client.connection.timeouts")["a"] == 1

    waiting: list[Any] = []
    waiter = threading.Thread(target=lambda: waiting.append(
        other.execute("select count(*) from t@a").fetchone()))
    waiter.start()
    deadline = time.monotonic() + 5
    while otel.per_pool("db.client.connection.pending_requests").get("a") != 1:
        assert time.monotonic() < deadline, "the waiter never showed as pending"
        time.sleep(0.01)
    holder.commit()
    waiter.join(5)
    assert waiting == [(0,)]
    assert otel.per_pool("db.client.connection.pending_requests")["a"] == 0
    idle = otel.per_pool("db.client.connection.count", db__client__connection__state="idle")
    assert idle["a"] == 1
    # every borrow was timed: the holder's, the one that timed out is not, the waiter's
    assert otel.per_pool("db.client.connection.wait_time")["a"] == 2
    assert otel.per_pool("db.client.connection.create_time")["a"] == 1
    holder.close()
    other.close()  # gives back the session its autocommit statements kept (idle till then)
    assert otel.per_pool("db.client.connection.use_time")["a"] == 2


def test_a_span_per_statement_and_a_child_per_container(otel, tmp_path):
    conn = pooldbapi.connect(sqlite_pair(tmp_path), autocommit=True, broadcast_ddl=True, seed=5)
    cur = conn.cursor()
    cur.execute("create table t@{a,b} (x int)")
    cur.executemany("insert into t@{a,b} (x) values (?)", [(i,) for i in range(6)])
    cur.execute("select count(*) from t@{a,b} where x >= 0")
    conn.close()
    spans = otel.spans()
    roots = [s for s in spans if s.parent is None]
    assert [s.name for s in roots] == ["CREATE t", "BATCH INSERT t", "SELECT t"]
    by_root = {r.name: [s for s in spans if s.parent is not None and
                        s.parent.span_id == r.context.span_id] for r in roots}
    assert sorted(c.attributes[POOL] for c in by_root["CREATE t"]) == ["a", "b"]
    assert {c.attributes[POOL]: c.attributes["pooldbapi.rows.written"]
            for c in by_root["BATCH INSERT t"]} == {"a": 3, "b": 3}
    assert all(c.attributes["db.operation.batch.size"] == 3 for c in by_root["BATCH INSERT t"])
    (read,) = by_root["SELECT t"]
    assert read.attributes["db.response.returned_rows"] == 1
    assert read.attributes["db.system.name"] == "sqlite"
    assert roots[2].attributes["pooldbapi.containers"] == (read.attributes[POOL],)
    # written without parameters: the statement's text is not recorded (not sanitized)
    assert "db.query.text" not in roots[2].attributes
    assert all(s.kind == SpanKind.CLIENT for s in spans)


def test_a_prepared_statement_has_its_container_span_every_time(otel, tmp_path):
    """From its second execute a one-container statement runs prepared (runner.Direct): the
    spans and figures are those of the first."""
    conn = pooldbapi.connect(sqlite_pair(tmp_path), autocommit=True)
    cur = conn.cursor()
    cur.execute("create table t@a (x int)")
    for i in range(3):
        cur.execute("insert into t@a (x) values (?)", (i,))
        assert cur.execute("select x from t@a where x = ?", (i,)).fetchall() == [(i,)]
    assert "insert into t@a (x) values (?)" in conn.context.plans
    conn.close()
    spans = otel.spans()
    roots = [s for s in spans if s.parent is None]
    assert [s.name for s in roots] == ["CREATE t"] + ["INSERT t", "SELECT t"] * 3
    children = {r.context.span_id: [s for s in spans if s.parent is not None and
                                    s.parent.span_id == r.context.span_id] for r in roots}
    assert all([c.attributes[POOL] for c in children[r.context.span_id]] == ["a"]
               for r in roots)
    assert otel.per_pool("pooldbapi.rows.written") == {"a": 3}
    assert otel.per_pool("pooldbapi.calls") == {"a": 7}


def test_a_failed_part_marks_its_span_and_counts_an_error(otel, pg):
    conn = pooldbapi.connect({"p": pg.conninfo()}, autocommit=True)
    conn.execute("create table tel_uniq (id int primary key)")
    try:
        conn.execute("insert into tel_uniq values (?)", (1,))
        with pytest.raises(pooldbapi.IntegrityError):
            conn.execute("insert into tel_uniq values (?)", (1,))
    finally:
        conn.execute("drop table tel_uniq")
        conn.close()
    failed = [s for s in otel.spans() if s.status.status_code == StatusCode.ERROR]
    assert len(failed) == 2  # the statement and its part on p (the drop came after)
    for span in failed:
        assert span.attributes["error.type"] == "23505"
        assert span.attributes["db.response.status_code"] == "23505"
    assert otel.per_pool("pooldbapi.errors") == {"p": 1}
    assert otel.per_pool("db.client.operation.duration", error__type="23505") == {"p": 1}


def test_no_parameter_value_and_no_secret_in_any_attribute(otel, pg):
    secret = "Pw-9f3k2-never-shown"
    conn = pooldbapi.connect({"p": pg.conninfo(password=secret),
                              "q": pg.conninfo(password=secret, application_name="tel")},
                             autocommit=True)
    cur = conn.cursor()
    cur.execute("create table tel_sec@p (id int primary key, v text)")  # p and q: one db
    cur.execute("insert into tel_sec@p (id, v) values (?, ?)", (7, "value-one-7731"))
    cur.executemany("insert into tel_sec@{p,q} (id, v) values (:id, :v)",
                    [{"id": 8, "v": "value-two-8842"}, {"id": 9, "v": "value-three-9953"}])
    with pytest.raises(pooldbapi.IntegrityError):  # the server's message quotes the key value
        cur.execute("insert into tel_sec@p (id, v) values (?, ?)", (7, "value-four-1064"))
    cur.execute("select v from tel_sec@p where v = %(v)s", {"v": "value-one-7731"})
    cur.execute("drop table tel_sec@p")
    conn.close()
    texts = otel.every_attribute()
    assert texts and any("db.query.text=" in t for t in texts)
    for text in texts:
        assert secret not in text
        for value in ("7731", "8842", "9953", "1064", "(id)=(7)"):
            assert value not in text, text


def test_a_container_killed_shows_in_health_transitions(otel, clusters):
    cluster = clusters.new()
    conn = pooldbapi.connect({"k": cluster.conninfo(connect_timeout="2")}, autocommit=True)
    conn.execute("select 1")
    cluster.stop("immediate")
    with pytest.raises(pooldbapi.OperationalError):
        conn.execute("select 1")
    assert otel.per_pool("pooldbapi.health.transitions", pooldbapi__health__state="unhealthy"
                         ) == {"k": 1}
    assert otel.per_pool("pooldbapi.container.healthy") == {"k": 0}
    cluster.start()
    deadline = time.monotonic() + 20
    while not HEALTH.snapshot()["k"].healthy:  # the prober re-admits it
        assert time.monotonic() < deadline, "the container was never re-admitted"
        time.sleep(0.05)
    assert otel.per_pool("pooldbapi.health.transitions", pooldbapi__health__state="healthy"
                         ) == {"k": 1}
    assert otel.per_pool("pooldbapi.container.healthy") == {"k": 1}
    conn.close()
    cluster.stop("immediate")


def test_throttle_waits_are_counted(otel, tmp_path):
    conn = pooldbapi.connect({"s": f"driver=sqlite;database={tmp_path / 's.db'};"
                                   "max-calls-per-second=20"}, autocommit=True)
    started = time.monotonic()
    for _ in range(6):
        conn.execute("select 1")
    elapsed = time.monotonic() - started
    conn.close()
    waited = otel.per_pool("pooldbapi.throttle.wait_time")["s"]
    assert 0.15 < waited <= elapsed  # five gaps of 50 ms, spent waiting


def test_429s_and_retries_are_counted(otel, gateways):
    gateway = gateways(rate=4, burst=1, retry_after=1)
    conn = pooldbapi.connect({"o": f"driver=odata;url={gateway.url};token=tok-tel"},
                             autocommit=True)
    conn.cursor().executemany("insert into Tasks@o (description) values (?)",
                              [(f"tel {i}",) for i in range(6)])
    conn.close()
    statuses = [c.split()[0] for c in gateway.calls() if "tok-tel" in c]
    answered = statuses.count("429")
    assert answered > 0
    assert otel.per_pool("pooldbapi.http.too_many_requests") == {"o": answered}
    assert otel.per_pool("pooldbapi.retries") == {"o": answered}
    assert otel.per_pool("pooldbapi.rows.written") == {"o": 6}


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_without_a_provider_nothing_is_recorded_nor_imported(tmp_path):
    out = _run(f"""
        import sys
        import pooldbapi
        from pooldbapi import telemetry
        conn = pooldbapi.connect({{"s": "driver=sqlite;database={tmp_path / 'n.db'}"}},
                                 autocommit=True)
        conn.execute("create table t (x int)")
        conn.cursor().executemany("insert into t (x) values (?)", [(1,), (2,)])
        conn.execute("select * from t").fetchall()
        print(telemetry.ON, telemetry.FIGURES, telemetry._BORROWED,
              [m for m in sys.modules if m.startswith("opentelemetry")])
        """)
    assert out == "False {} {} []"


def test_without_the_extra_pooldbapi_works_and_records_nothing(tmp_path):
    out = _run(f"""
        import sys
        sys.modules["opentelemetry"] = None  # as if opentelemetry-api were not installed
        import pooldbapi
        from pooldbapi import telemetry
        conn = pooldbapi.connect({{"s": "driver=sqlite;database={tmp_path / 'x.db'}"}},
                                 autocommit=True)
        conn.execute("create table t (x int)")
        print(telemetry.ON, telemetry.FIGURES, conn.execute("select count(*) from t").fetchone())
        """)
    assert out == "False {} (0,)"


def test_a_global_provider_set_by_the_application_is_found_at_connect(tmp_path):
    out = _run(f"""
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        import pooldbapi
        from pooldbapi import telemetry
        path = "{tmp_path / 'g.db'}"
        pooldbapi.connect({{"s": f"driver=sqlite;database={{path}}"}}).close()
        before = telemetry.ON
        reader, exporter = InMemoryMetricReader(), InMemorySpanExporter()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        tracers = TracerProvider()
        tracers.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(tracers)
        conn = pooldbapi.connect({{"s": f"driver=sqlite;database={{path}}"}}, autocommit=True)
        conn.execute("select 1")
        names = sorted(m.name for rm in reader.get_metrics_data().resource_metrics
                       for sm in rm.scope_metrics for m in sm.metrics)
        print(before, telemetry.ON, [s.name for s in exporter.get_finished_spans()],
              "db.client.operation.duration" in names, "db.client.connection.count" in names)
        """)
    assert out == "False True ['SELECT', 'SELECT'] True True"
