"""The oracle back-end. No Oracle server can run on these machines: everything that needs none is
tested here (connect parameters, generated SQL, paramstyle, type and error maps, an unreachable
server); the integration tests at the end run when POOLDBAPI_TEST_ORACLE_DSN names a server."""
from __future__ import annotations

import importlib
import os

import oracledb
import pytest
from pgcluster import free_port

import pooldbapi
from pooldbapi.backends.oracle import (
    BACKEND,
    PROBE_SQL,
    OracleLink,
    connect_arguments,
    type_code,
)
from pooldbapi.federated.eager import partial_sql
from pooldbapi.federated.engine import pushdown_sql
from pooldbapi.ops.synchronize import delete_sql, insert_sql, update_sql
from pooldbapi.settings import make_spec
from pooldbapi.sql.parse import parse
from pooldbapi.sql.render import render


def oracle_error(message: str, code: int) -> oracledb.Error:
    """A real oracledb exception, built the way the driver builds them."""
    errors = importlib.import_module("oracledb.errors")  # not an attribute of the package
    err = errors._Error(message, code=code)
    return err.exc_type(err)


def test_forwarded_keys_reach_connect_params_with_their_types():
    spec = make_spec("ora", "driver=oracle;user=scott;password=tiger;host=db.example;port=1522;"
                            "service_name=FREEPDB1;tcp_connect_timeout=2.5;expire_time=3;"
                            "ssl_server_dn_match=false;program=pooldbapi-test;"
                            "maximum-number-of-pooled-connections=4")
    params, extra = connect_arguments(spec)
    assert params.user == "scott" and params.host == "db.example"
    assert params.port == 1522 and params.service_name == "FREEPDB1"
    assert params.tcp_connect_timeout == 2.5 and params.expire_time == 3
    assert params.ssl_server_dn_match is False and params.program == "pooldbapi-test"
    assert extra == {}
    assert spec.options.maximum_number_of_pooled_connections == 4  # consumed, not forwarded
    _, extra = connect_arguments(make_spec("o", "driver=oracle;dsn=db/FREEPDB1;user=u"))
    assert extra == {"dsn": "db/FREEPDB1"}


@pytest.mark.parametrize("text, message", [
    ("driver=oracle;colour=red", "rejects the key 'colour'"),
    ("driver=oracle;port=lots", "'port' has an invalid value 'lots' \\(expected int\\)"),
    ("driver=oracle;set=1", "rejects the key 'set'"),
])
def test_rejected_keys_name_container_and_key(text, message):
    conn = pooldbapi.connect({"ora": text})
    with pytest.raises(pooldbapi.InterfaceError, match=f"'ora'.*{message}"):
        conn.execute("select 1 from dual")


def test_numeric_paramstyle_rendering():
    stmt = parse("select * from emp@ora where deptno = ? and sal > ?")
    assert render(stmt, BACKEND.paramstyle).text == \
        "select * from emp where deptno = :1 and sal > :2"
    stmt = parse("select * from emp@ora where a = :x or b = :x")
    rendered = render(stmt, BACKEND.paramstyle)
    assert rendered.text == "select * from emp where a = :1 or b = :2"
    assert rendered.keys == ("x", "x")


@pytest.mark.parametrize("db_type, category", [
    (oracledb.DB_TYPE_NUMBER, pooldbapi.NUMBER), (oracledb.DB_TYPE_BINARY_DOUBLE, pooldbapi.NUMBER),
    (oracledb.DB_TYPE_VARCHAR, pooldbapi.STRING), (oracledb.DB_TYPE_NCHAR, pooldbapi.STRING),
    (oracledb.DB_TYPE_CLOB, pooldbapi.STRING), (oracledb.DB_TYPE_RAW, pooldbapi.BINARY),
    (oracledb.DB_TYPE_BLOB, pooldbapi.BINARY), (oracledb.DB_TYPE_DATE, pooldbapi.DATETIME),
    (oracledb.DB_TYPE_TIMESTAMP_TZ, pooldbapi.DATETIME), (oracledb.DB_TYPE_ROWID, pooldbapi.ROWID),
])
def test_type_codes(db_type, category):
    code = type_code(db_type)
    assert code == category and str(code) == db_type.name
    assert all(code != other for other in (pooldbapi.NUMBER, pooldbapi.STRING, pooldbapi.BINARY,
                                           pooldbapi.DATETIME, pooldbapi.ROWID)
               if other is not category)


@pytest.mark.parametrize("message, code, cls", [
    ("ORA-00001: unique constraint (SCOTT.PK_EMP) violated", 1, pooldbapi.IntegrityError),
    ("ORA-01400: cannot insert NULL into (\"SCOTT\".\"EMP\".\"ENAME\")", 1400,
     pooldbapi.IntegrityError),
    ("ORA-02291: integrity constraint (SCOTT.FK) violated - parent key not found", 2291,
     pooldbapi.IntegrityError),
    ("ORA-00942: table or view does not exist", 942, pooldbapi.ProgrammingError),
    ("ORA-00904: \"X\": invalid identifier", 904, pooldbapi.ProgrammingError),
    ("ORA-01722: invalid number", 1722, pooldbapi.DataError),
    ("ORA-01476: divisor is equal to zero", 1476, pooldbapi.DataError),
])
def test_error_map_keeps_the_ora_code(message, code, cls):
    from pooldbapi.errors import wrap
    exc = oracle_error(message, code)
    found, ora = BACKEND.error_class(exc)
    assert found is cls
    assert ora == message.split(":")[0]
    err = wrap(exc, "ora", (), ora, found)
    assert isinstance(err, cls) and err.sqlstate == ora and str(err).startswith("ora: ")


def test_lost_connections_are_connection_errors():
    assert BACKEND.is_connection_error(oracle_error("ORA-03113: end-of-file on"
                                                    " communication channel", 3113))
    assert not BACKEND.is_connection_error(oracle_error("ORA-01017: invalid username/password;"
                                                        " logon denied", 1017))
    assert not BACKEND.is_connection_error(oracle_error("ORA-00001: unique constraint", 1))


def test_generated_statements_sent_to_oracle():
    assert PROBE_SQL == "select 1 from dual"
    bulk = parse("bulk insert into emp@ora (empno, ename) values (?, ?)")
    assert render(bulk, "numeric").text == "insert into emp (empno, ename) values (:1, :2)"
    target = "emp@{ora}"
    assert render(parse(insert_sql(target, ["EMPNO", "ENAME"])), "numeric").text == \
        "insert into emp (EMPNO, ENAME) values (:1, :2)"
    assert render(parse(update_sql(target, ["ENAME"], ["empno"])), "numeric").text == \
        "update emp set ENAME = :1 where empno = :2"
    assert render(parse(delete_sql(target, ["empno", "deptno"])), "numeric").text == \
        "delete from emp where empno = :1 and deptno = :2"
    pushed = parse(pushdown_sql("scott.emp", "e", ["EMPNO", "SAL"], ["e.sal > ?"]))
    assert render(pushed, "numeric").text == \
        'select "EMPNO", "SAL" from scott.emp e where (e.sal > :1)'
    assert render(parse(pushdown_sql("emp", "", ["EMPNO"], [])), "numeric").text == \
        'select "EMPNO" from emp'
    # partial aggregates (eager aggregation) and the limit probe behind explain's estimate
    partial = parse(partial_sql("scott.emp", "e", ["DEPTNO"], (("count", None), ("sum", "SAL")),
                                ["e.sal > ?"]))
    assert render(partial, "numeric").text == (
        'select "DEPTNO", count(*) as pooldbapi_a0, sum("SAL") as pooldbapi_a1 from scott.emp e'
        ' where (e.sal > :1) group by "DEPTNO"')
    probe = parse(BACKEND.estimate_text(render(pushed, None).text))
    assert render(probe, "numeric").text == (
        'select count(*) from (select "EMPNO", "SAL" from scott.emp e where (e.sal > :1)'
        ' fetch first 100001 rows only) pooldbapi_probe')
    assert BACKEND.estimated_rows((42,)) == 42


class RecordingCursor:
    def __init__(self, log):
        self.log = log

    def execute(self, text, *args):
        self.log.append(text)

    def fetchall(self):
        return [(1,)]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class RecordingConnection:
    """A recording stand-in for an oracledb connection (unit tests of generated SQL only)."""

    def __init__(self):
        self.log, self.autocommit, self.commits = [], True, 0

    def cursor(self):
        return RecordingCursor(self.log)

    def commit(self):
        self.commits += 1


def test_probe_and_page_savepoints_send_oracle_sql():
    raw = RecordingConnection()
    link = OracleLink(raw, make_spec("ora", "driver=oracle;user=scott"), BACKEND)
    link.probe()
    assert raw.log == ["select 1 from dual"]
    raw.log.clear()
    with link.atomic():
        pass
    assert raw.log[0].startswith("savepoint pooldbapi_page_")
    assert raw.commits == 1 and raw.autocommit is True  # autocommit: the page commits whole
    raw.log.clear()
    with pytest.raises(ZeroDivisionError), link.atomic():
        _ = 1 / 0
    name = raw.log[0].split()[-1]
    assert raw.log == [f"savepoint {name}", f"rollback to savepoint {name}"]


def test_unreachable_server(tmp_path):
    port = free_port()  # nothing listens there
    conn = pooldbapi.connect(
        {"ora": f"driver=oracle;user=scott;password=s3cret-pw;host=127.0.0.1;port={port};"
                f"service_name=FREEPDB1;tcp_connect_timeout=2",
         "lite": f"driver=sqlite;database={tmp_path / 'l.db'}"}, autocommit=True)
    conn.execute("create table t@lite (x int)")
    conn.execute("insert into t@lite values (1)")
    with pytest.raises(pooldbapi.OperationalError) as info:
        conn.execute("select x from t@ora")
    err = info.value
    assert err.container == "ora" and "ora" in str(err)
    for text in (str(err), repr(err), str(err.__cause__), repr(err.__cause__)):
        assert "s3cret-pw" not in text
    assert not pooldbapi.health()["ora"].healthy
    for _ in range(4):  # a list that also holds a healthy container is still served
        assert conn.execute("select x from t@{ora,lite}").fetchall() == [(1,)]
    conn.close()


ORACLE_DSN = os.environ.get("POOLDBAPI_TEST_ORACLE_DSN")
needs_oracle = pytest.mark.skipif(
    not ORACLE_DSN, reason="no Oracle server can run here: set POOLDBAPI_TEST_ORACLE_DSN"
                           " (user/password@host:port/service) to run these against one")


@pytest.fixture
def ora():
    user_password, dsn = ORACLE_DSN.split("@", 1)
    user, password = user_password.split("/", 1)
    conn = pooldbapi.connect({"ora": {"driver": "oracle", "user": user, "password": password,
                                      "dsn": dsn}})
    yield conn
    conn.rollback()
    conn.close()


@needs_oracle
def test_oracle_roundtrip_types_and_rollback(ora):
    import datetime
    import decimal
    ora.autocommit = True
    try:
        ora.execute("drop table pooldbapi_t purge")
    except pooldbapi.DatabaseError:
        pass
    ora.execute("create table pooldbapi_t (id number(10) primary key, name varchar2(20),"
                " amount number(10,2), born date)")
    ora.autocommit = False
    cur = ora.execute("insert into pooldbapi_t values (?, ?, ?, ?)",
                      (1, "ann", decimal.Decimal("2.5"), datetime.datetime(2020, 1, 2)))
    assert cur.rowcount == 1 and cur.lastrowid
    ora.commit()
    cur = ora.execute("select id, name, amount, born from pooldbapi_t")
    assert cur.fetchall() == [(1, "ann", 2.5, datetime.datetime(2020, 1, 2))]
    assert [d[1] for d in cur.description][:2] == [pooldbapi.NUMBER, pooldbapi.STRING]
    with pytest.raises(pooldbapi.IntegrityError) as info:
        ora.execute("insert into pooldbapi_t (id) values (1)")
    assert info.value.sqlstate == "ORA-00001"
    ora.rollback()
    ora.cursor().executemany("bulk insert into pooldbapi_t (id, name) values (?, ?)",
                             [(i, f"n{i}") for i in range(10, 20)])
    ora.rollback()
    assert ora.execute("select count(*) from pooldbapi_t").fetchone() == (1,)
    ora.autocommit = True
    ora.execute("drop table pooldbapi_t purge")
