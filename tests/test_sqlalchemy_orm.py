"""ORM flushes through the pooldbapi dialects against the native ones, in the same test: the
rows go in the same batches (PostgreSQL: SQLAlchemy's insertmanyvalues with its sentinel form,
each batch whole on one container; SQLite: one row at a time, as pysqlite's dialect sends
them), and every object gets the key its own container gave it, on one container and over a
list."""
from __future__ import annotations

import pytest

sa = pytest.importorskip("sqlalchemy")
from sqlalchemy import orm


def model(table: str) -> type:
    class Base(orm.DeclarativeBase):
        pass

    class Item(Base):
        __tablename__ = table
        id = orm.mapped_column(sa.Integer, primary_key=True)  # given by each database
        name = orm.mapped_column(sa.String(40), nullable=False)
    return Item


def flush(engine, item: type, n: int, page: int) -> tuple[list[tuple[int, str]], list[str]]:
    """Add n objects and commit; return each object's (key, name) and the statements sent."""
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, many):
        if statement.lstrip().upper().startswith("INSERT"):
            sent.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        with orm.Session(engine.execution_options(insertmanyvalues_page_size=page),
                         expire_on_commit=False) as session:
            objects = [item(name=f"o{i}") for i in range(n)]
            session.add_all(objects)
            session.commit()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return [(o.id, o.name) for o in objects], sent


def held(engine, item: type, alias: str | None = None) -> set[tuple[int, str]]:
    table = item.__tablename__ + (f"@{alias}" if alias else "")
    with engine.connect() as conn:
        return {tuple(r) for r in conn.exec_driver_sql(f"select id, name from {table}")}


@pytest.fixture
def pg_engines(pg, pg2):
    native = sa.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{pg.port}/postgres")
    one = sa.create_engine(f"postgresql+pooldbapi://postgres@127.0.0.1:{pg.port}/postgres")
    listed = sa.create_engine("postgresql+pooldbapi://", connect_args={
        "containers": {"p1": pg.conninfo(), "p2": pg2.conninfo()}, "default": "{p1,p2}",
        "broadcast_ddl": True, "seed": 2})
    yield native, one, listed
    for engine in (native, one, listed):
        engine.dispose()


def test_postgresql_flush_batches_and_keys_as_the_native_dialect(pg_engines):
    native, one, _ = pg_engines
    got = {}
    for name, engine in (("native", native), ("pooldbapi", one)):
        item = model(f"orm_{name}")
        item.__table__.create(engine)
        try:
            got[name] = flush(engine, item, 2500, 1000)
            assert held(engine, item) == set(got[name][0])
        finally:
            item.__table__.drop(engine)
    (native_keys, native_sent), (keys, sent) = got["native"], got["pooldbapi"]
    assert keys == native_keys == [(i + 1, f"o{i}") for i in range(2500)]
    assert len(sent) == len(native_sent) == 3  # batches of 1,000 rows, not a row each
    assert all("sen_counter" in s for s in sent + native_sent)  # the sentinel form


def test_postgresql_flush_over_a_list_gives_each_object_its_container_s_key(pg_engines):
    _, _, listed = pg_engines
    item = model("orm_list")
    item.__table__.create(listed)  # on both containers (DDL broadcast)
    try:
        with listed.begin() as conn:  # p2 numbers from 1001: keys tell the containers apart
            conn.execution_options(pooldbapi_containers="p2").exec_driver_sql(
                "select setval('orm_list_id_seq', 1000)")
        keys, sent = flush(listed, item, 40, 7)
        assert len(sent) == 6  # ceil(40 / 7) batches, each whole on one container
        on = {alias: held(listed, item, alias) for alias in ("p1", "p2")}
        assert on["p1"] and on["p2"]
        assert set(keys) == on["p1"] | on["p2"] and len(set(keys)) == 40
        # batch by batch: seven objects in a row on one container, the next seven on the other
        # (the five full batches are one statement, taking turns; the last is another)
        where = ["p1" if k in on["p1"] else "p2" for k in keys]
        assert [len(set(where[b:b + 7])) for b in range(0, 40, 7)] == [1] * 6
        assert all(where[b] != where[b + 7] for b in range(0, 22, 7))
    finally:
        item.__table__.drop(listed)


def test_sqlite_flush_sends_what_pysqlite_s_dialect_sends(tmp_path):
    native = sa.create_engine(f"sqlite:///{tmp_path / 'native.db'}")
    mine = sa.create_engine(f"sqlite+pooldbapi:///{tmp_path / 'mine.db'}")
    got = {}
    for name, engine in (("native", native), ("pooldbapi", mine)):
        item = model("orm_lite")
        item.__table__.create(engine)
        got[name] = flush(engine, item, 300, 100)
        assert held(engine, item) == set(got[name][0])
        engine.dispose()
    assert got["pooldbapi"][0] == got["native"][0] == [(i + 1, f"o{i}") for i in range(300)]
    assert len(got["pooldbapi"][1]) == len(got["native"][1])
