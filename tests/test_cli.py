"""The `pooldbapi` command: demo and sql."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time

import pytest

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


def _settings(tmp_path, extra=""):
    path = tmp_path / "s.toml"
    path.write_text(f'{extra}\n[containers.a]\ndriver = "sqlite"\ndatabase = "{tmp_path}/a.db"\n'
                    f'[containers.b]\ndriver = "sqlite"\ndatabase = "{tmp_path}/b.db"\n')
    return str(path)


def _rows(tmp_path, alias):
    import contextlib
    import sqlite3
    # sqlite3's own context manager ends a transaction but leaves the connection open
    # (Python 3.13 warns when such a connection is collected): closing() closes it
    with contextlib.closing(sqlite3.connect(tmp_path / f"{alias}.db")) as raw:
        return [r[0] for r in raw.execute("select x from t order by x")]


def _command(*args, env=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "pooldbapi", *args], capture_output=True,
                          text=True, timeout=60, env=env, check=False, **kwargs)


def test_an_unknown_settings_key_is_an_error_naming_it_and_the_file(tmp_path, capsys):
    settings = _settings(tmp_path, 'defualt = "{a,b}"')
    assert main(["sql", "--settings", settings, "select 1"]) == 1
    err = capsys.readouterr().err
    assert "unknown key 'defualt'" in err and settings in err
    assert err.count("\n") == 1  # said once


def test_settings_file_options_apply_and_flags_win(tmp_path, capsys):
    settings = _settings(tmp_path, 'default = "{a,b}"\nbroadcast-ddl = true\nseed = 3')
    assert main(["sql", "--settings", settings, "create table t (x int)"]) == 0
    assert _rows(tmp_path, "a") == [] and _rows(tmp_path, "b") == []  # created on both
    assert main(["sql", "--settings", settings, "--default", "{b}",
                 "insert into t values (1)"]) == 0
    assert _rows(tmp_path, "b") == [1] and _rows(tmp_path, "a") == []


def test_a_failing_statement_in_autocommit_says_what_was_committed(tmp_path, capsys):
    settings = _settings(tmp_path)
    main(["sql", "--settings", settings, "create table t@a (x int primary key)"])
    capsys.readouterr()
    script = ("insert into t@a values (1); insert into t@a values (2);"
              " insert into t@a values (2); insert into t@a values (3)")
    assert main(["sql", "--settings", settings, script]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("pooldbapi: statement 3 failed: IntegrityError")
    assert err[1] == "pooldbapi: committed before: statements 1, 2"
    assert _rows(tmp_path, "a") == [1, 2]  # statement 4 did not run


def test_a_failing_statement_in_a_transaction_rolls_the_run_back_and_says_so(tmp_path, capsys):
    settings = _settings(tmp_path)
    main(["sql", "--settings", settings, "create table t@a (x int primary key)"])
    capsys.readouterr()
    assert main(["sql", "--settings", settings, "--transaction", "insert into t@a values (1)",
                 "insert into t@a values (2)", "insert into t@a values (2)"]) == 1
    err = capsys.readouterr().err
    assert "rolled back: statements 1, 2 (the transaction; nothing of it was committed)" in err
    assert _rows(tmp_path, "a") == []
    assert main(["sql", "--settings", settings, "--transaction", "insert into t@a values (1)",
                 "insert into t@a values (2)"]) == 0
    assert _rows(tmp_path, "a") == [1, 2]


def test_statements_from_a_file_and_from_standard_input(tmp_path):
    settings = _settings(tmp_path)
    script = tmp_path / "load.sql"
    script.write_text("create table t@a (x int, s text);\n-- a comment; not a statement\n"
                      "insert into t@a values (1, 'a;b');\ninsert into t@a values (2, ';');\n")
    done = _command("sql", "--settings", settings, "-f", str(script))
    assert done.returncode == 0, done.stderr
    done = _command("sql", "--settings", settings, "--format", "csv",
                    input="select s from t@a order by x;\nselect count(*) as n from t@a;\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["s", "a;b", ";", "n", "2"]


def test_json_lines_and_the_settings_from_the_environment(tmp_path):
    settings = _settings(tmp_path)
    env = {**os.environ, "POOLDBAPI_SETTINGS": settings}
    done = _command("sql", "--format", "json", "create table t@b (x int)",
                    "insert into t@b values (7)", "select x from t@b", env=env)
    assert done.returncode == 0, done.stderr
    docs = [json.loads(line) for line in done.stdout.splitlines()]
    assert docs[1] == {"statement": 2, "containers": {"b": 1}, "rowcount": 1}
    assert docs[2] == {"statement": 3, "containers": {"b": 1}, "columns": ["x"],
                       "rows": [[7]]}


def test_containers_lists_reachability_health_and_pools(tmp_path):
    settings = _settings(tmp_path)
    done = _command("containers", "--settings", settings, "--format", "json")
    rows = json.loads(done.stdout)
    assert [r["container"] for r in rows] == ["a", "b"]
    assert all(r["reachable"].startswith("yes") and r["healthy"] == "yes" for r in rows)
    assert all(r["open"] == 1 and r["maximum"] == 10 for r in rows)


def test_version_and_an_unreachable_server_said_once(tmp_path):
    assert _command("--version").stdout.startswith("pooldbapi ")
    path = tmp_path / "pg.toml"
    path.write_text('[containers.p]\ndriver = "postgresql"\nhost = "127.0.0.1"\nport = 9\n'
                    'user = "x"\n')
    done = _command("sql", "--settings", str(path), "select 1")
    assert done.returncode == 1
    assert done.stderr.count("Connection refused") == 1, done.stderr  # no log line as well
    assert done.stderr.count("pooldbapi:") == 1
    assert "OperationalError" in done.stderr


def _spawn(args, tmp_path):
    pexpect = pytest.importorskip("pexpect")
    env = {**os.environ, "POOLDBAPI_HISTORY": str(tmp_path / "history"), "TERM": "xterm",
           "COLUMNS": "100"}
    # a generous timeout: a loaded machine may take long to start the interpreter
    # Ctrl-C as a terminal's user has it: a suite started in the background by a shell
    # inherits SIGINT ignored, and Python then installs no handler of its own for it
    return pexpect.spawn(sys.executable, ["-m", "pooldbapi", *args], env=env, timeout=90,
                         encoding="utf-8", dimensions=(40, 100), preexec_fn=_default_sigint)


def _default_sigint():
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_the_prompt_takes_multi_line_statements_and_ctrl_c_clears_the_line(tmp_path):
    settings = _settings(tmp_path, 'default = "a"')
    child = _spawn(["sql", "--settings", settings], tmp_path)
    child.expect_exact("pooldbapi> ")
    child.sendline("select 41 + 1")
    child.expect_exact("...> ")
    child.sendline("  as answer;")
    child.expect("answer")
    child.expect("42")
    child.expect_exact("pooldbapi> ")
    child.sendline("select 'never")
    child.expect_exact("...> ")
    _interrupt_at_prompt(child)  # drops the unfinished statement
    # the answer, not the echo of the line: had the dropped line stayed, the quote it opened
    # would hold this one and nothing would be answered
    child.sendline("select 'aft' || 'er' as w;")
    child.expect("after")
    child.expect_exact("pooldbapi> ")
    child.sendeof()
    child.expect(pexpect_eof())
    child.close()
    assert child.exitstatus == 0
    assert "select 41 + 1" in (tmp_path / "history").read_text()


def _interrupt_at_prompt(child, tries=5):
    """Ctrl-C at the prompt shown last, until the fresh prompt comes back. CPython's readline
    shows the prompt before it starts waiting for a key, and a SIGINT that lands in between is
    noticed only at the next key (a person would see nothing happen and press Ctrl-C again):
    so the interrupt is sent again if no prompt follows it."""
    import pexpect
    for _ in range(tries):
        time.sleep(0.2)
        child.sendintr()
        if child.expect_exact(["pooldbapi> ", pexpect.TIMEOUT], timeout=10) == 0:
            return
    raise AssertionError(f"no prompt after {tries} Ctrl-C: {child.before!r}")


def pexpect_eof():
    import pexpect
    return pexpect.EOF


def _slow_settings(tmp_path, rows=120):
    path = tmp_path / "slow.toml"
    path.write_text(f'[containers.src]\ndriver = "sqlite"\ndatabase = "{tmp_path}/src.db"\n'
                    f'[containers.dst]\ndriver = "sqlite"\ndatabase = "{tmp_path}/dst.db"\n'
                    'max-calls-per-second = 40\n')
    main(["sql", "--settings", str(path), "create table s@src (x int)",
          "insert into s@src select value from json_each('[" +
          ",".join(str(i) for i in range(rows)) + "]')", "create table t@dst (x int)"])
    return str(path)


def test_progress_shows_on_a_terminal_and_ctrl_c_ends_with_130(tmp_path):
    settings = _slow_settings(tmp_path, rows=600)
    child = _spawn(["sql", "--settings", settings, "--transaction",
                    "insert into t@dst select x from s@src"], tmp_path)
    child.expect("rows written")  # 600 rows at 40 calls/s: 15 seconds of progress
    child.sendintr()
    child.expect("interrupted at statement 1; rolled back: statement 1")
    child.expect(pexpect_eof())
    child.close()
    assert child.exitstatus == 130
    assert _rows(tmp_path, "dst") == []


def test_no_progress_when_output_is_piped(tmp_path):
    settings = _slow_settings(tmp_path)
    done = _command("sql", "--settings", settings, "insert into t@dst select x from s@src")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "rowcount: 120" in done.stdout


def test_every_connect_option_is_a_flag(tmp_path, capsys, monkeypatch):
    settings = _settings(tmp_path, 'default = "{a,b}"')
    import pooldbapi.cli as command
    seen = {}
    real = command.connect

    def spy(**kwargs):
        seen.update(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(command, "connect", spy)
    assert main(["sql", "--settings", settings, "--strategy", "least-busy", "--seed", "9",
                 "--affinity", "transaction", "--broadcast-ddl", "--default", "{b,a}",
                 "create table t (x int)"]) == 0
    assert seen["strategy"] == "least-busy" and seen["seed"] == "9"
    assert seen["affinity"] == "transaction" and seen["broadcast_ddl"] is True
    assert seen["default"] == "{b,a}" and seen["autocommit"] is True
    assert main(["sql", "--settings", settings, "--two-phase", "select 1"]) == 1
    assert seen["two_phase"] is True and seen["autocommit"] is False
    assert "NotSupportedError" in capsys.readouterr().err  # sqlite has no two-phase commit
    assert main(["sql", "--settings", settings, "--shared-state", "redis://127.0.0.1:9/0",
                 "select 1"]) == 0  # an unreachable store costs a warning, not the statement
    assert seen["shared_state"] == "redis://127.0.0.1:9/0"


def test_containers_reaches_an_odata_service_only_through_its_metadata(tmp_path, gateways, pg):
    from pgcluster import free_port
    gateway = gateways()
    closed = free_port()  # nothing listens there
    path = tmp_path / "o.toml"
    path.write_text(
        f'[containers.up]\ndriver = "odata"\nurl = "{gateway.url}"\ntoken = "tok-up"\n'
        f'[containers.refused]\ndriver = "odata"\nurl = "http://127.0.0.1:{closed}/odata/"\n'
        'timeout = 2\n'
        f'[containers.wrongpath]\ndriver = "odata"\n'
        f'url = "http://127.0.0.1:{gateway.port}/no/such/service/"\ntoken = "tok-wp"\n'
        f'[containers.pgup]\ndriver = "postgresql"\nhost = "127.0.0.1"\nport = {pg.port}\n'
        'user = "postgres"\ndbname = "postgres"\n'
        f'[containers.pgdown]\ndriver = "postgresql"\nhost = "127.0.0.1"\nport = {closed}\n'
        'user = "postgres"\nconnect_timeout = 2\n')
    done = _command("containers", "--settings", str(path), "--format", "json")
    assert done.returncode == 0, done.stderr
    rows = {r["container"]: r for r in json.loads(done.stdout)}
    assert rows["up"]["reachable"].startswith("yes") and rows["up"]["healthy"] == "yes"
    assert gateway.wait_for("GET /odata/v4/eol/$metadata")
    assert rows["refused"]["reachable"].startswith("no") and rows["refused"]["healthy"] == "no"
    assert "refused" in rows["refused"]["reachable"].lower() or \
        "ConnectionError" in rows["refused"]["reachable"]
    # an answer, but not the service's metadata: not reachable, and no health failure
    assert rows["wrongpath"]["reachable"].startswith("no") and "404" in \
        rows["wrongpath"]["reachable"]
    assert rows["wrongpath"]["healthy"] == "yes"
    assert rows["pgup"]["reachable"].startswith("yes") and rows["pgup"]["healthy"] == "yes"
    assert rows["pgdown"]["reachable"].startswith("no") and rows["pgdown"]["healthy"] == "no"


def test_verbose_is_taken_before_and_after_the_subcommand(tmp_path):
    settings = _settings(tmp_path, 'default = "a"')
    for args in (["-v", "sql"], ["sql", "-v"], ["sql", "--verbose"], ["containers", "-v"]):
        tail = ["select 1"] if "sql" in args else []
        done = _command(*args, "--settings", settings, *tail)
        assert done.returncode == 0, (args, done.stderr)
    # -v shows pooldbapi's log lines: a container marked unhealthy says so on stderr
    path = tmp_path / "pg.toml"
    path.write_text('[containers.p]\ndriver = "postgresql"\nhost = "127.0.0.1"\nport = 9\n'
                    'user = "x"\n')
    quiet = _command("sql", "--settings", str(path), "select 1")
    loud = _command("sql", "-v", "--settings", str(path), "select 1")
    assert loud.returncode == quiet.returncode == 1
    assert len(loud.stderr.splitlines()) > len(quiet.stderr.splitlines())
