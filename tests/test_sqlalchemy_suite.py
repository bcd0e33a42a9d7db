"""SQLAlchemy's own dialect compliance suite (sqlalchemy.testing.suite, run from compliance/)
against each pooldbapi dialect and, in the same run, against the native dialect of the same
database: the pooldbapi dialect must pass every test the native one passes."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

pytest.importorskip("sqlalchemy")

SUITE = Path(__file__).resolve().parent.parent / "compliance"

UNTESTABLE = ("ServerSideCursorsTest::test_conn_option",
              "ServerSideCursorsTest::test_ss_cursor_status")
"""The suite tells a server-side cursor by the driver's name (psycopg: cursor.name), so these
fail for any third-party driver; test_stream_results_reads_through_a_streaming_cursor (in
test_sqlalchemy.py) checks pooldbapi's instead, and the suite's other server-side cursor tests
run."""


def _run(url: str, workdir: Path) -> dict[str, str]:
    """Run the suite against one URL: test name (without the dialect part) -> outcome."""
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:randomly", "--dburi", url,
         "--rootdir", str(SUITE), "-c", str(SUITE / "setup.cfg"), str(SUITE / "test_suite.py")],
        check=False, cwd=workdir, capture_output=True, text=True, timeout=900)  # it fails some
    outcomes = {}
    for line in out.stdout.splitlines():
        m = re.match(r"^(PASSED|FAILED|ERROR|SKIPPED) (\S+)", line)
        if m and "::" in m.group(2):
            # 'test_suite.py::DateTest_sqlite+pooldbapi_3_40_1::test_x' -> 'DateTest::test_x'
            name = re.sub(r"_[a-z]+\+[a-z]+_[0-9_]+::", "::", m.group(2).split("::", 1)[1])
            outcomes[name] = m.group(1)
    assert outcomes, out.stdout[-3000:] + out.stderr[-3000:]
    return outcomes


def _compare(native: dict[str, str], ours: dict[str, str]) -> None:
    passed_natively = {t for t, o in native.items() if o == "PASSED"}
    ours_passed = {t for t, o in ours.items() if o == "PASSED"}
    assert len(passed_natively) > 500  # the suite ran, not just its collection
    missing = sorted(t for t in passed_natively - ours_passed if not t.startswith(UNTESTABLE))
    assert missing == []


def test_sqlite_pooldbapi_passes_what_pysqlite_passes(tmp_path):
    _compare(_run(f"sqlite:///{tmp_path / 'native.db'}", tmp_path),
             _run(f"sqlite+pooldbapi:///{tmp_path / 'pooled.db'}", tmp_path))


def test_postgresql_pooldbapi_passes_what_psycopg_passes(pg, tmp_path):
    with psycopg.connect(pg.dsn, autocommit=True) as raw:
        for name in ("suite_native", "suite_pooled"):
            raw.execute(f"drop database if exists {name}")
            raw.execute(f"create database {name}")
        for name in ("suite_native", "suite_pooled"):
            with psycopg.connect(pg.dsn.replace("dbname=postgres", f"dbname={name}"),
                                 autocommit=True) as db:
                db.execute("create schema test_schema")
                db.execute("create schema test_schema_2")
    base = f"postgres@127.0.0.1:{pg.port}"
    _compare(_run(f"postgresql+psycopg://{base}/suite_native", tmp_path),
             _run(f"postgresql+pooldbapi://{base}/suite_pooled", tmp_path))
