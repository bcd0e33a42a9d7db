"""Connection strings, settings files, own keys vs forwarded keys, secrets."""
from __future__ import annotations

import logging

import pytest

import pooldbapi
from pooldbapi.settings import load_settings, make_spec, parse_alias_list, split_connection_string

SPLIT = [
    ("driver=sqlite;database=x.db", [("driver", "sqlite"), ("database", "x.db")]),
    (' driver = sqlite ; database="a;b=c.db" ;', [("driver", "sqlite"), ("database", "a;b=c.db")]),
    ('application_name="say ""hi"""', [("application_name", 'say "hi"')]),
    ("a=;b=1", [("a", ""), ("b", "1")]),
    ("a=", [("a", "")]),                       # an empty value at the very end
    ("a=Xy; b = \tXz", [("a", "Xy"), ("b", "Xz")]),  # only blanks are skipped before a value
    ('a="x""";b=1', [("a", 'x"'), ("b", "1")]),  # a doubled quote just before the closing one
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


@pytest.mark.parametrize("text, message", [
    ("driver", "container 'x': expected key=value at position 0, found 'driver'"),
    ("a=1;driver ;b=2", "container 'x': expected key=value at position 4, found 'driver'"),
    ('a="x""', "container 'x': unclosed quote for key 'a' at position 2"),
    ('a="x"X;b=1', "container 'x': expected ';' after the quoted value of key 'a' at position 5"),
    ('a="x" \tX', "container 'x': expected ';' after the quoted value of key 'a' at position 7"),
    # a secret's value never shows; its key (up to 40 characters) does
    ("password Sup3rSecret", ("container 'x': expected key=value at position 0, found"
                              " 'password ***'")),
    ("password_" + "k" * 40 + " Sup3rSecret", "container 'x': expected key=value at position 0,"
                                              " found 'password_" + "k" * 31 + " ***'"),
])
def test_bad_connection_strings_say_exactly_what_and_where(text, message):
    with pytest.raises(pooldbapi.InterfaceError) as info:
        split_connection_string("x", text)
    assert str(info.value) == message
    assert "Sup3rSecret" not in str(info.value)


def test_with_shared_state_gives_every_container_without_a_store_the_url():
    import dataclasses

    from pooldbapi.settings import with_shared_state
    settings = dataclasses.replace(
        load_settings({"a": "driver=sqlite;database=a.db",
                       "b": "driver=sqlite;database=b.db;shared-state=redis://own:1/2"},
                      default="{a,b}"), options={"strategy": "least-busy"})
    shared = with_shared_state(settings, "redis://store:6379/0")
    assert shared.containers["a"].options.shared_state == "redis://store:6379/0"
    assert shared.containers["b"].options.shared_state == "redis://own:1/2"  # its own kept
    for alias in ("a", "b"):  # nothing else changes
        before, after = settings.containers[alias], shared.containers[alias]
        assert (after.alias, after.driver, after.params) == (before.alias, before.driver,
                                                             before.params)
        assert after.options.page_size == before.options.page_size
    assert shared.default == settings.default and shared.options == settings.options
    assert settings.containers["a"].options.shared_state is None  # the original is untouched


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
    assert phys.link.raw.execute("select 1").fetchone() == (1,)
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
    assert conn.router.strategy_class.__name__ == "LeastBusy"
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


@pytest.mark.parametrize("word, value", [
    *[(w, True) for w in ("true", "yes", "on", "1", "TRUE", " Yes ", "On")],
    *[(w, False) for w in ("false", "no", "off", "0", "FALSE", " No", "OFF")],
])
def test_every_boolean_word_in_any_case(word, value):
    spec = make_spec("a", f"driver=sqlite;exclude-unhealthy={word}")
    assert spec.options.exclude_unhealthy is value


@pytest.mark.parametrize("key, raw, expected", [
    ("rate-limit-group", " app-7 ", "app-7"),        # text, stripped
    ("rate-limit-group", "", None),                   # empty text: not set
    ("page-size", "250", 250),                        # int
    ("pool-timeout", "0.5", 0.5),                     # float
    ("pool-timeout", "0", 0.0),                       # zero is a value
    ("max-calls-per-second", "none", None),           # optional: none or empty
    ("max-calls-per-second", "NONE", None),
    ("max-calls-per-second", "", None),
    ("max-calls-per-second", "2.5", 2.5),
])
def test_own_key_values_are_converted_by_their_type(key, raw, expected):
    spec = make_spec("a", {"driver": "sqlite", key: raw})
    got = getattr(spec.options, key.replace("-", "_"))
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("key, raw, kind", [
    ("exclude-unhealthy", "maybe", "bool"),
    ("page-size", "2.5", "int"),
    ("pool-timeout", "nan", "float"),
    ("max-calls-per-second", "fast", "float"),
])  # (a number below the key's range: the test above, naming the range)
def test_a_bad_own_key_value_names_the_container_key_value_and_type(key, raw, kind):
    with pytest.raises(pooldbapi.InterfaceError) as info:
        make_spec("c7", {"driver": "sqlite", key: raw})
    assert str(info.value) == (f"container 'c7': key {key!r} has an invalid value {raw!r}"
                               f" (expected {kind})")


@pytest.mark.parametrize("key, raw, bound", [
    ("max-calls-per-second", "1e-300", "at least 1.15741e-05 (one call a day; fewer: max-calls-per-day)"),
    ("max-calls-per-second", "0", "at least 1.15741e-05"),
    ("MaxCallsPerSecond", "1e-300", "at least 1.15741e-05"),
    ("maximum-number-of-pooled-connections", "0", "at least 1 (a pool holds one at least)"),
    ("page-size", "0", "at least 1 (a page holds at least one row)"),
    ("max-tries", "0", "at least 1"),
    ("max-calls-per-minute", "0", "at least 1"),
    ("max-calls-per-day", "0.5", "at least 1"),
    ("pool-timeout", "1e300", "from 0 to 1e+09 (seconds)"),
    ("pool-timeout", "inf", "from 0 to 1e+09 (seconds)"),
    ("idle-timeout", "1e10", "from 0 to 1e+09"),
    ("connection-lifetime", "1e10", "from 0 to 1e+09"),
    ("rate-limit-wait", "1e10", "from 0 to 1e+09"),
    # below 0: the same message, naming the range (not "an invalid value")
    ("pool-timeout", "-1", "from 0 to 1e+09 (seconds)"),
    ("connection-lifetime", "-0.5", "from 0 to 1e+09"),
    ("page-size", "-3", "at least 1"),
    ("maximum-number-of-pooled-connections", "-2", "at least 1"),
    ("minimum-number-of-pooled-connections", "-1", "at least 0 (none kept open, at the least)"),
    ("max-calls-per-day", "-1", "at least 1"),
])
def test_an_own_key_out_of_range_names_the_container_key_and_range(key, raw, bound):
    with pytest.raises(pooldbapi.InterfaceError) as info:
        make_spec("c7", {"driver": "sqlite", key: raw})
    assert str(info.value).startswith(f"container 'c7': key {key!r} is ")
    assert f"; it must be {bound}" in str(info.value)


def test_a_minimum_above_the_maximum_of_pooled_connections_is_refused():
    with pytest.raises(pooldbapi.InterfaceError, match="container 'c7': minimum-number-of"
                       r"-pooled-connections \(3\) is more than maximum-number-of-pooled"
                       r"-connections \(2\)"):
        make_spec("c7", {"driver": "sqlite", "minimum-number-of-pooled-connections": "3",
                         "maximum-number-of-pooled-connections": "2"})


def test_a_tiny_rate_is_refused_at_connect_not_by_every_later_call(tmp_path):
    with pytest.raises(pooldbapi.InterfaceError, match="'max-calls-per-second' is 1e-300"):
        pooldbapi.connect({"s": f"driver=sqlite;database={tmp_path / 's.db'};"
                                "max-calls-per-second=1e-300"})
    conn = pooldbapi.connect({"s": f"driver=sqlite;database={tmp_path / 's.db'};"
                                   "max-calls-per-second=0.00002"})  # the least is allowed
    conn.close()


@pytest.mark.parametrize("text, pairs", [
    ("a=1", [("a", "1")]),
    (";;a=1;;b=2;", [("a", "1"), ("b", "2")]),
    ("\ta = 1 ;\n b =2", [("a", "1"), ("b", "2")]),
    ('a="x;y"', [("a", "x;y")]),
    ('a = "x" ;b=2', [("a", "x"), ("b", "2")]),
    ('a=""""', [("a", '"')]),
    ('a="";b=""', [("a", ""), ("b", "")]),
    ("a=x=y;b=1", [("a", "x=y"), ("b", "1")]),
])
def test_connection_string_pairs(text, pairs):
    assert split_connection_string("x", text) == pairs


@pytest.mark.parametrize("text, message", [
    ("a=1;oops", "container 'x': expected key=value at position 4"),
    ("a=1;password hunter2;b=2", "container 'x': expected key=value at position 4"),
    ('a="x" y;b=1', ("container 'x': expected ';' after the quoted value of key 'a' at"
                    " position 6")),
    ("a=1;=2", "container 'x': empty key at position 4"),
])
def test_a_bad_connection_string_says_where(text, message):
    with pytest.raises(pooldbapi.InterfaceError) as info:
        split_connection_string("x", text)
    assert str(info.value).startswith(message)
    assert "hunter2" not in str(info.value)


def test_settings_file_errors_name_the_file_and_the_problem(tmp_path, monkeypatch):
    monkeypatch.delenv("POOLDBAPI_SETTINGS", raising=False)
    with pytest.raises(pooldbapi.InterfaceError) as info:
        load_settings()
    assert str(info.value) == ("no containers: pass containers=..., settings=... or set"
                               " POOLDBAPI_SETTINGS")
    missing = tmp_path / "missing.toml"
    with pytest.raises(pooldbapi.InterfaceError) as info:
        load_settings(settings=missing)
    assert str(info.value) == (f"cannot read settings file {str(missing)!r}:"
                               " No such file or directory")
    bad = tmp_path / "bad.toml"
    bad.write_text("containers = [1, 2]\n")
    with pytest.raises(pooldbapi.InterfaceError) as info:
        load_settings(settings=bad)
    assert str(info.value) == (f"settings file {str(bad)!r}: expected one [containers.ALIAS]"
                               " table per container")
    broken = tmp_path / "broken.toml"
    broken.write_text("containers = \n")
    with pytest.raises(pooldbapi.InterfaceError, match=f"settings file '{broken}': "):
        load_settings(settings=broken)
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    with pytest.raises(pooldbapi.InterfaceError) as info:
        load_settings(settings=empty)
    assert str(info.value) == "no containers are configured"


def test_the_files_default_applies_unless_connect_gives_one(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('default = "{a,b}"\n[containers.a]\ndriver = "sqlite"\n'
                    '[containers.b]\ndriver = "sqlite"\n')
    assert load_settings(settings=path).default == ("a", "b")
    assert load_settings(settings=path, default="b").default == ("b",)
    assert load_settings(containers={"c": "driver=sqlite"}, settings=path).default == ("a", "b")


@pytest.mark.parametrize("text, message", [
    ("a=1;password hunter2;b=2", "expected key=value at position 4, found 'password ***'"),
    ("a=1;password  hunter2 more;b=2;c=3",
     "expected key=value at position 4, found 'password ***'"),
    ("a=1;oops;b=2;c=3", "expected key=value at position 4, found 'oops'"),
    ("a=1;" + "x" * 60 + " y;b=1", "expected key=value at position 4, found '" + "x" * 60
     + " y'"),
])
def test_a_pair_without_equals_is_shown_with_any_secret_masked(text, message):
    with pytest.raises(pooldbapi.InterfaceError) as info:
        split_connection_string("x", text)
    assert str(info.value) == f"container 'x': {message}"


@pytest.mark.parametrize("text, pairs", [
    ("XA=1;Xb=2", [("XA", "1"), ("Xb", "2")]),   # keys may begin with any letter
    ('a= "q" ;b= 2', [("a", "q"), ("b", "2")]),
    ('a="""""";b=1', [("a", '""'), ("b", "1")]),
])
def test_more_connection_string_pairs(text, pairs):
    assert split_connection_string("x", text) == pairs


def test_a_spec_shows_its_keys_with_secrets_masked_and_takes_python_values():
    spec = make_spec("a", "driver=sqlite;password=pw;database=db;api_token=t")
    assert repr(spec) == "ContainerSpec('a', driver='sqlite', 'password=***;database=db;" \
                         "api_token=***')"
    assert make_spec("a", {"driver": "sqlite", "flag": True, "off": False, "n": 3}).params == \
        (("flag", "true"), ("off", "false"), ("n", "3"))


@pytest.mark.parametrize("alias, definition, message", [
    ("a-b", "driver=sqlite", ("container alias 'a-b' is not an identifier (letters, digits and"
                             " '_')")),
    ("", "driver=sqlite", "container alias '' is not an identifier (letters, digits and '_')"),
    ("a", 5, "container 'a': expected a connection string or a mapping, got int"),
    ("a", "database=x", ("container 'a': the key 'driver' is required (postgresql, oracle,"
                        " sqlite, odata)")),
    ("a", "driver=sqlite;Page-Size=2;page_size=3", ("container 'a': key 'page_size' is given"
                                                    " twice (also as 'Page-Size')")),
])
def test_bad_container_definitions_say_what_is_wrong(alias, definition, message):
    with pytest.raises(pooldbapi.InterfaceError) as info:
        make_spec(alias, definition)
    assert str(info.value) == message


@pytest.mark.parametrize("text, aliases", [
    ("@{a,b}", ("a", "b")), ("{a, b ,a}", ("a", "b", "a")), ("a", ("a",)), (" a ", ("a",)),
    (["a", "b"], ("a", "b")), (("a",), ("a",)),
])
def test_alias_lists_in_every_form(text, aliases):
    assert parse_alias_list(text, "w") == aliases


@pytest.mark.parametrize("text, message", [
    ("{a,b", "w: unclosed '{' in '{a,b'"), ("{}", "w: empty container list in '{}'"),
    ("a,,b", "w: empty container list in 'a,,b'"), ("{a-b}", "w: 'a-b' is not a container alias"),
    ([], "w: empty container list in []"), ("", "w: empty container list in ''"),
    ("a@", "w: 'a@' is not a container alias"),
])
def test_bad_alias_lists_say_what_is_wrong(text, message):
    with pytest.raises(pooldbapi.ProgrammingError) as info:
        parse_alias_list(text, "w")
    assert str(info.value) == message


def test_a_default_naming_an_unknown_container_lists_the_configured_ones():
    with pytest.raises(pooldbapi.ProgrammingError) as info:
        load_settings({"b": "driver=sqlite", "a": "driver=sqlite"}, default="{a,zz}")
    assert str(info.value) == "default: container 'zz' is not configured (configured: a, b)"


@pytest.mark.parametrize("line, message", [
    ("strategy = 5", "key 'strategy' takes str, not int"),
    ("seed = [1]", "key 'seed' takes str or int or float, not list"),
    ("Broadcast-DDL = 'yes'", "key 'Broadcast-DDL' takes bool, not str"),
    ("colour = 'red'", ("unknown key 'colour' (known: containers, default, broadcast_ddl,"
                       " strategy, seed, affinity, autocommit, two_phase, shared_state,"
                       " dialect, read_your_writes)")),
    ("dialect = 'klingon'", None),
])
def test_a_bad_top_level_key_of_a_settings_file_is_named_with_what_it_takes(tmp_path, line,
                                                                           message):
    path = tmp_path / "s.toml"
    path.write_text(f"{line}\n[containers.a]\ndriver = 'sqlite'\n")
    if message is None:  # a value only connect() can judge: named there
        with pytest.raises(pooldbapi.InterfaceError, match="unknown dialect 'klingon'"):
            pooldbapi.connect(settings=path)
        return
    with pytest.raises(pooldbapi.InterfaceError) as info:
        load_settings(settings=path)
    assert str(info.value) == f"settings file {str(path)!r}: {message}"


def test_a_settings_files_dialect_reaches_the_connection_and_connect_wins(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(f"dialect = 'postgres'\n[containers.a]\ndriver = 'sqlite'\n"
                    f"database = '{tmp_path / 'a.db'}'\n")
    with pooldbapi.connect(settings=path) as conn:
        assert conn.dialect == "postgres"
    with pooldbapi.connect(settings=path, dialect="oracle") as conn:
        assert conn.dialect == "oracle"


def test_a_settings_files_options_reach_connect(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("broadcast_ddl = true\nseed = 3\n[containers.a]\ndriver = 'sqlite'\n")
    assert load_settings(settings=path).options == {"broadcast_ddl": True, "seed": 3}


# -- standbys (replica-of): their settings need no server -----------------------------------
@pytest.mark.parametrize(("containers", "message"), [
    ({"a": "driver=postgresql;replica-of=b"},
     "replica-of='b' is not a configured container (configured: a)"),
    ({"a": "driver=postgresql;replica-of=a"}, "replica-of names the container itself"),
    ({"a": "driver=postgresql", "b": "driver=postgresql;replica-of=a",
      "c": "driver=postgresql;replica-of=b"}, "replica-of='b' is itself a standby (of 'a')"),
    ({"a": "driver=sqlite;database=:memory:", "b": "driver=postgresql;replica-of=a"},
     "'a' uses the sqlite driver"),
    ({"a": "driver=postgresql;max-replication-lag=2"},
     "max-replication-lag needs replica-of (the lag is measured against the primary)"),
    ({"a": "driver=postgresql", "b": "driver=postgresql;replica-of=a;MaxReplicationLag=-1"},
     "key 'MaxReplicationLag' is -1.0; it must be from 0 to 1e+09 (seconds)"),
    ({"a": "driver=postgresql", "b": "driver=postgresql;replica-of=a;max-replication-lag=x"},
     "key 'max-replication-lag' has an invalid value 'x'"),
])
def test_a_bad_standby_definition_is_an_interface_error_naming_it(containers, message):
    with pytest.raises(pooldbapi.InterfaceError) as caught:
        load_settings(containers)
    assert message in str(caught.value)


def test_the_settings_file_takes_replica_keys_and_read_your_writes(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('read_your_writes = true\n[containers.p]\ndriver = "postgresql"\n'
                    '[containers.r]\ndriver = "postgresql"\nreplica-of = "p"\n'
                    'max-replication-lag = 2.5\n')
    found = load_settings(settings=path)
    assert found.options == {"read_your_writes": True}
    assert found.containers["r"].options.replica_of == "p"
    assert found.containers["r"].options.max_replication_lag == 2.5
    path.write_text('read_your_writes = "yes"\n[containers.p]\ndriver = "postgresql"\n')
    with pytest.raises(pooldbapi.InterfaceError, match="'read_your_writes' takes bool"):
        load_settings(settings=path)
