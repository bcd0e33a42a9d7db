"""One execute is one statement: a second one is a ProgrammingError naming where it begins,
raised before anything is sent, whatever the back-end; ';' inside literals, dollar quotes,
E'' strings, comments and PL/SQL blocks ends nothing."""
from __future__ import annotations

import sqlite3

import psycopg
import pytest

import pooldbapi
from pooldbapi.sql.parse import parse

SECOND = [
    # text, where the second statement begins (offset)
    ("select 1; commit", 10),
    ("select 1;commit", 9),
    ("select 1; rollback; insert into t values (1)", 10),
    ("select $$;$$; delete from victim", 14),
    ("select $x$ ; $x$; delete from victim", 18),
    ("select E'\\';'; delete from victim", 15),
    ("select ';' ; delete from victim", 13),
    ("select 1 /* ; */ ; -- ;\n drop table victim", 25),
    ("create table z (x int); drop table victim", 24),
    ("select 1;;", 9),
    ("select 1; /* c */ ;", 18),
    ("select 1;\nselect 2", 10),
    ("begin null; end; delete from victim", 17),
    ("declare c cursor for select 1; delete from victim", 31),
    ("create function f() returns int language sql begin atomic select 1; end; drop table v",
     73),
    ("select case when true then 1 end; delete from victim", 34),
    ("create trigger tr after insert on x begin insert into y values (1); end; drop table v",
     73),
    ("create trigger tr before insert on t for each row begin null; end; delete from victim",
     67),
]


@pytest.mark.parametrize("text, position", SECOND)
def test_a_second_statement_is_an_error_naming_where_it_begins(text, position):
    with pytest.raises(pooldbapi.ProgrammingError, match="one statement") as info:
        parse(text)
    assert f"at position {position} (line" in str(info.value)


def test_the_error_gives_line_and_column():
    with pytest.raises(pooldbapi.ProgrammingError) as info:
        parse("select 1;\nselect 2")
    assert str(info.value) == ("one execute runs one statement: another begins at position 10"
                               " (line 2, column 1) (run each statement on its own)")


ONE = [
    "select 1", "select 1;", "select 1 ;  ", "select 1; -- done", "select 1; /* done */\n",
    "select ';', $$;$$, $t$;$t$, E'\\';', \";\" -- ;\n", "select 1 /* ; /* ; */ ; */",
    "begin null; end;", "begin null; end", "declare x int; begin x := 1; end;",
    "begin if 1 = 1 then null; end if; loop exit; end loop; end;",
    "begin case when 1 = 1 then null; end case; end;",
    "create function f() returns int language sql begin atomic select 1; select 2; end;",
    "create or replace procedure p as begin null; end;",
    "create or replace package body k as procedure p is begin null; end; end k;",
    "create function f() returns int as $$ select 1; $$ language sql;",
    # triggers: the body is one block whatever the header before its BEGIN (SQLite's forms
    # from its documentation, then Oracle's: row and statement level, system, DECLARE)
    "create trigger tr after insert on x begin insert into y values (1); end",
    "create temp trigger if not exists tr before delete on x begin delete from y; end;",
    ("create trigger tr after update of a, b on x for each row when new.a > 0 begin"
    " update y set n = case when new.a > 9 then 9 else new.a end; select 1; end"),
    "create trigger tr after insert on x for each row begin insert into y values (1); end",
    "create trigger tr before insert on t for each row when (new.x > 0) begin null; end;",
    "create or replace trigger tr before update of a on t begin null; end;",
    "create or replace trigger tr after logon on database begin null; end;",
    "create trigger tr before insert on t for each row declare n number; begin n := 1; end;",
    ("create trigger tr after insert on t for each statement begin if 1 = 1 then null;"
    " end if; end;"),
    "", "   ", "-- only a comment", ";",
]


@pytest.mark.parametrize("text", ONE)
def test_one_statement_with_an_optional_final_semicolon_is_accepted(text):
    parse(text)


def test_nothing_runs_on_postgresql_when_a_second_statement_follows(pg):
    admin = psycopg.connect(pg.dsn, autocommit=True)
    admin.execute("drop table if exists victim")
    admin.execute("create table victim (x int)")
    admin.execute("insert into victim values (1), (2)")
    conn = pooldbapi.connect({"pg1": pg.conninfo()})
    try:
        conn.execute("insert into victim values (3)")
        for text in ("select 1; commit", "select $$;$$; delete from victim",
                     "create table z (x int); drop table victim",
                     "select 1; rollback; insert into victim values (9)"):
            with pytest.raises(pooldbapi.ProgrammingError, match="one statement"):
                conn.execute(text)
        # the open transaction was neither committed nor rolled back behind its back
        assert admin.execute("select count(*) from victim").fetchone() == (2,)
        conn.rollback()
        assert admin.execute("select count(*) from victim").fetchone() == (2,)
        assert admin.execute("select to_regclass('z')").fetchone() == (None,)
    finally:
        conn.close()
        admin.execute("drop table victim")
        admin.close()


def test_the_rule_holds_on_sqlite_too(tmp_path):
    conn = pooldbapi.connect({"s": f"driver=sqlite;database={tmp_path / 'v.db'}"},
                             autocommit=True)
    conn.execute("create table victim (x int)")
    conn.execute("insert into victim values (1);")
    with pytest.raises(pooldbapi.ProgrammingError, match="one statement.*position 10"):
        conn.execute("select 1; delete from victim")
    assert conn.execute("select count(*) from victim").fetchone() == (1,)
    conn.close()


def test_a_sqlite_trigger_is_one_statement_and_works_as_with_sqlite3(tmp_path):
    """SQLite's trigger forms (no FOR EACH ROW, WHEN without parentheses) run through
    pooldbapi as through sqlite3, and fire the same way. (A temporary trigger is session
    state, which lasts one statement in autocommit: README, Transactions.)"""
    triggers = [
        "create trigger t1 after insert on x begin insert into log values ('t1', new.a); end",
        ("create trigger if not exists t2 after insert on x when new.a > 1 begin"
        " insert into log values ('t2', new.a); update log set a = a * 10 where who = 't1';"
        " end;"),
    ]

    def run(conn):
        conn.execute("create table x (a int)")
        conn.execute("create table log (who text, a int)")
        for text in triggers:
            conn.execute(text)
        conn.execute("insert into x values (1)")
        conn.execute("insert into x values (2)")
        return sorted(conn.execute("select who, a from log").fetchall())

    native = sqlite3.connect(tmp_path / "native.db", isolation_level=None)
    expected = run(native)
    native.close()
    conn = pooldbapi.connect({"s": f"driver=sqlite;database={tmp_path / 'p.db'}"},
                             autocommit=True)
    try:
        assert [tuple(row) for row in run(conn)] == expected
        assert ("t2", 2) in expected and ("t1", 10) in expected  # both fired, t2 as told
    finally:
        conn.close()
