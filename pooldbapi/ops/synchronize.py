"""synchronize s@{...} to t@{...}: read source and target once each, compare by key, and write
each changed target row to the next container of the target's list."""
from __future__ import annotations

import datetime
import decimal
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ProgrammingError
from ..result import Result
from ..runner import Item, run_items
from ..sql.parse import Occurrence, Statement, parse
from . import select
from .writes import READ_BATCH, spread

if TYPE_CHECKING:
    from ..session import Session

_ACTIONS = ("insert", "update", "delete")
_EXPECTED = ("expected 'with insert [or update] [or delete] identified by col[, col...]"
             " [ignore changes to col[, ...]]'")


def _clause(stmt: Statement, at: int) -> tuple[set[str], list[str], list[str]]:
    """Read 'with ACTION [or ACTION...] identified by COLS [ignore changes to COLS]' from the
    tokens after the target: the actions, the key columns and the ignored columns."""
    sig = [t for t in stmt.significant() if t.start >= at]
    if sig and sig[-1].is_punct(";"):
        sig.pop()
    words = [w for t in sig for w in ([t.value] if not t.is_keyword else t.value.split())]
    lower = [w.lower() for w in words]
    pos = 0

    def fail(what: str) -> ProgrammingError:
        where = stmt.where(sig[min(pos, len(sig) - 1)].start if sig else at)
        return ProgrammingError(f"synchronize: {_EXPECTED}; {what} at {where}")

    def expect(*wanted: str) -> None:
        nonlocal pos
        for word in wanted:
            if pos >= len(lower) or lower[pos] != word:
                raise fail(f"'{word}' missing")
            pos += 1

    def listed(fits: Callable[[str], bool], separator: str, what: str) -> list[str]:
        """Words that fit (as written), one or more, each after the separator."""
        nonlocal pos
        found = []
        while True:
            if pos >= len(words) or not fits(lower[pos]):
                raise fail(f"{what} missing")
            found.append(words[pos])
            pos += 1
            if pos < len(words) and lower[pos] == separator:
                pos += 1
                continue
            return found

    def names() -> list[str]:
        return listed(lambda word: word not in (",", "ignore"), ",", "a column name")

    expect("with")
    actions = {a.lower() for a in listed(_ACTIONS.__contains__, "or",
                                         "insert, update or delete")}
    expect("identified", "by")
    keys = names()
    ignored: list[str] = []
    if pos < len(lower) and lower[pos] != "ignore":
        raise fail(f"unexpected {words[pos]!r}")
    if pos < len(lower):
        expect("ignore", "changes", "to")
        ignored = names()
    if pos < len(words):
        raise fail(f"unexpected {words[pos]!r}")
    return actions, keys, ignored


def _plain(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()


def _suffix(occ: Occurrence) -> str:
    return "" if occ.aliases is None else "@{" + ",".join(occ.aliases) + "}"


def _value_key(value: Any) -> Any:
    """Return a form of a value that compares equal across back-ends (1 == 1.0, dates as text)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float | decimal.Decimal):
        return decimal.Decimal(str(value)).normalize()
    if isinstance(value, datetime.datetime):
        return value.isoformat(" ")
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    return value


def _value_key_oracle(value: Any) -> Any:
    """As _value_key, where Oracle stores an empty string as NULL."""
    return None if value == "" else _value_key(value)


def value_comparer(drivers: Iterable[str]) -> Callable[[Any], Any]:
    """Return the comparison form of values for synchronize between containers of these
    drivers: where Oracle is involved an empty string and NULL are equal (Oracle stores '' as
    NULL, so telling them apart would rewrite the row on every run)."""
    return _value_key_oracle if "oracle" in drivers else _value_key


def insert_sql(target: str, columns: Sequence[str]) -> str:
    """Return the insert synchronize writes (target as written, with its @ suffix)."""
    return f"insert into {target} ({', '.join(columns)}) values ({', '.join('?' * len(columns))})"


def update_sql(target: str, changed: Sequence[str], keys: Sequence[str]) -> str:
    """Return the update synchronize writes for a row whose columns `changed` differ."""
    where = " and ".join(f"{k} = ?" for k in keys)
    return f"update {target} set {', '.join(f'{c} = ?' for c in changed)} where {where}"


def delete_sql(target: str, keys: Sequence[str]) -> str:
    """Return the delete synchronize writes for a target row missing from the source."""
    return f"delete from {target} where {' and '.join(f'{k} = ?' for k in keys)}"


def _read(conn: Session, occ: Occurrence, aliases: list[str] | None = None
          ) -> tuple[list[str], list[Sequence[Any]]]:
    suffix = _suffix(occ) if aliases is None else "@{" + ",".join(aliases) + "}"
    stmt = parse(f"select * from {occ.name}{suffix}")
    conn.router.check(stmt)
    result = select.execute(conn, stmt, None)
    assert result.description is not None
    return [str(d[0]) for d in result.description], result.rows


def execute(conn: Session, stmt: Statement, params: Any) -> Result:
    """Compare source and target by key and write the differences to the target's list."""
    if len(stmt.occurrences) != 2:
        raise ProgrammingError("synchronize takes one source and one target table:"
                               " synchronize s@{...} to t@{...} with insert [or update]"
                               " [or delete] identified by col[, col...]")
    source_occ, target_occ = stmt.occurrences
    tail_at = target_occ.position + len(target_occ.name)
    if target_occ.suffix_position is not None:
        tail_at = next(hi for lo, hi in stmt.removed if lo == target_occ.suffix_position)
    actions, key_names, ignored_names = _clause(stmt, tail_at)
    keys = [_plain(k) for k in key_names]
    ignored = {_plain(k) for k in ignored_names}

    # the target is read whole and hashed by key; the source streams past it once
    # (read where it is written: never from a standby, which may lag behind it)
    writable = conn.router.writable(stmt, list(conn.router.resolve(target_occ.aliases, stmt)))
    target_cols, target_rows = _read(conn, target_occ, writable)
    source = parse(f"select * from {source_occ.name}{_suffix(source_occ)}")
    conn.router.check(source)
    stream = select.open_stream(conn, source, None, READ_BATCH)
    try:
        assert stream.description is not None
        source_cols = [str(d[0]) for d in stream.description]
        s_index = {c.lower(): i for i, c in enumerate(source_cols)}
        t_index = {c.lower(): i for i, c in enumerate(target_cols)}
        for name in keys:
            if name not in s_index or name not in t_index:
                side = "source" if name not in s_index else "target"
                raise ProgrammingError(f"synchronize: key column {name!r} is not in the"
                                       f" {side}")
        columns = [c for c in source_cols if c.lower() in t_index]
        s_key = [s_index[k] for k in keys]
        t_key = [t_index[k] for k in keys]
        present = {tuple(_value_key(row[i]) for i in t_key): row for row in target_rows}
        compared = [c for c in columns if c.lower() not in keys and c.lower() not in ignored]
        target = f"{target_occ.name}{_suffix(target_occ)}"
        insert = parse(insert_sql(target, columns))
        same = value_comparer({conn.specs[a].driver for occ in (source_occ, target_occ)
                               for a in conn.router.resolve(occ.aliases, stmt)})
        seen: set[tuple[Any, ...]] = set()
        changes: list[tuple[Statement, tuple[Any, ...]]] = []  # held until the source is read
        n = 0
        for batch in stream.batches():
            for row in batch:
                key = tuple(_value_key(row[i]) for i in s_key)
                if any(v is None for v in key):
                    raise ProgrammingError(f"synchronize: source row {n} has a null key {keys}")
                if key in seen:
                    raise ProgrammingError(f"synchronize: source rows have the key"
                                           f" {dict(zip(keys, key, strict=True))} more than"
                                           " once")
                seen.add(key)
                n += 1
                old = present.get(key)
                if old is None:
                    if "insert" in actions:
                        changes.append((insert, tuple(row[s_index[c.lower()]] for c in columns)))
                    continue
                if "update" not in actions:
                    continue
                changed = [c for c in compared
                           if same(row[s_index[c.lower()]]) != same(old[t_index[c.lower()]])]
                if changed:
                    changes.append((parse(update_sql(target, changed, keys)),
                                    (*(row[s_index[c.lower()]] for c in changed),
                                     *(row[i] for i in s_key))))
    finally:
        stream.close()
    writes: list[tuple[Statement, tuple[Any, ...]]] = []
    if "delete" in actions:
        delete = parse(delete_sql(target, keys))
        writes += [(delete, tuple(row[i] for i in t_key)) for key, row in present.items()
                   if key not in seen]
    writes += changes
    plan: dict[str, list[Item]] = {}
    by_statement: dict[Statement, list[tuple[Any, ...]]] = {}
    for write, values in writes:
        by_statement.setdefault(write, []).append(values)
    first = 0
    for write, rows in by_statement.items():
        conn.router.check(write)
        spread(conn, write, rows, first, plan)
        first += len(rows)
    result = run_items(conn, plan)
    result.rowcount = sum(1 for _ in writes)
    return result
