"""PEP 249 conformance, against real SQLite files and a real PostgreSQL cluster."""
from __future__ import annotations

import datetime
import decimal
import os
import sqlite3
import time

import pytest

import pooldbapi

NAMES = ("Warning", "Error", "InterfaceError", "DatabaseError", "DataError",
         "OperationalError", "IntegrityError", "InternalError", "ProgrammingError",
         "NotSupportedError")


ORACLE_DSN = os.environ.get("POOLDBAPI_TEST_ORACLE_DSN")  # user/password@host:port/service
DDL = {
    "sqlite": "create table books (id integer primary key, title varchar(50),"
              " price numeric(10,2), published date, cover blob)",
    "postgresql": "create table books (id integer primary key, title varchar(50),"
                  " price numeric(10,2), published date, cover bytea)",
    "oracle": "create table books (id number(10) primary key, title varchar2(50),"
              " price number(10,2), published date, cover blob)",
}


@pytest.fixture(params=["sqlite", "postgresql", pytest.param("oracle", marks=pytest.mark.skipif(
    not ORACLE_DSN, reason="no Oracle server can run here: set POOLDBAPI_TEST_ORACLE_DSN"
                           " (user/password@host:port/service, Oracle 23ai) to include it"))])
def db(request, tmp_path):
    """A connection over two containers of one back-end, default list {c1,c2}."""
    if request.param == "sqlite":
        containers = {f"c{i}": f"driver=sqlite;database={tmp_path / f'c{i}.db'}"
                      for i in (1, 2)}
    elif request.param == "postgresql":
        containers = {"c1": request.getfixturevalue("pg").conninfo(),
                      "c2": request.getfixturevalue("pg2").conninfo()}
    else:  # one Oracle server: both containers reach the same schema
        user_password, dsn = ORACLE_DSN.split("@", 1)
        user, password = user_password.split("/", 1)
        containers = {c: {"driver": "oracle", "user": user, "password": password, "dsn": dsn}
                      for c in ("c1", "c2")}
    targets = "books@c1" if request.param == "oracle" else "books"
    conn = pooldbapi.connect(containers, default="{c1,c2}", broadcast_ddl=True, seed=3)
    conn.autocommit = True
    conn.execute(f"drop table if exists {targets}")
    conn.execute(DDL[request.param].replace("books", targets, 1))
    conn.autocommit = False
    conn.test_containers = containers  # for a second connection to the same containers
    yield conn
    if not conn.closed:
        conn.rollback()
        conn.autocommit = True
        conn.execute(f"drop table if exists {targets}")
        conn.close()


def test_module_globals():
    assert pooldbapi.apilevel == "2.0"
    assert pooldbapi.threadsafety == 2  # connections are shared between threads, serialised
    assert pooldbapi.paramstyle == "qmark"
    assert callable(pooldbapi.connect)


def test_exception_hierarchy_and_module():
    assert issubclass(pooldbapi.Warning, Exception)
    assert issubclass(pooldbapi.Error, Exception)
    assert issubclass(pooldbapi.InterfaceError, pooldbapi.Error)
    assert issubclass(pooldbapi.DatabaseError, pooldbapi.Error)
    for name in NAMES[4:]:
        assert issubclass(getattr(pooldbapi, name), pooldbapi.DatabaseError)
    assert issubclass(pooldbapi.PartialCommitError, pooldbapi.OperationalError)
    for name in (*NAMES, "PartialCommitError"):
        assert getattr(pooldbapi, name).__module__ == "pooldbapi"


def test_exceptions_as_connection_attributes(db):
    for name in NAMES:
        assert getattr(db, name) is getattr(pooldbapi, name)


def test_constructors_and_type_objects():
    assert pooldbapi.Date(2024, 2, 29) == datetime.date(2024, 2, 29)
    assert pooldbapi.Time(13, 5, 1) == datetime.time(13, 5, 1)
    assert pooldbapi.Timestamp(2024, 1, 2, 3, 4, 5) == datetime.datetime(2024, 1, 2, 3, 4, 5)
    ticks = time.mktime((2024, 5, 6, 7, 8, 9, 0, 0, -1))
    assert pooldbapi.DateFromTicks(ticks) == datetime.date(2024, 5, 6)
    assert pooldbapi.TimeFromTicks(ticks) == datetime.time(7, 8, 9)
    assert pooldbapi.TimestampFromTicks(ticks) == datetime.datetime(2024, 5, 6, 7, 8, 9)
    assert pooldbapi.Binary(b"\x00\x01") == b"\x00\x01"
    assert pooldbapi.STRING != pooldbapi.NUMBER
    assert pooldbapi.STRING == pooldbapi.STRING


def test_autocommit_starts_false_and_closed_flag(db):
    assert db.autocommit is False
    assert db.closed is False
    db.close()
    assert db.closed is True
    db.close()  # idempotent
    with pytest.raises(pooldbapi.InterfaceError):
        db.cursor()
    with pytest.raises(pooldbapi.InterfaceError):
        db.commit()


def test_insert_select_roundtrip_with_native_types(db):
    cur = db.cursor()
    row = (1, "Dune", decimal.Decimal("9.99"), datetime.date(1965, 8, 1), b"\x00\xff")
    cur.execute("insert into books@c1 (id, title, price, published, cover) values (?,?,?,?,?)",
                row)
    assert cur.rowcount == 1
    assert cur.containers == {"c1": 1}
    cur.execute("select id, title, price, published, cover from books@c1")
    got = cur.fetchone()
    codes = [d[1] for d in cur.description]
    if db.specs["c1"].driver == "sqlite":
        # what sqlite3 itself returns (no detect_types, as sqlite3.connect): text and float
        db.commit()
        raw = sqlite3.connect(db.specs["c1"].param("database"))
        try:
            assert tuple(got) == raw.execute("select id, title, price, published, cover"
                                             " from books").fetchone()
        finally:
            raw.close()
        assert tuple(got[:4]) == (1, "Dune", 9.99, "1965-08-01")
        assert codes[2] == pooldbapi.NUMBER and codes[3] == pooldbapi.STRING
    else:
        assert tuple(got[:4]) == row[:4]
        assert isinstance(got[2], decimal.Decimal) and isinstance(got[3], datetime.date)
        assert codes[2] == pooldbapi.NUMBER
        assert codes[3] == pooldbapi.DATETIME
    assert bytes(got[4]) == row[4]
    assert codes[0] == pooldbapi.NUMBER
    assert codes[1] == pooldbapi.STRING
    assert codes[4] == pooldbapi.BINARY
    assert [d[0] for d in cur.description] == ["id", "title", "price", "published", "cover"]
    assert all(len(d) == 7 for d in cur.description)


def test_type_codes_of_an_empty_result_and_of_nulls_come_from_the_columns(db):
    """No row (or a NULL) to look at: the type codes still say each column's category (SQLite:
    from the declared types; PostgreSQL and Oracle: from the driver, as ever)."""
    cur = db.cursor()
    expected = [pooldbapi.NUMBER, pooldbapi.STRING, pooldbapi.NUMBER, pooldbapi.DATETIME,
                pooldbapi.BINARY]
    for query in ("select id, title, price, published, cover from books@c1",
                  "select b.* from books@c1 b",
                  "select id as n, title from books@c1 where id < 0"):
        cur.execute(query)
        assert cur.fetchall() == []
        assert [d[1] for d in cur.description] == expected[:len(cur.description)], query
    cur.execute("insert into books@c1 (id, title) values (?, ?)", (7, "Nulls"))
    cur.execute("select id, title, price, published, cover from books@c1")
    assert [d[1] for d in cur.description] == expected
    cur.execute("select count(*) + 1 from books@c1 where id < 0")
    assert cur.description[0][1] == pooldbapi.NUMBER  # a value, typed by the value


def test_fetch_before_execute_and_after_ddl_raises(db):
    cur = db.cursor()
    assert cur.description is None and cur.rowcount == -1 and cur.rownumber is None
    with pytest.raises(pooldbapi.Error):
        cur.fetchone()
    cur.execute("insert into books@c1 (id, title) values (?, ?)", (1, "a"))
    with pytest.raises(pooldbapi.ProgrammingError):
        cur.fetchall()
    assert cur.description is None


def test_fetchmany_arraysize_iteration_and_rownumber(db):
    cur = db.cursor()
    cur.executemany("insert into books@c2 (id, title) values (?, ?)",
                    [(i, f"t{i}") for i in range(5)])
    assert cur.rowcount == 5
    cur.execute("select id from books@c2 order by id")
    assert cur.arraysize == 1
    assert cur.rownumber == 0
    assert cur.fetchmany() == [(0,)] or list(cur.fetchmany()) == [[0]]
    assert cur.rownumber == 1
    cur.arraysize = 2
    assert [tuple(r) for r in cur.fetchmany()] == [(1,), (2,)]
    assert [tuple(r) for r in cur.fetchmany(5)] == [(3,), (4,)]
    assert cur.fetchone() is None
    assert cur.fetchmany() == []
    cur.execute("select id from books@c2 order by id")
    assert [r[0] for r in cur] == [0, 1, 2, 3, 4]


def test_execute_returns_cursor_and_connection_execute(db):
    cur = db.cursor()
    assert cur.execute("select 1") is cur
    assert cur.connection is db
    cur2 = db.execute("select 2")
    assert isinstance(cur2, pooldbapi.Cursor) and cur2.fetchone()[0] == 2


def test_commit_and_rollback(db):
    db.execute("insert into books@c1 (id, title) values (1, 'kept')")
    db.commit()
    db.execute("insert into books@c1 (id, title) values (2, 'gone')")
    db.rollback()
    assert [tuple(r) for r in db.execute("select id from books@c1").fetchall()] == [(1,)]


def test_autocommit_writes_are_visible_to_other_connections(db):
    db.autocommit = True
    db.execute("insert into books@c1 (id, title) values (1, 'x')")
    other = pooldbapi.connect({"c1": db.specs["c1"].driver and dict(
        [("driver", db.specs["c1"].driver), *db.specs["c1"].params])})
    assert other.execute("select count(*) from books").fetchone()[0] == 1
    other.close()
    assert not db.transaction.borrowed  # given back after the statement
    db.autocommit = False
    db.execute("insert into books@c1 (id, title) values (2, 'y')")
    with pytest.raises(pooldbapi.ProgrammingError, match="inside a transaction"):
        db.autocommit = True


def test_context_managers(db, tmp_path):
    with db.cursor() as cur:
        cur.execute("select 1")
    assert cur.closed
    with pytest.raises(pooldbapi.InterfaceError):
        cur.execute("select 1")
    with db as conn:
        conn.execute("insert into books@c1 (id, title) values (7, 'committed')")
    assert db.closed
    with pooldbapi.connect(db.test_containers) as other:  # another session sees the commit
        assert other.execute("select title from books@c1 where id = 7").fetchall() == \
            [("committed",)]


def test_with_connection_rolls_back_on_exception(tmp_path):
    spec = {"only": f"driver=sqlite;database={tmp_path / 'ctx.db'}"}
    with pooldbapi.connect(spec, autocommit=True) as setup:
        setup.execute("create table t (x int)")
    with pytest.raises(ZeroDivisionError), pooldbapi.connect(spec) as conn:
        conn.execute("insert into t values (1)")
        raise ZeroDivisionError("an error inside the block")
    with pooldbapi.connect(spec) as conn:
        assert conn.execute("select count(*) from t").fetchone()[0] == 0


def test_callproc_calls_a_function_and_returns_the_parameters(db):
    cur = db.cursor()
    params = ["abc"]
    assert cur.callproc("upper@c2", params) == ["abc"] and cur.callproc("upper@c2",
                                                                        params) is not params
    assert cur.fetchall() == [("ABC",)] and cur.containers == {"c2": 1}
    cur.callproc("upper", ("xy",))  # the default list
    assert cur.fetchone() == ("XY",) and sum(cur.containers.values()) == 1
    with pytest.raises(pooldbapi.ProgrammingError, match="not a procedure name"):
        cur.callproc("upper(1); drop table books; --")
    with pytest.raises(pooldbapi.ProgrammingError):
        cur.callproc("no_such_function@c1", [1])


def test_nextset_setsizes(db):
    cur = db.cursor()
    with pytest.raises(pooldbapi.NotSupportedError):
        cur.nextset()
    cur.setinputsizes([None])
    cur.setoutputsize(10)
    cur.setoutputsize(10, 0)


def test_lastrowid(tmp_path):
    conn = pooldbapi.connect({"s": f"driver=sqlite;database={tmp_path / 'l.db'}"})
    conn.execute("create table t (id integer primary key autoincrement, x int)")
    cur = conn.execute("insert into t (x) values (5)")
    cur = conn.execute("insert into t (x) values (6)")
    assert cur.lastrowid == 2
    cur.executemany("insert into t (x) values (?)", [(1,), (2,)])
    assert cur.lastrowid is None
    conn.close()


def test_rowcount_of_update_and_delete(db):
    cur = db.cursor()
    cur.executemany("insert into books@c1 (id, title) values (?, ?)", [(i, "x") for i in range(4)])
    cur.execute("update books@c1 set title = ? where id < ?", ("y", 3))
    assert cur.rowcount == 3
    cur.execute("delete from books@c1 where id >= 2")
    assert cur.rowcount == 2


def test_errors_are_wrapped_with_container(db):
    with pytest.raises(pooldbapi.ProgrammingError) as info:
        db.execute("select no_such_column from books@c2")
    assert info.value.container == "c2"
    assert "c2" in str(info.value)
    assert info.value.__cause__ is not None
    db.rollback()
    db.execute("insert into books@c1 (id) values (1)")
    with pytest.raises(pooldbapi.IntegrityError):
        db.execute("insert into books@c1 (id) values (1)")


def test_closed_cursor_raises(db):
    cur = db.cursor()
    cur.close()
    cur.close()
    for call in (lambda: cur.execute("select 1"), cur.fetchone, cur.fetchall,
                 lambda: cur.executemany("insert into books (id) values (?)", [])):
        with pytest.raises(pooldbapi.InterfaceError):
            call()


def test_transaction_control_as_text_is_refused(db):
    for text in ("commit", "rollback", "begin", "BEGIN TRANSACTION", "savepoint s1",
                 "start transaction"):
        with pytest.raises(pooldbapi.ProgrammingError, match="commit\\(\\)"):
            db.execute(text)


@pytest.mark.parametrize("bad", [None, 5, "not rows", {"a": 1}])
def test_executemany_of_something_else_than_parameter_sets_is_a_programming_error(bad):
    conn = pooldbapi.connect({"a": "driver=sqlite;database=:memory:"}, autocommit=True)
    conn.execute("create table t (x int)")
    with pytest.raises(pooldbapi.ProgrammingError, match="sequence of parameter sets"):
        conn.cursor().executemany("insert into t values (?)", bad)
    conn.close()


def test_a_bad_parameter_set_is_named_by_its_index_in_the_callers_sequence(tmp_path):
    conn = pooldbapi.connect({a: f"driver=sqlite;database={tmp_path / a}.db" for a in "abc"},
                             default="{a,b,c}", broadcast_ddl=True, autocommit=True, seed=1)
    conn.execute("create table t (x int)")
    with pytest.raises(pooldbapi.ProgrammingError, match="parameter set 2: .*takes 1"):
        conn.cursor().executemany("insert into t values (?)", [(1,), (2,), (3, 4), (5,)])
    assert sum(conn.execute(f"select count(*) from t@{a}").fetchone()[0] for a in "abc") == 0
    conn.close()


def test_an_errors_message_is_built_from_its_fields_when_shown():
    err = pooldbapi.IntegrityError("a: duplicate key")
    err.container, err.row, err.written = "a", 7, {"a": (0, 1), "b": (2,)}
    assert str(err) == ("a: duplicate key (row 7 on container a; written before the error:"
                        " a: 2 rows; b: 1 rows)")
    err.written = {"a": (0, 1, 3)}  # a later round's rows: the message follows the field
    assert "written before the error: a: 3 rows)" in str(err)
    err.transaction_failed = True
    assert "nothing of it is kept; call rollback()" in str(err)
    lost = pooldbapi.OperationalError("b: server closed the connection")
    lost.lost_kind = "insert"
    assert str(lost) == ("b: server closed the connection (the outcome of this insert is"
                         " unknown: the connection was lost while it ran)")
    assert lost.args == ("b: server closed the connection",)


@pytest.fixture
def app_converters():
    """Converters an application registers with sqlite3 (process-wide), removed afterwards."""
    added = {"NUMERIC": lambda raw: decimal.Decimal(raw.decode()),
             "DATE": lambda raw: datetime.date.fromisoformat(raw.decode())}
    saved = {name: sqlite3.converters.get(name) for name in added}
    for name, convert in added.items():
        sqlite3.register_converter(name, convert)
    yield
    for name, convert in saved.items():
        if convert is None:
            sqlite3.converters.pop(name, None)
        else:
            sqlite3.converters[name] = convert


def test_pooldbapi_registers_no_sqlite_converters():
    import pooldbapi.federated.engine  # noqa: F401 - the local engine's converters go by its own names
    mine = {name for name, convert in sqlite3.converters.items()
            if convert.__module__.startswith("pooldbapi")}
    assert mine and all(name.startswith("POOLDBAPI_") for name in mine)
    assert "BOOLEAN" not in sqlite3.converters and "DECIMAL" not in sqlite3.converters


def test_sqlite_values_follow_detect_types_and_the_applications_converters(tmp_path,
                                                                        app_converters):
    path = tmp_path / "c.db"
    raw = sqlite3.connect(path, detect_types=sqlite3.PARSE_DECLTYPES)
    raw.execute("create table t (price numeric(10,2), published date, flag boolean)")
    raw.execute("insert into t values ('9.99', '1965-08-01', 1)")
    raw.commit()
    expected = raw.execute("select price, published, flag from t").fetchone()
    raw.close()
    assert expected == (decimal.Decimal("9.99"), datetime.date(1965, 8, 1), 1)
    conn = pooldbapi.connect({"c": f"driver=sqlite;database={path};detect_types=1"})
    try:
        cur = conn.execute("select price, published, flag from t")
        assert cur.fetchone() == expected
        assert [d[1] for d in cur.description] == [pooldbapi.NUMBER, pooldbapi.DATETIME,
                                                    pooldbapi.NUMBER]
    finally:
        conn.close()


@pytest.mark.parametrize("shape", ["executemany", "values"])
def test_rowcount_counts_rows_over_a_list_and_survives_close_as_the_driver_does(db, shape):
    cur = db.cursor()
    rows = [(i, f"t{i}") for i in range(1, 6)]
    if shape == "executemany":
        cur.executemany("insert into books (id, title) values (?, ?)", rows)
    else:
        cur.execute("insert into books (id, title) values " + ", ".join(["(?, ?)"] * 5),
                    [v for r in rows for v in r])
    # the rows written, summed over the containers, however the rows were sent to each
    assert cur.rowcount == 5
    assert set(cur.containers) == {"c1", "c2"}
    assert sum(db.execute(f"select count(*) from books@{a}").fetchone()[0]
               for a in ("c1", "c2")) == 5
    cur.close()
    # sqlite3's closed cursor keeps its rowcount; psycopg's resets it to -1
    assert cur.rowcount == (5 if db.specs["c1"].driver == "sqlite" else -1)
    cur = db.cursor()
    cur.executemany("update books set title = ? where id = ?", [("x", 1), ("y", 2), ("z", 99)])
    assert cur.rowcount == 2


def test_connections_carry_the_exception_classes_as_pep_249_s_extension_says(tmp_path):
    import pooldbapi.aio
    names = ["Warning", "Error", "InterfaceError", "DatabaseError", "DataError",
             "OperationalError", "IntegrityError", "InternalError", "ProgrammingError",
             "NotSupportedError"]
    conn = pooldbapi.connect({"s": f"driver=sqlite;database={tmp_path / 's.db'}"})
    try:
        for name in names:
            assert getattr(conn, name) is getattr(pooldbapi, name)
            assert getattr(pooldbapi.aio.AsyncConnection, name) is getattr(pooldbapi, name)
    finally:
        conn.close()
