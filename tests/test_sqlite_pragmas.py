"""SQLite's foreign_keys pragma as a container key: set on every session pooldbapi opens, so
foreign keys are enforced as sqlite3 enforces them on a connection that ran the pragma (as a
statement it does nothing inside a transaction, and in autocommit its session is not kept)."""
from __future__ import annotations

import contextlib
import sqlite3

import pytest

import pooldbapi

SCHEMA = ("create table parent (id int primary key)",
          "create table child (id int primary key, parent int references parent (id))")


@pytest.fixture
def files(tmp_path):
    paths = {a: str(tmp_path / f"{a}.db") for a in ("a", "b")}
    for path in paths.values():
        with contextlib.closing(sqlite3.connect(path)) as raw:
            for statement in SCHEMA:
                raw.execute(statement)
            raw.execute("insert into parent values (1)")
            raw.commit()
    return paths


def _native(path: str, on: bool) -> str:
    """What sqlite3 says to an orphan row, with the pragma run on its connection or not."""
    with contextlib.closing(sqlite3.connect(path)) as raw:
        if on:
            raw.execute("pragma foreign_keys = on")
        try:
            raw.execute("insert into child values (10, 99)")
        except sqlite3.IntegrityError as exc:
            return str(exc)
        finally:
            raw.rollback()
    return "written"


@pytest.mark.parametrize("autocommit", [False, True])
@pytest.mark.parametrize("value", ["on", "off"])
def test_the_key_sets_the_pragma_on_every_session_as_sqlite3_runs_it(files, autocommit, value):
    conn = pooldbapi.connect({a: f"driver=sqlite;database={p};foreign_keys={value}"
                              for a, p in files.items()}, default="{a,b}",
                             autocommit=autocommit)
    try:
        for attempt in range(4):  # each container, each a transaction (a session) of its own
            expected = _native(files["a"], value == "on")
            try:
                conn.execute(f"insert into child values ({attempt}, 99)")
                got = "written"
            except pooldbapi.IntegrityError as exc:
                got = str(exc).split(": ", 1)[1].split(" [")[0]
                assert exc.container in files
            conn.rollback()
            assert got == expected
            if value == "on":
                assert got == "FOREIGN KEY constraint failed"
            conn.execute("insert into child values (?, 1)", (100 + attempt,))  # a parent: fine
            conn.commit()
    finally:
        conn.close()


def test_sqlalchemy_url_query_keys_set_it_as_the_native_recipe_does(tmp_path):
    sa = pytest.importorskip("sqlalchemy")
    from sqlalchemy import event
    got = {}
    for name, url in (("native", f"sqlite:///{tmp_path / 'n.db'}"),
                      ("pooldbapi", f"sqlite+pooldbapi:///{tmp_path / 'p.db'}?foreign_keys=on")):
        engine = sa.create_engine(url)
        if name == "native":  # SQLAlchemy's documented recipe for pysqlite
            event.listen(engine, "connect",
                         lambda dbapi_conn, record: dbapi_conn.execute("pragma foreign_keys=on"))
        with engine.begin() as conn:
            for statement in SCHEMA:
                conn.exec_driver_sql(statement)
        with engine.connect() as conn:
            with pytest.raises(sa.exc.IntegrityError) as caught:
                conn.exec_driver_sql("insert into child values (1, 99)")
            got[name] = str(caught.value.orig).split(" [")[0].rsplit(": ", 1)[-1]
        engine.dispose()
    assert got["pooldbapi"] == got["native"] == "FOREIGN KEY constraint failed"


def test_a_bad_value_names_the_container_and_the_key(files):
    conn = pooldbapi.connect({"a": f"driver=sqlite;database={files['a']};foreign_keys=maybe"})
    try:
        with pytest.raises(pooldbapi.InterfaceError,
                           match="container 'a': key 'foreign_keys' has an invalid value"):
            conn.execute("select 1")
    finally:
        conn.close()
