"""The application's savepoints (Connection.savepoint, rollback_to_savepoint, release_savepoint;
SQLAlchemy's begin_nested): set on every container of the transaction, and on each that joins
it later; a rollback to one undoes every container's work since, and brings a transaction that
failed since (a PostgreSQL statement error) back, unless a session was lost. Checked against
the databases and, through SQLAlchemy, against the native dialects."""
from __future__ import annotations

import asyncio
import contextlib
import sqlite3

import psycopg
import pytest

import pooldbapi
import pooldbapi.aio


@pytest.fixture
def two(pg, pg2):
    """Two PostgreSQL containers a, b with an empty table sp (id int primary key)."""
    for cluster in (pg, pg2):
        with psycopg.connect(cluster.dsn, autocommit=True) as raw:
            raw.execute("drop table if exists sp")
            raw.execute("create table sp (id int primary key)")
    return {"a": pg.conninfo(), "b": pg2.conninfo()}


def held(pg, pg2) -> dict[str, list[int]]:
    out = {}
    for alias, cluster in (("a", pg), ("b", pg2)):
        with psycopg.connect(cluster.dsn) as raw:
            out[alias] = [r[0] for r in raw.execute("select id from sp order by id")]
    return out


def test_a_rollback_to_a_savepoint_undoes_every_container_s_work_since(two, pg, pg2):
    conn = pooldbapi.connect(two)
    try:
        conn.execute("insert into sp@a values (1)")
        conn.savepoint("s1")
        conn.execute("insert into sp@a values (2)")
        conn.execute("insert into sp@b values (20)")  # b joins after s1: it gets s1 too
        conn.savepoint("s2")
        conn.execute("insert into sp@b values (21)")
        conn.rollback_to_savepoint("s2")           # s2 stays set
        conn.execute("insert into sp@b values (22)")
        conn.rollback_to_savepoint("s2")
        conn.rollback_to_savepoint("s1")           # s2 is gone with it
        with pytest.raises(pooldbapi.ProgrammingError, match="no savepoint 's2'"):
            conn.rollback_to_savepoint("s2")
        conn.execute("insert into sp@b values (23)")
        conn.commit()
    finally:
        conn.close()
    assert held(pg, pg2) == {"a": [1], "b": [23]}


def test_a_statement_error_after_a_savepoint_is_undone_by_rolling_back_to_it(two, pg, pg2):
    """PostgreSQL aborts the session's transaction at the error: the pooldbapi transaction
    fails (statements raise), and a rollback to the savepoint brings it back."""
    conn = pooldbapi.connect(two)
    try:
        conn.execute("insert into sp@a values (1)")
        conn.execute("insert into sp@b values (10)")
        conn.savepoint("before")
        conn.execute("insert into sp@b values (11)")
        with pytest.raises(pooldbapi.IntegrityError):
            conn.execute("insert into sp@a values (1)")
        with pytest.raises(pooldbapi.OperationalError,
                           match="call rollback\\(\\), or roll back to a savepoint set before it"):
            conn.execute("insert into sp@a values (2)")
        conn.rollback_to_savepoint("before")
        conn.execute("insert into sp@a values (3)")
        conn.release_savepoint("before")
        with pytest.raises(pooldbapi.ProgrammingError, match="no savepoint 'before'"):
            conn.rollback_to_savepoint("before")
        conn.commit()
    finally:
        conn.close()
    assert held(pg, pg2) == {"a": [1, 3], "b": [10]}


def test_a_lost_session_cannot_be_brought_back_by_a_savepoint(two, pg, pg2):
    conn = pooldbapi.connect(two)
    try:
        conn.execute("insert into sp@a values (1)")
        conn.execute("insert into sp@b values (10)")
        pid = conn.execute("select pg_backend_pid() from sp@b").fetchone()[0]
        conn.savepoint("s")
        with psycopg.connect(pg2.dsn, autocommit=True) as admin:
            admin.execute("select pg_terminate_backend(%s)", (pid,))
        with pytest.raises(pooldbapi.OperationalError):
            conn.execute("insert into sp@b values (11)")
        with pytest.raises(pooldbapi.OperationalError, match="cannot roll back to a savepoint"):
            conn.rollback_to_savepoint("s")
        with pytest.raises(pooldbapi.OperationalError):
            conn.commit()
        conn.rollback()
        conn.execute("insert into sp@a values (2)")  # a fresh transaction goes on
        conn.commit()
    finally:
        conn.close()
    assert held(pg, pg2) == {"a": [2], "b": []}


def test_sqlite_savepoints_span_the_files_and_a_transaction_sqlite_undid_stays_failed(tmp_path):
    files = {a: str(tmp_path / f"{a}.db") for a in ("a", "b")}
    for path in files.values():
        with contextlib.closing(sqlite3.connect(path)) as raw:
            raw.execute("create table sp (id int primary key)")
    conn = pooldbapi.connect({a: f"driver=sqlite;database={p}" for a, p in files.items()})
    try:
        conn.execute("insert into sp@a values (1)")
        conn.savepoint("s")
        conn.execute("insert into sp@b values (1)")
        conn.execute("insert into sp@a values (2)")
        conn.rollback_to_savepoint("s")
        conn.execute("insert into sp@b values (3)")
        conn.commit()
        conn.execute("insert into sp@a values (5)")
        conn.savepoint("t")
        with pytest.raises(pooldbapi.IntegrityError):  # SQLite rolls the transaction back
            conn.execute("insert or rollback into sp@a values (5)")
        with pytest.raises(pooldbapi.OperationalError) as later:  # (its savepoints with it)
            conn.execute("insert into sp@b values (6)")
        assert str(later.value).endswith("; call rollback()")
        with pytest.raises(pooldbapi.OperationalError, match="cannot roll back to a savepoint"):
            conn.rollback_to_savepoint("t")
        conn.rollback()
    finally:
        conn.close()
    got = {}
    for alias, path in files.items():
        with contextlib.closing(sqlite3.connect(path)) as raw:
            got[alias] = [r[0] for r in raw.execute("select id from sp order by id")]
    assert got == {"a": [1], "b": [3]}


@pytest.mark.parametrize("name, message", [
    ("two words", "is not"), ("1st", "is not"), ("x;drop", "is not"),
    ("pooldbapi_page", "pooldbapi's own")])
def test_a_savepoint_s_name_is_checked_before_anything_is_sent(tmp_path, name, message):
    conn = pooldbapi.connect({"a": f"driver=sqlite;database={tmp_path / 'n.db'}"})
    try:
        conn.execute("select 1")
        with pytest.raises(pooldbapi.ProgrammingError, match=message):
            conn.savepoint(name)
    finally:
        conn.close()


def test_a_savepoint_needs_a_transaction(tmp_path):
    conn = pooldbapi.connect({"a": f"driver=sqlite;database={tmp_path / 'n.db'}"},
                             autocommit=True)
    try:
        with pytest.raises(pooldbapi.ProgrammingError, match="autocommit is on"):
            conn.savepoint("s")
    finally:
        conn.close()


def _begin_nested_pattern(engine, sa) -> list[tuple[int, str]]:
    """SQLAlchemy's documented pattern: try each row in a savepoint, skip the failing one."""
    from sqlalchemy import orm

    class Base(orm.DeclarativeBase):
        pass

    class Item(Base):
        __tablename__ = "nested_items"
        id = sa.Column(sa.Integer, primary_key=True, autoincrement=False)
        label = sa.Column(sa.String(10))

    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with orm.Session(engine) as session:
        for id_, label in ((1, "a"), (1, "b"), (3, "c")):
            try:
                with session.begin_nested():
                    session.add(Item(id=id_, label=label))
            except sa.exc.IntegrityError:
                pass
        session.commit()
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.text(
            "select id, label from nested_items order by id"))]
    Base.metadata.drop_all(engine)
    return rows


def test_begin_nested_answers_as_the_native_dialects(tmp_path, pg):
    sa = pytest.importorskip("sqlalchemy")
    pytest.importorskip("sqlalchemy.orm")
    got = {}
    for name, url in (("sqlite", f"sqlite:///{tmp_path / 'n.db'}"),
                      ("sqlite+pooldbapi", f"sqlite+pooldbapi:///{tmp_path / 'p.db'}"),
                      ("postgresql+psycopg", f"postgresql+psycopg://postgres@127.0.0.1:{pg.port}/postgres"),
                      ("postgresql+pooldbapi", f"postgresql+pooldbapi://postgres@127.0.0.1:{pg.port}/postgres")):
        engine = sa.create_engine(url)
        got[name] = _begin_nested_pattern(engine, sa)
        engine.dispose()
    assert got["sqlite+pooldbapi"] == got["sqlite"] == [(1, "a"), (3, "c")]
    assert got["postgresql+pooldbapi"] == got["postgresql+psycopg"] == [(1, "a"), (3, "c")]


def test_savepoints_through_pooldbapi_aio_and_async_sqlalchemy(two, pg, pg2):
    sa = pytest.importorskip("sqlalchemy")
    from sqlalchemy.ext.asyncio import create_async_engine

    async def main() -> list[tuple[int, str]]:
        conn = await pooldbapi.aio.connect(two)
        try:
            await conn.execute("insert into sp@a values (1)")
            await conn.savepoint("s")
            await conn.execute("insert into sp@b values (2)")
            await conn.rollback_to_savepoint("s")
            await conn.execute("insert into sp@b values (3)")
            await conn.release_savepoint("s")
            await conn.commit()
        finally:
            await conn.close()
        engine = create_async_engine(
            f"postgresql+pooldbapi_async://postgres@127.0.0.1:{pg.port}/postgres")
        try:
            async with engine.connect() as aconn:
                await aconn.exec_driver_sql("create table if not exists sp_async (id int primary key)")
                await aconn.commit()
                for id_ in (1, 1, 2):
                    try:
                        async with aconn.begin_nested():
                            await aconn.exec_driver_sql(f"insert into sp_async values ({id_})")
                    except sa.exc.IntegrityError:
                        pass
                await aconn.commit()
                rows = [tuple(r) for r in await aconn.exec_driver_sql(
                    "select id from sp_async order by id")]
                await aconn.exec_driver_sql("drop table sp_async")
                await aconn.commit()
        finally:
            await engine.dispose()
        return rows

    assert asyncio.run(main()) == [(1,), (2,)]
    assert held(pg, pg2) == {"a": [1], "b": [3]}


def test_a_failed_commit_says_it_rolled_back_and_asks_nothing_more(two, pg, pg2):
    """The commit of a failed transaction rolls every container back and raises: the message
    says so, with no call left to make (the connection has no open transaction after it)."""
    conn = pooldbapi.connect(two)
    try:
        conn.execute("insert into sp@a values (1)")
        with pytest.raises(pooldbapi.IntegrityError):
            conn.execute("insert into sp@a values (1)")
        with pytest.raises(pooldbapi.OperationalError) as caught:
            conn.commit()
        assert str(caught.value).startswith(
            "commit failed, every container was rolled back: the transaction failed on"
            " container 'a' (")
        assert str(caught.value).endswith(")") and "call" not in str(caught.value)
        conn.execute("insert into sp@b values (2)")  # nothing to roll back first
        conn.commit()
    finally:
        conn.close()
    assert held(pg, pg2) == {"a": [], "b": [2]}
