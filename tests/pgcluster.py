"""Throwaway PostgreSQL clusters on free loopback ports, for the tests and the benchmarks."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def bindir() -> Path:
    """Return the directory of the newest installed PostgreSQL server binaries."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parent.parent.name))
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise RuntimeError("PostgreSQL server binaries not found: run the README's test command,"
                       " which installs them (Debian package postgresql)")


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(args: list[str]) -> list[str]:
    # The server refuses to run as root: use the unprivileged postgres account there.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


class Cluster:
    """One running PostgreSQL server in a temporary directory."""

    def __init__(self, base: Path, template: Path | None = None, settings: dict[str, str] | None
                 = None, standby_of: Cluster | None = None) -> None:
        self.bin = bindir()
        self.dir = base
        self.data = base / "data"
        self.port = free_port()
        self.settings = settings or {}
        if standby_of is not None:
            # a streaming standby: a base backup of the running primary, with -R writing
            # standby.signal and primary_conninfo
            base.mkdir(parents=True)
            self._own(base)
            self._run([str(self.bin / "pg_basebackup"), "-D", str(self.data), "-R", "-X",
                       "stream", "--no-sync", "-c", "fast", "-h", "127.0.0.1", "-p",
                       str(standby_of.port), "-U", "postgres"])
        elif template is not None:
            shutil.copytree(template, self.data, symlinks=True)
        else:
            self.data.mkdir(parents=True)
            self._own(base)
            self._run([str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U",
                       "postgres", "--no-sync", "-E", "UTF8", "--locale=C"])
        self._own(base)
        self.start()

    def _own(self, path: Path) -> None:
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "postgres:postgres", str(path)], check=True)

    def _run(self, args: list[str]) -> None:
        subprocess.run(_as_server_user(args), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def conninfo(self, **extra: str) -> str:
        """Return a pooldbapi connection string for this cluster."""
        pairs = {"driver": "postgresql", "host": "127.0.0.1", "port": str(self.port),
                 "user": "postgres", "dbname": "postgres", **extra}
        return ";".join(f"{k}={v}" for k, v in pairs.items())

    def start(self) -> None:
        opts = [f"-p {self.port}", "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.dir}", "-c fsync=off",
                "-c synchronous_commit=off", "-c full_page_writes=off",
                "-c max_connections=100", "-c max_prepared_transactions=10",
                "-c lock_timeout=20s"]  # a test that leaves a lock fails instead of hanging
        opts += [f"-c {k}={v}" for k, v in self.settings.items()]
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                   str(self.dir / "server.log"), "-o", " ".join(opts), "-w", "-t", "60", "start"])

    def _set(self, setting: str) -> None:
        import psycopg
        with psycopg.connect(self.dsn, autocommit=True) as raw:
            raw.execute(setting)
            raw.execute("select pg_reload_conf()")

    @contextmanager
    def statement_log(self) -> Iterator[Callable[[], str]]:
        """Log every statement the server runs while inside; yields a function that returns the
        server log written since entering (what the server itself saw)."""
        log = self.dir / "server.log"
        start = log.stat().st_size
        self._set("alter system set log_statement = 'all'")
        try:
            yield lambda: log.read_bytes()[start:].decode(errors="replace")
        finally:
            self._set("alter system reset log_statement")

    def sql(self, statement: str) -> list[tuple[object, ...]]:
        """Run one statement in autocommit on this server (the test's own session)."""
        import psycopg
        with psycopg.connect(self.dsn, autocommit=True) as raw:
            cur = raw.execute(statement)
            return cur.fetchall() if cur.description else []

    def apply_delay(self, delay: str) -> None:
        """On a standby: set recovery_min_apply_delay ('0', '2s') and reload."""
        self._set(f"alter system set recovery_min_apply_delay = '{delay}'")

    def promote(self) -> None:
        """On a standby: make it a primary of its own (pg_ctl promote, waited for)."""
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "promote"])

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (mode immediate simulates a crash)."""
        subprocess.run(_as_server_user([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m",
                                        mode, "-w", "stop"]),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


class ClusterFactory:
    """Starts clusters from one initdb'd template and stops them all at the end."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="pooldbapi-pg-"))
        os.chmod(self.base, 0o755)
        self.template: Path | None = None
        self.clusters: list[Cluster] = []

    def new(self, **settings: str) -> Cluster:
        if self.template is None:
            first = Cluster(self.base / "template")
            first.stop()
            self.template = first.data
        cluster = Cluster(self.base / f"c{len(self.clusters)}-{time.monotonic_ns()}",
                          self.template, settings)
        self.clusters.append(cluster)
        return cluster

    def standby(self, primary: Cluster, **settings: str) -> Cluster:
        """Start a streaming standby of a running primary (pg_basebackup -R) on a free port."""
        cluster = Cluster(self.base / f"s{len(self.clusters)}-{time.monotonic_ns()}",
                          settings=settings, standby_of=primary)
        self.clusters.append(cluster)
        return cluster

    def close(self) -> None:
        for cluster in self.clusters:
            cluster.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)
