"""Every wait is bounded: connects to a server that never answers, idle connections and pools."""
from __future__ import annotations

import os
import socket
import time

import pytest

import pooldbapi
from pooldbapi.backends import postgresql


@pytest.fixture
def silent_port():
    """A port that accepts TCP connections (the kernel's backlog) and never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


def test_a_server_that_never_answers_is_bounded_by_the_default_connect_timeout(
        silent_port, monkeypatch):
    monkeypatch.setattr(postgresql, "CONNECT_TIMEOUT", 2)
    conn = pooldbapi.connect(
        {"hung": f"driver=postgresql;host=127.0.0.1;port={silent_port};user=postgres"})
    started = time.monotonic()
    with pytest.raises(pooldbapi.OperationalError, match="hung"):
        conn.execute("select 1")
    assert time.monotonic() - started < 30  # libpq alone would wait for ever
    assert pooldbapi.health()["hung"].healthy is False
    conn.close()


def test_reads_fail_over_from_a_server_that_never_answers(silent_port, pg, monkeypatch):
    monkeypatch.setattr(postgresql, "CONNECT_TIMEOUT", 2)
    conn = pooldbapi.connect(
        {"hung": f"driver=postgresql;host=127.0.0.1;port={silent_port};user=postgres",
         "good": pg.conninfo()}, default="{hung,good}", autocommit=True)
    cur = conn.cursor()
    for _ in range(4):
        assert cur.execute("select 1").fetchall() == [(1,)]
    assert pooldbapi.health()["hung"].healthy is False
    conn.close()


def test_the_reaper_closes_idle_connections_and_unused_pools(tmp_path):
    files = [tmp_path / f"r{i}.db" for i in range(30)]
    for path in files:
        conn = pooldbapi.connect({"a": f"driver=sqlite;database={path};idle-timeout=0.3"})
        conn.execute("select 1")
        conn.close()
    assert sum(s.idle for s in pooldbapi.pool_stats()) >= 30

    def open_files() -> int:
        names = {str(p) for p in files}
        count = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                count += os.readlink(f"/proc/self/fd/{fd}") in names
            except OSError:
                pass
        return count

    deadline = time.monotonic() + 15
    while (open_files() or pooldbapi.pool_stats()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open_files() == 0  # without traffic, idle connections were closed
    assert pooldbapi.pool_stats() == []  # and the unused pools were dropped


def test_a_write_whose_session_dies_while_it_runs_is_of_unknown_outcome(pg):
    """In autocommit nobody can know whether the server committed a statement whose
    connection was lost while it ran: the error says so, rather than 'not written'."""
    conn = pooldbapi.connect({"p": pg.conninfo()}, autocommit=True)
    conn.execute("create table lost (x int)")
    try:
        with pytest.raises(pooldbapi.OperationalError, match="outcome of this insert is unknown"
                           ) as info:
            conn.execute("insert into lost select pg_terminate_backend(pg_backend_pid())::int")
        assert info.value.unknown == {"p": (0,)}
    finally:
        conn.execute("drop table lost")
        conn.close()
