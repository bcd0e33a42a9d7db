"""The async dialects sqlite+pooldbapi_async and postgresql+pooldbapi_async: create_async_engine
through the entry points, Core, the pooldbapi_containers option, an AsyncSession ORM round
trip; the rows checked in the databases themselves."""
from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing

import pytest

sa = pytest.importorskip("sqlalchemy")
pytest.importorskip("greenlet", reason="SQLAlchemy's asyncio extension needs greenlet")
from sqlalchemy import orm
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

import pooldbapi.aio


def model() -> tuple[type, type]:
    class Base(orm.DeclarativeBase):
        pass

    class Item(Base):
        __tablename__ = "items"
        id = orm.mapped_column(sa.Integer, primary_key=True)
        name = orm.mapped_column(sa.String(40), nullable=False)
    return Base, Item


def test_the_async_dialects_are_registered_entry_points():
    from sqlalchemy.dialects import registry
    from sqlalchemy.engine import url
    for name in ("sqlite+pooldbapi_async", "postgresql+pooldbapi_async"):
        dialect = url.make_url(f"{name}://").get_dialect()
        assert dialect.is_async and dialect.driver == "pooldbapi_async"
        assert dialect.__module__ == "pooldbapi.sqlalchemy.aio"
    assert registry  # the lookup went through the entry points, not a registration here


def test_core_over_a_list_with_the_containers_option(tmp_path):
    containers = {f"c{i}": f"driver=sqlite;database={tmp_path / f'c{i}.db'}" for i in (1, 2)}
    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("v", sa.String(10)))

    async def main():
        engine = create_async_engine("sqlite+pooldbapi_async://", connect_args={
            "containers": containers, "default": "{c1,c2}", "broadcast_ddl": True, "seed": 0})
        async with engine.begin() as conn:
            await conn.run_sync(table.metadata.create_all)
        async with engine.begin() as conn:
            await conn.execute(table.insert(), [{"id": i, "v": f"v{i}"} for i in range(6)])
        async with engine.connect() as conn:
            only = await conn.execution_options(pooldbapi_containers="c2")
            await only.execute(table.insert().values(id=100, v="c2 only"))
            await only.commit()
            found = (await only.execute(sa.select(table.c.v).where(table.c.id == 100))).all()
            assert found == [("c2 only",)]
            rows = (await conn.execute(
                sa.select(sa.func.count()).select_from(table))).scalar_one()
            assert rows in (3, 4)  # one container's rows: pooldbapi never unions a list
        await engine.dispose()

    asyncio.run(main())
    held = {}
    for i in (1, 2):
        with closing(sqlite3.connect(tmp_path / f"c{i}.db")) as raw, raw:
            held[f"c{i}"] = sorted(r[0] for r in raw.execute("select id from t"))
    assert sorted(held["c1"] + held["c2"]) == [0, 1, 2, 3, 4, 5, 100]
    assert len(held["c1"]) == 3 and 100 in held["c2"]


def test_asyncsession_orm_round_trip_on_sqlite(tmp_path):
    base, item = model()

    async def main():
        engine = create_async_engine(f"sqlite+pooldbapi_async:///{tmp_path / 'orm.db'}")
        async with engine.begin() as conn:
            await conn.run_sync(base.metadata.create_all)
        async with AsyncSession(engine, expire_on_commit=False) as session:
            objects = [item(name=f"o{i}") for i in range(5)]
            session.add_all(objects)
            await session.commit()
        async with AsyncSession(engine) as session:
            got = (await session.execute(sa.select(item).order_by(item.id))).scalars().all()
            names = [(o.id, o.name) for o in got]
            first = await session.get(item, objects[0].id)
            first.name = "renamed"
            await session.commit()
        await engine.dispose()
        return [(o.id, o.name) for o in objects], names

    written, read = asyncio.run(main())
    assert written == read and len({i for i, _ in written}) == 5
    with closing(sqlite3.connect(tmp_path / "orm.db")) as raw, raw:
        held = raw.execute("select id, name from items order by id").fetchall()
    assert held == [(written[0][0], "renamed"), *written[1:]]


@pytest.mark.postgresql
def test_asyncsession_orm_round_trip_over_two_postgresql_servers(pg, pg2):
    base, item = model()
    import psycopg

    async def main():
        engine = create_async_engine("postgresql+pooldbapi_async://", connect_args={
            "containers": {"p1": pg.conninfo(), "p2": pg2.conninfo()}, "default": "{p1,p2}",
            "broadcast_ddl": True, "seed": 2})
        async with engine.begin() as conn:
            await conn.run_sync(base.metadata.drop_all)
            await conn.run_sync(base.metadata.create_all)
        async with AsyncSession(engine, expire_on_commit=False) as session:
            objects = [item(name=f"o{i}") for i in range(4)]
            session.add_all(objects)
            await session.commit()
        names = []
        async with engine.connect() as conn:
            for alias in ("p1", "p2"):  # a flush's batch lands whole on one container
                on = await conn.execution_options(pooldbapi_containers=alias)
                streamed = await on.stream(sa.select(item.name).order_by(item.name))
                names += [row[0] async for row in streamed]
        await engine.dispose()
        return [(o.id, o.name) for o in objects], names

    written, names = asyncio.run(main())
    held = []
    for cluster in (pg, pg2):
        with psycopg.connect(cluster.dsn) as raw:
            held += raw.execute("select id, name from items").fetchall()
            raw.execute("drop table items")
    assert sorted(held) == sorted(written)
    assert sorted(names) == sorted(n for _, n in written)


def test_pooldbapi_errors_reach_the_application(tmp_path):
    async def main():
        engine = create_async_engine(f"sqlite+pooldbapi_async:///{tmp_path / 'e.db'}")
        async with engine.connect() as conn:
            with pytest.raises(sa.exc.DBAPIError) as info:
                await conn.exec_driver_sql("select * from missing_table")
        await engine.dispose()
        return info.value

    err = asyncio.run(main())
    assert isinstance(err.orig, pooldbapi.aio.OperationalError | pooldbapi.aio.ProgrammingError)
    assert "missing_table" in str(err.orig)


@pytest.mark.parametrize("url", ["sqlite+pooldbapi:///x.db", "postgresql+pooldbapi://h/db"])
def test_a_synchronous_pooldbapi_url_is_refused_by_create_async_engine(url):
    """Not silently the native dialect's async driver, around pooldbapi."""
    with pytest.raises(pooldbapi.aio.InterfaceError, match="pooldbapi_async"):
        create_async_engine(url)


def test_sqlite_stream_reads_through_a_streaming_cursor_as_over_aiosqlite(tmp_path):
    path = tmp_path / "s.db"
    with closing(sqlite3.connect(path)) as raw, raw:
        raw.execute("create table t (x integer)")
        raw.executemany("insert into t values (?)", [(i,) for i in range(5000)])
    opened = []
    real = pooldbapi.aio.AsyncConnection.cursor

    def cursor(self, *, stream=False):
        opened.append(stream)
        return real(self, stream=stream)

    async def main():
        engine = create_async_engine(f"sqlite+pooldbapi_async:///{path}")
        async with engine.connect() as conn:
            streamed = await conn.stream(sa.text("select x from t order by x"))
            rows = [row[0] async for row in streamed]
        await engine.dispose()
        return rows

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pooldbapi.aio.AsyncConnection, "cursor", cursor)
        assert asyncio.run(main()) == list(range(5000))
    assert True in opened  # the rows came through pooldbapi's streaming cursor
