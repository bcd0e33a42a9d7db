"""SQLAlchemy over a list of containers: schema questions ask every distinct container (they agree,
or a pooldbapi error says which has what, before anything is made), and broadcast DDL gives each
container's generated keys a residue class of their own, so ORM objects never share a key."""
from __future__ import annotations

import warnings

import pytest

sa = pytest.importorskip("sqlalchemy")
pd = pytest.importorskip("pandas")
from sqlalchemy import orm

import pooldbapi


@pytest.fixture(scope="module")
def pg_lists(pg, pg2):
    """A database of these tests' own on each cluster (others' tables would make the two
    clusters' table lists differ)."""
    import psycopg
    for cluster in (pg, pg2):
        with psycopg.connect(cluster.dsn, autocommit=True) as raw:
            raw.execute("drop database if exists lists")
            raw.execute("create database lists")
    return {"s1": pg.conninfo(dbname="lists"), "s2": pg2.conninfo(dbname="lists")}


def _engine(kind, request, tmp_path):
    if kind == "sqlite":
        containers = {a: f"driver=sqlite;database={tmp_path / a}.db" for a in ("s1", "s2")}
    else:
        containers = request.getfixturevalue("pg_lists")
    eng = sa.create_engine(f"{kind}+pooldbapi://", connect_args={
        "containers": containers, "default": "{s1,s2}", "broadcast_ddl": True})
    yield eng
    with eng.begin() as conn:
        for table in ("half", "whole", "things", "idents"):
            conn.exec_driver_sql(f"drop table if exists {table}")
    eng.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    yield from _engine(request.param, request, tmp_path)


@pytest.fixture
def pg_engine(request, tmp_path):
    """Two PostgreSQL clusters, s1 and s2."""
    yield from _engine("postgresql", request, tmp_path)


@pytest.fixture
def sqlite_engine(request, tmp_path):
    """Two SQLite files, s1 and s2."""
    yield from _engine("sqlite", request, tmp_path)


def _on(engine, alias, sql):
    with engine.begin() as conn:
        conn.execution_options(pooldbapi_containers=alias).exec_driver_sql(sql)


def _has(engine, alias, table):
    with engine.connect() as conn:
        return sa.inspect(conn.execution_options(pooldbapi_containers=alias)).has_table(table)


def _metadata(table):
    metadata = sa.MetaData()
    sa.Table(table, metadata, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("v", sa.String(20)), sa.Index(f"ix_{table}_v", "v"))
    return metadata


def test_create_all_refuses_a_half_made_schema_and_names_who_has_what(engine):
    _on(engine, "s1", "create table half (id integer primary key, v varchar(20))")
    with pytest.raises(pooldbapi.ProgrammingError,
                       match=r"half.*s1: \{'half': True\}; s2: \{'half': False\}"):
        _metadata("half").create_all(engine)
    assert not _has(engine, "s2", "half")  # nothing was made


def test_has_table_gives_one_answer_whatever_the_turn(engine):
    _metadata("whole").create_all(engine)
    assert _has(engine, "s1", "whole") and _has(engine, "s2", "whole")
    answers = {sa.inspect(engine).has_table("whole") for _ in range(6)}
    assert answers == {True}
    assert {sa.inspect(engine).has_table("nowhere") for _ in range(6)} == {False}


def test_reflection_agrees_or_says_which_container_differs(engine):
    _metadata("whole").create_all(engine)
    inspector = sa.inspect(engine)
    assert [c["name"] for c in inspector.get_columns("whole")] == ["id", "v"]
    assert inspector.get_pk_constraint("whole")["constrained_columns"] == ["id"]
    assert [i["name"] for i in inspector.get_indexes("whole")] == ["ix_whole_v"]
    assert "whole" in inspector.get_table_names()
    reflected = sa.MetaData()
    reflected.reflect(engine, only=["whole"])
    assert list(reflected.tables["whole"].columns.keys()) == ["id", "v"]
    _on(engine, "s2", "alter table whole add column w integer")
    with pytest.raises(pooldbapi.ProgrammingError, match=r"get_columns\('whole'.*s1: .*s2: .*'w'"):
        sa.inspect(engine).get_columns("whole")
    with engine.connect() as conn:  # one container named: asked alone
        names = [c["name"] for c in sa.inspect(
            conn.execution_options(pooldbapi_containers="s2")).get_columns("whole")]
    assert names == ["id", "v", "w"]


def test_drop_all_refuses_a_table_on_one_container_only(engine):
    _metadata("half").create_all(engine)
    _on(engine, "s2", "drop table half")
    with pytest.raises(pooldbapi.ProgrammingError,
                       match=r"s1: \{'half': True\}; s2: \{'half': False\}"):
        _metadata("half").drop_all(engine)
    assert _has(engine, "s1", "half")


@pytest.mark.parametrize("if_exists", ["fail", "replace", "append"])
def test_to_sql_checks_every_container_before_writing(engine, if_exists):
    _on(engine, "s1", "create table half (id integer, v varchar(20))")
    frame = pd.DataFrame({"id": [1, 2], "v": ["a", "b"]})
    with pytest.raises(pooldbapi.ProgrammingError, match=r"s1: True; s2: False"):
        frame.to_sql("half", engine, index=False, if_exists=if_exists)
    assert not _has(engine, "s2", "half")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select count(*) from half@s1").scalar() == 0


class Base(orm.DeclarativeBase):
    pass


class Thing(Base):
    __tablename__ = "things"
    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)  # serial on PostgreSQL
    name: orm.Mapped[str] = orm.mapped_column(sa.String(20))


class Ident(Base):
    __tablename__ = "idents"
    id: orm.Mapped[int] = orm.mapped_column(sa.Identity(), primary_key=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(20))


def test_orm_keys_over_two_clusters_come_from_disjoint_residue_classes(pg_engine):
    engine = pg_engine
    Base.metadata.create_all(engine)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Identity map already had an identity" would raise
        with orm.Session(engine, expire_on_commit=False) as session:
            objects = []
            for flush in range(2):  # a flush's batch runs whole on one container: two of them
                batch = [Thing(name=f"t{flush}{i}") for i in range(8)] + \
                        [Ident(name=f"i{flush}{i}") for i in range(8)]
                session.add_all(batch)
                session.flush()
                objects += batch
            for kind in (Thing, Ident):
                keys = [o.id for o in objects if isinstance(o, kind)]
                assert len(set(keys)) == 16
            session.commit()
    with engine.connect() as conn:
        for table in ("things", "idents"):
            s1 = conn.exec_driver_sql(f"select id from {table}@s1").scalars().all()
            s2 = conn.exec_driver_sql(f"select id from {table}@s2").scalars().all()
            assert s1 and s2
            assert all(k % 2 == 1 for k in s1) and all(k % 2 == 0 for k in s2)
    # the identity's own start differs per container; reflection still agrees
    assert [c["name"] for c in sa.inspect(engine).get_columns("idents")] == ["id", "name"]
    Base.metadata.drop_all(engine)


def test_sqlite_keys_over_a_list_number_from_one_on_each_container(sqlite_engine):
    """SQLite has no increment for its keys (rowid, AUTOINCREMENT): each container numbers
    1, 2, 3, ... so objects of two containers in one session may share a key (the README says
    to use client-side keys there)."""
    engine = sqlite_engine
    Thing.__table__.create(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(Thing), [{"name": "a"}, {"name": "b"}])
        ids = {a: conn.exec_driver_sql(f"select id from things@{a}").scalars().all()
               for a in ("s1", "s2")}
    assert ids == {"s1": [1], "s2": [1]}


def test_broadcast_create_table_spreads_keys_but_if_not_exists_keeps_them(pg, pg2):
    conn = pooldbapi.connect({"p0": pg.conninfo(), "p1": pg2.conninfo()}, default="{p0,p1}",
                             broadcast_ddl=True)
    conn.autocommit = True
    try:
        conn.execute('drop table if exists "Keyed"')
        conn.execute('create table "Keyed" (id serial primary key,'
                     ' j bigint generated always as identity, v text)')
        cur = conn.cursor()
        cur.executemany('insert into "Keyed" (v) values (?)', [(str(i),) for i in range(6)])
        got = {a: sorted(tuple(r) for r in conn.execute(f'select id, j from "Keyed"@{a}'))
               for a in ("p0", "p1")}
        assert got == {"p0": [(1, 1), (3, 3), (5, 5)], "p1": [(2, 2), (4, 4), (6, 6)]}
        conn.execute('create table if not exists "Keyed" (id serial primary key)')
        cur.executemany('insert into "Keyed" (v) values (?)', [("a",), ("b",)])
        assert max(r[0] for r in conn.execute('select id from "Keyed"@p0')) == 7
    finally:
        conn.execute('drop table if exists "Keyed"')
        conn.close()
