"""Connection strings, settings files, own keys vs forwarded keys, secrets."""
from __future__ import annotations

import logging

import pytest

import pooldbapi
from pooldbapi.settings import load_settings, make_spec, split_connection_string

SPLIT = [
    ("driver=sqlite;database=x.db", [("driver", "sqlite"), ("database", "x.db")]),
    (' driver = sqlite ; database="a;b=c.db" ;', [("driver", "sqlite"), ("database", "a;b=c.db")]),
    ('application_name="say ""hi"""', [("application_name", 'say "hi"')]),
    ("a=;b=1", [("a", ""), ("b", "1")]),
]


@pytest.mark.parametrize("text, pairs", SPLIT)
def test_split_connection_string(text, pairs):
    assert split_connection_string("x", text) == pairs


@pytest.mark.parametrize("text, message", [
    ("driver", "expected key=value at position 0"),
    ('a="unclosed', "unclosed quote for key 'a'"),
    ('a="x" y', "expected ';' after the quoted value of key 'a'"),
    ("=1", "empty key"),
])
def test_bad_connection_strings(text, message):
    with pytest.raises(pooldbapi.InterfaceError, match=message):
        split_connection_string("x", text)


@pytest.mark.parametrize("spelling", ["AllowConnectionPooling", "allow-connection-pooling",
                                      "allow_connection_pooling", "ALLOW-connection_Pooling"])
def test_own_keys_are_one_key_in_any_spelling(spelling):
    spec = make_spec("a", f"driver=sqlite;database=x;{spelling}=false")
    assert spec.options.allow_connection_pooling is False
    assert spec.params == (("database", "x"),)


def test_defaults_and_consumed_keys():
    spec = make_spec("a", "Driver=PostgreSQL;host=h;MaximumNumberOfPooledConnections=3;"
                          "page-size=50;max-calls-per-second=2.5;sslmode=require")
    assert spec.driver == "postgresql"
    assert spec.options.maximum_number_of_pooled_connections == 3
    assert spec.options.page_size == 50
    assert spec.options.max_calls_per_second == 2.5
    assert spec.options.pool_timeout == 30 and spec.options.idle_timeout == 600
    assert spec.options.connection_lifetime == 3600 and spec.options.max_tries == 5
    assert spec.options.exclude_unhealthy is True
    assert spec.params == (("host", "h"), ("sslmode", "require"))  # spelling unchanged


def test_dict_definitions_and_bad_values():
    spec = make_spec("a", {"driver": "sqlite", "database": "x", "page_size": 7})
    assert spec.options.page_size == 7
    with pytest.raises(pooldbapi.InterfaceError, match="'page-size' has an invalid value"):
        make_spec("a", "driver=sqlite;page-size=lots")
    with pytest.raises(pooldbapi.InterfaceError, match="'driver' is required"):
        make_spec("a", "database=x")
    with pytest.raises(pooldbapi.InterfaceError, match="not an identifier"):
        make_spec("a-b", "driver=sqlite")
    with pytest.raises(pooldbapi.InterfaceError, match="given twice"):
        make_spec("a", "driver=sqlite;page_size=1;PageSize=2")


def test_unknown_driver_and_sqlite_key(tmp_path):
    conn = pooldbapi.connect({"a": "driver=mysql;host=x"})
    with pytest.raises(pooldbapi.InterfaceError, match="'a'.*unknown driver 'mysql'"):
        conn.execute("select 1")
    conn = pooldbapi.connect({"a": f"driver=sqlite;database={tmp_path / 'x.db'};colour=red"})
    with pytest.raises(pooldbapi.InterfaceError, match="'a'.*'colour'"):
        conn.execute("select 1")


def test_sqlite_values_are_converted(tmp_path):
    conn = pooldbapi.connect({"a": f"driver=sqlite;database={tmp_path / 'x.db'};timeout=0.25"})
    phys = conn.transaction.physical(conn.specs["a"], False)
    assert phys.raw.execute("select 1").fetchone() == (1,)
    conn.close()


def test_a_specs_repr_hides_its_secrets_also_in_a_log_line(caplog):
    spec = make_spec("a", "driver=postgresql;host=h;password=hunter2;api_token=tok123;"
                          "url=https://bob:pw999@example.invalid/x")
    assert set(spec.secrets) == {"hunter2", "tok123", "pw999"}
    text = repr(spec) + str(spec)
    for secret in spec.secrets:
        assert secret not in text
    with caplog.at_level(logging.DEBUG, logger="pooldbapi"):
        logging.getLogger("pooldbapi").info("spec %r", spec)
    assert "hunter2" not in caplog.text


def test_wrap_redacts_a_secret_in_the_driver_message():
    from pooldbapi.errors import wrap
    cause = RuntimeError("could not connect: password=hunter2 host=x; also hunter2")
    err = wrap(cause, "pg1", ["hunter2"])
    assert "hunter2" not in str(err) and "hunter2" not in str(cause)
    assert str(err).startswith("pg1: ")


SETTINGS = """
default = "{a,b}"

[containers.a]
driver = "sqlite"
database = "{dir}/a.db"
page-size = 10

[containers.b]
driver = "sqlite"
database = "{dir}/b.db"
"""


def test_settings_file_and_environment(tmp_path, monkeypatch):
    path = tmp_path / "pooldbapi.toml"
    path.write_text(SETTINGS.replace("{dir}", str(tmp_path)))
    settings = load_settings(settings=path)
    assert settings.default == ("a", "b")
    assert settings.containers["a"].options.page_size == 10
    monkeypatch.setenv("POOLDBAPI_SETTINGS", str(path))
    conn = pooldbapi.connect(broadcast_ddl=True, seed=1)
    conn.execute("create table t (x int)")
    assert conn.execute("select count(*) from t").fetchone()[0] == 0
    conn.close()
    monkeypatch.delenv("POOLDBAPI_SETTINGS")
    with pytest.raises(pooldbapi.InterfaceError, match="POOLDBAPI_SETTINGS"):
        pooldbapi.connect()
    with pytest.raises(pooldbapi.InterfaceError, match="cannot read settings file"):
        pooldbapi.connect(settings=tmp_path / "missing.toml")


def test_default_resolution():
    one = load_settings({"only": "driver=sqlite;database=:memory:"})
    assert one.default == ("only",)
    two = load_settings({"a": "driver=sqlite", "b": "driver=sqlite"})
    assert two.default is None
    with pytest.raises(pooldbapi.ProgrammingError, match="'c' is not configured"):
        load_settings({"a": "driver=sqlite"}, default="{a,c}")


def test_no_default_and_several_containers_is_a_programming_error(tmp_path):
    conn = pooldbapi.connect({"a": f"driver=sqlite;database={tmp_path / 'a.db'}",
                              "b": f"driver=sqlite;database={tmp_path / 'b.db'}"})
    with pytest.raises(pooldbapi.ProgrammingError, match="'t' at position 14 .* has no '@'"):
        conn.execute("select * from t")
    with pytest.raises(pooldbapi.ProgrammingError, match="no default container list"):
        conn.execute("select 1")


def test_pools_are_keyed_by_definition_not_alias(tmp_path):
    from pooldbapi.pool import pool_for
    one = make_spec("pg1", f"driver=sqlite;database={tmp_path / 'one.db'}")
    two = make_spec("pg1", f"driver=sqlite;database={tmp_path / 'two.db'}")
    same = make_spec("other", f"driver=sqlite;database={tmp_path / 'one.db'}")
    assert pool_for(one) is not pool_for(two)
    assert pool_for(one) is pool_for(same)


def test_settings_file_options_are_connect_options_and_arguments_win(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(f'Broadcast-DDL = true\nautocommit = true\nseed = 5\nstrategy = "least-busy"\n'
                    f'[containers.a]\ndriver = "sqlite"\ndatabase = "{tmp_path}/a.db"\n')
    conn = pooldbapi.connect(settings=path)
    assert conn.autocommit and conn.broadcast_ddl and conn.seed == 5
    assert conn._strategy_class.__name__ == "LeastBusy"
    conn.close()
    conn = pooldbapi.connect(settings=path, autocommit=False, seed=6)
    assert not conn.autocommit and conn.seed == 6 and conn.broadcast_ddl
    conn.close()


@pytest.mark.parametrize(("line", "message"), [
    ('defualt = "a"', "unknown key 'defualt'"),
    ("autocommit = 1", "key 'autocommit' takes bool, not int"),
])
def test_a_bad_settings_key_names_the_key_and_the_file(tmp_path, line, message):
    path = tmp_path / "bad.toml"
    path.write_text(f'{line}\n[containers.a]\ndriver = "sqlite"\ndatabase = ":memory:"\n')
    with pytest.raises(pooldbapi.InterfaceError, match=message) as info:
        pooldbapi.connect(settings=path)
    assert str(path) in str(info.value)
