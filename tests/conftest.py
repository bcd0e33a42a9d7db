"""Fixtures: SQLite files in temporary directories and throwaway PostgreSQL clusters."""
from __future__ import annotations

import atexit
from collections.abc import Iterator

import pytest
from pgcluster import Cluster, ClusterFactory

import pooldbapi


@pytest.fixture(scope="session")
def clusters() -> Iterator[ClusterFactory]:
    factory = ClusterFactory()
    atexit.register(factory.close)  # also when the run is interrupted
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def pg(clusters: ClusterFactory) -> Cluster:
    """One PostgreSQL cluster shared by the session's tests."""
    return clusters.new()


@pytest.fixture(scope="session")
def pg2(clusters: ClusterFactory) -> Cluster:
    """A second PostgreSQL cluster, for lists over two servers."""
    return clusters.new()


@pytest.fixture(autouse=True)
def _fresh_pools() -> Iterator[None]:
    yield
    pooldbapi.close_all()


@pytest.fixture
def no_threads(monkeypatch):
    """A call of pooldbapi.aio that would take a worker thread (the connection's, or the
    runner's per container) fails instead."""
    from pooldbapi import runner
    from pooldbapi.aio import calls

    def refuse(*args, **kwargs):
        raise AssertionError("a worker thread was asked for")
    monkeypatch.setattr(calls.Calls, "_worker", refuse)
    monkeypatch.setattr(runner, "executor", refuse)


@pytest.fixture
def lite(tmp_path):
    """Five SQLite containers eol1..eol5 on files, default {eol1..eol5}, DDL broadcast."""
    containers = {f"eol{i}": f"driver=sqlite;database={tmp_path / f'eol{i}.db'}"
                  for i in range(1, 6)}
    conn = pooldbapi.connect(containers, default="{eol1,eol2,eol3,eol4,eol5}",
                             broadcast_ddl=True, seed=7)
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def cap():
    """SAP CAP serving the OData test service (started once: it takes seconds to boot)."""
    from odata_service_fixture import CapService
    service = CapService()
    yield service
    service.close()


@pytest.fixture
def gateways(cap):
    """Start nginx gateways in front of the service: gateways(rate, burst, retry_after)."""
    from odata_service_fixture import Gateway
    started = []

    def start(rate=200, burst=200, retry_after=None, headers=None, unavailable=False):
        gateway = Gateway(cap.port, rate, burst, retry_after, headers, unavailable)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.close()


@pytest.fixture(scope="session")
def redis_server():
    """A real redis-server shared by the session's tests (flushed by each that needs it)."""
    from redisserver import RedisServer
    server = RedisServer()
    yield server
    server.stop()
