"""Bad input never reaches the wrong rows of an OData service: string keys read back from the
service are one path segment however they are written, and names in a where clause are the
service's properties or nothing is sent. Against the real service (SAP CAP behind nginx)."""
from __future__ import annotations

import datetime
import decimal
import uuid
from urllib.parse import unquote

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

import pooldbapi
from pooldbapi.backends.odata.client import ProgrammingError as ODataProgrammingError
from pooldbapi.backends.odata.client import key_segment
from pooldbapi.health import HEALTH

# keys that, written into a path as they are, point somewhere else: a row of another entity
# set ('..' segments collapse), a second path segment, a query, a fragment, an encoded quote
KEYS = ["/../Journals({id})#", "a/b", "q?x=1", "p%27) or (1", "it's", "..", "sp ace", "a\\b",
        "é"]


@pytest.fixture(autouse=True)
def _forget_health():
    HEALTH.reset()
    yield
    HEALTH.reset()


def _service(gateway, path, method="GET"):
    return requests.request(method, gateway.url + path,
                            headers={"Authorization": "Bearer tok-check"}, timeout=10)


@pytest.mark.parametrize("n", range(len(KEYS)))
def test_a_string_key_read_back_is_one_path_segment(gateways, n):
    gateway = gateways()
    victim = 95000 + n
    key = KEYS[n].format(id=victim)
    conn = pooldbapi.connect({"o1": f"driver=odata;url={gateway.url};token=tok-o1"},
                             autocommit=True)
    conn.execute("insert into Journals@o1 (ID, amount, description) values (?, 1, 'victim')",
                 (victim,))
    conn.execute("insert into Notes@o1 (name, body) values (?, ?)", (key, f"target {n}"))
    try:
        cur = conn.execute("update Notes@o1 set body = ? where body = ?",
                           (f"changed {n}", f"target {n}"))
        assert cur.rowcount == 1
        assert conn.execute("select body from Notes@o1 where name = ?", (key,)).fetchall() \
            == [(f"changed {n}",)]
        cur = conn.execute("delete from Notes@o1 where body = ?", (f"changed {n}",))
        assert cur.rowcount == 1
        assert conn.execute("select count(*) from Notes@o1 where name = ?", (key,)
                            ).fetchone() == (0,)
        # the other entity set's row is untouched, and every write went to Notes(...)
        assert _service(gateway, f"Journals({victim})").status_code == 200
        writes = [line.split()[2] for line in gateway.calls()
                  if line.split()[1] in ("PATCH", "DELETE")]
        assert len(writes) == 2
        assert all(w.startswith("/odata/v4/eol/Notes(") and w.endswith(")") and
                   w.count("/") == 4 and "?" not in w and "#" not in w for w in writes)
        assert unquote(writes[0]) == "/odata/v4/eol/Notes('" + key.replace("'", "''") + "')"
    finally:
        _service(gateway, f"Journals({victim})", "DELETE")
        conn.close()


def test_keys_are_formatted_by_their_edm_type():
    types = {"s": "Edm.String", "i": "Edm.Int32", "g": "Edm.Guid", "d": "Edm.Date",
             "m": "Edm.Decimal", "t": "Edm.DateTimeOffset", "b": "Edm.Boolean"}
    guid = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert key_segment("T", types, {"s": "a/b'c"}) == "T('a%2Fb''c')"
    assert key_segment("T", types, {"i": 5}) == "T(5)"
    assert key_segment("T", types, {"g": str(guid)}) == f"T({guid})"
    assert key_segment("T", types, {"i": 5, "s": "x"}) == "T(i=5,s='x')"
    assert key_segment("T", types, {"d": datetime.date(2026, 1, 2)}) == "T(2026-01-02)"
    assert key_segment("T", types, {"m": decimal.Decimal("1.50")}) == "T(1.50)"
    assert key_segment("T", types, {"b": True}) == "T(true)"
    assert key_segment("T", types, {"t": datetime.datetime(2026, 1, 2, 3, 4, 5)}) == \
        "T(2026-01-02T03%3A04%3A05Z)"


@given(st.text())
def test_any_string_key_is_one_segment_that_reads_back_as_its_literal(key):
    segment = key_segment("Notes", {"name": "Edm.String"}, {"name": key})
    assert not set(segment) & set("/?#")  # no second segment, no query, no fragment
    assert all(segment[i + 1:i + 3].isalnum() and len(segment[i + 1:i + 3]) == 2
               for i, c in enumerate(segment) if c == "%")  # a '%' only as an escape
    assert segment.startswith("Notes(") and segment.endswith(")")
    inside = unquote(segment[len("Notes("):-1])
    assert inside == "'" + key.replace("'", "''") + "'"


@pytest.mark.parametrize(("name", "value"), [
    # none of these can be held by the test service with such a type: formatted here alone
    ("i", "5) or (1"), ("i", True), ("i", 1.5), ("g", "../Journals(5)"), ("m", float("nan")),
    ("m", decimal.Decimal("Infinity")), ("d", "2026-01-02')/x"), ("b", "true"),
    ("x", object()),
])
def test_a_key_that_cannot_be_sent_safely_is_an_error_naming_it(name, value):
    types = {"i": "Edm.Int32", "g": "Edm.Guid", "m": "Edm.Decimal", "d": "Edm.Date",
             "b": "Edm.Boolean", "x": "Edm.Stream"}
    with pytest.raises(ODataProgrammingError, match=f"key {name!r} of 'T'"):
        key_segment("T", types, {name: value})


def test_a_quoted_name_that_is_no_property_never_reaches_the_filter(gateways):
    gateway = gateways()
    conn = pooldbapi.connect({"o1": f"driver=odata;url={gateway.url};token=tok-o1"})
    for text in ('select count(*) from Journals@o1 where "ID eq 1 or ID" = 2',
                 'select "ID" from Journals@o1 where "ID eq 1 or ID" = 2',
                 'select "ID" from Journals@o1 order by "ID desc,amount"'):
        with pytest.raises(pooldbapi.ProgrammingError, match="ID eq 1 or ID|ID desc,amount"):
            conn.execute(text).fetchall()
    assert not [line for line in gateway.calls() if "or%20ID" in line or "or ID" in line
                or "desc,amount" in unquote(line)]
    # the property itself still goes to the service
    assert conn.execute('select count(*) from Journals@o1 where "ID" = 2').fetchone() == (1,)
    assert gateway.wait_for("/Journals/$count?$filter=ID eq 2")
    conn.close()


def test_a_nul_in_a_select_on_one_odata_container_names_the_real_cause(gateways):
    gateway = gateways()
    conn = pooldbapi.connect({"o1": f"driver=odata;url={gateway.url};token=tok-o1"})
    with pytest.raises(pooldbapi.ProgrammingError) as info:
        conn.execute("select ID from Journals@o1 where description = 'a\x00b'")
    message = str(info.value)
    assert "different containers" not in message
    assert "NUL character at position 49" in message and "as a parameter" in message
    assert "o1 runs no SQL (odata)" in message
    # as a parameter it is a value like any other
    assert conn.execute("select ID from Journals@o1 where description = ?", ("a\x00b",)
                        ).fetchall() == []
    conn.close()


def test_an_update_by_a_guid_key_goes_to_its_row(gateways):
    gateway = gateways()
    conn = pooldbapi.connect({"o1": f"driver=odata;url={gateway.url};token=tok-o1"},
                             autocommit=True)
    conn.execute("insert into Tasks@o1 (description) values ('guid-key')")
    assert conn.execute("update Tasks@o1 set description = 'guid-done' where description ="
                        " 'guid-key'").rowcount == 1
    assert conn.execute("delete from Tasks@o1 where description = 'guid-done'").rowcount == 1
    patch = next(line for line in gateway.calls() if " PATCH " in line).split()
    assert patch[0] in ("200", "204") and "'" not in unquote(patch[2])  # v4: Tasks(<guid>)
    conn.close()


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/odata/?access_token=Bad9ort",
                                 "htp://127.0.0.1/odata/?access_token=Bad9ort",
                                 "http:///odata/?access_token=Bad9ort"])
def test_a_malformed_url_is_a_configuration_error_marking_nothing_unhealthy(url):
    conn = pooldbapi.connect({"o1": f"driver=odata;url={url}"})
    with pytest.raises(pooldbapi.InterfaceError, match="'url'") as info:
        conn.execute("select * from Journals@o1").fetchall()
    assert "Bad9ort" not in str(info.value) and "access_token=***" in str(info.value)
    assert "o1" not in pooldbapi.health()
    conn.close()


@pytest.mark.parametrize("key, value", [("timeout", "0"), ("timeout", "-1"), ("timeout", "nan"),
                                        ("timeout", "inf"), ("timeout", "1e10"),
                                        ("timeout", "soon"), ("token-interval", "nan"),
                                        ("token-interval", "inf"), ("token-interval", "-1")])
def test_a_time_out_of_its_range_is_a_configuration_error_naming_the_key(key, value):
    oauth = ";auth=oauth2;token-url=http://127.0.0.1:9/token;client-id=c;client-secret=Sec7et" \
        if key == "token-interval" else ""
    conn = pooldbapi.connect(
        {"o1": f"driver=odata;url=http://127.0.0.1:9/odata/{oauth};{key}={value}"})
    with pytest.raises(pooldbapi.InterfaceError, match=f"'{key}'.*seconds") as info:
        conn.execute("select * from Journals@o1").fetchall()
    assert "Sec7et" not in str(info.value)
    assert "o1" not in pooldbapi.health()
    conn.close()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), decimal.Decimal("NaN")])
def test_a_value_json_cannot_carry_is_a_programming_error_and_nothing_is_sent(gateways, value):
    gateway = gateways()
    conn = pooldbapi.connect({"o1": f"driver=odata;url={gateway.url};token=tok-o1"},
                             autocommit=True)
    with pytest.raises(pooldbapi.ProgrammingError, match="'amount'") as info:
        conn.execute("insert into Journals@o1 (ID, amount, description) values (?, ?, 'x')",
                     (900001, value))
    assert "unknown" not in str(info.value)  # nothing was sent: no outcome to doubt
    with pytest.raises(pooldbapi.ProgrammingError, match="'amount'"):
        conn.execute("update Journals@o1 set amount = ? where ID = 1", (value,))
    assert "o1" not in pooldbapi.health()
    assert not [line for line in gateway.calls() if " POST " in line or " PATCH " in line]
    conn.close()


METADATA = b"""<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">
<edmx:DataServices><Schema Namespace="S" xmlns="http://docs.oasis-open.org/odata/ns/edm">
<EntityType Name="Journals"><Key><PropertyRef Name="ID"/></Key>
<Property Name="ID" Type="Edm.Int32"/></EntityType>
<EntityContainer Name="C"><EntitySet Name="Journals" EntityType="S.Journals"/>
</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>"""


@pytest.mark.parametrize("answer", [b'{"value": 3}', b"<html>busy</html>", b""])
def test_a_count_answer_that_is_no_number_is_an_operational_error_naming_it(answer):
    """A service (a plain HTTP server here) whose $count answers something else than a number:
    an OperationalError saying what the service answered, not a ValueError of int()."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = METADATA if "$metadata" in self.path else answer
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        conn = pooldbapi.connect({"o1": f"driver=odata;url=http://127.0.0.1:"
                                        f"{server.server_address[1]}/odata/;token=Tok9secret"})
        with pytest.raises(pooldbapi.OperationalError, match=r"\$count") as info:
            conn.execute("select count(*) from Journals@o1").fetchone()
        assert "Tok9secret" not in str(info.value)
        conn.close()
    finally:
        server.shutdown()
        server.server_close()
