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

from sqlparse import tokens

from .backends import backend as load_backend
from .backends import sqlite as _sqlite_types  # noqa: F401 - its adapters and converters
from .dbapi import TypeCode, category_of_value
from .dialect import of_drivers, regexp, to_sqlite
from .eager import Partial, plan
from .eager import partial_sql as eager_sql
from .errors import Error, ProgrammingError, wrap
from .result import Part, Result
from .runner import Stream, execute_on, executor
from .sql.paramstyle import bind, source_style
from .sql.parse import Occurrence, Statement, Token, lex, parse, unquote
from .sql.render import render

if TYPE_CHECKING:
    from .backends.base import Description
    from .connection import Connection

CACHE_MIB = 64
"""The local engine keeps up to this much in memory; past it, pages go to its temporary file."""
FETCH_BATCH = 5000
"""Rows fetched from a container at a time while loading the local engine."""
WHOLE_ROWS = 50_000
"""Where a cursor reads slower (PostgreSQL: no parallel plan), a select its container
estimates at up to this many rows is read in one plain query instead."""

_NAMES = (tokens.Name, tokens.Keyword, tokens.Literal.String.Symbol)
_CLAUSE_END = {"GROUP BY", "ORDER BY", "HAVING", "LIMIT", "UNION", "UNION ALL", "INTERSECT",
               "EXCEPT", "WINDOW", "OFFSET", "FETCH", "FOR"}
_NO_PUSH_JOINS = ("RIGHT", "FULL")
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
    has_alias: bool
    alias_text: str                  # the table alias as written
    top: bool                        # in the outermost select (where push-down applies)
    pushable: bool
    columns: list[str] = field(default_factory=list)
    conjuncts: list[tuple[int, int]] = field(default_factory=list)


def _sig(toks: list[Token]) -> list[Token]:
    return [t for t in toks if t.ttype not in tokens.Whitespace and t.ttype not in tokens.Comment]


def _span(stmt: Statement, occ: Occurrence) -> tuple[int, int]:
    start, end = occ.position, occ.position + len(occ.name)
    for lo, hi in stmt.removed:
        if hi == occ.position:
            start = lo                       # catalog..
        if occ.suffix_position is not None and lo == occ.suffix_position:
            end = hi                         # @alias / @{...}
    return start, end


def _depths(sig: list[Token]) -> list[int]:
    out, depth = [], 0
    for tok in sig:
        if tok.is_punct(")"):
            depth -= 1
        out.append(depth)
        if tok.is_punct("("):
            depth += 1
    return out


def _sources(conn: Connection, stmt: Statement, sig: list[Token], depths: list[int],
             choice: dict[tuple[str, ...], str]) -> list[_Source]:
    out = []
    outer_join = any(t.is_keyword and t.upper.split()[0] in _NO_PUSH_JOINS and
                     t.upper.endswith("JOIN") for t in sig)
    for occ in stmt.occurrences:
        start, end = _span(stmt, occ)
        k = next((i for i, t in enumerate(sig) if t.start >= end), len(sig))
        before = next((sig[i] for i in range(len(sig) - 1, -1, -1) if sig[i].start < start),
                      None)
        ref, has_alias, text = unquote(occ.name.split(".")[-1]), False, ""
        if k < len(sig):
            nxt = sig[k]
            if nxt.is_keyword and nxt.upper == "AS" and k + 1 < len(sig):
                nxt = sig[k + 1]
                ref, has_alias, text = unquote(nxt.value), True, nxt.value
            elif nxt.ttype in (tokens.Name, tokens.Literal.String.Symbol) and \
                    not nxt.value.startswith("@"):
                ref, has_alias, text = unquote(nxt.value), True, nxt.value
        first = next(i for i, t in enumerate(sig) if t.start >= occ.position)
        joined = before is not None and before.is_keyword and before.upper.endswith("JOIN")
        nullable = joined and before is not None and before.upper.split()[0] == "LEFT"
        aliases = conn.resolve(occ.aliases, stmt)
        out.append(_Source(occ, choice[aliases], start, end, ref, has_alias, text,
                           depths[first] == 0, not outer_join and not nullable))
    return out


def _references(sig: list[Token]) -> tuple[set[str], set[tuple[str, str]], set[str], bool]:
    """Return bare names, qualified (qualifier, column) pairs, qualifiers with .* and bare *."""
    bare: set[str] = set()
    qualified: set[tuple[str, str]] = set()
    stars: set[str] = set()
    star = False
    for i, tok in enumerate(sig):
        if tok.ttype in tokens.Wildcard:
            prev = sig[i - 1] if i else None
            if prev is not None and prev.is_punct("."):
                stars.add(unquote(sig[i - 2].value).lower())
            elif prev is None or not prev.is_punct("("):
                star = True
        elif tok.ttype in _NAMES or tok.ttype in tokens.Name.Builtin:
            name = unquote(tok.value).lower()
            if i + 2 < len(sig) and sig[i + 1].is_punct(".") and sig[i + 2].ttype in _NAMES:
                qualified.add((name, unquote(sig[i + 2].value).lower()))
            elif not (i and sig[i - 1].is_punct(".")):
                bare.add(name)  # used unqualified: any occurrence may own it
    return bare, qualified, stars, star


def _where_conjuncts(sig: list[Token], depths: list[int]) -> list[tuple[int, int, list[Token]]]:
    """Return the top-level where clause cut at its top-level 'and's: (start, end, tokens)."""
    out: list[tuple[int, int, list[Token]]] = []
    try:
        w = next(i for i, t in enumerate(sig) if depths[i] == 0 and t.is_keyword and
                 t.upper == "WHERE")
    except StopIteration:
        return out
    current: list[Token] = []
    clause: list[Token] = []
    between = top_or = False
    for i in range(w + 1, len(sig)):
        tok = sig[i]
        # (a ')' at depth 0 closes a group of the clause itself: '... in (1, 2)')
        if depths[i] == 0 and (tok.is_keyword and tok.upper in _CLAUSE_END or tok.is_punct(";")):
            break
        clause.append(tok)
        top_or = top_or or (depths[i] == 0 and tok.is_keyword and tok.upper == "OR")
        if depths[i] == 0 and tok.is_keyword and tok.upper == "BETWEEN":
            between = True
        if depths[i] == 0 and tok.is_keyword and tok.upper == "AND" and not between:
            out.append((current[0].start, current[-1].start + len(current[-1].value), current))
            current = []
            continue
        if depths[i] == 0 and tok.is_keyword and tok.upper == "AND":
            between = False
        current.append(tok)
    if current:
        out.append((current[0].start, current[-1].start + len(current[-1].value), current))
    if top_or:
        # an 'or' at the top of the where clause joins what the 'and's cut: the whole clause
        # is one condition (pushed where it touches one occurrence alone)
        return [(clause[0].start, clause[-1].start + len(clause[-1].value), clause)]
    return out


def _owner(conj: list[Token], sources: list[_Source], cols: dict[int, set[str]]) -> int | None:
    """Return the index of the one top-level source a conjunct touches, else None."""
    owners: set[int] = set()
    for i, tok in enumerate(conj):
        if tok.is_keyword and tok.upper == "SELECT":
            return None
        if tok.ttype in tokens.Name.Placeholder:
            continue
        if tok.ttype not in _NAMES or (i + 1 < len(conj) and conj[i + 1].is_punct("(")):
            continue
        if i > 0 and conj[i - 1].is_punct("."):
            continue
        name = unquote(tok.value).lower()
        if i + 2 < len(conj) and conj[i + 1].is_punct("."):
            found = [n for n, s in enumerate(sources) if s.top and s.ref.lower() == name]
        else:
            found = [n for n, s in enumerate(sources) if s.top and name in cols[n]]
            if not found and tok.is_keyword:
                continue  # a keyword (null, true, like, ...), not a column
        if len(found) != 1:
            return None
        owners.add(found[0])
    return owners.pop() if len(owners) == 1 else None


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


def _pushed_params(stmt: Statement, params: Any, spans: list[tuple[int, int]],
                   pushed: Statement) -> Any:
    if params is None or not pushed.placeholders:
        return None
    style = source_style(stmt)
    if style in ("named", "pyformat"):
        return params
    if style == "numeric":
        return params[:max(p.key for p in pushed.placeholders if isinstance(p.key, int))]
    return [params[j] for j, p in enumerate(stmt.placeholders)
            if any(lo <= p.start < hi for lo, hi in spans)]


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


def _order_items(stmt: Statement) -> str | None:
    """The top-level 'order by' list when every item is a plain column [asc|desc], else None."""
    span = stmt.clause("ORDER BY")
    if span is None:
        return None
    items: list[list[str]] = [[]]
    for tok in lex(stmt.text[slice(*span)]):
        if tok.ttype in tokens.Whitespace or tok.ttype in tokens.Comment:
            continue
        if tok.is_punct(","):
            items.append([])
        else:
            items[-1].append(tok.value)
    out = []
    for item in items:
        direction = item[-1].lower() if item and item[-1].lower() in ("asc", "desc") else None
        name = item[:-1] if direction else item
        plain = len(name) % 2 == 1 and all(p == "." for p in name[1::2]) and \
            all(p != "." and (p[0].isalpha() or p[0] in '_"') for p in name[0::2])
        if not plain:
            return None
        out.append("".join(name) + (f" {direction}" if direction else ""))
    return ", ".join(out)


def _limit(stmt: Statement) -> str | None:
    """The top-level 'limit n' when n is a plain number, else None."""
    span = stmt.clause("LIMIT")
    body = stmt.text[slice(*span)].strip() if span else ""
    return body if body.isdigit() else None


def _order_and_limit(stmt: Statement, sig: list[Token], sources: list[_Source],
                     conjuncts: int) -> str:
    """Return 'order by ... limit n' for a REST source where the whole statement allows it:
    one table, every where-conjunct pushed, no grouping, distinct, function or subquery."""
    if len(sources) != 1 or not sources[0].top or len(sources[0].conjuncts) != conjuncts:
        return ""
    if any(t.is_punct("(") or t.is_keyword and t.upper in ("GROUP BY", "HAVING", "DISTINCT",
                                                          "UNION", "UNION ALL", "JOIN",
                                                          "OFFSET", "INTERSECT", "EXCEPT")
           for t in sig):
        return ""
    if stmt.clause("OFFSET") is not None:
        return ""
    order, limit = _order_items(stmt), _limit(stmt)
    if stmt.clause("LIMIT") is not None and limit is None:
        return ""  # a limit that is not a plain number: all rows, limited locally
    if stmt.clause("ORDER BY") is None:
        return f"limit {limit}" if limit else ""
    if order is None:
        return ""
    return f"order by {order}" + (f" limit {limit}" if limit else "")


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


def _prepare(conn: Connection, stmt: Statement, params: Any,
             choice: dict[tuple[str, ...], str]) -> LocalPlan:
    """Plan a federated select (each occurrence's columns are asked of its container)."""
    if params is not None:
        bind(stmt, render(stmt, "qmark").keys, params)  # bad parameters: before any fetch
    toks = lex(stmt.text)
    sig = _sig(toks)
    depths = _depths(sig)
    sources = _sources(conn, stmt, sig, depths, choice)
    bare, qualified, stars, star = _references(sig)
    # the statement over local tables, in SQLite's dialect (translated from the statement's
    # own, where it has another): what SQLite cannot run fails here, before anything runs
    pieces, pos = [], 0
    for n, src in sorted(enumerate(sources), key=lambda s: s[1].start):
        pieces.append(stmt.text[pos:src.start])
        table = f"pooldbapi_t{n}"
        pieces.append(table if src.has_alias else f'{table} AS "{src.ref}"')
        pos = src.end
    pieces.append(stmt.text[pos:])
    local_text = "".join(pieces)
    read = conn.dialect or of_drivers(conn.specs[s.alias].driver for s in sources)
    if read is not None and read != "sqlite":
        local_text = to_sqlite(local_text, read)
    # 1. the columns of each occurrence, from its container
    for src in sources:
        probe = parse(f"select * from {src.occ.name} where 1 = 0")
        described = _describe(conn, src.alias, probe)
        table_cols = [str(d[0]) for d in described]
        ref = src.ref.lower()
        if star or ref in stars:
            src.columns = table_cols
        else:
            src.columns = [c for c in table_cols if c.lower() in bare or
                           (ref, c.lower()) in qualified] or table_cols[:1]
    cols = {n: {c.lower() for c in s.columns} for n, s in enumerate(sources)}
    # 2. where-conjuncts that touch one pushable occurrence alone
    where = _where_conjuncts(sig, depths)
    for lo, hi, conj in where:
        owner = _owner(conj, sources, cols)
        if owner is not None and sources[owner].pushable:
            sources[owner].conjuncts.append((lo, hi))
    # 3. where the aggregates all read one occurrence, its container sends partial
    # aggregates instead of rows
    eager = _eager(conn, stmt, params, sources, cols, local_text, read or "sqlite")
    # 4. what each container is asked; a lone REST source may get the ordering and limit too
    tail = _order_and_limit(stmt, sig, sources, len(where)) if len(sources) == 1 and \
        not load_backend(conn.specs[sources[0].alias].driver, "").runs_sql else ""
    local_params = params
    pushed_all = []
    for n, src in enumerate(sources):
        conjuncts = [stmt.text[lo:hi] for lo, hi in src.conjuncts]
        if eager is not None and eager[0] == n:
            exact = {c.lower(): c for c in src.columns}
            pushed = parse(eager_sql(src.occ.name, src.alias_text,
                                     [exact[k] for k in eager[1].keys],
                                     tuple((kind, None if c is None else exact[c])
                                           for kind, c in eager[1].aggregates),
                                     conjuncts))
            local_text = eager[1].local
            if params is not None and source_style(stmt) == "qmark":
                local_params = [v for j, v in enumerate(params) if not any(
                    lo <= stmt.placeholders[j].start < hi for lo, hi in src.conjuncts)]
        else:
            pushed = parse(pushdown_sql(src.occ.name, src.alias_text, src.columns,
                                        conjuncts, tail))
        pushed_all.append((pushed, _pushed_params(stmt, params, src.conjuncts, pushed)))
    return LocalPlan(sources, pushed_all, parse(local_text), local_params,
                     None if eager is None else eager[0])


def evaluate(conn: Connection, stmt: Statement, params: Any,
             choice: dict[tuple[str, ...], str]) -> Result:
    """Fetch what each occurrence needs from its container and run the select locally."""
    plan_ = _prepare(conn, stmt, params, choice)
    engine = LocalEngine()
    try:
        codes: dict[str, TypeCode] = {}
        _fetch_all(conn, plan_, engine, codes)
        local = plan_.local
        rendered = render(local, "qmark" if params is not None else None)
        try:
            cur = engine.db.execute(rendered.text, bind(local, rendered.keys,
                                                        plan_.local_params)
                                    if params is not None else ())
            rows = cur.fetchall()
        except sqlite3.Error as exc:
            err = wrap(exc, "local", (), getattr(exc, "sqlite_errorname", None),
                       ProgrammingError)
            err.args = (f"{err.args[0]} (the statement is evaluated locally, in SQLite's"
                        " dialect, because its occurrences landed on different containers)",)
            raise err from exc
        description = _description(cur, rows, codes)
        ran: dict[str, int] = {}
        for src in plan_.sources:
            ran[src.alias] = ran.get(src.alias, 0) + 1
        return Result(description, rows, len(rows), None, ran)
    finally:
        engine.close()


def _fetch_all(conn: Connection, plan_: LocalPlan, engine: LocalEngine,
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


def _fetch_in_parallel(conn: Connection, by_alias: dict[str, list[int]],
                       fetch: Callable[[str], None]) -> None:
    # borrowed here, in the one order every caller uses, not by the workers: a transaction's
    # first use of a container (its begin, a two-phase branch) is never raced
    aliases = sorted(by_alias, key=lambda a: conn.specs[a].order)
    try:
        for alias in aliases:
            conn.transaction.physical(conn.specs[alias], conn.autocommit)
        futures = [executor().submit(fetch, alias) for alias in aliases]
        try:
            wait(futures)
        except BaseException:
            wait(futures)  # (Ctrl-C) the workers end their reads before the connections go back
            raise
        for future in futures:
            future.result()  # the first error, after every fetch has ended
    finally:
        for alias in aliases:
            conn.after_statement(alias)  # autocommit: given back (once; the rest is a no-op)


def explain(conn: Connection, stmt: Statement, params: Any,
            choice: dict[tuple[str, ...], str]) -> list[tuple[str, str, str, int | None]]:
    """The plan of a federated select, nothing fetched: per occurrence (step 'fetch', or
    'fetch partial aggregates'), its container, the statement sent there and the rows the
    container estimates it gives; then the statement that runs locally."""
    plan_ = _prepare(conn, stmt, params, choice)
    out: list[tuple[str, str, str, int | None]] = []
    for n, src in enumerate(plan_.sources):
        pushed, values = plan_.pushed[n]
        step = "fetch partial aggregates of" if plan_.eager == n else "fetch"
        out.append((f"{step} {src.occ.name} as pooldbapi_t{n}", src.alias, pushed.text,
                    estimate(conn, src.alias, pushed, values)))
    out.append(("run locally (sqlite3)", "local", plan_.local.text, None))
    return out


def estimate(conn: Connection, alias: str, stmt: Statement, values: Any) -> int | None:
    """The rows a select would give on a container, as its planner estimates them (or a
    count up to a cap where it has no estimates); None where it cannot say."""
    backend = load_backend(conn.specs[alias].driver, alias)
    text = backend.estimate_text(render(stmt, None).text) if backend.runs_sql else None
    if text is None:
        return None
    part = execute_on(conn, alias, parse(text), values)
    return backend.estimated_rows(part.rows[0]) if part.rows else None


def _eager(conn: Connection, stmt: Statement, params: Any, sources: list[_Source],
           cols: dict[int, set[str]], local: str, read: str) -> tuple[int, Partial] | None:
    """The occurrence whose container sends partial aggregates, and the plan; None: rows."""
    if len(sources) < 2 or (params is not None and source_style(stmt) not in ("qmark",
                                                                              "named")):
        return None
    found: list[tuple[int, Partial]] = []
    for n, src in enumerate(sources):
        if not (src.top and src.pushable and
                load_backend(conn.specs[src.alias].driver, "").runs_sql):
            continue
        others = set().union(*(c for m, c in cols.items() if m != n))
        partial = plan(local, src.ref, frozenset(cols[n]), frozenset(others),
                       tuple(stmt.text[lo:hi] for lo, hi in src.conjuncts), read)
        if partial is not None:
            found.append((n, partial))
    if len(found) < 2:
        return found[0] if found else None

    def rows(n: int) -> int:
        # where the aggregates read no column (count(*) alone) any occurrence would do: the
        # one that would send the most rows
        src = sources[n]
        pushed = parse(pushdown_sql(src.occ.name, src.alias_text, src.columns,
                                    [stmt.text[lo:hi] for lo, hi in src.conjuncts]))
        got = estimate(conn, src.alias, pushed,
                       _pushed_params(stmt, params, src.conjuncts, pushed))
        return -1 if got is None else got

    return max(found, key=lambda item: rows(item[0]))


def _describe(conn: Connection, alias: str, probe: Statement) -> Description:
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


def _load(conn: Connection, engine: LocalEngine, n: int, src: _Source, pushed: Statement,
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
                decls = ", ".join(f'"{d[0]}" {_decl(d[1], first[i])}'
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
            decls = ", ".join(f'"{d[0]}" {_decl(d[1], None)}' for d in description)
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
