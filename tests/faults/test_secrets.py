"""Secrets never appear in messages, logs, repr or what an exception reaches; the rest of a
message is left as it was."""
from __future__ import annotations

import contextlib
import logging

import pytest

import pooldbapi
from pooldbapi.settings import make_spec


def test_a_misspelt_password_pair_is_not_echoed():
    with pytest.raises(pooldbapi.InterfaceError) as info:
        pooldbapi.connect({"a": "driver=postgresql;host=x;password Sup3rSecret"})
    assert "Sup3rSecret" not in str(info.value)
    assert "'password ***'" in str(info.value)  # still names the key and the position
    assert "position 25" in str(info.value)


def test_an_access_token_in_a_url_is_a_secret_everywhere(caplog):
    port = 9  # discard: nothing listens on loopback there
    spec = {"o": f"driver=odata;url=http://127.0.0.1:{port}/odata/?access_token=Tok3nValue"
                 ";timeout=2"}
    assert "Tok3nValue" in make_spec("o", spec["o"]).secrets
    assert "Tok3nValue" not in repr(make_spec("o", spec["o"]))
    conn = pooldbapi.connect(spec)
    with caplog.at_level(logging.INFO, logger="pooldbapi"), \
            pytest.raises(pooldbapi.Error) as info:
        conn.execute("select * from Journals")
    reachable = [str(info.value), repr(info.value), str(info.value.__cause__),
                 *(r.getMessage() for r in caplog.records)]
    health = pooldbapi.health().get("o")
    if health is not None:
        reachable.append(str(health.last_error))
    assert not [text for text in reachable if "Tok3nValue" in text]
    assert "127.0.0.1" in str(info.value)  # the rest of the message is intact
    conn.close()


def test_httpx_log_lines_never_quote_a_token_in_the_url(gateways, caplog):
    """httpx logs each request's URL (INFO), httpcore each step (DEBUG): masked as made."""
    gateway = gateways()
    conn = pooldbapi.connect({"o": f"driver=odata;url={gateway.url}?access_token=Tok4nValue"
                                   ";token=tok-logged"})
    with caplog.at_level(logging.DEBUG):
        assert conn.execute("select count(*) from Journals where ID = 1").fetchone() == (1,)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith(("httpx", "httpcore"))]
    assert [line for line in lines if line.startswith("HTTP Request: GET")]  # they are there
    assert not [line for line in lines if "Tok4nValue" in line]
    conn.close()


def test_no_password_is_reachable_from_a_chained_driver_error(pg):
    conn = pooldbapi.connect({"p": pg.conninfo(password="Pl4inText")}, autocommit=True)
    with pytest.raises(pooldbapi.ProgrammingError) as info:
        conn.execute("select * from no_such_table")
    cause = info.value.__cause__
    assert cause is not None
    pgconn = getattr(cause, "pgconn", None)
    assert pgconn is None or b"Pl4inText" not in (pgconn.password or b"")
    conn.close()


def test_ordinary_messages_keep_their_words(tmp_path):
    conn = pooldbapi.connect({"a": f"driver=sqlite;database={tmp_path / 'a.db'}"})
    with pytest.raises(pooldbapi.ProgrammingError, match='unrecognized token: "#"'):
        conn.execute("select 1 #")
    conn.close()


# --- every secret-bearing form, and everything an application could see of it ---------------

_HARMLESS = (int, float, bool, type(None))


def _texts(obj, seen=None, depth=0):
    """Every text reachable from an object: for an exception its str, repr, args, attributes
    (and theirs), __cause__ and __context__; containers and plain objects walked likewise."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth > 6 or isinstance(obj, _HARMLESS):
        return
    seen.add(id(obj))
    if isinstance(obj, str):
        yield obj
        return
    if isinstance(obj, bytes | bytearray | memoryview):
        yield bytes(obj).decode("latin-1")
        return
    if (isinstance(obj, type) or callable(obj) and not isinstance(obj, BaseException) or
            type(obj).__module__ in ("builtins", "threading", "_thread", "socket", "ssl")) and \
            not isinstance(obj, dict | list | tuple | set | frozenset):
        return
    if isinstance(obj, BaseException):
        yield str(obj)
        yield repr(obj)
        yield from _texts(obj.args, seen, depth + 1)
        yield from _texts(obj.__cause__, seen, depth + 1)
        yield from _texts(obj.__context__, seen, depth + 1)
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _texts(key, seen, depth + 1)
            yield from _texts(value, seen, depth + 1)
        return
    if isinstance(obj, list | tuple | set | frozenset):
        for item in obj:
            yield from _texts(item, seen, depth + 1)
        return
    attributes = dict(getattr(obj, "__dict__", {}))
    for cls in type(obj).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if hasattr(obj, name):
                attributes[name] = getattr(obj, name)
    for name, value in attributes.items():
        if name != "__traceback__":
            yield from _texts(value, seen, depth + 1)
    if not isinstance(obj, BaseException):
        with contextlib.suppress(Exception):  # a repr that fails shows nothing
            yield repr(obj)


class _Everything(logging.Handler):
    """Every record of every logger, formatted with its traceback and extra fields."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record):
        self.records.append(record)

    def texts(self):
        for record in self.records:
            yield self.format(record)
            yield from _texts(record.args)
            yield from _texts({k: v for k, v in vars(record).items()
                               if k not in ("args", "exc_info")})


@pytest.fixture
def everything():
    """Capture every log record at DEBUG, from every logger (driver loggers included)."""
    handler = _Everything()
    loggers = [logging.getLogger()] + [logging.getLogger(name) for name in
                                       list(logging.root.manager.loggerDict)]
    levels = [(lg, lg.level, lg.propagate) for lg in loggers]
    logging.disable(logging.NOTSET)
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    for lg in loggers:
        if not lg.propagate:
            lg.addHandler(handler)
    yield handler
    for lg, level, _ in levels:
        lg.setLevel(level)
        lg.removeHandler(handler)
    logging.getLogger().removeHandler(handler)


def _leaks(secret, error, handler, conn=None):
    found = [t for t in _texts(error) if secret in t]
    found += [t for t in handler.texts() if secret in t]
    found += [t for t in _texts(list(pooldbapi.health().values())) if secret in t]
    found += [repr(h) for h in pooldbapi.health().values() if secret in repr(h)]
    if conn is not None:
        found += [t for t in (repr(conn), repr(conn.cursor())) if secret in t]
    return found


def _echo(gateway):
    return f"http://127.0.0.1:{gateway.port}/echo/"


FORMS = {
    # form: (connection string parts, secret, where the rest of the message must say)
    "authorization header": (
        lambda g: f"driver=odata;url={_echo(g)};header.Authorization=Bearer H3aderAuth",
        "H3aderAuth", "HTTP 401"),
    "cookie header": (
        lambda g: f"driver=odata;url={_echo(g)};header.Cookie=sid=C00kieVal",
        "C00kieVal", "HTTP 401"),
    "subscription key in the url": (
        lambda g: f"driver=odata;url={_echo(g)}?subscription-key=SubK3yVal;token=tok-x",
        "SubK3yVal", "HTTP 401"),
    "access token in the url": (
        lambda g: f"driver=odata;url={_echo(g)}?access_token=Acc3ssTok;token=tok-x",
        "Acc3ssTok", "HTTP 401"),
    "a token with a line break": (
        lambda g: f'driver=odata;url={g.url};token="Line\nBr3ak"', "Br3ak", "token"),
    "a non-Latin-1 token": (
        lambda g: f"driver=odata;url={g.url};token=Tök€nVal", "Tök€nVal", "token"),
    "an access token against a closed port": (
        lambda g: "driver=odata;url=http://127.0.0.1:9/odata/?access_token=Cl0sedTok;timeout=2",
        "Cl0sedTok", "127.0.0.1"),
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_no_secret_is_reachable_from_errors_logs_or_health(gateways, everything, form):
    from pooldbapi.health import HEALTH
    HEALTH.reset()
    make, secret, kept = FORMS[form]
    gateway = gateways()
    conn = pooldbapi.connect({"o": make(gateway)})
    with pytest.raises(pooldbapi.Error) as info:
        conn.execute("select * from Journals@o").fetchall()
    assert kept in str(info.value)  # the rest of the message is intact
    assert not _leaks(secret, info.value, everything, conn)
    if form in ("a token with a line break", "a non-Latin-1 token"):
        # a configuration error: raised as such, the container not marked unhealthy
        assert isinstance(info.value, pooldbapi.InterfaceError)
        assert "o" not in pooldbapi.health() or pooldbapi.health()["o"].healthy
    conn.close()
    HEALTH.reset()


@pytest.mark.parametrize(("pair", "secret", "shown"), [
    ("client_secret:Cl1entSecret", "Cl1entSecret", "'client_secret ***'"),
    ("password:Passw0rdVal", "Passw0rdVal", "'password ***'"),
    ("api-key Ap1KeyVal", "Ap1KeyVal", "'api-key ***'"),
])
def test_a_malformed_secret_pair_names_the_key_alone(everything, pair, secret, shown):
    with pytest.raises(pooldbapi.InterfaceError) as info:
        pooldbapi.connect({"a": f"driver=postgresql;host=x;{pair}"})
    assert shown in str(info.value)
    assert not _leaks(secret, info.value, everything)


def test_header_values_are_secrets_unless_known_harmless():
    spec = make_spec("o", "driver=odata;url=http://x/;header.X-Api-Key=K3y;"
                          "header.Accept=application/json;header.Cookie=\"a=C00k; b=Two\"")
    assert {"K3y", "a=C00k; b=Two", "C00k", "Two"} <= set(spec.secrets)
    assert "application/json" not in spec.secrets
    shown = repr(spec)
    assert "K3y" not in shown and "C00k" not in shown and "application/json" in shown


def test_redaction_touches_only_the_secret():
    from pooldbapi.errors import redact
    text = ("GET http://h/p?subscription-key=S1&page=2&monkey=3&x-api-key=S2 failed:"
            " key ID = 5")
    assert redact(text) == ("GET http://h/p?subscription-key=***&page=2&monkey=3&x-api-key=***"
                            " failed: key ID = 5")


@pytest.mark.parametrize("where", ["a statement error", "a refused connection"])
def test_no_postgresql_password_is_reachable_from_errors_or_logs(pg, everything, where):
    from pooldbapi.health import HEALTH
    HEALTH.reset()
    port = pg.port if where == "a statement error" else 9
    conn = pooldbapi.connect({"p": pg.conninfo(password="PgPassw0rdVal", port=str(port),
                                               connect_timeout="2")}, autocommit=True)
    with pytest.raises(pooldbapi.Error) as info:
        conn.execute("select * from no_such_table")
    assert "no_such_table" in str(info.value) or "refused" in str(info.value)
    assert not _leaks("PgPassw0rdVal", info.value, everything, conn)
    conn.close()
    HEALTH.reset()


def test_a_short_secret_elsewhere_leaves_log_records_readable(tmp_path, caplog):
    make_spec("short", "driver=postgresql;host=x;password=t")  # a one-letter password
    conn = pooldbapi.connect({"a": f"driver=sqlite;database={tmp_path / 'a.db'}"})
    with caplog.at_level(logging.WARNING, logger="pooldbapi"):
        logging.getLogger("pooldbapi").warning("the store at %s cannot be reached", "host")
    assert caplog.records[-1].getMessage() == "the store at host cannot be reached"
    conn.close()
