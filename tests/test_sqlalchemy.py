"""The SQLAlchemy dialects: URLs, pools through connect_args, pandas to_sql/read_sql round trips
over two containers with no warning, the containers execution option, an ORM session."""
from __future__ import annotations

import datetime
import decimal
import warnings

import pytest

sa = pytest.importorskip("sqlalchemy")
pd = pytest.importorskip("pandas")
from sqlalchemy import orm

import pooldbapi

FRAME = {
    "id": [1, 2, 3, 4, 5, 6],
    "f": [1.5, None, 2.25, 3.0, -4.5, 5.0],
    "s": ["a", "b", None, "it's", "e", "(x),(y); where"],
    "d": [datetime.date(2024, 1, i) for i in range(1, 7)],
    "ts": [datetime.datetime(2024, 1, 1, 12, i) for i in range(6)],
    "n": [decimal.Decimal("1.10"), decimal.Decimal("2.20"), None, decimal.Decimal("4.40"),
          decimal.Decimal("5.50"), decimal.Decimal("6.60")],
}


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        containers = {a: f"driver=sqlite;database={tmp_path / a}.db" for a in ("c1", "c2")}
        url = "sqlite+pooldbapi://"
    else:
        containers = {"c1": request.getfixturevalue("pg").conninfo(),
                      "c2": request.getfixturevalue("pg2").conninfo()}
        url = "postgresql+pooldbapi://"
    eng = sa.create_engine(url, connect_args={"containers": containers, "default": "{c1,c2}",
                                              "broadcast_ddl": True, "seed": 4})
    yield eng
    with eng.begin() as conn:
        conn.exec_driver_sql("drop table if exists frame")
        conn.exec_driver_sql("drop table if exists person")
    eng.dispose()


def _both(engine, query):
    """What both containers hold (pooldbapi never unions a list: ask each)."""
    parts = [pd.read_sql(sa.text(query.format(table=f"frame@{a}")), engine) for a in ("c1", "c2")]
    return pd.concat(parts).sort_values("id").reset_index(drop=True), [len(p) for p in parts]


@pytest.mark.parametrize("method", [None, "multi"])
def test_pandas_round_trip_over_two_containers_without_a_warning(engine, method):
    frame = pd.DataFrame(FRAME)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame.to_sql("frame", engine, index=False, if_exists="replace", method=method,
                     dtype={"n": sa.Numeric(10, 2), "d": sa.Date(), "ts": sa.DateTime()})
        back, counts = _both(engine, "select id, f, s, d, ts, n from {table}")
    assert counts == [3, 3]  # per row, each to the next container of the list
    assert back["id"].tolist() == FRAME["id"]
    assert back["s"].tolist()[:2] == ["a", "b"] and back["s"].tolist()[3:] == FRAME["s"][3:]
    assert pd.isna(back["s"][2]) and pd.isna(back["f"][1]) and pd.isna(back["n"][2])
    assert back["f"].tolist()[2:] == FRAME["f"][2:]
    assert [pd.Timestamp(d).date() for d in back["d"]] == FRAME["d"]
    assert [pd.Timestamp(t).to_pydatetime() for t in back["ts"]] == FRAME["ts"]
    assert [decimal.Decimal(str(v)).quantize(decimal.Decimal("0.01")) for v in back["n"]
            if not pd.isna(v)] == [v for v in FRAME["n"] if v is not None]


def test_a_url_naming_one_database_is_one_container(tmp_path, pg):
    lite = sa.create_engine(f"sqlite+pooldbapi:///{tmp_path / 'one.db'}")
    post = sa.create_engine(f"postgresql+pooldbapi://postgres@127.0.0.1:{pg.port}/postgres")
    for eng in (lite, post):
        with eng.begin() as conn:
            conn.exec_driver_sql("create table one (x int)")
            conn.exec_driver_sql("insert into one values (41)")
        with eng.connect() as conn:
            assert conn.exec_driver_sql("select x + 1 from one").scalar() == 42
            conn.exec_driver_sql("drop table one")
            conn.commit()
        assert eng.pool.__class__.__name__ == "NullPool"  # pooldbapi pools the sessions
        eng.dispose()
    assert post.dialect.server_version_info[0] >= 13


def test_the_containers_option_sets_the_list_of_a_statement(engine):
    frame = pd.DataFrame({"id": [1, 2, 3, 4]})
    frame.to_sql("frame", engine, index=False, if_exists="replace")
    with engine.connect() as conn:  # for every statement of this connection
        conn.execution_options(pooldbapi_containers="{c2}")
        assert conn.exec_driver_sql("select count(*) from frame").scalar() == 2
    with engine.connect() as conn:  # for one statement
        table = sa.table("frame", sa.column("id"))
        stmt = sa.insert(table).values(id=9).execution_options(pooldbapi_containers="c1")
        conn.execute(stmt)
        conn.commit()
        assert conn.exec_driver_sql("select count(*) from frame@c1").scalar() == 3
        with pytest.raises(sa.exc.DBAPIError) as info:
            conn.execution_options(pooldbapi_containers="{nope}").exec_driver_sql("select 1")
        assert isinstance(info.value.orig, pooldbapi.ProgrammingError)


class Base(orm.DeclarativeBase):
    pass


class Person(Base):
    __tablename__ = "person"
    id: orm.Mapped[int] = orm.mapped_column(primary_key=True, autoincrement=False)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(40))


def test_an_orm_session_adds_and_queries_over_a_list(engine):
    Base.metadata.create_all(engine)
    with orm.Session(engine) as session:
        session.add_all([Person(id=i, name=f"p{i}") for i in range(1, 7)])
        session.commit()
    with orm.Session(engine) as session:
        for alias in ("c1", "c2"):
            found = session.scalars(sa.select(Person).execution_options(
                pooldbapi_containers=alias).order_by(Person.id)).all()
            assert len(found) == 3
        one = session.scalars(sa.select(Person).where(Person.id == 2).execution_options(
            pooldbapi_containers="{c1,c2}")).all()
        assert len(one) <= 1  # each execution reads one container
    Base.metadata.drop_all(engine)


class Note(Base):
    __tablename__ = "note"
    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)  # given by each database
    text: orm.Mapped[str] = orm.mapped_column(sa.String(40))


def test_orm_objects_get_the_ids_their_container_gave_them(engine):
    """The ORM inserts many objects in batches (insertmanyvalues; on PostgreSQL each batch
    whole on the next container, on SQLite row by row, as the native dialects send them), so
    every object holds the id of its row in the container it went to."""
    Note.__table__.create(engine)
    with engine.begin() as conn:  # c2 numbers from 1001: one identity per object in the ORM
        on_c2 = conn.execution_options(pooldbapi_containers="c2")
        if engine.dialect.name == "postgresql":
            on_c2.exec_driver_sql("select setval('note_id_seq', 1000)")
        else:
            on_c2.exec_driver_sql("insert into note (id, text) values (1000, 'seed')")
    try:
        # not expired at commit: a reload would read one container of the list, not
        # necessarily the one the object went to
        with orm.Session(engine.execution_options(insertmanyvalues_page_size=3),
                         expire_on_commit=False) as session:
            notes = [Note(text=f"n{i}") for i in range(8)]
            session.add_all(notes)
            session.commit()
            got = {(n.id, n.text) for n in notes}
        held = {}
        with engine.connect() as conn:
            for alias in ("c1", "c2"):
                held[alias] = {tuple(r) for r in conn.exec_driver_sql(
                    f"select id, text from note@{alias} where text <> 'seed'")}
        assert held["c1"] and held["c2"]  # spread over both
        assert got == held["c1"] | held["c2"] and len(got) == 8
    finally:
        Note.__table__.drop(engine)


def test_stream_results_reads_through_a_streaming_cursor(engine):
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, pooldbapi_containers="c1") \
            .exec_driver_sql("select 1 union all select 2")
        assert getattr(result.cursor, "stream", False) is (engine.dialect.name == "postgresql")
        assert sorted(r[0] for r in result) == [1, 2]


def test_errors_reach_pandas_as_pandas_expects_them(engine):
    with pytest.raises(pd.errors.DatabaseError) as info:  # pandas wraps SQLAlchemy's error
        pd.read_sql("select * from no_such_table", engine)
    cause = info.value.__cause__
    assert isinstance(cause, sa.exc.ProgrammingError)
    assert isinstance(cause.orig, pooldbapi.ProgrammingError)


def test_urls_become_one_container_and_query_keys_are_forwarded():
    """No server needed: what each dialect hands to pooldbapi.connect."""
    oracle = sa.create_engine("oracle+pooldbapi://scott:tiger@db.example:1521/"
                              "?service_name=FREEPDB1&tcp_connect_timeout=5")
    assert oracle.dialect.create_connect_args(oracle.url) == ([], {"containers": {"db": {
        "driver": "oracle", "user": "scott", "password": "tiger",
        "dsn": "db.example:1521/FREEPDB1", "tcp_connect_timeout": "5"}}})
    post = sa.create_engine("postgresql+pooldbapi://u:p@h:5433/sales?sslmode=require")
    assert post.dialect.create_connect_args(post.url)[1]["containers"]["db"] == {
        "driver": "postgresql", "host": "h", "port": "5433", "user": "u", "password": "p",
        "dbname": "sales", "sslmode": "require"}
    settings = sa.create_engine("sqlite+pooldbapi:///?settings=pooldbapi.toml")
    assert settings.dialect.create_connect_args(settings.url) == (
        [], {"settings": "pooldbapi.toml"})


def test_jsonb_operators_answer_as_through_psycopg_s_dialect(pg):
    """has_key, has_any and has_all compile to the jsonb operators ?, ?| and ?&: the dialect
    takes psycopg's paramstyle (pyformat), where such a '?' is an operator, as psycopg's
    dialect does; text() with a '?' operator too, with and without parameters."""
    from sqlalchemy.dialects import postgresql as pgd
    meta = sa.MetaData()
    docs = sa.Table("jdocs", meta, sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("j", pgd.JSONB))
    queries = {
        "has_key": sa.select(docs.c.id).where(docs.c.j.has_key("a")),
        "has_any": sa.select(docs.c.id).where(
            docs.c.j.has_any(sa.cast(["b", "z"], pgd.ARRAY(sa.Text)))),
        "has_all": sa.select(docs.c.id).where(
            docs.c.j.has_all(sa.cast(["a", "c"], pgd.ARRAY(sa.Text)))),
        "text": sa.text("select id from jdocs where j ? 'a' order by id"),
        "text and a parameter": sa.text("select id from jdocs where j ? 'a' and id >= :n"
                                        ).bindparams(n=2),
    }
    got = {}
    for driver in ("psycopg", "pooldbapi"):
        eng = sa.create_engine(f"postgresql+{driver}://postgres@127.0.0.1:{pg.port}/postgres")
        meta.drop_all(eng)
        meta.create_all(eng)
        with eng.begin() as conn:
            conn.execute(sa.insert(docs), [{"id": 1, "j": {"a": 1, "c": 3}},
                                           {"id": 2, "j": {"b": 2}}, {"id": 3, "j": {"a": 0}}])
        with eng.connect() as conn:
            got[driver] = {name: sorted(conn.execute(q).scalars()) for name, q in queries.items()}
        meta.drop_all(eng)
        eng.dispose()
    assert got["pooldbapi"] == got["psycopg"]
    assert got["psycopg"] == {"has_key": [1, 3], "has_any": [2], "has_all": [1],
                              "text": [1, 3], "text and a parameter": [3]}


def test_isolation_levels_report_as_the_native_dialects(tmp_path, pg):
    """The level a transaction runs at (the back-end's own) as the native dialect reports and
    accepts it, and AUTOCOMMIT."""
    pairs = {"sqlite": (f"sqlite:///{tmp_path / 'n.db'}", f"sqlite+pooldbapi:///{tmp_path / 'p.db'}"),
             "postgresql": (f"postgresql+psycopg://postgres@127.0.0.1:{pg.port}/postgres",
                            f"postgresql+pooldbapi://postgres@127.0.0.1:{pg.port}/postgres")}
    for backend, urls in pairs.items():
        got = []
        for url in urls:
            engine = sa.create_engine(url)
            with engine.connect() as conn:
                default = conn.get_isolation_level()
            with engine.connect().execution_options(isolation_level=default) as conn:
                same = conn.get_isolation_level()
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                auto = conn.get_isolation_level()
            got.append((default, same, auto))
            engine.dispose()
        assert got[1][:2] == got[0][:2], backend  # the transaction's level, accepted back
        # (pysqlite's reads a pragma, which says SERIALIZABLE in autocommit too)
        assert got[1][2] == "AUTOCOMMIT"
