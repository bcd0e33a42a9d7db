"""Fault scenarios against the real OData service: two SAP CAP services (o1, o2), each on a
SQLite file of its own and behind its own nginx, written by executemany while one of them
fails; then the check the PostgreSQL scenarios end with (faultlab.compare), reading the
services' files directly, and one more: no row was POSTed twice (nginx logs every POST's body).

Faults, at a drawn moment of an executemany of Tasks rows over {o1,o2}:
- the service killed (SIGKILL): nginx answers 502 for the call in flight and those after it;
  the service is started again afterwards, on the same file;
- the service stalled (SIGSTOP): nginx answers 504 once its read timeout passes, while the
  call it forwarded waits in the service; resumed afterwards, the service may still store it.

OData has no transactions: each row is one POST, acknowledged when its answer came. What a
failed call can report is the rows acknowledged (`.written`) and the one row per container in
flight (`.unknown`): a retry of that row could store it twice, so none may be made.
"""
from __future__ import annotations

import contextlib
import random
import sqlite3
import tempfile
import threading
from collections import Counter
from pathlib import Path

import requests
from aio_blocking import Loop
from faultlab import Report, compare, from_error
from odata_service_fixture import CapService, Gateway

import pooldbapi

READ_TIMEOUT = 1.0
"""Seconds nginx waits for the service before it answers 504."""


class ODataLab:
    """Two CAP services on SQLite files (o1, o2), each behind an nginx of its own."""

    def __init__(self, folder: Path | None = None, api: str = "sync") -> None:
        self.folder = Path(folder or tempfile.mkdtemp(prefix="pooldbapi-odata-lab-"))
        # "aio": every connection is pooldbapi.aio's, driven from here (tests/aio_blocking.py)
        self.loop = None if api == "sync" else Loop()
        self.services: dict[str, CapService] = {}
        self.gateways: dict[str, Gateway] = {}
        try:
            for alias in ("o1", "o2"):
                service = self.services[alias] = CapService(self.folder / f"{alias}.db")
                self.gateways[alias] = Gateway(service.port, rate=100000, burst=100000,
                                               read_timeout=READ_TIMEOUT)
        except BaseException:
            self.close()
            raise

    @property
    def aliases(self) -> list[str]:
        return list(self.services)

    def connect(self, **kwargs: object) -> pooldbapi.Connection:
        # every container keeps its turn: the drawn victim is written even after a failure
        containers = {a: f"driver=odata;url={g.url};token=tok-{a};timeout=10;"
                         "exclude-unhealthy=false" for a, g in self.gateways.items()}
        connect = pooldbapi.connect if self.loop is None else self.loop.connect
        return connect(containers, default="{o1,o2}", autocommit=True,
                       **kwargs)  # type: ignore[arg-type]

    def recover(self) -> None:
        """Every service answering again (resumed, or started on its file)."""
        for service in self.services.values():
            if service.proc.poll() is not None:
                service.start()
            else:
                service.resume()
        for alias, service in self.services.items():  # what a stalled one still held is done
            requests.get(f"http://127.0.0.1:{service.port}/odata/v4/eol/Tasks?$top=1",
                         timeout=30).raise_for_status()
            self.gateways[alias].posted()  # (waits for nginx's log to settle)

    ensure_up = recover

    def _db(self, alias: str) -> contextlib.closing[sqlite3.Connection]:
        return contextlib.closing(sqlite3.connect(self.folder / f"{alias}.db", timeout=30,
                                                  isolation_level=None))

    def reset(self) -> None:
        """No Tasks rows anywhere, the gateways' logs empty."""
        self.recover()
        for alias in self.aliases:
            with self._db(alias) as db:
                db.execute("delete from eol_Tasks")
            self.gateways[alias].forget_calls()

    def held(self) -> dict[str, list[int]]:
        """The ids (descriptions) each service's file holds, read from the file itself."""
        found = {}
        for alias in self.aliases:
            with self._db(alias) as db:
                found[alias] = sorted(int(d) for (d,) in
                                      db.execute("select description from eol_Tasks"))
        return found

    def posted_twice(self) -> list[str]:
        """Rows that reached nginx in more than one POST (any gateway, any answer)."""
        sent = Counter(str(body.get("description")) for g in self.gateways.values()
                       for _, body in g.posted())
        return [f"id {i} POSTed {n} times" for i, n in sorted(sent.items()) if n > 1]

    def close(self) -> None:
        for gateway in self.gateways.values():
            gateway.close()
        for service in self.services.values():
            service.close()
        import shutil
        shutil.rmtree(self.folder, ignore_errors=True)


def fault_during_executemany(lab: ODataLab, rng: random.Random, fault: str) -> list[str]:
    """executemany of Tasks rows over {o1,o2}; at a drawn moment one service is killed or
    stalled. Compared afterwards: the files against the error's .written and .unknown, at most
    one row in flight per container, the error naming the container, no row POSTed twice."""
    lab.reset()
    n = rng.randint(10, 120)
    victim = lab.services[rng.choice(lab.aliases)]
    action = victim.kill if fault == "kill" else victim.pause
    timer = threading.Timer(rng.uniform(0.0, 0.4), action)
    report = Report(ids=set(range(n)))
    problems: list[str] = []
    conn = lab.connect(seed=rng.random())
    try:
        timer.start()
        cur = conn.cursor()
        try:
            cur.executemany("insert into Tasks (description) values (?)",
                            [(str(i),) for i in range(n)])
        except pooldbapi.OperationalError as err:
            from_error(report, err)
            problems += _unclear(err, lab)
        else:
            report.counted = cur.containers
        timer.cancel()
        timer.join()
    finally:
        conn.close()
        lab.recover()
    return problems + compare(lab.held(), report) + lab.posted_twice()


def _unclear(err: pooldbapi.Error, lab: ODataLab) -> list[str]:
    """What is wrong with the error: it names no failed container, or no HTTP status or
    connection failure, or reports more than the one row per container that was in flight."""
    problems = []
    if err.container not in lab.aliases:
        problems.append(f"the error names no container: {err}")
    elif not any(word in str(err) for word in ("HTTP 502", "HTTP 504", "Connection")):
        problems.append(f"the error does not say what failed: {err}")
    for alias, rows in (getattr(err, "unknown", None) or {}).items():
        if len(rows) > 1:
            problems.append(f"{alias}: {len(rows)} rows reported unknown; one was in flight")
    if not getattr(err, "unknown", None):
        problems.append(f"a call failed in flight, but no row is reported unknown: {err}")
    return problems


SCENARIOS = {
    "OData: service killed during executemany (502)":
        lambda lab, rng: fault_during_executemany(lab, rng, "kill"),
    "OData: service stalled during executemany (504)":
        lambda lab, rng: fault_during_executemany(lab, rng, "stall"),
}

