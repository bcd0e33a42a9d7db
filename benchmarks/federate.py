"""Federated selects through pooldbapi against the same statement inside one PostgreSQL (the
physical best case), each run in a fresh process (time and peak RSS; the clock starts after the imports), several samples taken
in turn (one of each engine, then again): the median time, and the median of each round's
ratio to the one database. Every engine's rows are checked
equal, value by value, to the one database's.

grouped: 1M facts on PostgreSQL joined with 10k stores on SQLite, grouped by region; pooldbapi
sends partial aggregates (eager aggregation); "rows" is the same statement in a form that
defeats the push-down (sum(f.amount + 0)), which moves the filtered rows instead.
two-clusters: two 1M-row tables on two PostgreSQL clusters joined on their key with a
selective filter on each side.

Prints the explain of the grouped statement. Writes results/federate.json and
results/federate_explain.json."""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile

from common import HERE, clusters, report

GROUPED = ("select s.region, count(*) as n, sum(f.amount{extra}) as total from facts{pg} f"
           " join stores{lite} s on s.id = f.store_id where f.amount > 10 group by s.region"
           " order by s.region")
TWO = ("select a.id, a.label, b.score from big_a{pg} a join big_b{pg2} b on b.id = a.id"
       " where a.grp = 7 and b.score = 3 order by a.id")

RUN = r"""
import json, resource, sys, time
sys.path.insert(0, {tests!r})
which, statement = {which!r}, {statement!r}
# the modules are imported before the clock starts (a long-running program has them); the
# clock covers connecting, running and fetching
if which == "single":
    import psycopg
elif which == "duckdb":
    import sqlite3, tempfile, duckdb, pandas as pd, psycopg
else:
    import pooldbapi, pooldbapi.federated.engine, pooldbapi.backends.postgresql, pooldbapi.backends.sqlite
start = time.perf_counter()
if which == "single":
    with psycopg.connect({dsn!r}) as c:
        rows = c.execute(statement).fetchall()
elif which == "duckdb":
    # DuckDB as the local engine, fed what pooldbapi's eager plan fetches: the partial
    # aggregates of facts and the stores, loaded through pandas
    db = duckdb.connect(tempfile.mkdtemp() + "/local.duckdb")
    with psycopg.connect({dsn!r}) as c:
        frame = pd.DataFrame.from_records(
            [(k, n, float(s)) for k, n, s in c.execute(
                'select store_id, count(*), sum(amount) from facts f where (f.amount > 10)'
                ' group by store_id')], columns=["store_id", "n", "total"])
    db.register("f", frame)
    lite = sqlite3.connect({lite_file!r})
    stores = pd.DataFrame.from_records(lite.execute('select "id", "region" from stores s')
                                       .fetchall(), columns=["id", "region"])
    db.register("s", stores)
    rows = db.execute("select s.region, sum(f.n) as n, sum(f.total) as total from f join s"
                      " on s.id = f.store_id group by s.region order by s.region").fetchall()
else:
    conn = pooldbapi.connect({containers!r})
    rows = conn.execute(statement).fetchall()
    conn.close()
elapsed = time.perf_counter() - start
print(json.dumps({{"rows": [[float(v) if hasattr(v, "as_tuple") else v for v in r]
                            for r in rows], "seconds": elapsed,
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}, default=str))
"""


def same(rows: list[list], expected: list[list]) -> bool:
    """Equal rows in the same order; numbers equal to 1e-9 (decimals come back as floats)."""
    if len(rows) != len(expected):
        return False
    for row, want in zip(rows, expected, strict=True):
        for a, b in zip(row, want, strict=True):
            if isinstance(a, int | float) and isinstance(b, int | float):
                if abs(a - b) > 1e-9 * max(1.0, abs(b)):
                    return False
            elif a != b:
                return False
    return True


def run(code_args: dict) -> dict:
    code = RUN.format(tests=str(HERE.parent / "tests"), **code_args)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--facts", type=int, default=1_000_000)
    parser.add_argument("--stores", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=3)
    args = parser.parse_args()
    import sqlite3

    import psycopg
    with clusters() as factory:
        one, two = factory.new(), factory.new()
        folder = tempfile.mkdtemp()
        lite_file = f"{folder}/stores.db"
        stores = [(i, f"region {i % 20}") for i in range(args.stores)]
        db = sqlite3.connect(lite_file)
        db.execute("create table stores (id int primary key, region text)")
        db.executemany("insert into stores values (?, ?)", stores)
        db.commit()
        db.close()
        with psycopg.connect(one.dsn, autocommit=True) as raw:
            raw.execute("create table facts (id int, store_id int, amount numeric(10,2),"
                        " note text)")
            raw.execute(f"insert into facts select i, i % {args.stores}, (i % 100)::numeric,"
                        f" 'note ' || i from generate_series(1, {args.facts}) i")
            raw.execute("create table stores (id int primary key, region text)")
            with raw.cursor().copy("COPY stores FROM STDIN") as copy:
                for row in stores:
                    copy.write_row(row)
            for name, cluster in (("big_a", one), ("big_b", two)):
                with psycopg.connect(cluster.dsn, autocommit=True) as c:
                    c.execute(f"create table {name} (id int primary key, grp int, score int,"
                              " label text)")
                    c.execute(f"insert into {name} select i, i % 100, i % 97, 'label ' || i"
                              f" from generate_series(1, {args.facts}) i")
            # the one database holds both big tables too
            raw.execute("create table big_b (id int primary key, grp int, score int,"
                        " label text)")
            raw.execute(f"insert into big_b select i, i % 100, i % 97, 'label ' || i"
                        f" from generate_series(1, {args.facts}) i")
            raw.execute("analyze")
        with psycopg.connect(two.dsn, autocommit=True) as c:
            c.execute("analyze")
        containers = {"pg": one.conninfo(), "pg2": two.conninfo(),
                      "lite": f"driver=sqlite;database={lite_file}"}
        cases: list[tuple[str, str, str]] = [
            ("grouped", "single", GROUPED.format(pg="", lite="", extra="")),
            ("grouped", "pooldbapi", GROUPED.format(pg="@pg", lite="@lite", extra="")),
            ("grouped", "rows", GROUPED.format(pg="@pg", lite="@lite", extra=" + 0")),
            ("two-clusters", "single", TWO.format(pg="", pg2="")),
            ("two-clusters", "pooldbapi", TWO.format(pg="@pg", pg2="@pg2")),
        ]
        # measured where installed (the bench extra); not imported here: a child's peak RSS
        # starts from this process's size
        if importlib.util.find_spec("duckdb") and importlib.util.find_spec("pandas"):
            cases.append(("grouped", "duckdb", ""))
        import pooldbapi
        conn = pooldbapi.connect(containers)
        plan = conn.cursor().explain(GROUPED.format(pg="@pg", lite="@lite", extra=""))
        steps = [list(step) for step in plan.fetchall()]
        conn.close()
        pooldbapi.close_all()
        print("explain of the grouped statement:")
        for step in steps:
            print(" ", tuple(step))
        (HERE / "results").mkdir(exist_ok=True)
        (HERE / "results" / "federate_explain.json").write_text(json.dumps(steps, indent=2))
        samples: dict[tuple[str, str], list[dict]] = {}
        for _ in range(args.samples):
            for scenario, which, statement in cases:
                samples.setdefault((scenario, which), []).append(run({
                    "which": which, "statement": statement, "dsn": one.dsn,
                    "containers": containers, "lite_file": lite_file}))
        names = {"single": "one PostgreSQL (best case)",
                 "pooldbapi": "pooldbapi (partial aggregates pushed)",
                 "rows": "pooldbapi, rows moved (push-down defeated)",
                 "duckdb": "DuckDB as the local engine (same partial inputs)"}
        table = []
        for (scenario, which), runs in samples.items():
            expected = samples[(scenario, "single")][0]["rows"]
            assert all(same(r["rows"], expected) for r in runs), (scenario, which)
            # the median of the ratios of runs taken in the same round
            ratio = statistics.median(r["seconds"] / s["seconds"] for r, s in
                                      zip(runs, samples[(scenario, "single")], strict=True))
            seconds = statistics.median(r["seconds"] for r in runs)
            table.append({
                "scenario": scenario,
                "engine": names[which] if scenario == "grouped" or which == "single" else
                "pooldbapi (filters pushed to each cluster)",
                "rows_out": len(runs[0]["rows"]), "seconds": round(seconds, 3),
                "peak_rss_mib": round(statistics.median(r["rss"] for r in runs) / 1024, 1),
                "vs_single": round(ratio, 2), "equal": True,
                "samples": len(runs)})
        report("federate", table, ["scenario", "engine", "rows_out", "seconds",
                                   "peak_rss_mib", "vs_single", "equal", "samples"])


if __name__ == "__main__":
    main()
