"""Per-execute latency through pooldbapi against the raw driver, same statement, same process:
SQLite (a file) and PostgreSQL (loopback), in a transaction and in autocommit, for a one-row
select (execute + fetchall) and a one-row insert.

Interleaved blocks (raw, pooldbapi, raw, ...); prints the median microseconds per execute of
each side, the added microseconds and the ratio, and the client's own CPU per execute
(time.thread_time: what the scheduler does to a loopback round trip moves wall time far more
than the driver does), and writes benchmarks/results/overhead.json. On a machine with two
cores or more the client is pinned to core 0 and every PostgreSQL server process to core 1.
Then where the microseconds go: the SQLite select called at each layer (best of repeats;
each figure the whole call at that layer, the layers below included), written to
benchmarks/results/overhead_layers.json.

--otel sdk sets OpenTelemetry's SDK providers first (a MeterProvider with a reader, a
TracerProvider whose spans are made and dropped): what pooldbapi's metrics and spans cost
(results in overhead-otel*.json); without it no provider is set, as in most applications.

--decompose measures what the PostgreSQL select's added CPU is made of, in one process,
blocks interleaved: pooldbapi's own code with the driver's call replaced by its answer
(runner._run returning the last result), that code run between raw psycopg calls, and raw
psycopg with a busy wait of 1 to 12 us between its calls (time only, no memory touched); the
added CPU of each over raw psycopg alone, written to benchmarks/results/overhead_decomposed.json.
--otel compare measures the same in one process instead, where the machine's load moves
less: SQLite calls in blocks interleaved without and with the SDK's providers, and the
telemetry guards' own cost (execute_on against its body, the cursor's execute against _run:
its lock, guard and settle), written to benchmarks/results/overhead_telemetry.json.
"""
from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import pin_client, pinned_cluster, report

import pooldbapi

MODES = (("transaction", False), ("autocommit", True))


def per_call(fn: Callable[[], object], n: int) -> tuple[float, float]:
    """Microseconds per call: wall, and the calling thread's own CPU."""
    start, cpu = time.perf_counter(), time.thread_time()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6, (time.thread_time() - cpu) / n * 1e6


def caller(cur, stmt: str, fetch: bool) -> Callable[[], None]:
    """One execute of stmt with one parameter on cur, its rows fetched where it has rows."""
    def call() -> None:
        cur.execute(stmt, (1,))
        if fetch:
            cur.fetchall()
    return call


def pairs(raw_fn, pool_fn, raw_end, pool_end, rounds: int, n: int
          ) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Blocks of n calls, raw then pooldbapi, rounds times; each block ends its transaction
    (outside the clock)."""
    raw_fn(), raw_end()  # warm up: connections open, statements cached
    pool_fn(), pool_end()
    raw, pooled = [], []
    for _ in range(rounds):
        raw.append(per_call(raw_fn, n))
        raw_end()
        pooled.append(per_call(pool_fn, n))
        pool_end()
    return raw, pooled


def row(case: str, mode: str, raw: list[tuple[float, float]],
        pooled: list[tuple[float, float]]) -> dict:
    r, p = statistics.median(w for w, _ in raw), statistics.median(w for w, _ in pooled)
    ratios = statistics.median(b[0] / a[0] for a, b in zip(raw, pooled, strict=True))
    rc, pc = statistics.median(c for _, c in raw), statistics.median(c for _, c in pooled)
    # added: the median of each pair's difference (a block and the raw block next to it see
    # the same load from the rest of the machine)
    added_cpu = statistics.median(b[1] - a[1] for a, b in zip(raw, pooled, strict=True))
    return {"case": case, "mode": mode, "raw_us": round(r, 2), "pooldbapi_us": round(p, 2),
            "added_us": round(p - r, 2), "ratio": round(ratios, 3),
            "raw_cpu_us": round(rc, 2), "pooldbapi_cpu_us": round(pc, 2),
            "added_cpu_us": round(added_cpu, 2)}


def sqlite_cases(rounds: int, n: int, tmp: Path) -> list[dict]:
    out = []
    database = str(tmp / "b.db")
    setup = sqlite3.connect(database)
    setup.execute("create table if not exists b (x int)")
    setup.commit()
    setup.close()
    for mode, autocommit in MODES:
        raw = sqlite3.connect(database, isolation_level=None if autocommit else "DEFERRED")
        conn = pooldbapi.connect({"s": f"driver=sqlite;database={database}"},
                                 autocommit=autocommit)
        rcur, pcur = raw.cursor(), conn.cursor()
        end_raw = (lambda: None) if autocommit else raw.commit
        end_pool = (lambda: None) if autocommit else conn.commit
        for case, stmt, fetch in (("sqlite: select ? + fetchall", "select ?", True),
                                  ("sqlite: insert one row", "insert into b values (?)", False)):
            out.append(row(case, mode, *pairs(caller(rcur, stmt, fetch), caller(pcur, stmt, fetch),
                                              end_raw, end_pool, rounds, n)))
        conn.close()
        raw.close()
    return out


def postgresql_cases(rounds: int, n: int) -> list[dict]:
    """Loopback PostgreSQL; new server sessions every round for both sides, because where
    the scheduler puts a client and its server process moves the round trip far more than
    anything the driver does."""
    import psycopg
    with pinned_cluster() as cluster:
        with psycopg.connect(cluster.dsn, autocommit=True) as setup:
            setup.execute("create table b (x int)")
        out = []
        for mode, autocommit in MODES:
            for case, raw_stmt, stmt in (("postgresql: select %s + fetchall", "select %s",
                                          "select ?"),
                                         ("postgresql: insert one row",
                                          "insert into b values (%s)",
                                          "insert into b values (?)")):
                fetch = case.endswith("fetchall")
                raw_times, pool_times = [], []
                for _ in range(rounds):
                    raw = psycopg.connect(cluster.dsn, autocommit=autocommit)
                    rcur = raw.cursor()
                    pooldbapi.close_all()
                    conn = pooldbapi.connect({"pg": cluster.conninfo()}, autocommit=autocommit)
                    pcur = conn.cursor()

                    r, p = pairs(caller(rcur, raw_stmt, fetch), caller(pcur, stmt, fetch),
                                 (lambda: None) if autocommit else raw.commit,
                                 (lambda: None) if autocommit else conn.commit, 2, n)
                    raw_times += r
                    pool_times += p
                    conn.close()
                    raw.close()
                out.append(row(case, mode, raw_times, pool_times))
        return out


def layers(tmp: Path, repeat: int = 5, number: int = 20000) -> list[dict]:
    """The SQLite `select ?` in a transaction, called at each layer of pooldbapi."""
    from pooldbapi.ops import select as select_op
    from pooldbapi.runner import Direct, _text, execute_on, execute_routed
    from pooldbapi.sql.parse import parse
    database = str(tmp / "layers.db")
    conn = pooldbapi.connect({"s": f"driver=sqlite;database={database}"})
    cur = conn.cursor()
    cur.execute("select ?", (1,)).fetchall()
    stmt, params = parse("select ?"), (1,)
    spec, phys = conn.specs["s"], conn.transaction.borrowed["s"]
    context = conn.context  # what the cursor hands the layers below
    prepared = Direct(context, "s", stmt)  # what the cursor keeps for a repeated execute
    raw_cur = phys.cursor()
    steps = [
        ("driver: execute + fetchall", lambda: raw_cur.execute("select ?", params).fetchall()),
        ("parse (cache hit)", lambda: parse("select ?")),
        ("render + bind", lambda: _text(stmt, phys.backend, params)),
        ("borrow() (session held)", lambda: conn.transaction.borrow(spec).__exit__(
            None, None, None)),
        ("routing", lambda: context.route(stmt)),
        ("runner.execute_on", lambda: execute_on(context, "s", stmt, params)),
        ("runner.execute_routed", lambda: execute_routed(context, stmt, params, True, "s")),
        ("runner.Direct.run (prepared)", lambda: prepared.run(context, params)),
        ("ops.select.execute", lambda: select_op.execute(context, stmt, params)),
        ("cursor.execute + fetchall", lambda: cur.execute("select ?", params).fetchall()),
    ]
    out = []
    for name, call in steps:
        best = min(timeit.repeat(call, number=number, repeat=repeat)) / number * 1e6
        out.append({"layer": name, "us": round(best, 2)})
    conn.rollback()
    conn.close()
    return out


def sdk_providers() -> tuple[object, object]:
    """A MeterProvider with a reader that is never asked, a TracerProvider whose spans are
    made, ended and given to an exporter that drops them."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: object) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracers = TracerProvider()
    tracers.add_span_processor(SimpleSpanProcessor(Drop()))
    return MeterProvider(metric_readers=[InMemoryMetricReader()]), tracers


def telemetry_cases(rounds: int, n: int, tmp: Path) -> list[dict]:
    """pooldbapi without a provider (raw_us) against pooldbapi with the SDK's (pooldbapi_us),
    blocks interleaved in one process; then each guard against the body it guards."""
    from pooldbapi import runner, telemetry
    from pooldbapi.sql.parse import parse
    otel = telemetry._Otel(*sdk_providers())

    def switch(on: bool) -> None:
        telemetry._OTEL, telemetry._EXPLICIT = (otel, True) if on else (None, False)
        telemetry._set_on()

    database = str(tmp / "t.db")
    out = []
    for mode, autocommit in MODES:
        conn = pooldbapi.connect({"s": f"driver=sqlite;database={database}"},
                                 autocommit=autocommit)
        conn.execute("create table if not exists b (x int)")
        conn.commit()
        cur = conn.cursor()
        for case, stmt, fetch in (("sqlite: select ? + fetchall", "select ?", True),
                                  ("sqlite: insert one row", "insert into b values (?)", False)):
            if autocommit and not fetch:
                continue  # the file system's sync: microseconds are lost in its noise
            call = caller(cur, stmt, fetch)

            def off_then_on(conn: pooldbapi.Connection = conn) -> None:
                conn.commit()
                switch(True)

            def on_then_off(conn: pooldbapi.Connection = conn) -> None:
                conn.commit()
                switch(False)
            out.append(row(f"{case} (SDK providers)", mode,
                           *pairs(call, call, off_then_on, on_then_off, rounds, n)))
        conn.close()
    conn = pooldbapi.connect({"s": f"driver=sqlite;database={database}"})
    cur = conn.cursor()
    cur.execute("select ?", (1,)).fetchall()
    stmt, params = parse("select ?"), (1,)
    guarded = [("runner.execute_on",
                lambda: runner.execute_on(conn.context, "s", stmt, params),
                lambda: runner._execute_on(conn.context, "s", stmt, params)),
               ("cursor.execute (lock, guard, settle)", lambda: cur.execute("select ?", params),
                lambda: cur._run("select ?", params))]
    for name, with_guard, body in guarded:
        a, b = [], []
        for _ in range(rounds):
            b.append(min((per_call(body, 20000) for _ in range(3)), key=lambda t: t[0]))
            a.append(min((per_call(with_guard, 20000) for _ in range(3)), key=lambda t: t[0]))
        out.append(row(f"{name}: body (raw_us) vs guard, no provider", "transaction", b, a))
    conn.rollback()
    conn.close()
    return out


def _spin(us: float) -> Callable[[], None]:
    """A busy wait of us microseconds: time between two calls, with nothing in memory touched."""
    clock = time.perf_counter

    def wait() -> None:
        end = clock() + us * 1e-6
        while clock() < end:
            pass
    return wait


def _both(first: Callable[[], object], then: Callable[[], object]) -> Callable[[], None]:
    def call() -> None:
        first()
        then()
    return call


def decomposed(rounds: int, n: int) -> list[dict]:
    """The PostgreSQL select of postgresql_cases split into pooldbapi's own code and what the
    driver's calls cost around it (see --decompose)."""
    with pinned_cluster() as cluster:
        return [row for mode, autocommit in MODES
                for row in _decomposed(cluster, mode, autocommit, rounds, n)]


def _decomposed(cluster: Any, mode: str, autocommit: bool, rounds: int, n: int) -> list[dict]:
    import psycopg

    from pooldbapi import runner
    raw = psycopg.connect(cluster.dsn, autocommit=autocommit)
    pooldbapi.close_all()
    conn = pooldbapi.connect({"pg": cluster.conninfo()}, autocommit=autocommit)
    native, pooled = caller(raw.cursor(), "select %s", True), caller(conn.cursor(), "select ?", True)
    for _ in range(100):
        native(), pooled()
    phys = conn.transaction.borrowed.get("pg") or conn.transaction.parked["pg"]
    real = runner._run
    answer = real(phys, phys.cursor(), "select %s", (1,))

    def code_alone() -> None:  # pooldbapi with the driver's answer at hand
        runner._run = lambda *args: answer  # type: ignore[assignment]
        try:
            pooled()
        finally:
            runner._run = real
    cases: dict[str, Callable[[], object]] = {
        "raw psycopg": native, "pooldbapi": pooled,
        "pooldbapi's code alone (driver's answer at hand)": code_alone,
        "raw psycopg + pooldbapi's code between calls": _both(native, code_alone),
    }
    for us in (1, 3, 6, 12):
        cases[f"raw psycopg + {us} us busy wait between calls"] = _both(native, _spin(us))
    times: dict[str, list[tuple[float, float]]] = {case: [] for case in cases}
    for _ in range(rounds):
        for case, fn in cases.items():
            times[case].append(per_call(fn, n))
        if not autocommit:
            raw.commit()
            conn.commit()
    conn.close()
    raw.close()
    base = statistics.median(cpu for _, cpu in times["raw psycopg"])
    out = []
    for case, measured in times.items():
        cpu = statistics.median(c for _, c in measured)
        out.append({"case": case, "mode": mode,
                    "wall_us": round(statistics.median(w for w, _ in measured), 2),
                    "cpu_us": round(cpu, 2),
                    "added_cpu_us": None if "alone" in case else round(cpu - base, 2)})
    return out


def set_providers() -> None:
    """The SDK's global providers: every instrument recorded (a reader that is never asked),
    every span made, ended and given to an exporter that drops it."""
    from opentelemetry import metrics, trace
    meters, tracers = sdk_providers()
    metrics.set_meter_provider(meters)  # type: ignore[arg-type]
    trace.set_tracer_provider(tracers)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--n", type=int, default=2000, help="SQLite executes per block")
    parser.add_argument("--pg-n", type=int, default=300, help="PostgreSQL executes per block")
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--otel", choices=("none", "sdk", "compare"), default="none",
                        help="sdk: set OpenTelemetry's SDK providers (pooldbapi[otel]);"
                             " compare: without and with them, interleaved, SQLite only")
    parser.add_argument("--decompose", action="store_true",
                        help="what the PostgreSQL select's added CPU is made of")
    args = parser.parse_args()
    pin_client()
    if args.decompose:
        report("overhead_decomposed", decomposed(args.rounds, args.n),
               ["case", "mode", "wall_us", "cpu_us", "added_cpu_us"])
        return
    if args.otel == "compare":
        with tempfile.TemporaryDirectory() as tmp:
            report("overhead_telemetry", telemetry_cases(args.rounds, args.n, Path(tmp)),
                   ["case", "mode", "raw_us", "pooldbapi_us", "added_us", "ratio",
                    "raw_cpu_us", "pooldbapi_cpu_us", "added_cpu_us"])
        return
    suffix = ""
    if args.otel == "sdk":
        set_providers()
        suffix = "-otel"
    with tempfile.TemporaryDirectory() as tmp:
        rows = (sqlite_cases(args.rounds, args.n, Path(tmp)) if args.only != "postgresql"
                else []) + \
            (postgresql_cases(args.rounds, args.pg_n) if args.only != "sqlite" else [])
    report(f"overhead{suffix}", rows, ["case", "mode", "raw_us", "pooldbapi_us", "added_us",
                                       "ratio", "raw_cpu_us", "pooldbapi_cpu_us",
                                       "added_cpu_us"])
    print()
    with tempfile.TemporaryDirectory() as tmp:
        report(f"overhead_layers{suffix}", layers(Path(tmp)), ["layer", "us"])


if __name__ == "__main__":
    main()
