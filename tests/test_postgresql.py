"""The postgresql back-end against real throwaway clusters."""
from __future__ import annotations

import psycopg
import pytest

import pooldbapi


def test_forwarded_key_reaches_the_server(pg):
    conn = pooldbapi.connect({"pg1": pg.conninfo(application_name="pooldbapi-forwarded")})
    cur = conn.execute("select application_name from pg_stat_activity where pid ="
                       " pg_backend_pid()")
    assert cur.fetchone() == ("pooldbapi-forwarded",)
    conn.close()


def test_rejected_key_is_an_interface_error_naming_container_and_key(pg):
    conn = pooldbapi.connect({"pg1": pg.conninfo(bogus_option="1", password="hunter2")})
    with pytest.raises(pooldbapi.InterfaceError, match="'pg1'.*'bogus_option'") as info:
        conn.execute("select 1")
    assert "hunter2" not in str(info.value) and "hunter2" not in repr(info.value)


def test_wrong_password_names_container_and_hides_the_secret(pg):
    admin = psycopg.connect(pg.dsn, autocommit=True)
    admin.execute("create role secretive login password 'right-one'")
    admin.execute("alter system set password_encryption = 'scram-sha-256'")
    hba = pg.data / "pg_hba.conf"
    hba.write_text("host all secretive 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
    admin.execute("select pg_reload_conf()")
    admin.close()
    conn = pooldbapi.connect({"pg1": pg.conninfo(user="secretive", password="s3cr3t-wrong")})
    with pytest.raises(pooldbapi.OperationalError) as info:
        conn.execute("select 1")
    err = info.value
    assert "pg1" in str(err)
    for text in (str(err), repr(err), str(err.__cause__), repr(err.__cause__)):
        assert "s3cr3t-wrong" not in text


def test_type_codes_compare_equal_to_type_objects(pg):
    conn = pooldbapi.connect({"pg1": pg.conninfo()})
    cur = conn.execute("select 1::int4, 'x'::text, now(), '\\x00'::bytea, 1.5::numeric,"
                       " '(0,1)'::tid")
    codes = [d[1] for d in cur.description]
    assert codes[0] == pooldbapi.NUMBER and codes[0] != pooldbapi.STRING
    assert codes[1] == pooldbapi.STRING
    assert codes[2] == pooldbapi.DATETIME
    assert codes[3] == pooldbapi.BINARY
    assert codes[4] == pooldbapi.NUMBER
    assert codes[5] == pooldbapi.ROWID
    conn.close()


def test_driver_error_keeps_sqlstate_and_cause(pg):
    conn = pooldbapi.connect({"pg1": pg.conninfo()}, autocommit=True)
    conn.execute("create table uniq (id int primary key)")
    conn.execute("insert into uniq values (1)")
    with pytest.raises(pooldbapi.IntegrityError) as info:
        conn.execute("insert into uniq values (?)", (1,))
    assert info.value.sqlstate == "23505"
    assert info.value.container == "pg1"
    assert isinstance(info.value.__cause__, psycopg.errors.UniqueViolation)
    conn.execute("drop table uniq")
    conn.close()


def test_literal_percent_and_placeholders_render_for_psycopg(pg):
    conn = pooldbapi.connect({"pg1": pg.conninfo()})
    cur = conn.execute("select 7 % 4, '50%' || ?", ("x",))
    assert cur.fetchone() == (3, "50%x")
    cur = conn.execute("select 7 %% 4, '50%%' || %s", ("y",))
    assert cur.fetchone() == (3, "50%y")
    cur = conn.execute("select :a::text || :a, :b", {"a": "r", "b": 2})
    assert cur.fetchone() == ("rr", 2)
    cur = conn.execute("select '{1,2,3}'::int[] @> array[2], (array[1,2,3])[2:3]")
    assert cur.fetchone() == (True, [2, 3])
    cur = conn.execute("select $x$ it's ? :y $x$ || ?", ("!",))
    assert cur.fetchone() == (" it's ? :y !",)
    conn.close()


def test_round_robin_over_two_servers(pg, pg2):
    conn = pooldbapi.connect({"a": pg.conninfo(), "b": pg2.conninfo()}, default="{a,b}",
                             broadcast_ddl=True, autocommit=True)
    conn.execute("create table rr (port int)")
    try:
        for _ in range(10):
            conn.execute("insert into rr select inet_server_port()")
        counts = {}
        for alias, cluster in (("a", pg), ("b", pg2)):
            cur = conn.execute(f"select count(*), min(port), max(port) from rr@{alias}")
            counts[alias] = cur.fetchone()
            assert counts[alias][1] == counts[alias][2] == cluster.port
        assert counts["a"][0] == counts["b"][0] == 5
    finally:
        conn.execute("drop table rr")
        conn.close()


def test_prepared_statements_survive_repeated_session_resets(pg):
    """The pool resets a session that ran DDL with DISCARD ALL, which drops the server's
    prepared statements; psycopg must forget its own each time, not only the first."""
    conn = pooldbapi.connect({"p": pg.conninfo() + ";maximum-number-of-pooled-connections=1"})
    try:
        for round_ in range(4):
            conn.execute(f"create table if not exists prep_{round_} (x int)")
            conn.commit()  # the session ran DDL: DISCARD ALL when it goes back to the pool
            for i in range(8):  # psycopg prepares a statement from its sixth execution
                conn.execute("insert into prep_0 (x) values (?)", (i,))
            conn.commit()
        assert conn.execute("select count(*) from prep_0").fetchone()[0] == 32
    finally:
        conn.rollback()
        for round_ in range(4):
            conn.execute(f"drop table if exists prep_{round_}")
        conn.commit()
        conn.close()


def test_returning_over_two_servers_comes_back_in_row_order(pg, pg2):
    """RETURNING rows of a multi-row insert and of executemany spread over two servers, in the
    order of the rows, equal to what each server holds after commit."""
    conn = pooldbapi.connect({"p1": pg.conninfo(), "p2": pg2.conninfo()}, default="{p1,p2}",
                             broadcast_ddl=True)
    conn.execute("drop table if exists ret")
    conn.execute("create table ret (id serial primary key, v text)")
    conn.commit()
    cur = conn.execute("insert into ret (v) values (%s), (%s), (%s) returning id, v",
                       ("a", "b", "c"))
    first = cur.fetchall()
    cur.executemany("insert into ret (v) values (%s) returning id, v", [("d",), ("e",)])
    second = cur.fetchall()
    conn.commit()
    assert [r[1] for r in first + second] == ["a", "b", "c", "d", "e"]
    held = sorted(tuple(r) for a in ("p1", "p2")
                  for r in conn.execute(f"select id, v from ret@{a}"))
    assert sorted(tuple(r) for r in first + second) == held
    conn.execute("drop table ret")
    conn.commit()
    conn.close()
