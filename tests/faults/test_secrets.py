"""Secrets never appear in messages, logs, repr or what an exception reaches; the rest of a
message is left as it was."""
from __future__ import annotations

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
