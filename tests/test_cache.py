"""The one cache policy (pooldbapi.cache): bounded by entries and by bytes, least recently
used out first, nothing kept for a text over LARGEST; every cache of the federated path
holds to it, and RSS stays bounded over many large federated statements."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pooldbapi
from pooldbapi import cache
from pooldbapi.backends import sqlite_declared
from pooldbapi.cache import BoundedCache, Tiered, cached, text_size
from pooldbapi.federated import dialect, eager, shape
from pooldbapi.sql import structure


def test_entries_bytes_and_recency_bound_what_is_kept():
    kept: BoundedCache[str, int] = BoundedCache(entries=3, nbytes=10, largest=6)
    for key in ("a", "b", "c"):
        kept.put(key, 1, 2)
    assert kept.get("a") == 1                  # a is now the most recently used
    kept.put("d", 1, 2)                        # a fourth entry: b (least recent) goes
    assert list(kept) == ["c", "a", "d"] and kept.bytes == 6
    kept.put("e", 1, 6)                        # 12 bytes would be over 10: c goes
    assert list(kept) == ["a", "d", "e"] and kept.bytes == 10
    kept.put("f", 1, 7)                        # over `largest`: never kept
    assert "f" not in kept and kept.bytes == 10
    kept.put("d", 2, 1)                        # a key put again is replaced, not doubled
    assert kept.get("d") == 2 and kept.bytes == 9 and list(kept) == ["a", "e", "d"]
    kept.put("g", 1, 5)                        # 14 bytes: a and e go
    assert list(kept) == ["d", "g"] and kept.bytes == 6
    kept.clear()
    assert len(kept) == 0 and kept.bytes == 0


@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 12)), max_size=200),
       st.integers(1, 8), st.integers(0, 40), st.integers(0, 15))
@settings(max_examples=200)
def test_the_bounds_hold_after_any_puts(puts, entries, nbytes, largest):
    kept: BoundedCache[int, int] = BoundedCache(entries, nbytes, largest)
    sizes: dict[int, int] = {}
    for key, size in puts:
        kept.put(key, key, size)
        if size <= largest:
            sizes[key] = size
        assert len(kept) <= entries
        assert kept.bytes == sum(sizes[k] for k in kept) <= max(nbytes, size)
        if size <= largest:
            assert kept.get(key) == key        # the newest entry is always kept
    assert all(kept.get(k) == k for k in kept)


def test_a_tiered_cache_keeps_long_entries_apart_and_bounded(monkeypatch):
    """Long entries go to a tier of their own: they push out only each other, up to
    LONG_ENTRIES of them and LONG_BYTES in all, none over LONG_LARGEST."""
    monkeypatch.setattr(cache, "LONG_ENTRIES", 3)
    monkeypatch.setattr(cache, "LONG_BYTES", 3 * cache.LARGEST + 30)
    kept: Tiered[str, int] = Tiered(entries=2)
    kept.put("s1", 1, 10)
    kept.put("s2", 2, cache.LARGEST)                 # the longest that is ordinary
    for n in range(5):                               # five long ones: the last 3 stay
        kept.put(f"l{n}", n, cache.LARGEST + 10)
    assert list(kept.short) == ["s1", "s2"] and list(kept.long) == ["l2", "l3", "l4"]
    assert kept.get("s1") == 1 and kept.get("l3") == 3 and kept.get("l0") is None
    assert "l4" in kept and "l1" not in kept and len(kept) == 5
    kept.put("s3", 3, 1)                             # an ordinary one pushes out s2 only
    assert list(kept.short) == ["s1", "s3"] and len(kept.long) == 3
    kept.put("big", 9, cache.LONG_LARGEST + 1)       # over the long tier's bound: not kept
    assert "big" not in kept and kept.long.bytes <= cache.LONG_BYTES
    kept.clear()
    assert len(kept) == 0


def test_sizes_are_the_characters_of_the_texts():
    assert text_size("abc", 7, None, ("de", ("f",)), frozenset({"gh"})) == 8


def test_the_decorator_keeps_results_by_arguments_also_none_and_never_an_exception():
    calls: list[tuple[str, int]] = []

    @cached(entries=4, nbytes=100, largest=50)
    def f(text: str, n: int) -> str | None:
        calls.append((text, n))
        if n < 0:
            raise ValueError(n)
        return None if n == 0 else text * n

    assert f("ab", 2) == "abab" and f("ab", 2) == "abab"
    assert f("ab", 0) is None and f("ab", 0) is None
    for _ in range(2):
        with pytest.raises(ValueError):
            f("ab", -1)
    assert f("x" * 60, 1) == "x" * 60 and f("x" * 60, 1) == "x" * 60  # over largest: rebuilt
    assert calls == [("ab", 2), ("ab", 0), ("ab", -1), ("ab", -1), ("x" * 60, 1),
                     ("x" * 60, 1)]
    assert f.cache.bytes == text_size("ab", 2, "abab") + text_size("ab", 0)  # type: ignore[attr-defined]


FEDERATED_CACHES = {
    "tree": structure.tree, "shape": shape.shape, "to_sqlite": dialect.to_sqlite,
    "item_texts": dialect.item_texts, "eager plan": eager.plan,
    "declared sources": sqlite_declared._sources,
}


@pytest.fixture
def federated(tmp_path):
    conn = pooldbapi.connect({a: f"driver=sqlite;database={tmp_path / a}.db" for a in "ab"},
                             autocommit=True)
    conn.execute("create table t@a (x int, label text)")
    conn.execute("create table u@b (x int, label text)")
    conn.cursor().executemany("insert into t@a values (?, ?)", [(i, str(i)) for i in range(50)])
    conn.cursor().executemany("insert into u@b values (?, ?)", [(i, str(i)) for i in range(50)])
    yield conn
    conn.close()


def test_every_cache_of_the_federated_path_holds_its_byte_bound(federated, monkeypatch):
    for fn in FEDERATED_CACHES.values():
        fn.cache.clear()
        monkeypatch.setattr(fn.cache, "nbytes", 60_000)  # a small budget, soon reached
    for i in range(60):
        text = (f"select count(*), max(p.label) from t@a p join u@b q on p.x = q.x"
                f" where p.label <> '{i}{'x' * 4000}'")
        assert federated.execute(text).fetchone()[0] == 50
    for name, fn in FEDERATED_CACHES.items():
        kept = fn.cache
        # measured as the helper measures: the characters of each entry's texts
        sizes = sum(text_size(*key, value) for key, (value, _) in kept._data.items())
        assert kept.bytes == sizes <= kept.nbytes, name
    assert structure.tree.cache.bytes > 40_000  # reached the budget: the bound was tested


RSS = textwrap.dedent("""
    import sys
    import pooldbapi
    folder, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    conn = pooldbapi.connect({a: f"driver=sqlite;database={folder}/{a}.db" for a in "ab"},
                             autocommit=True)
    conn.execute("create table t@a (x int, label text)")
    conn.execute("create table u@b (x int, label text)")
    conn.cursor().executemany("insert into t@a values (?, ?)", [(i, str(i)) for i in range(50)])
    conn.cursor().executemany("insert into u@b values (?, ?)", [(i, str(i)) for i in range(50)])

    def rss():
        with open("/proc/self/status") as status:
            return next(int(l.split()[1]) for l in status if l.startswith("VmRSS")) / 1024

    conn.execute("select count(*) from t@a p join u@b q on p.x = q.x where p.label <> 'w'")
    before = rss()
    for i in range(n):
        text = (f"select count(*) from t@a p join u@b q on p.x = q.x"
                f" where p.label <> '{i}{'x' * size}'")
        assert conn.execute(text).fetchone()[0] == 50
    print(before, rss())
""")


@pytest.mark.parametrize("size, bound", [
    (64_000, 80),   # over cache.LARGEST: none of the texts is kept by pooldbapi
    (15_000, 80),   # just under it: kept, as far as each cache's 4 MiB of text allows
])
def test_rss_stays_bounded_over_300_large_federated_statements(tmp_path, size, bound):
    """Before the byte bounds, 300 distinct 200 KB federated statements took RSS from 53 to
    581 MiB. Measured in a fresh process (RSS, not tracemalloc: sqlglot's trees and sqlite3's
    statements count too). The bound includes sqlite3's own statement cache (128 per
    physical connection, cached_statements)."""
    out = subprocess.run([sys.executable, "-c", RSS, str(tmp_path), "300", str(size)],
                         capture_output=True, text=True, check=True).stdout
    before, after = map(float, out.split())
    print(f"RSS {before:.0f} -> {after:.0f} MiB")
    assert after - before < bound, (before, after)


def test_a_long_statement_keeps_its_turn_without_the_router_holding_its_text(tmp_path):
    conn = pooldbapi.connect({a: f"driver=sqlite;database={tmp_path / a}.db" for a in "ab"},
                             broadcast_ddl=True, autocommit=True)
    conn.execute("create table t@{a,b} (label text)")
    text = f"select count(*) from t@{{a,b}} where label <> '{'x' * (cache.LARGEST + 1)}'"
    counts: dict[str, int] = {}
    for _ in range(10):
        for alias, n in conn.execute(text).containers.items():
            counts[alias] = counts.get(alias, 0) + n
    assert counts == {"a": 5, "b": 5}  # round-robin exact: the strategy was kept
    keys = [key for key, _ in conn.router._strategies]
    assert len(keys) == 1 and keys[0].startswith("blake2b:")
    assert conn.router._strategies.bytes + conn.router._checked.bytes < 200
    conn.close()



def test_no_module_memoises_through_functools_instead_of_the_one_policy():
    import ast
    from pathlib import Path

    memo = {"lru_cache", "cache", "cached_property"}
    root = Path(pooldbapi.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module == "functools":
                found += [f"{path.relative_to(root)}: {a.name}" for a in node.names
                          if a.name in memo]
            elif isinstance(node, ast.Attribute) and node.attr in memo and \
                    isinstance(node.value, ast.Name) and node.value.id == "functools":
                found.append(f"{path.relative_to(root)}: functools.{node.attr}")
    assert found == [], found


def test_made_once_makes_a_keys_value_once_whatever_the_threads():
    import threading
    import time

    from pooldbapi.cache import made_once

    table: dict[str, object] = {}
    lock = threading.Lock()
    made = []

    def make() -> object:
        time.sleep(0.01)  # long enough for every thread to find the key missing
        made.append(object())
        return made[-1]

    found: list[object] = []
    threads = [threading.Thread(target=lambda: found.append(made_once(table, lock, "k", make)))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1 and found == made * 8 and table == {"k": made[0]}
    assert made_once(table, lock, "other", object) is table["other"]


def test_sqlite_descriptions_are_kept_least_recently_used_out_first(tmp_path, monkeypatch):
    """A description is built once per result shape, and the shapes kept are bounded under
    the one policy: the shape used last stays when a new one pushes an old one out."""
    from pooldbapi.backends import sqlite as backend

    monkeypatch.setattr(backend, "_DESCRIBED", cache.BoundedCache(2, largest=1 << 20))
    conn = pooldbapi.connect({"a": f"driver=sqlite;database={tmp_path}/d.db"})
    cur = conn.cursor()
    cur.execute("create table t@a (n int)")
    cur.execute("insert into t@a values (1)")
    for name in ("x", "y"):
        cur.execute(f"select n as {name} from t@a")
    cur.execute("select n as x from t@a")  # x now the most recently used
    kept_x = next(iter(k for k in backend._DESCRIBED if k[0][0][0] == "x"))
    cur.execute("select n as z from t@a")  # pushes out y, not x
    assert [k[0][0][0] for k in backend._DESCRIBED] == ["x", "z"]
    assert kept_x in backend._DESCRIBED
    assert cur.description[0][0] == "z"
    conn.close()
