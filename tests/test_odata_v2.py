"""The README's OData statement forms against the same SAP CAP service in OData v4 and in
OData v2 (@cap-js-community/odata-v2-adapter) behind nginx, and v2's literals and payloads."""
from __future__ import annotations

import datetime
import decimal
import uuid
import xml.etree.ElementTree as ET

import pytest

import pooldbapi
from pooldbapi.backends.odata import v2
from pooldbapi.health import HEALTH

VERSIONS = ("4", "2")


@pytest.fixture(autouse=True)
def _forget_health():
    HEALTH.reset()
    yield
    HEALTH.reset()


def url(gateway, version):
    return gateway.url_v2 if version == "2" else gateway.url


def containers(gateway, version, aliases=("eol1", "eol2"), **extra):
    tail = "".join(f";{k}={v}" for k, v in extra.items())
    return {a: f"driver=odata;url={url(gateway, version)};token=tok-{a}{tail}"
            for a in aliases}


@pytest.mark.parametrize("version", VERSIONS)
def test_select_with_where_order_top_and_count(gateways, version):
    gateway = gateways()
    conn = pooldbapi.connect(containers(gateway, version))
    assert conn.execute("select count(*) from Journals@{eol1,eol2}").fetchone() == (2500,)
    assert conn.execute("select count(*) from ExactOnlineREST..Journals@eol1").fetchone() \
        == (2500,)  # the catalog prefix is dropped
    assert conn.execute("select count(*) from Journals@eol1 where amount > ?", (98,)
                        ).fetchone() == (50,)
    rows = conn.execute("select ID, amount, entered from Journals@eol1 where amount > 98"
                        " order by amount desc, ID limit 3").fetchall()
    assert [r[0] for r in rows] == [99, 199, 299]
    assert rows[0][1] == decimal.Decimal("99.5") and type(rows[0][2]) is datetime.date
    suffix = "M" if version == "2" else ""
    assert gateway.wait_for(f"$filter=amount gt 98{suffix}&$orderby=amount desc,ID asc&$top=3")
    day = rows[0][2]
    same = conn.execute("select ID from Journals@eol1 where entered = ? and ID < 100",
                        (day,)).fetchall()
    assert (99,) in same
    if version == "2":
        assert gateway.wait_for(f"entered eq datetime'{day.isoformat()}T00:00:00'")
    starts = conn.execute("select ID from Journals@eol1 where description like 'journal 99%'"
                          ).fetchall()
    assert sorted(r[0] for r in starts) == [99, *range(990, 1000)]
    assert gateway.wait_for("startswith(description, 'journal 99')"
                            + (" eq true" if version == "2" else ""))
    assert len(conn.execute("select ID from Journals@eol1").fetchall()) == 2500  # 3 pages
    assert sum("skiptoken" in line for line in gateway.calls()) == 2
    conn.close()


@pytest.mark.parametrize("version", VERSIONS)
def test_insert_update_delete_and_executemany(gateways, version):
    gateway = gateways()
    base = 70000 if version == "2" else 60000
    conn = pooldbapi.connect(containers(gateway, version, **{"odata-version": version}),
                             autocommit=True)  # (given: not read from $metadata)
    cur = conn.cursor()
    cur.execute("insert into Journals@eol1 (ID, amount, entered, description) values"
                " (?, ?, ?, ?)", (base, decimal.Decimal("12.25"), datetime.date(2026, 3, 4),
                                  "one"))
    cur.executemany("insert into Journals@{eol1,eol2} (ID, amount, description) values"
                    " (?, ?, ?)", [(base + i, 1.0, "many") for i in range(1, 5)])
    assert cur.rowcount == 4 and cur.containers == {"eol1": 2, "eol2": 2}
    assert conn.execute("select amount, entered from Journals@eol1 where ID = ?", (base,)
                        ).fetchall() == [(decimal.Decimal("12.25"), datetime.date(2026, 3, 4))]
    cur.execute("update Journals@eol1 set description = ? where ID = ?", ("changed", base))
    assert cur.rowcount == 1
    cur.execute("update Journals@{eol1,eol2} set description = ? where description = ?",
                ("many-done", "many"))
    assert cur.rowcount == 4
    assert conn.execute("select count(*) from Journals@eol1 where description = 'many-done'"
                        ).fetchone() == (4,)
    method = "MERGE" if version == "2" else "PATCH"
    assert sum(f" {method} " in line for line in gateway.calls()) == 5
    cur.execute("insert into Tasks@eol1 (description) values (?)", (f"v{version} task",))
    (task,) = conn.execute("select ID from Tasks@eol1 where description = ?",
                           (f"v{version} task",)).fetchone()
    assert conn.execute("update Tasks@eol1 set description = 'done' where ID = ?",
                        (task,)).rowcount == 1
    if version == "2":
        assert gateway.wait_for(f"Tasks(guid'{task}')")
    assert conn.execute("delete from Tasks@eol1 where ID = ?", (task,)).rowcount == 1
    assert conn.execute("delete from Tasks@eol1 where ID = ?", (task,)).rowcount == 0
    cur.execute("delete from Journals@{eol1,eol2} where ID >= ? and ID < ?", (base, base + 5))
    assert cur.rowcount == 5
    assert conn.execute("select count(*) from Journals@eol1 where ID >= ? and ID < ?",
                        (base, base + 5)).fetchone() == (0,)
    conn.close()


@pytest.mark.parametrize("version", VERSIONS)
def test_a_federated_join_with_sqlite_and_the_other_version(gateways, tmp_path, version):
    gateway = gateways()
    other = "4" if version == "2" else "2"
    partner = "old" if other == "2" else "new"  # the same service in the other version
    conn = pooldbapi.connect({**containers(gateway, version, ("eol1",)),
                              partner: containers(gateway, other, ("x",))["x"],
                              "lite": f"driver=sqlite;database={tmp_path / 'l.db'}"},
                             autocommit=True)
    conn.execute("create table months@lite (m int, name text)")
    conn.cursor().executemany("insert into months@lite values (?, ?)", [(1, "jan"), (2, "feb")])
    rows = conn.execute("select m.name, count(*) from Journals@eol1 j join months@lite m"
                        " on m.m = j.ID where j.ID < 3 group by m.name order by m.name"
                        ).fetchall()
    assert rows == [("feb", 1), ("jan", 1)]
    both = conn.execute(f"select a.ID, b.amount from Journals@eol1 a join Journals@{partner} b"
                        " on a.ID = b.ID where a.ID < 4 and b.ID < 4 order by a.ID").fetchall()
    assert both == [(1, decimal.Decimal("1.5")), (2, decimal.Decimal("2.5")),
                    (3, decimal.Decimal("3.5"))]
    conn.close()


@pytest.mark.parametrize("version", VERSIONS)
def test_errors_of_both_versions_give_the_services_message(gateways, version):
    gateway = gateways()
    conn = pooldbapi.connect(containers(gateway, version, ("eol1",)), autocommit=True)
    with pytest.raises(pooldbapi.Error, match=r"HTTP 400: Value x{101} is not a valid"
                       r" String\(100\) \(ASSERT_DATA_TYPE\)") as info:
        conn.execute("insert into Journals@eol1 (ID, description) values (?, ?)",
                     (1, "x" * 101))  # longer than String(100)
    assert '"error"' not in str(info.value)  # the message, not the JSON around it
    conn.close()


def test_a_value_that_is_no_v2_literal_of_its_property_is_refused_unsent(gateways):
    gateway = gateways()
    conn = pooldbapi.connect(containers(gateway, "2", ("eol1",)), autocommit=True)
    with pytest.raises(pooldbapi.ProgrammingError, match="'Journals': a value cannot be sent"):
        conn.execute("insert into Journals@eol1 (ID, entered) values (?, ?)", (5, "not a day"))
    conn.close()
    assert not [line for line in gateway.calls() if " POST " in line]


def test_a_wrong_odata_version_key_is_refused_before_any_call(gateways):
    gateway = gateways()
    with pytest.raises(pooldbapi.InterfaceError, match="'odata-version' is 2 or 4"):
        pooldbapi.connect(containers(gateway, "2", ("eol1",), **{"odata-version": "3"})
                          ).execute("select count(*) from Journals@eol1").fetchone()
    assert not [line for line in gateway.calls() if "/eol/" in line]


def test_v2_literals_by_property_type():
    stamp = datetime.datetime(2026, 1, 2, 3, 4, 5)
    guid = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert v2.literal("Edm.DateTime", stamp) == "datetime'2026-01-02T03:04:05'"
    assert v2.literal("Edm.Date", datetime.date(2026, 1, 2)) == "datetime'2026-01-02T00:00:00'"
    assert v2.literal("Edm.DateTimeOffset", stamp.replace(tzinfo=datetime.UTC)) == \
        "datetimeoffset'2026-01-02T03:04:05Z'"
    assert v2.literal("Edm.Guid", str(guid)) == f"guid'{guid}'"
    assert v2.literal("Edm.Decimal", 98) == "98M"
    assert v2.literal("Edm.Int64", 7) == "7L"
    assert v2.literal("Edm.Double", 1.5) == "1.5d"
    assert v2.literal("Edm.Int32", 7) == "7"
    assert v2.literal("Edm.String", "it's") == "'it''s'"
    assert v2.literal("Edm.Time", datetime.time(13, 20)) == "time'PT13H20M00S'"
    assert v2.literal(None, guid) == f"guid'{guid}'"
    with pytest.raises(ValueError, match="no GUID"):
        v2.literal("Edm.Guid", "{12345678-1234-5678-1234-567812345678}")
    with pytest.raises(ValueError, match="no integer"):
        v2.literal("Edm.Int64", 1.5)


def test_v2_verbose_json_values_read_back():
    assert v2.convert("/Date(1706832000000)/", "Edm.Date") == datetime.date(2024, 2, 2)
    assert v2.convert("/Date(1706832000000)/", "Edm.DateTime") == \
        datetime.datetime(2024, 2, 2)
    offset = v2.convert("/Date(1706832000000+0060)/", "Edm.DateTimeOffset")
    assert offset.utcoffset() == datetime.timedelta(hours=1) and \
        offset.astimezone(datetime.UTC).replace(tzinfo=None) == datetime.datetime(2024, 2, 2)
    assert v2.convert("PT13H20M05.5S", "Edm.Time") == datetime.time(13, 20, 5, 500000)
    assert v2.convert("1.50", "Edm.Decimal") == decimal.Decimal("1.50")
    assert v2.convert("9007199254740993", "Edm.Int64") == 9007199254740993
    assert v2.json_value(datetime.date(2024, 2, 2), "Edm.Date") == "/Date(1706832000000)/"
    assert v2.json_value(decimal.Decimal("1.10"), "Edm.Decimal") == "1.10"
    assert v2.page({"d": {"results": [{"a": 1}], "__next": "x?$skiptoken=3"}}) == \
        ([{"a": 1}], "x?$skiptoken=3")
    assert v2.page({"d": [{"a": 1}]}) == ([{"a": 1}], None)
    assert v2.error_text('{"error": {"code": "400", "message": {"lang": "en", "value": "no"}}}'
                         ) == "no (400)"
    assert v2.error_text('{"error": {"code": "E1", "message": "v4 says"}}') == "v4 says (E1)"
    assert v2.error_text("<html>") is None


def test_the_version_of_a_metadata_document():
    four = ET.fromstring('<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"'
                         ' Version="4.0"/>')
    two = ET.fromstring(
        '<edmx:Edmx xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx"'
        ' xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"'
        ' Version="1.0"><edmx:DataServices m:DataServiceVersion="2.0"/></edmx:Edmx>')
    three = ET.fromstring(
        '<edmx:Edmx xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx"'
        ' xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"'
        ' Version="1.0"><edmx:DataServices m:DataServiceVersion="3.0"/></edmx:Edmx>')
    assert v2.version(four) == 4 and v2.version(two) == 2
    with pytest.raises(ValueError, match="OData version 3.0"):
        v2.version(three)


def test_a_next_link_to_another_host_is_not_followed_with_the_credentials(gateways):
    gateway = gateways()
    # the adapter names 'localhost' in its absolute next links: reached as 127.0.0.1, a link
    # to another host, which would be sent the token
    other = gateway.url_v2.replace("localhost", "127.0.0.1")
    conn = pooldbapi.connect({"eol1": f"driver=odata;url={other};token=tok-secret-1"})
    with pytest.raises(pooldbapi.OperationalError,
                       match=r"next link leads to another server \(http://localhost:") as info:
        conn.execute("select ID from Journals@eol1").fetchall()
    assert "tok-secret-1" not in str(info.value)
    assert not [line for line in gateway.calls() if "skiptoken" in line]
    conn.close()
