"""A grouped join of a large PostgreSQL table with a small SQLite table, evaluated locally by
pooldbapi, against the same statement with both tables inside one PostgreSQL (the physical
best case). Time and peak RSS of each, each run in a fresh process. Writes
results/federate.json."""
from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile

from common import HERE, report

QUERY = ("select s.region, count(*) as n, sum(f.amount) as total from facts{pg} f join"
         " stores{lite} s on s.id = f.store_id where f.amount > 10 group by s.region"
         " order by s.region")

RUN = r"""
import resource, sys, time
sys.path.insert(0, {tests!r})
start = time.perf_counter()
if {which!r} == "single":
    import psycopg
    with psycopg.connect({dsn!r}) as c:
        rows = c.execute({single!r}).fetchall()
elif {which!r} == "duckdb":
    # DuckDB as the local engine: the same pushed-down inputs pooldbapi fetches, loaded in
    # batches through pandas (DuckDB's executemany is far too slow), then the statement
    import sqlite3, tempfile, duckdb, pandas as pd, psycopg
    db = duckdb.connect(tempfile.mkdtemp() + "/local.duckdb")
    db.execute("create table f (store_id INTEGER, amount DOUBLE)")
    db.execute("create table s (id INTEGER, region VARCHAR)")
    with psycopg.connect({dsn!r}) as c:
        cur = c.cursor(name="facts")
        cur.itersize = 5000
        cur.execute('select "store_id", "amount" from facts f where (f.amount > 10)')
        while batch := cur.fetchmany(5000):
            frame = pd.DataFrame.from_records([(a, float(b)) for a, b in batch],
                                              columns=["store_id", "amount"])
            db.register("batch", frame)
            db.execute("insert into f select * from batch")
            db.unregister("batch")
    lite = sqlite3.connect({lite_file!r})
    frame = pd.DataFrame.from_records(lite.execute('select "id", "region" from stores s')
                                      .fetchall(), columns=["id", "region"])
    db.register("batch", frame)
    db.execute("insert into s select * from batch")
    rows = db.execute("select s.region, count(*) as n, sum(f.amount) as total from f join s"
                      " on s.id = f.store_id where f.amount > 10 group by s.region"
                      " order by s.region").fetchall()
else:
    import pooldbapi
    conn = pooldbapi.connect({{"pg": {conninfo!r}, "lite": {lite!r}}})
    rows = conn.execute({federated!r}).fetchall()
    conn.close()
elapsed = time.perf_counter() - start
print(len(rows), elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--facts", type=int, default=1_000_000)
    parser.add_argument("--stores", type=int, default=10_000)
    args = parser.parse_args()
    import sqlite3

    import psycopg
    from pgcluster import ClusterFactory
    factory = ClusterFactory()
    try:
        cluster = factory.new()
        folder = tempfile.mkdtemp()
        lite = f"driver=sqlite;database={folder}/stores.db"
        stores = [(i, f"region {i % 20}") for i in range(args.stores)]
        db = sqlite3.connect(f"{folder}/stores.db")
        db.execute("create table stores (id int primary key, region text)")
        db.executemany("insert into stores values (?, ?)", stores)
        db.commit()
        db.close()
        with psycopg.connect(cluster.dsn, autocommit=True) as raw:
            raw.execute("create table facts (id int, store_id int, amount numeric(10,2),"
                        " note text)")
            raw.execute(f"insert into facts select i, i % {args.stores}, (i % 100)::numeric,"
                        f" 'note ' || i from generate_series(1, {args.facts}) i")
            raw.execute("create table stores (id int primary key, region text)")
            with raw.cursor().copy("COPY stores FROM STDIN") as copy:
                for row in stores:
                    copy.write_row(row)
            raw.execute("analyze")
        results = {}
        engines = ["single", "federated"]
        # measured where installed (the bench extra); not imported here: a child's peak RSS
        # starts from this process's size
        if importlib.util.find_spec("duckdb") and importlib.util.find_spec("pandas"):
            engines.append("duckdb")
        for which in engines:
            code = RUN.format(tests=str(HERE.parent / "tests"), which=which, dsn=cluster.dsn,
                              conninfo=cluster.conninfo(), lite=lite,
                              lite_file=f"{folder}/stores.db",
                              single=QUERY.format(pg="", lite=""),
                              federated=QUERY.format(pg="@pg", lite="@lite"))
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  check=True)
            n, seconds, rss = done.stdout.split()
            results[which] = (int(n), float(seconds), int(rss) / 1024)
        assert len({r[0] for r in results.values()}) == 1
        names = {"single": "one PostgreSQL (best case)", "federated": "pooldbapi local sqlite3",
                 "duckdb": "DuckDB as the local engine"}
        rows = [{"engine": names[which], "rows_out": r[0], "seconds": round(r[1], 3),
                 "peak_rss_mib": round(r[2], 1),
                 "vs_single": round(r[1] / results["single"][1], 2)}
                for which, r in results.items()]
        report("federate", rows, ["engine", "rows_out", "seconds", "peak_rss_mib",
                                  "vs_single"])
    finally:
        factory.close()


if __name__ == "__main__":
    main()
