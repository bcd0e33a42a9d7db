"""pooldbapi.aio over python-oracledb's async thin mode, and the oracle+pooldbapi_async dialect.
No Oracle server can run on these machines: what needs none is tested here (the dialect, its
compiled SQL against the native oracle+oracledb_async dialect's, a connect that fails on a
closed port: awaited on the loop's thread through oracledb's async API, no worker thread);
the round trips at the end run when POOLDBAPI_TEST_ORACLE_DSN names a server."""
from __future__ import annotations

import asyncio
import threading

import oracledb
import pytest
from pgcluster import free_port
from test_oracle import ORACLE_DSN, needs_oracle

import pooldbapi
import pooldbapi.aio
from pooldbapi.backends import oracle_async

sa = pytest.importorskip("sqlalchemy")
pytest.importorskip("greenlet", reason="SQLAlchemy's asyncio extension needs greenlet")
from sqlalchemy.ext.asyncio import create_async_engine

SECRET = "s3cret-pw"


def test_the_dialect_resolves_by_its_entry_point_and_uses_pooldbapi_aio():
    from sqlalchemy.engine import url
    dialect = url.make_url("oracle+pooldbapi_async://").get_dialect()
    assert dialect.__name__ == "OracleDialect_pooldbapi_async"
    assert dialect.__module__ == "pooldbapi.sqlalchemy.aio"
    assert dialect.is_async and dialect.driver == "pooldbapi_async"
    engine = create_async_engine("oracle+pooldbapi_async://scott:tiger@db.example:1521/"
                                 "?service_name=FREEPDB1")
    dbapi = engine.sync_engine.dialect.dbapi
    assert dbapi.driver is pooldbapi.aio
    assert dbapi.paramstyle == pooldbapi.paramstyle and dbapi.Error is pooldbapi.Error
    assert engine.sync_engine.dialect.create_connect_args(engine.sync_engine.url) == (
        [], {"containers": {"db": {"driver": "oracle", "user": "scott", "password": "tiger",
                                   "dsn": "db.example:1521/FREEPDB1"}}})


def test_statements_compile_as_the_native_async_dialect_compiles_them():
    ours = create_async_engine("oracle+pooldbapi_async://scott:tiger@db:1521/"
                               "?service_name=S").sync_engine.dialect
    # (the markers pooldbapi takes, qmark, asked of the native dialect too: pooldbapi renders
    # them as Oracle's :1, :2 itself)
    native = create_async_engine("oracle+oracledb_async://scott:tiger@db:1521/?service_name=S",
                                 paramstyle=ours.paramstyle).sync_engine.dialect
    assert native.is_async and native.driver == "oracledb"
    meta = sa.MetaData()
    items = sa.Table("items", meta, sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
                     sa.Column("name", sa.String(40)), sa.Column("born", sa.DateTime))
    statements = [
        sa.select(items).where(items.c.name == "x").order_by(items.c.id).limit(5).offset(10),
        sa.insert(items).values(name="y").returning(items.c.id),
        sa.update(items).where(items.c.id == 3).values(name=sa.func.upper(items.c.name)),
        sa.delete(items).where(items.c.born < sa.func.sysdate()),
        sa.select(sa.func.count()).select_from(items).where(items.c.name.like("a%")),
    ]
    for stmt in statements:
        a, b = stmt.compile(dialect=ours), stmt.compile(dialect=native)
        assert str(a) == str(b)
        assert a.params == b.params
    ddl = sa.schema.CreateTable(items)
    assert str(ddl.compile(dialect=ours)) == str(ddl.compile(dialect=native))


def _chain(exc: BaseException):
    seen = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def test_a_connect_to_a_closed_port_is_awaited_on_the_loop_and_names_the_container(
        monkeypatch, no_threads):
    port = free_port()  # nothing listens there
    opened, opened_sync = [], []
    real, real_sync = oracledb.connect_async, oracledb.connect

    def connect_async(*args, **kwargs):
        opened.append(threading.get_ident())
        return real(*args, **kwargs)

    def connect(*args, **kwargs):
        opened_sync.append(threading.get_ident())
        return real_sync(*args, **kwargs)
    monkeypatch.setattr(oracledb, "connect_async", connect_async)
    monkeypatch.setattr(oracledb, "connect", connect)

    async def main():
        conn = await pooldbapi.aio.connect(
            {"ora": f"driver=oracle;user=scott;password={SECRET};host=127.0.0.1;port={port};"
                    f"service_name=FREEPDB1;tcp_connect_timeout=2"})
        # (connect() itself runs on the process's shared connect threads: counted from here,
        # the calls' threads)
        threads = set(threading.enumerate())
        assert conn.calls.native
        with pytest.raises(pooldbapi.OperationalError) as info:
            await conn.cursor().execute("select 1 from dual")
        await conn.close()
        # (but for the pools' one reaper of the process, started with its first pool, and
        # the process's health prober, started once a container is unhealthy: it reconnects
        # from its own thread with the synchronous API, as for every back-end)
        started = {t.name for t in set(threading.enumerate()) - threads}
        assert not started - {"pooldbapi-reaper", "pooldbapi-health"}, \
            f"a thread was started: {started}"
        return threading.get_ident(), info.value

    loop_thread, err = asyncio.run(main())
    assert opened and set(opened) == {loop_thread}  # oracledb's async API, on the loop
    assert loop_thread not in opened_sync
    assert err.container == "ora" and "ora" in str(err)
    chain = _chain(err)
    assert any(isinstance(e, oracledb.Error) for e in chain)  # the driver's own error, kept
    for exc in chain:
        for text in (str(exc), repr(exc), *map(str, exc.args)):
            assert SECRET not in text


def test_a_connection_with_an_oracle_and_a_sqlite_container_keeps_its_worker_thread(tmp_path):
    async def main():
        conn = await pooldbapi.aio.connect(
            {"ora": "driver=oracle;user=u;host=127.0.0.1;port=1;service_name=S",
             "lite": f"driver=sqlite;database={tmp_path / 'l.db'}"})
        native = conn.calls.native
        await conn.close()
        return native

    assert asyncio.run(main()) is False


# With a server (POOLDBAPI_TEST_ORACLE_DSN=user/password@host:port/service)

def _containers():
    user_password, dsn = ORACLE_DSN.split("@", 1)
    user, password = user_password.split("/", 1)
    return {"ora": {"driver": "oracle", "user": user, "password": password, "dsn": dsn}}


@needs_oracle
def test_aio_round_trip_over_async_thin_sessions(no_threads):
    import datetime

    async def main():
        conn = await pooldbapi.aio.connect(_containers(), autocommit=True)
        assert conn.calls.native
        cur = conn.cursor()
        await cur.execute("drop table if exists pooldbapi_at purge")
        await cur.execute("create table pooldbapi_at (id number(10) primary key,"
                          " name varchar2(20), born date)")
        await conn.set_autocommit(False)
        await cur.execute("insert into pooldbapi_at values (?, ?, ?)",
                          (1, "ann", datetime.datetime(2020, 1, 2)))
        assert cur.rowcount == 1 and cur.lastrowid
        phys = conn.sync.transaction.borrowed["ora"]
        assert isinstance(phys.link.raw, oracle_async.Connection)
        assert isinstance(phys.link.raw.raw, oracledb.AsyncConnection)
        await conn.commit()
        with pytest.raises(pooldbapi.IntegrityError) as info:
            await cur.execute("insert into pooldbapi_at (id) values (1)")
        assert info.value.sqlstate == "ORA-00001"
        await conn.rollback()
        await cur.executemany("insert into pooldbapi_at (id, name) values (?, ?)",
                              [(i, f"n{i}") for i in range(10, 20)])
        await conn.rollback()
        await cur.execute("select id, name, born from pooldbapi_at")
        assert await cur.fetchall() == [(1, "ann", datetime.datetime(2020, 1, 2))]
        assert [d[1] for d in cur.description][:2] == [pooldbapi.NUMBER, pooldbapi.STRING]
        await conn.set_autocommit(True)
        await cur.execute("drop table pooldbapi_at purge")
        await conn.close()

    asyncio.run(main())


@needs_oracle
def test_create_async_engine_round_trip_on_oracle():
    async def main():
        engine = create_async_engine("oracle+pooldbapi_async://",
                                     connect_args={"containers": _containers()})
        async with engine.connect() as conn:
            value = (await conn.execute(sa.text("select 41 + 1 from dual"))).scalar()
        await engine.dispose()
        return value

    assert asyncio.run(main()) == 42
