"""pandas.read_sql over a pool of containers, as a plain DB-API connection."""
from __future__ import annotations

import pandas as pd

import pooldbapi


def test_read_sql_over_sqlite_and_postgresql(tmp_path, pg):
    conn = pooldbapi.connect({"lite": f"driver=sqlite;database={tmp_path / 'p.db'}",
                              "pg": pg.conninfo()}, autocommit=True)
    conn.execute("create table if not exists prices@lite (id int, price numeric)")
    conn.execute("create table if not exists prices@pg (id int, price numeric)")
    for alias in ("lite", "pg"):
        conn.cursor().executemany(f"insert into prices@{alias} values (?, ?)",
                                  [(1, 1.5), (2, 2.5)])
    frames = [pd.read_sql("select id, price from prices@{lite,pg} order by id", conn)
              for _ in range(2)]
    for frame in frames:
        assert list(frame.columns) == ["id", "price"]
        assert frame["id"].tolist() == [1, 2]
        assert [float(p) for p in frame["price"]] == [1.5, 2.5]
    one = pd.read_sql("select id from prices@pg where id = ?", conn, params=(2,))
    assert one["id"].tolist() == [2]
    conn.execute("drop table prices@pg")
    conn.close()
