"""Does a multi-row VALUES list over several containers grow linearly with its rows? Literal
rows of 1k, 4k and 16k rows over three SQLite containers, one transaction each, against
executemany of the same rows (interleaved rounds, medians); then what the scan of an uncached
statement costs per row (rows of five placeholders, as generated, and distinct literal rows;
client CPU, best of the rounds; and the same scan with every row left to the tokenizer, the row
expression off), and what the lexers alone cost on the same texts (sqlparse's,
which the scan read before, and sqlglot's tokenizer, pure or compiled as installed); then
sqlglot's parse cost per statement shape of the OData translation, and of the structure of
federated selects (parsed and read, then the cached lookup every later execution makes).

    python benchmarks/values.py [--rounds 3] [--scan-only]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import sqlglot
from common import report
from sqlglot.tokens import SQLGLOTC_INSTALLED
from sqlparse.lexer import Lexer

import pooldbapi
from pooldbapi.federated import shape as federated_shape
from pooldbapi.sql import parse as scan
from pooldbapi.sql import structure
from pooldbapi.sql.parse import parse
from pooldbapi.sql.render import render

SIZES = (1000, 4000, 16000)
SHAPES = [
    "select a, b from Journals where a = :p0 and b between 1 and 2 order by a desc limit 5",
    "select count(*) from Journals where d like 'x%'",
    "insert into Journals (ID, amount, description) values (:p0, :p1, :p2)",
    "update Journals set description = 'x where y', amount = :p0 where ID = :p1",
    "delete from Journals where ID = :p0",
]
FEDERATED = [
    ("select c.name, o.id from customers@lite c join orders@pg o on o.cust_id = c.id"
    " where o.amount > %s and c.name <> 'x where y'"),
    ("select s.region, count(*), sum(f.amount) from facts@pg f join stores@lite s"
    " on s.id = f.store_id where f.amount > 10 group by s.region order by s.region"),
    ("select name from customers@lite c where not exists (select 1 from orders@pg o"
    " where o.cust_id = c.id) and c.id in (1, 2, 3)"),
]


def one_round(folder: Path, n: int) -> tuple[float, float]:
    containers = {a: f"driver=sqlite;database={folder / a}.db" for a in "abc"}
    conn = pooldbapi.connect(containers, default="{a,b,c}", broadcast_ddl=True)
    conn.autocommit = True
    conn.execute("drop table if exists t")
    conn.execute("create table t (id int, s text)")
    conn.autocommit = False
    text = "insert into t@{a,b,c} (id, s) values " + ", ".join(
        f"({i}, 'row ''{i}'' (x),(y); where')" for i in range(n))
    started = time.perf_counter()
    conn.execute(text)
    conn.commit()
    literal = time.perf_counter() - started
    rows = [(i, f"row '{i}' (x),(y); where") for i in range(n)]
    started = time.perf_counter()
    conn.cursor().executemany("insert into t@{a,b,c} (id, s) values (?, ?)", rows)
    conn.commit()
    many = time.perf_counter() - started
    total = sum(conn.execute(f"select count(*) from t@{a}").fetchone()[0] for a in "abc")
    assert total == 2 * n, (total, n)
    conn.close()
    return literal, many


SCAN_SIZES = (100, 1000, 4000, 16000)


def _best(function, rounds: int) -> float:
    """The least client CPU (seconds) of `rounds` calls: the machine is shared."""
    best = float("inf")
    for _ in range(rounds):
        started = time.thread_time()
        function()
        best = min(best, time.thread_time() - started)
    return best


def _row_costs(text: str, n: int, rounds: int, sqlparse_lexer: Lexer) -> dict[str, float]:
    stmt = scan._scan(text)
    assert len(stmt.values_rows) == n

    def rendered() -> None:
        stmt.derived.rendered.clear()
        render(stmt, "format")

    def tokenizer_only() -> None:  # the scan with every row left to the tokenizer
        saved = scan._literal_rows, scan._plain_rows
        scan._literal_rows = scan._plain_rows = lambda text: None  # type: ignore[assignment]
        try:
            scan._scan(text)
        finally:
            scan._literal_rows, scan._plain_rows = saved

    # the scan and the rows' spans (what a statement over a list needs), and the scan alone
    # (what one container needs: rows taken unread are never read then)
    return {"scan_us_per_row": _best(lambda: len(scan._scan(text).values_rows), rounds)
            / n * 1e6,
            "scan_unread_us_per_row": _best(lambda: scan._scan(text), rounds) / n * 1e6,
            "scan_tokenizer_only_us_per_row": _best(tokenizer_only, rounds) / n * 1e6,
            "render_us_per_row": _best(rendered, rounds) / n * 1e6,
            "sqlglot_tokenizer_us_per_row":
                _best(lambda: scan._Tokenizer().tokenize(text), rounds) / n * 1e6,
            "sqlparse_lexer_us_per_row":
                _best(lambda: list(sqlparse_lexer.get_tokens(text)), rounds) / n * 1e6}


def scan_costs(rounds: int) -> None:
    """Per row: the scan of an uncached statement (parse() of a text over the cache's bound:
    every execution scans it), its rendering for psycopg, and the lexers alone."""
    sqlparse_lexer = Lexer.get_default_instance()
    out = []
    for shape in ("five placeholders", "literal"):
        for n in SCAN_SIZES:
            if shape == "literal":
                rows = ", ".join(f"({i}, 'row ''{i}'' (x),(y)', {i}.5, null, {i % 7})"
                                 for i in range(n))
            else:
                rows = ", ".join(["(?, ?, ?, ?, ?)"] * n)
            text = "insert into t@{a,b} (a, b, c, d, e) values " + rows
            out.append({"rows": n, "shape": shape, "bytes": len(text),
                        **_row_costs(text, n, rounds, sqlparse_lexer)})
    build = "compiled (sqlglotc)" if SQLGLOTC_INSTALLED else "pure"
    print(f"sqlglot {sqlglot.__version__}, {build}")
    report("values_scan", out, list(out[0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scan-only", action="store_true")
    args = parser.parse_args()
    scan_costs(max(args.rounds, 5))
    print()
    if args.scan_only:
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        samples: dict[int, list[tuple[float, float]]] = {n: [] for n in SIZES}
        for _ in range(args.rounds):
            for n in SIZES:
                samples[n].append(one_round(Path(tmp), n))
        base = statistics.median(s[0] for s in samples[SIZES[0]])
        for n in SIZES:
            literal = statistics.median(s[0] for s in samples[n])
            many = statistics.median(s[1] for s in samples[n])
            rows.append({"rows": n, "values_s": literal, "executemany_s": many,
                         "values_over_executemany": literal / many,
                         "growth_vs_1k": literal / base, "rows_vs_1k": n / SIZES[0]})
    report("values", rows, list(rows[0]))
    print()
    parse_rows = []
    for shape in SHAPES:
        sqlglot.parse_one(shape)
        count = 200
        started = time.perf_counter()
        for _ in range(count):
            sqlglot.parse_one(shape)
        parse_rows.append({"statement": shape[:60], "parse_us": (time.perf_counter() - started)
                           / count * 1e6})
    report("values_sqlglot_parse", parse_rows, ["statement", "parse_us"])
    print()
    federated_rows = []
    for text in FEDERATED:
        stmt = parse(text)
        count = 200
        started = time.perf_counter()
        for _ in range(count):
            for fn in (structure.tree, federated_shape.shape, federated_shape._unresolved):
                fn.cache.clear()  # type: ignore[attr-defined]
            federated_shape.of_select(stmt, "postgres")
        cold = (time.perf_counter() - started) / count * 1e6
        started = time.perf_counter()
        for _ in range(count * 10):
            federated_shape.of_select(stmt, "postgres")
        warm = (time.perf_counter() - started) / count / 10 * 1e6
        federated_rows.append({"statement": text[:60], "parse_and_read_us": cold,
                               "cached_us": warm})
    report("values_structure", federated_rows, ["statement", "parse_and_read_us", "cached_us"])


if __name__ == "__main__":
    main()
