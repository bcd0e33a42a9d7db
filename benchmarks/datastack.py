"""The data stack's bulk shapes, native against pooldbapi in one run: multi-row VALUES with
parameters and with literals over 1, 2 and 3 containers (PostgreSQL on two throwaway clusters,
SQLite files), executemany with RETURNING (PostgreSQL, 1 and 2 containers), pandas to_sql
(method None and "multi"), read_sql, an ORM flush (add_all of 5,000 objects + commit) and Core
executemany.

Each case runs native, then pooldbapi, round after round (interleaved, tables emptied outside
the clock); the table gives the medians of wall time and of the client's CPU time, and the
median of the rounds' ratios. The client is pinned to core 0 and every server process to core
1 (a loopback round trip otherwise moves with where the scheduler puts the two). Client CPU is
time.process_time: pooldbapi writes several containers from worker threads, which
time.thread_time of the caller would not count.

    python benchmarks/datastack.py [--rounds 5] [--only values,returning,pandas,orm]
                                   [--backends postgresql,sqlite]
    (values = params,literals: the multi-row VALUES cases with parameters, with literals;
    --backends: the back-ends of those cases, both by default)
"""
from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from common import clusters, pin_client, pinned, report

import pooldbapi

STATEMENTS, ROWS = 20, 1000  # multi-row VALUES: 20 statements of 1,000 rows (3 values each)
ORM_OBJECTS = 5000
FRAME_ROWS = 20_000  # pandas: rows of 5 columns
CORE_ROWS = 20_000


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def interleaved(native: Callable[[], object], pooled: Callable[[], object],
                reset: Callable[[], object], rounds: int) -> dict:
    """Native then pooldbapi, rounds times (a warm-up round first, not counted)."""
    samples: dict[str, list[tuple[float, float]]] = {"native": [], "pooled": []}
    for n in range(rounds + 1):
        for side, fn in (("native", native), ("pooled", pooled)):
            reset()
            got = timed(fn)
            if n:
                samples[side].append(got)
    nat, poo = samples["native"], samples["pooled"]
    return {"native_s": statistics.median(w for w, _ in nat),
            "pooldbapi_s": statistics.median(w for w, _ in poo),
            "ratio": statistics.median(p[0] / q[0] for p, q in zip(poo, nat, strict=True)),
            "native_cpu_s": statistics.median(c for _, c in nat),
            "pooldbapi_cpu_s": statistics.median(c for _, c in poo)}


def row(workload: str, backend: str, containers: int, rows: int, got: dict, target: str,
        bound: float | None) -> dict:
    met = "" if bound is None else "yes" if got["ratio"] <= bound else "no"
    return {"workload": workload, "backend": backend, "containers": containers,
            "native_rows_s": round(rows / got["native_s"]),
            "pooldbapi_rows_s": round(rows / got["pooldbapi_s"]),
            "time_ratio": round(got["ratio"], 3),
            "native_cpu_s": round(got["native_cpu_s"], 3),
            "pooldbapi_cpu_s": round(got["pooldbapi_cpu_s"], 3),
            "target": target, "met": met}


def values_texts(marker: str, literal: bool) -> tuple[list[str], list[list[object]]]:
    """The 20 statements (and their parameters) of 1,000 rows (int, text, float) each."""
    texts, params = [], []
    for s in range(STATEMENTS):
        base = s * ROWS
        if literal:
            rows = ", ".join(f"({i}, 'name {i}', {i * 0.5})" for i in range(base, base + ROWS))
            texts.append(f"insert into t (a, b, c) values {rows}")
            params.append([])
        else:
            one = f"({marker}, {marker}, {marker})"
            texts.append("insert into t (a, b, c) values " + ", ".join([one] * ROWS))
            params.append([v for i in range(base, base + ROWS)
                           for v in (i, f"name {i}", i * 0.5)])
    return texts, params


def with_list(texts: list[str], aliases: list[str]) -> list[str]:
    return [t.replace("into t ", "into t@{" + ",".join(aliases) + "} ", 1) for t in texts]


def files_native(files: dict[str, str], aliases: list[str], texts: list[str],
                 params: list[list[object]], literal: bool) -> Callable[[], None]:
    """Native sqlite3 writing the statements' rows to k files as pooldbapi deals them (row i
    to file i mod k), each file's rows of a statement as one statement, then a commit each."""
    k = len(aliases)
    conns = [sqlite3.connect(files[a]) for a in aliases]
    per: list[list[tuple[str, list[object]]]] = []
    for text, p in zip(texts, params, strict=True):
        head, _, body = text.partition(" values ")
        if literal:
            rows = body[1:-1].split("), (")
            per.append([(f"{head} values ({'), ('.join(rows[j::k])})", [])
                        for j in range(k)])
        else:
            sets = [p[i:i + 3] for i in range(0, len(p), 3)]
            per.append([(f"{head} values " + ", ".join(["(?, ?, ?)"] * len(sets[j::k])),
                         [v for one in sets[j::k] for v in one]) for j in range(k)])

    def native() -> None:
        for statements in per:
            for c, (text, values) in zip(conns, statements, strict=True):
                c.execute(text, values)
        for c in conns:
            c.commit()
    return native


def values_cases(rounds: int, factory, tmp: Path, kinds: tuple[bool, ...],
                 backends: tuple[str, ...] = ("postgresql", "sqlite")) -> list[dict]:
    import psycopg
    out = []
    servers = [pinned(factory), pinned(factory)] if "postgresql" in backends else []
    specs = {"p0": servers[0].conninfo(), "p1": servers[1].conninfo(),
             "p2": servers[0].conninfo(application_name="p2")} if servers else {}
    for cluster in servers:
        with psycopg.connect(cluster.dsn, autocommit=True) as setup:
            setup.execute("create table t (a int, b text, c float8)")
    raw = psycopg.connect(servers[0].dsn) if servers else None

    def truncate_pg() -> None:
        for cluster in servers:
            with psycopg.connect(cluster.dsn, autocommit=True) as c:
                c.execute("truncate t")

    files = {a: str(tmp / f"{a}.db") for a in ("s0", "s1", "s2")}
    for path in files.values():
        c = sqlite3.connect(path)
        c.execute("create table t (a int, b text, c real)")
        c.close()
    lite = sqlite3.connect(files["s0"])

    def truncate_lite() -> None:
        for path in files.values():
            c = sqlite3.connect(path)
            c.execute("delete from t")
            c.commit()
            c.close()

    for literal in kinds:
        kind = "multi-row VALUES, literals" if literal else "multi-row VALUES, parameters"
        for backend in backends:
            native_texts, native_params = values_texts("%s" if backend == "postgresql"
                                                       else "?", literal)
            texts, params = values_texts("?", literal)
            if backend == "postgresql":
                def native(native_texts=native_texts, native_params=native_params) -> None:
                    with raw.cursor() as cur:
                        for text, p in zip(native_texts, native_params, strict=True):
                            cur.execute(text, p or None)
                    raw.commit()
                reset, aliases_all = truncate_pg, ["p0", "p1", "p2"]
            else:
                def native(native_texts=native_texts, native_params=native_params) -> None:
                    for text, p in zip(native_texts, native_params, strict=True):
                        lite.execute(text, p)
                    lite.commit()
                reset, aliases_all = truncate_lite, ["s0", "s1", "s2"]
            for k in (1, 2, 3):
                aliases = aliases_all[:k]
                pooldbapi.close_all()
                conn = pooldbapi.connect(
                    specs if backend == "postgresql"
                    else {a: f"driver=sqlite;database={p}" for a, p in files.items()})
                mine = with_list(texts, aliases)

                def pooled(conn=conn, mine=mine, params=params) -> None:
                    cur = conn.cursor()
                    for text, p in zip(mine, params, strict=True):
                        cur.execute(text, p or None)
                    conn.commit()
                got = interleaved(native, pooled, reset, rounds)
                bound, target = (1 / 0.9, ">= 0.9x rows/s") if k == 1 else \
                    (1 / 0.7, ">= 0.7x rows/s")
                out.append(row(kind, backend, k, STATEMENTS * ROWS, got, target, bound))
                print(out[-1], flush=True)
                if backend == "sqlite" and k > 1:
                    # what k files cost natively: each file its rows (every k-th, as the
                    # round-robin deals them) as one statement, one thread, a commit each
                    got = interleaved(files_native(files, aliases, texts, params, literal),
                                      pooled, reset, rounds)
                    out.append(row(kind + "; native on as many files", backend, k,
                                   STATEMENTS * ROWS, got, "-", None))
                    print(out[-1], flush=True)
                conn.close()
    if raw is not None:
        raw.close()
    lite.close()
    if True not in kinds or "sqlite" not in backends:
        return out
    # the README's literal case: literal VALUES over three SQLite containers against
    # executemany of the same rows over the same containers, both through pooldbapi
    texts, _ = values_texts("?", True)
    conn = pooldbapi.connect({a: f"driver=sqlite;database={p}" for a, p in files.items()})
    lists = with_list(texts, ["s0", "s1", "s2"])
    rows = [(i, f"name {i}", i * 0.5) for i in range(STATEMENTS * ROWS)]

    def many() -> None:
        conn.cursor().executemany("insert into t@{s0,s1,s2} (a, b, c) values (?, ?, ?)", rows)
        conn.commit()

    def values() -> None:
        cur = conn.cursor()
        for text in lists:
            cur.execute(text)
        conn.commit()
    got = interleaved(many, values, truncate_lite, rounds)
    conn.close()
    out.append(row("literal VALUES vs executemany (both pooldbapi)", "sqlite", 3,
                   STATEMENTS * ROWS, got, "<= 2x", 2.0))
    print(out[-1], flush=True)
    return out


RETURNING_ROWS = 2000


def returning_cases(rounds: int, factory) -> list[dict]:
    """executemany of an insert with RETURNING (2,000 rows, each row's RETURNING row read),
    in a transaction: psycopg's executemany(returning=True) on one connection against
    pooldbapi on one container and over two."""
    import psycopg
    servers = [pinned(factory), pinned(factory)]
    for cluster in servers:
        with psycopg.connect(cluster.dsn, autocommit=True) as setup:
            setup.execute("create table r (a int, b text)")
    rows = [(i, f"name {i}") for i in range(RETURNING_ROWS)]
    raw = psycopg.connect(servers[0].dsn)

    def reset() -> None:
        for cluster in servers:
            with psycopg.connect(cluster.dsn, autocommit=True) as c:
                c.execute("truncate r")

    def native() -> None:
        with raw.cursor() as cur:
            cur.executemany("insert into r (a, b) values (%s, %s) returning a, b", rows,
                            returning=True)
            got = []
            while True:
                got += cur.fetchall()
                if not cur.nextset():
                    break
        raw.commit()
        assert len(got) == RETURNING_ROWS
    out = []
    for k in (1, 2):
        pooldbapi.close_all()
        conn = pooldbapi.connect({"p0": servers[0].conninfo(), "p1": servers[1].conninfo()})
        text = f"insert into r@{{{','.join(['p0', 'p1'][:k])}}} (a, b) values (?, ?)" \
               " returning a, b"

        def pooled(conn=conn, text=text) -> None:
            cur = conn.cursor()
            cur.executemany(text, rows)
            assert len(cur.fetchall()) == RETURNING_ROWS
            conn.commit()
        got = interleaved(native, pooled, reset, rounds)
        bound, target = (1 / 0.9, ">= 0.9x rows/s") if k == 1 else (1 / 0.7, ">= 0.7x rows/s")
        out.append(row("executemany with RETURNING", "postgresql", k, RETURNING_ROWS, got,
                       target, bound))
        print(out[-1], flush=True)
        conn.close()
    raw.close()
    return out


def frame():
    import pandas as pd
    n = FRAME_ROWS
    return pd.DataFrame({"a": range(n), "b": [f"name {i}" for i in range(n)],
                         "c": [i * 0.5 for i in range(n)], "d": [i % 7 for i in range(n)],
                         "e": [f"e{i % 13}" for i in range(n)]})


def pandas_cases(rounds: int, tmp: Path) -> list[dict]:
    import pandas as pd
    import sqlalchemy as sa
    out = []
    df = frame()
    native = sa.create_engine(f"sqlite:///{tmp / 'pn.db'}")
    pooled = sa.create_engine(f"sqlite+pooldbapi:///{tmp / 'pp.db'}")
    pooled2 = sa.create_engine("sqlite+pooldbapi://", connect_args={
        "containers": {"a": f"driver=sqlite;database={tmp / 'pa.db'}",
                       "b": f"driver=sqlite;database={tmp / 'pb.db'}"},
        "default": "{a,b}", "broadcast_ddl": True})

    def reset() -> None:
        for engine in (native, pooled, pooled2):
            with engine.begin() as c:
                c.exec_driver_sql("drop table if exists f")

    for method, bound, target in ((None, None, ""), ("multi", 1.3, "<= 1.3x")):
        label = f"to_sql(method={method!r}, chunksize=1000)"
        for k, engine in ((1, pooled), (2, pooled2)):
            got = interleaved(
                lambda method=method: df.to_sql("f", native, index=False, method=method,
                                                chunksize=1000),
                lambda engine=engine, method=method: df.to_sql("f", engine, index=False,
                                                               method=method, chunksize=1000),
                reset, rounds)
            out.append(row(label, "sqlite", k, FRAME_ROWS, got, target if k == 1 else "",
                           bound if k == 1 else None))
            print(out[-1], flush=True)
    reset()
    df.to_sql("f", native, index=False)
    df.to_sql("f", pooled, index=False)
    got = interleaved(lambda: pd.read_sql("select * from f", native),
                      lambda: pd.read_sql("select * from f", pooled), lambda: None, rounds)
    out.append(row("read_sql", "sqlite", 1, FRAME_ROWS, got, "", None))
    print(out[-1], flush=True)
    for engine in (native, pooled, pooled2):
        engine.dispose()
    return out


def orm_and_core_cases(rounds: int, factory, tmp: Path) -> list[dict]:
    import sqlalchemy as sa
    from sqlalchemy.orm import DeclarativeBase, Session, mapped_column

    class Base(DeclarativeBase):
        pass

    class Item(Base):
        __tablename__ = "item"
        id = mapped_column(sa.Integer, primary_key=True)
        name = mapped_column(sa.String(40), nullable=False)
        score = mapped_column(sa.Float, nullable=False)

    out = []
    servers = [pinned(factory), pinned(factory)]
    pg = [f"postgres@127.0.0.1:{c.port}/postgres" for c in servers]
    engines = {
        ("postgresql", 1): (sa.create_engine(f"postgresql+psycopg://{pg[0]}"),
                            sa.create_engine(f"postgresql+pooldbapi://{pg[0]}")),
        ("postgresql", 2): (sa.create_engine(f"postgresql+psycopg://{pg[0]}"),
                            sa.create_engine("postgresql+pooldbapi://", connect_args={
                                "containers": {"p0": servers[0].conninfo(),
                                               "p1": servers[1].conninfo()},
                                "default": "{p0,p1}", "broadcast_ddl": True})),
        ("sqlite", 1): (sa.create_engine(f"sqlite:///{tmp / 'on.db'}"),
                        sa.create_engine(f"sqlite+pooldbapi:///{tmp / 'op.db'}")),
    }
    for (backend, k), (native, pooled) in engines.items():
        # on PostgreSQL the native side writes cluster 0's table, which pooldbapi's lists
        # include: made once, through pooldbapi (DDL broadcast to the list)
        for engine in (pooled,) if backend == "postgresql" else (native, pooled):
            with engine.begin() as c:
                c.exec_driver_sql("drop table if exists item")
            Base.metadata.create_all(engine, checkfirst=False)

        def reset(native=native, pooled=pooled) -> None:
            for engine in (native, pooled):
                with engine.begin() as c:
                    c.execute(Item.__table__.delete())

        def flush(engine) -> None:
            with Session(engine) as session:
                session.add_all([Item(name=f"n{i}", score=i * 0.5)
                                 for i in range(ORM_OBJECTS)])
                session.commit()

        got = interleaved(lambda native=native: flush(native),
                          lambda pooled=pooled: flush(pooled), reset, rounds)
        out.append(row("ORM add_all + commit", backend, k, ORM_OBJECTS, got,
                       "<= 1.5x" if k == 1 else "", 1.5 if k == 1 else None))
        print(out[-1], flush=True)
        rows = [{"name": f"n{i}", "score": i * 0.5} for i in range(CORE_ROWS)]

        def core(engine, rows=rows) -> None:
            with engine.begin() as c:
                c.execute(sa.insert(Item.__table__), rows)

        got = interleaved(lambda native=native: core(native),
                          lambda pooled=pooled: core(pooled), reset, rounds)
        out.append(row("Core executemany", backend, k, CORE_ROWS, got, "", None))
        print(out[-1], flush=True)
        native.dispose()
        pooled.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default="values,returning,pandas,orm")
    parser.add_argument("--backends", default="postgresql,sqlite",
                        help="the multi-row VALUES cases' back-ends")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    pin_client()
    only = set(args.only.split(","))
    rows: list[dict] = []
    with clusters() as factory:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                kinds = tuple(k for k, name in ((False, "params"), (True, "literals"))
                              if name in only or "values" in only)
                if kinds:
                    rows += values_cases(args.rounds, factory, Path(tmp), kinds,
                                         tuple(args.backends.split(",")))
                if "returning" in only:
                    rows += returning_cases(args.rounds, factory)
                if "pandas" in only:
                    rows += pandas_cases(args.rounds, Path(tmp))
                if "orm" in only:
                    rows += orm_and_core_cases(args.rounds, factory, Path(tmp))
        finally:
            pooldbapi.close_all()
    report("datastack", rows, ["workload", "backend", "containers", "native_rows_s",
                               "pooldbapi_rows_s", "time_ratio", "native_cpu_s",
                               "pooldbapi_cpu_s", "target", "met"])


if __name__ == "__main__":
    main()
