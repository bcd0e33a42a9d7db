"""`pooldbapi containers --watch`: the live table, through the real command (a pipe and a
pty) and inside a process whose traffic it shows."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import threading

import pytest

import pooldbapi
from pooldbapi.cli.watch import watch
from pooldbapi.settings import load_settings


def _settings(tmp_path, extra: str = "") -> str:
    path = tmp_path / "watch.toml"
    path.write_text(f'[containers.a]\ndriver = "sqlite"\ndatabase = "{tmp_path}/a.db"\n'
                    f'[containers.b]\ndriver = "sqlite"\ndatabase = "{tmp_path}/b.db"\n{extra}')
    return str(path)


def _rows(text: str, alias: str) -> list[list[str]]:
    """The cells of alias's row in each table printed, in order."""
    return [[c.strip() for c in line.strip().strip("│").split("│")]
            for line in text.splitlines() if line.startswith(f"│ {alias} ")]


def test_watch_prints_a_table_per_round_and_stops_after_count(tmp_path):
    # p's server is not there: its probe fails, so it shows unhealthy
    settings = _settings(tmp_path, '[containers.p]\ndriver = "postgresql"\nhost = "127.0.0.1"\n'
                                   'port = 9\nuser = "x"\npassword = "Watch-s3cret"\n')
    done = subprocess.run([sys.executable, "-m", "pooldbapi", "containers", "--settings",
                           settings, "--watch", "--count", "2", "--interval", "0.1"],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={k: v for k, v in os.environ.items() if k != "COLUMNS"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("pooldbapi containers") == 2
    header = next(line for line in done.stdout.splitlines() if "┃ container" in line)
    for name in ("health", "probe", "used", "idle", "waiting", "calls/s", "rows/s",
                 "throttled", "429s", "errors"):
        assert name in header
    for alias in ("a", "b"):
        rounds = _rows(done.stdout, alias)
        assert len(rounds) == 2
        assert all(r[2] == "healthy" and r[3].endswith(" ms") for r in rounds)
        assert rounds[1][5] == "1"  # the probe's connection, idle in the pool
    (first, second) = _rows(done.stdout, "p")
    assert first[3] == second[3] == "failed" and second[2] == "unhealthy (2)"
    assert "Watch-s3cret" not in done.stdout + done.stderr


def test_watch_on_a_terminal_redraws_one_table(tmp_path):
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(sys.executable, ["-m", "pooldbapi", "containers", "--settings",
                                           _settings(tmp_path), "--watch", "--count", "3",
                                           "--interval", "0.1"],
                          env={**os.environ, "TERM": "xterm", "COLUMNS": "120"},
                          encoding="utf-8", timeout=30, dimensions=(30, 120))
    out = child.read()
    child.close()
    assert child.exitstatus == 0
    assert "calls/s" in out and "healthy" in out
    assert "\x1b[" in out  # redrawn in place by cursor movements, not printed three times


def test_watch_shows_the_traffic_of_its_process(tmp_path):
    specs = load_settings(settings=_settings(tmp_path)).containers
    conn = pooldbapi.connect(settings=_settings(tmp_path), autocommit=True)
    conn.execute("create table t@a (x int)")
    stop = threading.Event()

    def traffic() -> None:
        cur = conn.cursor()
        while not stop.is_set():
            cur.executemany("insert into t@a (x) values (?)", [(1,), (2,)])

    worker = threading.Thread(target=traffic)
    out = io.StringIO()
    worker.start()
    try:
        assert watch(specs, interval=0.3, count=2, out=out, probe=False) == 0
    finally:
        stop.set()
        worker.join()
    conn.close()
    (_, second) = _rows(out.getvalue(), "a")
    calls, rows = float(second[7]), float(second[8])
    assert calls > 0 and rows >= calls  # two rows per call
    assert _rows(out.getvalue(), "b")[1][7] == "0.0"
