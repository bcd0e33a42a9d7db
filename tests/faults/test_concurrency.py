"""Threads and processes: no deadlock between connections, a connection shared by threads loses
nothing, a child after fork never sends anything on its parent's sessions."""
from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading

import psycopg
import pytest

import pooldbapi


@pytest.fixture
def table(pg, pg2):
    admin = pooldbapi.connect({"p1": pg.conninfo(), "p2": pg2.conninfo()}, default="{p1,p2}",
                              broadcast_ddl=True, autocommit=True)
    admin.execute("create table cc (id int primary key)")
    yield
    admin.execute("drop table cc")
    admin.close()


def ids(*clusters):
    out = []
    for cluster in clusters:
        with psycopg.connect(cluster.dsn) as raw:
            out += [r[0] for r in raw.execute("select id from cc")]
    return sorted(out)


def in_use():
    return sum(s.in_use for s in pooldbapi.pool_stats())


@pytest.mark.parametrize("autocommit", [False, True])
def test_connections_writing_over_one_list_never_deadlock(table, pg, pg2, autocommit):
    extra = ";maximum-number-of-pooled-connections=1;pool-timeout=5"
    specs = {"p1": pg.conninfo() + extra, "p2": pg2.conninfo() + extra}
    errors: list[BaseException] = []

    def writer(t: int) -> None:
        conn = pooldbapi.connect(specs, default="{p1,p2}", autocommit=autocommit, seed=t)
        try:
            for k in range(25):
                base = (t * 100 + k) * 4
                conn.cursor().executemany("insert into cc (id) values (?)",
                                          [(base + j,) for j in range(4)])
                if not autocommit:
                    conn.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "writers hang"
    assert errors == []
    assert len(ids(pg, pg2)) == 4 * 25 * 4
    assert in_use() == 0


@pytest.mark.parametrize("autocommit", [False, True])
def test_a_connection_shared_by_threads_loses_no_row(table, pg, pg2, autocommit):
    conn = pooldbapi.connect({"p1": pg.conninfo(), "p2": pg2.conninfo()}, default="{p1,p2}",
                             autocommit=autocommit)
    errors: list[BaseException] = []

    def writer(t: int) -> None:
        try:
            for k in range(40):
                conn.execute("insert into cc (id) values (?)", (t * 1000 + k,))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    conn.commit()
    assert ids(pg, pg2) == sorted(t * 1000 + k for t in range(8) for k in range(40))
    assert in_use() == 0  # nothing leaked
    conn.close()


def _child(body) -> int:
    """Run body in a forked child; its exit code (0: passed). The child leaves with os._exit
    after running pooldbapi's exit handler and the finalisers (not pytest's handlers)."""
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            code = body()
            gc.collect()
            pooldbapi.close_all()
        except BaseException:  # noqa: BLE001 - the parent sees the exit code
            code = 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_child_never_touches_its_parents_open_transaction(table, pg):
    conn = pooldbapi.connect({"p": pg.conninfo()})
    conn.execute("insert into cc (id) values (1)")
    backend_pid = conn.transaction.borrowed["p"].link.raw.info.backend_pid

    def child() -> int:
        try:
            conn.execute("insert into cc (id) values (2)")
            return 1  # ran on the parent's session
        except pooldbapi.InterfaceError as err:
            if "parent process" not in str(err):
                return 4
        try:
            conn.commit()
            return 5  # a commit in the child must not report success for the parent's rows
        except pooldbapi.Error:
            pass
        conn.close()
        pooldbapi.close_all()
        return 0

    assert _child(child) == 0
    # the parent's session is alive and still holds its transaction
    assert conn.transaction.borrowed["p"].link.raw.info.backend_pid == backend_pid
    conn.commit()
    assert ids(pg) == [1]
    assert pooldbapi.health().get("p") is None or pooldbapi.health()["p"].healthy
    conn.close()


def test_a_child_without_an_open_transaction_opens_sessions_of_its_own(table, pg):
    conn = pooldbapi.connect({"p": pg.conninfo()}, autocommit=True)
    conn.execute("insert into cc (id) values (1)")  # leaves an idle pooled session

    def child() -> int:
        conn.execute("insert into cc (id) values (2)")
        conn.close()
        return 0

    assert _child(child) == 0
    conn.execute("insert into cc (id) values (3)")  # the parent's pooled session still works
    assert ids(pg) == [1, 2, 3]
    conn.close()


SYS_EXIT_CHILD = """
import os, sys
import pooldbapi
conn = pooldbapi.connect({"p": sys.argv[1]})
conn.execute("insert into cc (id) values (1)")
if os.fork() == 0:
    sys.exit(0)  # exit handlers and finalisers run here, with the transaction open
os.wait()
conn.execute("insert into cc (id) values (2)")
conn.commit()
print(pooldbapi.health().get("p") is None)
"""


def test_a_child_leaving_with_sys_exit_leaves_the_parents_transaction_alone(table, pg):
    out = subprocess.run([sys.executable, "-c", SYS_EXIT_CHILD, pg.conninfo()],
                         capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "True"  # the parent never saw its container fail
    assert ids(pg) == [1, 2]
