"""Drop-in parity: the same pandas and SQLAlchemy calls through the native dialect (`sqlite://`,
`postgresql+psycopg://`) and through pooldbapi, over one container and over a list of two,
compared value by value and dtype by dtype, with the warnings each side gave and the class of any
error. Over a list, pooldbapi never unions: what was written is read back from each container
(the execution option pooldbapi_containers) and put together in key order. Rows alternate
between the two containers, so where pandas infers a dtype from the values (a column of Decimals
is float64, with a None object), the frames hold their nulls in pairs: each container's part then
infers what the whole does."""
from __future__ import annotations

import datetime
import decimal
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

sa = pytest.importorskip("sqlalchemy")
pd = pytest.importorskip("pandas")
np = pytest.importorskip("numpy")
from sqlalchemy import orm

MODES = ("one", "list")


@dataclass
class Stack:
    backend: str
    native: Any
    one: Any
    pooled_list: Any
    aliases: tuple[str, ...] = ("l1", "l2")


def _pg_database(cluster: Any, name: str) -> None:
    import psycopg
    with psycopg.connect(cluster.dsn, autocommit=True) as raw:
        raw.execute(f"drop database if exists {name}")
        raw.execute(f"create database {name}")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(request, tmp_path_factory):
    if request.param == "sqlite":
        folder = tmp_path_factory.mktemp("parity")
        native = sa.create_engine(f"sqlite:///{folder / 'native.db'}")
        one = sa.create_engine(f"sqlite+pooldbapi:///{folder / 'one.db'}")
        containers = {a: f"driver=sqlite;database={folder / a}.db" for a in ("l1", "l2")}
        url = "sqlite+pooldbapi://"
    else:
        pg, pg2 = request.getfixturevalue("pg"), request.getfixturevalue("pg2")
        for cluster, name in ((pg, "parity_native"), (pg, "parity_one"), (pg, "parity_list"),
                              (pg2, "parity_list")):
            _pg_database(cluster, name)
        native = sa.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{pg.port}"
                                  "/parity_native")
        one = sa.create_engine(f"postgresql+pooldbapi://postgres@127.0.0.1:{pg.port}/parity_one")
        containers = {"l1": pg.conninfo(dbname="parity_list"),
                      "l2": pg2.conninfo(dbname="parity_list")}
        url = "postgresql+pooldbapi://"
    pooled_list = sa.create_engine(url, connect_args={
        "containers": containers, "default": "{l1,l2}", "broadcast_ddl": True, "seed": 5})
    yield Stack(request.param, native, one, pooled_list)
    for engine in (native, one, pooled_list):
        engine.dispose()


@pytest.fixture(scope="module", params=MODES)
def mode(request):
    return request.param


@dataclass(frozen=True)
class Raised:
    """An error, by the classes a caller tells apart: the raised one and the driver's."""

    cls: str
    orig: str | None


def outcome(call: Callable[[], Any]) -> tuple[Any, list[tuple[str, str]]]:
    """What a call gives (or the error it raises) and the warnings it gives."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = call()
        except Exception as exc:  # noqa: BLE001 - the error itself is what is compared
            orig = getattr(exc, "orig", None) or getattr(exc.__cause__, "orig", None)
            value = Raised(type(exc).__name__, type(orig).__name__ if orig else None)
    shown = sorted({(w.category.__name__, str(w.message)) for w in caught
                    if not issubclass(w.category, ResourceWarning)})
    return value, shown


def same(native: tuple[Any, list[Any]], pooled: tuple[Any, list[Any]]) -> None:
    """Assert two outcomes equal: frames value by value and dtype by dtype."""
    (want, want_warned), (got, got_warned) = native, pooled
    assert got_warned == want_warned
    if isinstance(want, pd.DataFrame):
        assert isinstance(got, pd.DataFrame), got
        pd.testing.assert_frame_equal(got, want, check_exact=True)
    else:
        assert got == want


def engines(stack: Stack, mode: str) -> tuple[Any, Any, tuple[str, ...] | None]:
    """The native engine, pooldbapi's for this mode, and the list's aliases (None: one)."""
    if mode == "one":
        return stack.native, stack.one, None
    return stack.native, stack.pooled_list, stack.aliases


def read(engine: Any, aliases: tuple[str, ...] | None, fn: Callable[[Any], Any],
         by: str | None = "k") -> Any:
    """fn(connection) on the engine, or on each container of the list put together; sorted by
    the key column (by=None: by the index), index renumbered when sorted by column."""
    if aliases is None:
        with engine.connect() as conn:
            frame = fn(conn)
    else:
        parts = []
        for alias in aliases:
            with engine.connect() as conn:
                parts.append(fn(conn.execution_options(pooldbapi_containers=alias)))
        # a container without rows has no dtypes to give: the others' (an empty result reads
        # as object columns on the native side too)
        frame = pd.concat([p for p in parts if len(p)] or parts[:1])
    if by is None:
        return frame.sort_index()
    return frame.sort_values(by).reset_index(drop=True)


def write_and_read(stack: Stack, mode: str, frame: Any, table: str, write: dict[str, Any],
                   reader: Callable[[str], Callable[[Any], Any]], by: str | None = "k"
                   ) -> None:
    """to_sql through both sides (the return value compared), then read back and compared."""
    native, pooled, aliases = engines(stack, mode)
    for engine in (native, pooled):
        with engine.begin() as conn:
            conn.exec_driver_sql(f"drop table if exists {table}")
    wrote = [outcome(lambda e=e: frame.to_sql(table, e, **write)) for e in (native, pooled)]
    same(*wrote)
    if isinstance(wrote[0][0], Raised):
        return
    if aliases is not None:  # the list's rows were spread: each container holds some
        with pooled.connect() as conn:
            assert all(conn.exec_driver_sql(f"select count(*) from {table}@{a}").scalar()
                       for a in aliases)
    same(outcome(lambda: read(native, None, reader(table), by)),
         outcome(lambda: read(pooled, aliases, reader(table), by)))


def _query(table: str, **kw: Any) -> Callable[[Any], Any]:
    return lambda conn: pd.read_sql_query(f"select * from {table}", conn, **kw)


# -- every pandas dtype: each column written alone first, then a group at once -------------

INT64 = np.iinfo(np.int64)
COLUMNS = {
    "i64": pd.Series([INT64.min, INT64.max, 0, -1], dtype="int64"),
    "f": pd.Series([1.5, np.nan, np.inf, -np.inf], dtype="float64"),
    "b": pd.Series([True, False, True, False], dtype="bool"),
    "ni": pd.array([1, None, 3, INT64.min], dtype="Int64"),
    "nb": pd.array([True, None, False, True], dtype="boolean"),
    "s": pd.Series(["a", None, "it's; (x),(y)", "ü%s?"], dtype=object),
    "cat": pd.Categorical(["x", "y", "x", None]),
    "dt": pd.to_datetime(["2024-01-02 03:04:05.123456", None, "1970-01-01 00:00:00.000000",
                         "2262-04-11 00:00:00.000000"]),
    "dtz": pd.to_datetime(["2024-01-02 03:04:05", None, "1970-01-01 00:00:00",
                          "2024-07-01 12:00:00"])
    .tz_localize("Europe/Amsterdam"),
    "oob": pd.Series([datetime.datetime(1, 1, 1), datetime.datetime(9999, 12, 31, 23, 59), None,
                      datetime.datetime(2000, 1, 1)], dtype=object),
    "d": pd.Series([datetime.date(2024, 2, 29), None, datetime.date(1, 1, 1),
                    datetime.date(9999, 12, 31)], dtype=object),
    "t": pd.Series([datetime.time(1, 2, 3), None, datetime.time(23, 59, 59, 999999),
                    datetime.time(0, 0)], dtype=object),
    "td": pd.to_timedelta(["1 day", "2 hours", None, "-1s"]),
    "dec": pd.Series([decimal.Decimal("1.10"), None, decimal.Decimal("-3.5"),
                      decimal.Decimal("0.00001")], dtype=object),
}
BACKENDS_READ = ["numpy", "numpy_nullable", "pyarrow"]


GROUPS = {"numbers": ("i64", "f", "b", "ni", "nb", "dec"), "text": ("s", "cat"),
          "times": ("dt", "dtz", "oob", "d", "t", "td")}


@pytest.mark.parametrize("group", list(GROUPS))
def test_each_pandas_dtype_round_trips_as_natively(stack, mode, group):
    columns = GROUPS[group]
    frame = pd.DataFrame({"k": [1, 2, 3, 4], **{c: COLUMNS[c] for c in columns}})
    for column in columns:  # one column alone first: an error natively hides no other column
        single = frame[["k", column]]
        wrote = [outcome(lambda e=e, f=single: f.to_sql("dtype_probe", e, index=False,
                                                        if_exists="replace"))
                 for e in engines(stack, mode)[:2]]
        same(*wrote)
        assert not isinstance(wrote[0][0], Raised), (column, wrote[0])

    def reader(table: str) -> Callable[[Any], Any]:
        def every_backend(conn: Any) -> Any:
            parts = [pd.read_sql_query(f"select * from {table}", conn)]
            for backend in BACKENDS_READ[1:]:
                parts.append(pd.read_sql_query(f"select * from {table}", conn,
                                               dtype_backend=backend)
                             .add_suffix(f"_{backend}").drop(columns=f"k_{backend}"))
            return pd.concat(parts, axis=1)
        return every_backend
    write_and_read(stack, mode, frame, f"dtype_{group}", {"index": False}, reader)


# -- to_sql's options -------------------------------------------------------------------------

FRAME = pd.DataFrame({"k": [1, 2, 3, 4, 5], "x": [1.5, 2.5, None, 4.0, 5.5],
                      "s": ["a", "b", None, "d", "e"]})


@pytest.mark.parametrize(("method", "chunksize"), [(None, None), ("multi", None), (None, 2),
                                                   ("multi", 2)])
def test_to_sql_return_value_method_and_chunksize(stack, mode, method, chunksize):
    write_and_read(stack, mode, FRAME, "opts", {"index": False, "method": method,
                                                "chunksize": chunksize}, _query)


def test_if_exists_fail_replace_append(stack, mode):
    native, pooled, aliases = engines(stack, mode)
    steps = [("fail", FRAME), ("fail", FRAME), ("append", FRAME.assign(k=FRAME.k + 10)),
             ("replace", FRAME.assign(k=FRAME.k + 20)), ("append", FRAME.assign(k=FRAME.k + 30))]
    for engine in (native, pooled):
        with engine.begin() as conn:
            conn.exec_driver_sql("drop table if exists exists_")
    for if_exists, frame in steps:
        same(*[outcome(lambda e=e, f=frame, i=if_exists: f.to_sql("exists_", e, index=False,
                                                                   if_exists=i))
               for e in (native, pooled)])
    same(outcome(lambda: read(native, None, _query("exists_"))),
         outcome(lambda: read(pooled, aliases, _query("exists_"))))


def test_index_and_multiindex(stack, mode):
    frame = FRAME.set_index("k")
    frame.index.name = "k"
    write_and_read(stack, mode, frame, "indexed", {},
                   lambda t: lambda c: pd.read_sql_table(t, c, index_col="k"), by=None)
    multi = FRAME.assign(g=["p", "q", "p", "q", "p"]).set_index(["g", "k"])
    write_and_read(stack, mode, multi, "multi_indexed", {},
                   lambda t: lambda c: pd.read_sql_table(t, c, index_col=["g", "k"]), by=None)


def test_dtype_argument_and_the_types_reflected(stack, mode):
    frame = pd.DataFrame({"k": [1, 2, 3, 4],
                          "n": [decimal.Decimal("1.25"), decimal.Decimal("3.50"), None, None],
                          "d": [datetime.date(2024, 1, 1), datetime.date(2024, 3, 1), None, None],
                          "s": ["a", "b", None, None]})
    dtype = {"n": sa.Numeric(10, 2), "d": sa.Date(), "s": sa.String(10)}
    write_and_read(stack, mode, frame, "typed", {"index": False, "dtype": dtype},
                   lambda t: lambda c: pd.read_sql_table(t, c))
    native, pooled, _ = engines(stack, mode)

    def reflected(engine: Any) -> list[tuple[Any, ...]]:
        return [(c["name"], str(c["type"]), c["nullable"])
                for c in sa.inspect(engine).get_columns("typed")]
    same(outcome(lambda: reflected(native)), outcome(lambda: reflected(pooled)))


# -- reading ---------------------------------------------------------------------------------

READ_FRAME = pd.DataFrame({"k": [1, 2, 3, 4, 5, 6], "v": [10, 20, None, 40, 50, 60],
                           "when": ["2024-01-01 10:00:00", "2024-01-02 11:00:00", None,
                                    "2024-01-04 13:00:00", "2024-01-05", "2024-01-06"],
                           "name": ["setosa", "versicolor", "virginica", "setosa", "100%",
                                    "it's"]})


@pytest.fixture(scope="module")
def loaded(stack, mode):
    native, pooled, aliases = engines(stack, mode)
    for engine in (native, pooled):
        READ_FRAME.to_sql("readme", engine, index=False, if_exists="replace")
    return native, pooled, aliases


@pytest.mark.parametrize("how", ["table", "table_columns", "parse_dates", "parse_dates_format",
                                 "chunks", "query_chunks", "numpy_nullable", "pyarrow"])
def test_read_sql_options(loaded, how):
    readers = {
        "table": lambda c: pd.read_sql_table("readme", c),
        "table_columns": lambda c: pd.read_sql_table("readme", c, columns=["k", "name"]),
        "parse_dates": lambda c: pd.read_sql_query("select * from readme", c,
                                                   parse_dates=["when"]),
        "parse_dates_format": lambda c: pd.read_sql_query(
            "select * from readme", c, parse_dates={"when": {"format": "ISO8601"}}),
        "chunks": lambda c: pd.concat(pd.read_sql_table("readme", c, chunksize=2)),
        "query_chunks": lambda c: pd.concat(pd.read_sql_query("select * from readme", c,
                                                              chunksize=4)),
        "numpy_nullable": lambda c: pd.read_sql_table("readme", c,
                                                      dtype_backend="numpy_nullable"),
        "pyarrow": lambda c: pd.read_sql_query("select * from readme", c,
                                               dtype_backend="pyarrow"),
    }
    native, pooled, aliases = loaded
    same(outcome(lambda: read(native, None, readers[how])),
         outcome(lambda: read(pooled, aliases, readers[how])))


def _driver_styles(backend: str) -> list[tuple[str, Any]]:
    # what each native driver takes in a plain string: sqlite3 qmark and named, psycopg format
    # and pyformat (pooldbapi takes all of them)
    if backend == "sqlite":
        return [("select * from readme where k >= ? and name <> ?", (2, "setosa")),
                ("select * from readme where k >= :k and name <> :n", {"k": 2, "n": "setosa"})]
    return [("select * from readme where k >= %s and name <> %s", (2, "setosa")),
            ("select * from readme where k >= %(k)s and name <> %(n)s",
             {"k": 2, "n": "setosa"}),
            ("select * from readme where k >= %(k)s and name like '100%%'", {"k": 2})]


def test_read_sql_query_with_parameters_in_each_style(loaded, stack):
    native, pooled, aliases = loaded
    queries = [(sa.text("select * from readme where k >= :k and name <> :n"),
                {"k": 2, "n": "setosa"}), *_driver_styles(stack.backend)]
    for sql, params in queries:
        def reader(c: Any, sql: Any = sql, params: Any = params) -> Any:
            return pd.read_sql_query(sql, c, params=params)
        same(outcome(lambda r=reader: read(native, None, r)),
             outcome(lambda r=reader: read(pooled, aliases, r)))


@pytest.mark.parametrize("sql", [
    "select * from readme where name like '%setosa%'",
    "select * from readme where name = '100%'",
    "select * from readme where name like '%%setosa%%'",
])
def test_a_literal_percent_without_parameters(loaded, stack, sql):
    """text() with a literal % and no parameters reads as natively. A plain string is in the
    driver's paramstyle: pooldbapi's is qmark, where % is literal; psycopg's is format, and
    SQLAlchemy passes it an empty parameter set, so a lone % there is an error and %% one %."""
    native, pooled, aliases = loaded
    as_text = outcome(lambda: read(native, None, lambda c: pd.read_sql(sa.text(sql), c)))
    same(as_text, outcome(lambda: read(pooled, aliases, lambda c: pd.read_sql(sa.text(sql), c))))
    plain_native = outcome(lambda: read(native, None, lambda c: pd.read_sql(sql, c)))
    plain_pooled = outcome(lambda: read(pooled, aliases, lambda c: pd.read_sql(sql, c)))
    if stack.backend == "postgresql" and "%%" not in sql:
        assert isinstance(plain_native[0], Raised)  # psycopg refuses a lone %
        same(as_text, plain_pooled)  # pooldbapi reads it as text() does
    else:  # sqlite3 and pooldbapi (qmark): % is literal; psycopg: %% is % (LIKE: the same)
        same(plain_native, plain_pooled)


@pytest.mark.parametrize("paramstyle", ["format", "pyformat"])
def test_a_percent_paramstyle_reads_literal_percents_as_psycopg_does(pg, paramstyle):
    """With a percent paramstyle chosen for the engine, SQLAlchemy writes a literal % of text()
    as %%; with or without parameters, pooldbapi reads what psycopg reads."""
    url = f"postgres@127.0.0.1:{pg.port}/postgres"
    native = sa.create_engine(f"postgresql+psycopg://{url}")
    pooled = sa.create_engine(f"postgresql+pooldbapi://{url}", paramstyle=paramstyle)
    try:
        for sql, params in [("select '100%' as v, '%%' as w", {}),
                            ("select '100%' as v, '%%' as w, :x as x", {"x": 1}),
                            ("select '%s' as v, '%(x)s' as w", {})]:
            got = []
            for engine in (native, pooled):
                with engine.connect() as conn:
                    got.append(tuple(conn.execute(sa.text(sql), params).one()))
            assert got[1] == got[0]
    finally:
        native.dispose()
        pooled.dispose()


# -- Core and ORM ----------------------------------------------------------------------------

class Base(orm.DeclarativeBase):
    pass


class Sample(Base):
    __tablename__ = "sample"
    id: orm.Mapped[int] = orm.mapped_column(primary_key=True, autoincrement=False)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(30))
    amount: orm.Mapped[decimal.Decimal | None] = orm.mapped_column(sa.Numeric(10, 2))
    ratio: orm.Mapped[float | None] = orm.mapped_column(sa.Float)
    flag: orm.Mapped[bool | None] = orm.mapped_column(sa.Boolean)
    day: orm.Mapped[datetime.date | None] = orm.mapped_column(sa.Date)
    at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(sa.DateTime)
    clock: orm.Mapped[datetime.time | None] = orm.mapped_column(sa.Time)
    blob: orm.Mapped[bytes | None] = orm.mapped_column(sa.LargeBinary)
    doc: orm.Mapped[Any] = orm.mapped_column(sa.JSON, nullable=True)


COLUMNS_OF_SAMPLE = ("id", "name", "amount", "ratio", "flag", "day", "at", "clock", "blob",
                     "doc")
ROWS = [dict(zip(COLUMNS_OF_SAMPLE, (
            i, f"n{i}", decimal.Decimal(f"{i}.25"), i / 4, bool(i % 2), datetime.date(2024, 1, i),
            datetime.datetime(2024, 1, i, 12, 30, 15, 1234), datetime.time(i, 5, 6),
            bytes([i, 0, 255]), {"i": i, "l": [1, None]}), strict=True))
        for i in range(1, 5)]
ROWS.append(dict.fromkeys(COLUMNS_OF_SAMPLE) | {"id": 9, "name": "nulls"})


def test_orm_round_trip_and_core_reflection(stack, mode):
    native, pooled, aliases = engines(stack, mode)

    def round_trip(engine: Any, aliases: tuple[str, ...] | None) -> Any:
        Base.metadata.drop_all(engine)
        Base.metadata.create_all(engine)
        with orm.Session(engine) as session:
            session.add_all([Sample(**row) for row in ROWS])
            session.commit()
        got = []
        for alias in aliases or (None,):
            with orm.Session(engine) as session:
                query = sa.select(Sample).order_by(Sample.id)
                if alias is not None:
                    query = query.execution_options(pooldbapi_containers=alias)
                got += [tuple(getattr(s, c.key) for c in Sample.__table__.columns)
                        for s in session.scalars(query)]
        reflected = sa.MetaData()
        reflected.reflect(engine, only=["sample"])
        columns = [(c.name, str(c.type), c.nullable, c.primary_key)
                   for c in reflected.tables["sample"].columns]
        with engine.connect() as conn:
            core = conn.execute(sa.select(reflected.tables["sample"].c.id).where(
                reflected.tables["sample"].c.id > 100)).all()
        return sorted(got), columns, core
    same(outcome(lambda: round_trip(native, None)), outcome(lambda: round_trip(pooled, aliases)))


class Versioned(Base):
    __tablename__ = "versioned"
    id: orm.Mapped[int] = orm.mapped_column(primary_key=True, autoincrement=False)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(30))
    version: orm.Mapped[int] = orm.mapped_column(nullable=False)
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's own mapping


def test_orm_checks_the_rowcounts_of_batched_updates_and_deletes_as_natively(stack):
    """With supports_sane_multi_rowcount, the ORM sends updates and deletes of several objects
    as one executemany and checks that its rowcount is the number of objects (StaleDataError
    otherwise): pooldbapi's summed rowcount passes that check where the native one does."""
    def run(engine: Any) -> Any:
        Versioned.__table__.drop(engine, checkfirst=True)
        Versioned.__table__.create(engine)
        with orm.Session(engine) as session:
            session.add_all([Versioned(id=i, name=f"v{i}") for i in range(1, 6)])
            session.commit()
            for thing in session.scalars(sa.select(Versioned)):
                thing.name += "!"
            session.commit()
            for thing in session.scalars(sa.select(Versioned).where(Versioned.id > 2)):
                session.delete(thing)
            session.commit()
            got = [(v.id, v.name, v.version) for v in session.scalars(
                sa.select(Versioned).order_by(Versioned.id))]
        late = "committed"
        try:
            with orm.Session(engine, expire_on_commit=False) as session:
                stale = session.get(Versioned, 1)
                session.commit()  # the object keeps the version it read
                with engine.begin() as conn:  # another writer moves the version on
                    conn.exec_driver_sql("update versioned set version = version + 1")
                stale.name = "late"
                session.commit()
        except orm.exc.StaleDataError:
            late = "stale"
        return got, late
    native, pooled = outcome(lambda: run(stack.native)), outcome(lambda: run(stack.one))
    assert native[0][1] == "stale"  # the check ran
    same(native, pooled)
