"""The embedded engine for selects whose occurrences land on different containers: each
occurrence's container is asked for the columns the statement uses and the where-clause
conjuncts that touch that occurrence alone; the statement itself runs in stdlib sqlite3."""
from __future__ import annotations

import datetime
import decimal
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from .. import waits
from ..backends import backend as load_backend
from ..backends import sqlite as _sqlite_types  # noqa: F401 - its adapters
from ..dbapi import TypeCode, category_of_value
from ..errors import Error, ProgrammingError, wrap
from ..result import Part, Result
from ..runner import Stream, execute_on, executor
from ..sql.paramstyle import bind, source_style
from ..sql.parse import Occurrence, Statement, parse, unquote
from ..sql.render import render
from ..sql.structure import TABLE, marked, marker_values, values_for
from ..sql.styles import QMARK
from .dialect import OF_DRIVER, item_texts, of_drivers, regexp, to_sqlite
from .eager import Partial, plan
from .eager import partial_sql as eager_sql
from .shape import Shape, of_select, span, unresolved

if TYPE_CHECKING:
    from ..dbapi import Description
    from ..session import Session

CACHE_MIB = 64
"""The local engine keeps up to this much in memory; past it, pages go to its temporary file."""
FETCH_BATCH = 5000
"""Rows fetched from a container at a time while loading the local engine."""
WHOLE_ROWS = 50_000
"""Where a cursor reads slower (PostgreSQL: no parallel plan), a select its container
estimates at up to this many rows is read in one plain query instead."""

_NATIVE = (int, float, str, bytes, decimal.Decimal, type(None))  # no conversion needed
_SQLITE_TYPES = (int, float, str, bytes, decimal.Decimal, datetime.date, datetime.time,
                 type(None))


@dataclass
class _Source:
    """One occurrence evaluated locally: where it is, what to fetch, how to call it there."""

    occ: Occurrence
    alias: str                       # the container it landed on
    start: int                       # its span in the text (catalog to suffix)
    end: int
    ref: str                         # how the statement refers to it (table alias or name)
    alias_text: str                  # the table alias in its container's dialect ('': none)
    dialect: str | None              # its container's dialect
    top: bool                        # read by an outermost select (where push-down applies)
    pushable: bool
    columns: list[str] = field(default_factory=list)
    conjuncts: list[exp.Expr] = field(default_factory=list)

    def conditions(self) -> list[str]:
        """Its own conjuncts, in its container's dialect."""
        return [c.sql(dialect=self.dialect, comments=False) for c in self.conjuncts]


def _sources(conn: Session, stmt: Statement, landed: list[str],
             read: str) -> tuple[list[_Source], Shape]:
    spans = [span(stmt, occ) for occ in stmt.occurrences]
    found = of_select(stmt, read)
    out = []
    for n, (occ, alias) in enumerate(zip(stmt.occurrences, landed, strict=True)):
        dialect = OF_DRIVER.get(conn.specs[alias].driver)  # None: a REST container
        written = found.sources[n]
        ref = written.alias.name if written.alias is not None else \
            unquote(occ.name.split(".")[-1])
        out.append(_Source(occ, alias, *spans[n], ref,
                           "" if written.alias is None else written.alias.sql(dialect=dialect),
                           dialect, written.scope is not None, written.filterable))
    return out, found


def _date(raw: bytes) -> datetime.date | datetime.datetime:
    text = raw.decode()
    return datetime.date.fromisoformat(text) if len(text) == 10 else \
        datetime.datetime.fromisoformat(text)


# The local engine's columns convert back to the values the containers gave. sqlite3's
# converters are process-wide: these go by names of the engine's own ('pooldbapi_date'), so
# that the application's sqlite3 connections (and SQLite containers) keep the converters the
# application chose for DATE, BOOLEAN, ... Each name has the affinity of the usual one (NUMERIC).
_CONVERTERS: dict[str, Callable[[bytes], Any]] = {
    "DATE": _date,
    "TIMESTAMP": lambda raw: datetime.datetime.fromisoformat(raw.decode()),
    "TIME": lambda raw: datetime.time.fromisoformat(raw.decode()),
    "DECIMAL": lambda raw: decimal.Decimal(raw.decode()),
    "BOOLEAN": lambda raw: raw not in (b"0", b""),
}
for _name, _convert in _CONVERTERS.items():
    sqlite3.register_converter(f"pooldbapi_{_name}", _convert)


def _declare(code: Any, value: Any) -> str:
    """The column type a local table declares: _decl's, by the engine's converter names."""
    name = _decl(code, value)
    return f"pooldbapi_{name}" if name in _CONVERTERS else name


def _decl(code: Any, value: Any) -> str:
    name = str(code).lower()
    if name == "date":
        return "DATE"
    if name.startswith("timestamp") or isinstance(value, datetime.datetime):
        return "TIMESTAMP"
    if name in ("time", "timetz") or isinstance(value, datetime.time):
        return "TIME"
    if isinstance(value, datetime.date):
        return "DATE"
    if name == "numeric" or isinstance(value, decimal.Decimal):
        return "DECIMAL"
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "INTEGER"
    if isinstance(value, float):
        return "REAL"
    if isinstance(value, bytes | memoryview | bytearray):
        return "BLOB"
    category = getattr(code, "category", None)
    if isinstance(value, str) or category == "STRING":
        return "TEXT"
    return "NUMERIC" if category == "NUMBER" else ""  # unknown: no affinity, values as given


def _plain(row: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(v if isinstance(v, _SQLITE_TYPES) else
                 bytes(v) if isinstance(v, memoryview | bytearray) else str(v) for v in row)


def pushdown_sql(table: str, alias: str, columns: Sequence[str], conjuncts: Sequence[str],
                 tail: str = "") -> str:
    """Return what an occurrence's container is asked: its columns, its own conjuncts.

    Column names come from the container's own description and are quoted, so that they
    match in every dialect; the table alias needs no AS (Oracle allows none)."""
    select_list = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
    text = f"select {select_list} from {table}"
    if alias:
        text += f" {alias}"
    if conjuncts:
        text += " where " + " and ".join(f"({c})" for c in conjuncts)
    return text + (f" {tail}" if tail else "")


class LocalEngine:
    """A temporary sqlite3 database for one statement, removed when closed. Containers are
    read at the same time; their rows go in one batch at a time (`lock`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.folder = Path(tempfile.mkdtemp(prefix="pooldbapi-local-"))
        self.db = sqlite3.connect(self.folder / "local.db", isolation_level=None,
                                  detect_types=sqlite3.PARSE_DECLTYPES, check_same_thread=False)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "temp_store=FILE",
                       f"cache_size=-{CACHE_MIB * 1024}"):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.create_function("regexp", 2, regexp, deterministic=True)
        # a double-quoted name that resolves to nothing is an error, not a string (Python
        # 3.12+; before, unresolved() checks the names before anything runs)
        setconfig = getattr(self.db, "setconfig", None)
        if setconfig is not None:
            for option in ("SQLITE_DBCONFIG_DQS_DML", "SQLITE_DBCONFIG_DQS_DDL"):
                setconfig(getattr(sqlite3, option), False)

    def close(self) -> None:
        """Close the database and remove its file."""
        try:
            self.db.close()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class LocalPlan:
    """A federated select, planned: what each occurrence's container is asked, and the
    statement that runs locally over the answers."""

    sources: list[_Source]
    pushed: list[tuple[Statement, Any]]   # per source: the statement sent and its values
    local: Statement                      # over pooldbapi_t0, pooldbapi_t1, ...
    local_params: Any
    eager: int | None                     # the source that sends partial aggregates


def why_local(conn: Session, landed: Sequence[str]) -> str:
    """Why a select is evaluated locally, for its error messages."""
    distinct = list(dict.fromkeys(landed))
    if len(distinct) > 1:
        return f"its occurrences landed on different containers ({', '.join(distinct)})"
    driver = conn.specs[distinct[0]].driver
    return f"its container {distinct[0]} runs no SQL ({driver})"


def _prepare(conn: Session, stmt: Statement, params: Any,
             choice: dict[tuple[str, ...], str]) -> LocalPlan:
    """Plan a federated select (each occurrence's columns are asked of its container). The
    statement's structure comes from sqlglot's tree of its marked text; every statement made
    from it (what each container is asked, what runs locally) carries the markers
    :pooldbapi_p<j>, whose values are the caller's j-th."""
    values = marker_values(stmt, params)  # bad parameters: before any fetch
    landed = [choice[conn.router.resolve(o.aliases, stmt)] for o in stmt.occurrences]
    read = conn.dialect or of_drivers(conn.specs[a].driver for a in landed) or "sqlite"
    sources, found = _sources(conn, stmt, landed, read)
    # the statement over local tables, in SQLite's dialect (translated from the statement's
    # own): what SQLite cannot run fails here, before anything runs
    try:
        local_text = to_sqlite(marked(stmt, [
            (src.start, src.end, f"{TABLE}{n}" if found.sources[n].alias is not None else
             f'{TABLE}{n} AS "{src.ref}"') for n, src in enumerate(sources)]), read,
            item_texts(render(stmt, None).text, read))
    except Error as err:
        err.evaluated_locally = why_local(conn, landed)
        raise
    if "\x00" in local_text:  # sqlite3 reads no statement text holding one
        nul = ProgrammingError(f"a NUL character at {stmt.where(stmt.text.index(chr(0)))}:"
                               " SQLite cannot read it in a statement's text; pass the value"
                               " as a parameter")
        nul.evaluated_locally = why_local(conn, landed)
        raise nul
    # 1. the columns of each occurrence, from its container
    every: list[list[str]] = []
    for src in sources:
        probe = parse(f"select * from {src.occ.name} where 1 = 0")
        table_cols = [str(d[0]) for d in _describe(conn, src.alias, probe)]
        every.append(table_cols)
        ref = src.ref.lower()
        if found.star or ref in found.stars:
            src.columns = table_cols
        else:
            src.columns = [c for c in table_cols if c.lower() in found.bare or
                           (ref, c.lower()) in found.qualified] or table_cols[:1]
    name = unresolved(stmt, read, every)
    if name is not None:  # before any row is read: a string here would select (or delete) rows
        unknown = ProgrammingError(f'no such column: "{name}" (not a column of ' + ", ".join(
            f"{unquote(s.occ.name)} on {s.alias}" for s in sources) + ")")
        unknown.evaluated_locally = why_local(conn, landed)
        raise unknown
    cols = [{c.lower() for c in s.columns} for s in sources]
    # 2. where-conjuncts that touch one pushable occurrence alone
    refs = [s.ref.lower() for s in sources]
    for conj in found.conjuncts:
        owner = found.owner(conj, refs, cols)
        if owner is not None and sources[owner].pushable:
            sources[owner].conjuncts.append(conj.node)
    # 3. where the aggregates all read one occurrence, its container sends partial
    # aggregates instead of rows
    eager = _eager(conn, values, sources, cols, local_text, read)
    # 4. what each container is asked; a lone REST source may get the ordering and limit too
    lone = sources[0] if len(sources) == 1 else None
    tail = found.tail if lone is not None and lone.top and \
        len(lone.conjuncts) == len(found.conjuncts) and \
        not load_backend(conn.specs[lone.alias].driver, "").runs_sql else ""
    pushed_all = []
    for n, src in enumerate(sources):
        if eager is not None and eager[0] == n:
            exact = {c.lower(): c for c in src.columns}
            pushed = parse(eager_sql(src.occ.name, src.alias_text,
                                     [exact[k] for k in eager[1].keys],
                                     tuple((kind, None if c is None else exact[c])
                                           for kind, c in eager[1].aggregates),
                                     src.conditions()))
            local_text = eager[1].local
        else:
            pushed = parse(pushdown_sql(src.occ.name, src.alias_text, src.columns,
                                        src.conditions(), tail))
        pushed_all.append((pushed, values_for(values, pushed)))
    local = parse(local_text)
    return LocalPlan(sources, pushed_all, local, values_for(values, local) if values is not None
                     else None, None if eager is None else eager[0])


def evaluate(conn: Session, stmt: Statement, params: Any,
             choice: dict[tuple[str, ...], str]) -> Result:
    """Fetch what each occurrence needs from its container and run the select locally."""
    plan_ = _prepare(conn, stmt, params, choice)
    engine = LocalEngine()
    try:
        codes: dict[str, TypeCode] = {}
        _fetch_all(conn, plan_, engine, codes)
        local = plan_.local
        rendered = render(local, QMARK if params is not None else None)
        try:
            cur = engine.db.execute(rendered.text, () if plan_.local_params is None else
                                    bind(local, rendered.keys, plan_.local_params))
            rows = cur.fetchall()
        except sqlite3.Error as exc:
            err = wrap(exc, "local", (), getattr(exc, "sqlite_errorname", None),
                       ProgrammingError)
            err.evaluated_locally = why_local(conn, [s.alias for s in plan_.sources])
            raise err from exc
        description = _description(cur, rows, codes)
        ran: dict[str, int] = {}
        for src in plan_.sources:
            ran[src.alias] = ran.get(src.alias, 0) + 1
        return Result(description, rows, len(rows), None, ran)
    finally:
        engine.close()


def _fetch_all(conn: Session, plan_: LocalPlan, engine: LocalEngine,
               codes: dict[str, TypeCode]) -> None:
    """Load every occurrence's rows; different containers are read at the same time (each
    container's occurrences one after the other, on its one connection)."""
    by_alias: dict[str, list[int]] = {}
    for n, src in enumerate(plan_.sources):
        by_alias.setdefault(src.alias, []).append(n)

    found: list[dict[str, TypeCode]] = [{} for _ in plan_.sources]

    def fetch(alias: str) -> None:
        for n in by_alias[alias]:
            src = plan_.sources[n]
            pushed, values = plan_.pushed[n]
            # read in one plain query where a cursor would cost a better plan and the
            # container expects few rows
            whole = load_backend(conn.specs[alias].driver, alias).cursor_reads_slower and \
                (estimate(conn, alias, pushed, values) or WHOLE_ROWS + 1) <= WHOLE_ROWS
            _load(conn, engine, n, src, pushed, values, found[n], whole)

    try:
        if len(by_alias) == 1:
            fetch(next(iter(by_alias)))
        else:
            _fetch_in_parallel(conn, by_alias, fetch)
    finally:
        for own in found:  # a column's type code: the first occurrence's that has it
            for name, code in own.items():
                codes.setdefault(name, code)


def _bound(fetch: Callable[[str], None], alias: str) -> Callable[[], None]:
    return lambda: fetch(alias)


def _fetch_in_parallel(conn: Session, by_alias: dict[str, list[int]],
                       fetch: Callable[[str], None]) -> None:
    # borrowed here (Borrows: in the one order every caller uses), not by the workers: a
    # transaction's first use of a container (its begin, a two-phase branch) is never raced;
    # in autocommit given back at the end (each fetch's own borrow finds them held)
    with conn.transaction.borrow_all(conn.specs[alias] for alias in by_alias) as borrows:
        if waits.active():  # a call of pooldbapi.aio: one greenlet per container, no thread
            waits.gather([_bound(fetch, alias) for alias in borrows.physicals], lambda: None)
            return
        futures = [executor().submit(fetch, alias) for alias in borrows.physicals]
        try:
            wait(futures)
        except BaseException:
            wait(futures)  # (Ctrl-C) the workers end their reads before the connections go back
            raise
        for future in futures:
            future.result()  # the first error, after every fetch has ended


def explain(conn: Session, stmt: Statement, params: Any,
            choice: dict[tuple[str, ...], str]) -> list[tuple[str, str, str, int | None]]:
    """The plan of a federated select, nothing fetched: per occurrence (step 'fetch', or
    'fetch partial aggregates'), its container, the statement sent there and the rows the
    container estimates it gives; then the statement that runs locally."""
    plan_ = _prepare(conn, stmt, params, choice)
    style = source_style(stmt)  # markers shown in the caller's own style
    out: list[tuple[str, str, str, int | None]] = []
    for n, src in enumerate(plan_.sources):
        pushed, values = plan_.pushed[n]
        step = "fetch partial aggregates of" if plan_.eager == n else "fetch"
        out.append((f"{step} {src.occ.name} as pooldbapi_t{n}", src.alias,
                    render(pushed, style).text, estimate(conn, src.alias, pushed, values)))
    out.append(("run locally (sqlite3)", "local", render(plan_.local, style).text, None))
    return out


def estimate(conn: Session, alias: str, stmt: Statement, values: Any) -> int | None:
    """The rows a select would give on a container, as its planner estimates them (or a
    count up to a cap where it has no estimates); None where it cannot say."""
    backend = load_backend(conn.specs[alias].driver, alias)
    text = backend.estimate_text(render(stmt, None).text) if backend.runs_sql else None
    if text is None:
        return None
    part = execute_on(conn, alias, parse(text), values)
    return backend.estimated_rows(part.rows[0]) if part.rows else None


def _eager(conn: Session, values: dict[str, Any] | None, sources: list[_Source],
           cols: list[set[str]], local: str, read: str) -> tuple[int, Partial] | None:
    """The occurrence whose container sends partial aggregates, and the plan; None: rows."""
    if len(sources) < 2:
        return None
    found: list[tuple[int, Partial]] = []
    for n, src in enumerate(sources):
        if not (src.top and src.pushable and
                load_backend(conn.specs[src.alias].driver, "").runs_sql):
            continue
        others = set().union(*(c for m, c in enumerate(cols) if m != n))
        partial = plan(local, src.ref, frozenset(cols[n]), frozenset(others),
                       tuple(c.sql(dialect=read, comments=False) for c in src.conjuncts),
                       read)
        if partial is not None:
            found.append((n, partial))
    if len(found) < 2:
        return found[0] if found else None

    def rows(n: int) -> int:
        # where the aggregates read no column (count(*) alone) any occurrence would do: the
        # one that would send the most rows
        src = sources[n]
        pushed = parse(pushdown_sql(src.occ.name, src.alias_text, src.columns,
                                    src.conditions()))
        got = estimate(conn, src.alias, pushed, values_for(values, pushed))
        return -1 if got is None else got

    return max(found, key=lambda item: rows(item[0]))


def _describe(conn: Session, alias: str, probe: Statement) -> Description:
    # a REST container describes an entity set from its cached $metadata: no call to throttle
    rest = not load_backend(conn.specs[alias].driver, alias).runs_sql
    stream = Stream(conn, alias, probe, None, 1, throttled=not rest)
    try:
        if stream.description is None:
            raise ProgrammingError(f"container {alias!r}: {probe.text!r} returned no columns")
        return stream.description
    finally:
        stream.close()


def _batches(part: Part) -> Iterator[list[Sequence[Any]]]:
    rows = part.rows or []
    for start in range(0, len(rows), FETCH_BATCH):
        yield rows[start:start + FETCH_BATCH]


def _load(conn: Session, engine: LocalEngine, n: int, src: _Source, pushed: Statement,
          values: Any, codes: dict[str, TypeCode], whole: bool = False) -> None:
    """Fetch an occurrence's rows into its local table: streamed in batches, or (whole) read
    in one plain query, which the server may run in parallel (a cursor it never does).
    `codes` gets the type code of each of its columns."""
    stream: Stream | None = None
    try:
        if whole:
            part = execute_on(conn, src.alias, pushed, values)
            description, batches = part.description, _batches(part)
        else:
            stream = Stream(conn, src.alias, pushed, values, FETCH_BATCH)
            description, batches = stream.description, stream.batches()
        assert description is not None
        created = False
        first_row: Sequence[Any] | None = None
        insert = f"insert into pooldbapi_t{n} values ({', '.join('?' * len(description))})"
        for rows in batches:
            if not created:
                plain = all(isinstance(v, _NATIVE) for v in rows[0])
                # a column's type from its first non-null value in the first batch
                first = first_row = [next((r[i] for r in rows if r[i] is not None), None)
                                     for i in range(len(description))]
                decls = ", ".join(f'"{d[0]}" {_declare(d[1], first[i])}'
                                  for i, d in enumerate(description))
                with engine.lock:
                    engine.db.execute(f"create table pooldbapi_t{n} ({decls})")
                created = True
            values_ = rows if plain else [_plain(r) for r in rows]
            with engine.lock:
                engine.db.execute("begin")  # one transaction a batch: no commit per row
                try:
                    engine.db.executemany(insert, values_)
                finally:
                    engine.db.execute("commit")
        if not created:
            decls = ", ".join(f'"{d[0]}" {_declare(d[1], None)}' for d in description)
            with engine.lock:
                engine.db.execute(f"create table pooldbapi_t{n} ({decls})")
        for i, d in enumerate(description):
            code = d[1]
            if code.category is None and first_row is not None:  # typed by values (sqlite)
                category = category_of_value(first_row[i])
                code = TypeCode(_decl(code, first_row[i]), category)
            codes[str(d[0]).lower()] = code
    except sqlite3.Error as exc:
        raise wrap(exc, "local", ()) from exc
    except Error:
        raise
    finally:
        if stream is not None:
            stream.close()


def _description(cur: sqlite3.Cursor, rows: list[Any], codes: dict[str, TypeCode]
                 ) -> Description | None:
    if cur.description is None:
        return None
    out = []
    for i, col in enumerate(cur.description):
        code = codes.get(str(col[0]).lower())
        if code is None:
            category = category_of_value(rows[0][i]) if rows else None
            code = TypeCode({"NUMBER": "NUMERIC", "STRING": "TEXT", "BINARY": "BLOB",
                             "DATETIME": "TIMESTAMP"}.get(category or "", "NULL"), category)
        out.append((col[0], code, None, None, None, None, None))
    return tuple(out)
