"""The `pooldbapi` command: demo and sql."""
from __future__ import annotations

import io
import subprocess
import sys

from pooldbapi.cli import demo, main


def test_demo_counts_are_exact(tmp_path):
    out = io.StringIO()
    counts = demo(tmp_path, out)
    assert counts["select count(*) x10, {eol1..eol5}"] == {f"eol{i}": 2 for i in range(1, 6)}
    assert counts["insert x30, {eol1,eol2,eol2}"] == {"eol1": 10, "eol2": 20}
    assert counts["Tasks rows stored per container"] == {"eol1": 10, "eol2": 20, "eol3": 0,
                                                         "eol4": 0, "eol5": 0}
    assert "eol5" in out.getvalue().splitlines()[2]
    speedup = float(out.getvalue().rsplit("speed-up: ", 1)[1].split("x")[0])
    assert speedup > 3  # five containers at 50 calls/s each against one


def test_python_dash_m_demo_runs():
    done = subprocess.run([sys.executable, "-m", "pooldbapi", "demo"], capture_output=True,
                          text=True, check=True)
    assert "select count(*) x10" in done.stdout


def test_sql_command_prints_rows_and_containers(tmp_path, capsys):
    settings = tmp_path / "s.toml"
    settings.write_text(f'[containers.a]\ndriver = "sqlite"\ndatabase = "{tmp_path}/a.db"\n')
    assert main(["sql", "--settings", str(settings), "create table t (x int)",
                 "insert into t values (41)", "select x + 1 as y from t@a"]) == 0
    out = capsys.readouterr().out
    assert "y" in out and "42" in out and "containers: a=1" in out


def test_sql_command_reports_errors(tmp_path, capsys):
    settings = tmp_path / "s.toml"
    settings.write_text(f'[containers.a]\ndriver = "sqlite"\ndatabase = "{tmp_path}/a.db"\n')
    assert main(["sql", "--settings", str(settings), "select * from t@nope"]) == 1
    assert "'nope'" in capsys.readouterr().err
