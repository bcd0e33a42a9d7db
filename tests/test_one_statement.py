"""One execute is one statement: a second one is a ProgrammingError naming where it begins,
raised before anything is sent, whatever the back-end; ';' inside literals, dollar quotes,
E'' strings, comments and PL/SQL blocks ends nothing."""
from __future__ import annotations

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
]


@pytest.mark.parametrize("text, position", SECOND)
def test_a_second_statement_is_an_error_naming_where_it_begins(text, position):
    with pytest.raises(pooldbapi.ProgrammingError, match="one statement") as info:
        parse(text)
    assert f"at position {position} (line" in str(info.value)


def test_the_error_gives_line_and_column():
    with pytest.raises(pooldbapi.ProgrammingError, match=r"position 10 \(line 2, column 1\)"):
        parse("select 1;\nselect 2")


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
