"""bulk insert: rows in pages of page-size, each page to the next container, pages for
different containers written concurrently; a page is never split."""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..backends import backend as load_backend
from ..errors import ProgrammingError
from ..result import Result
from ..runner import Item, run_items
from ..sql.parse import Statement, parse
from ..sql.paramstyle import source_style
from ..sql.render import strip
from . import select
from .dml import one_container

if TYPE_CHECKING:
    from ..connection import Connection

_MARKER = re.compile(r"\?|%s|%\(\w+\)s|:\w+")


def page_size(conn: Connection, stmt: Statement) -> int:
    """Return the page size: the smallest page-size of the target list's containers."""
    target = conn.resolve(stmt.occurrences[0].aliases if stmt.occurrences else None, stmt)
    return max(1, min(conn.specs[a].options.page_size for a in target))


def _copy_target(stmt: Statement) -> tuple[str, tuple[str, ...] | None] | None:
    """Return (table, columns) when every value is a bare placeholder, so COPY can carry it."""
    if len(stmt.values_rows) != 1 or not stmt.occurrences:
        return None
    lo, hi = stmt.values_rows[0]
    items = [item.strip() for item in stmt.text[lo + 1:hi - 1].split(",")]
    if not all(_MARKER.fullmatch(item) for item in items):
        return None
    occ = stmt.occurrences[0]
    table = "".join(text for _, text in strip(stmt, occ.position, occ.position + len(occ.name)))
    return table, stmt.columns


def _pages(rows: Iterable[Any], size: int) -> Iterable[list[Any]]:
    page: list[Any] = []
    for row in rows:
        page.append(row)
        if len(page) == size:
            yield page
            page = []
    if page:
        yield page


def write_pages(conn: Connection, stmt: Statement, rows: Iterable[Sequence[Any]]) -> Result:
    """Send rows in pages, each page to the next container of the target's list."""
    size = page_size(conn, stmt)
    copy = _copy_target(stmt) if source_style(stmt) in ("qmark", "format") else None
    plan: dict[str, list[Item]] = {}
    start = 0
    for page in _pages(rows, size):
        alias = one_container(stmt, conn.route(stmt))
        backend = load_backend(conn.specs[alias].driver, alias)
        indices = tuple(range(start, start + len(page)))
        start += len(page)
        if copy is not None and backend.copies:
            item = Item(indices, stmt, [tuple(r) for r in page], copy=copy)
        else:
            item = Item(indices, stmt, page)
        plan.setdefault(alias, []).append(item)
    return run_items(conn, plan)


def executemany(conn: Connection, stmt: Statement, seq: Sequence[Any]) -> Result:
    """bulk insert ... values (...) with executemany: the parameter sets in pages."""
    if stmt.select_start is not None:
        raise ProgrammingError("bulk insert ... select takes no executemany: use execute")
    if not stmt.values_rows:
        raise ProgrammingError("bulk insert needs values (...) or a select")
    return write_pages(conn, stmt, seq)


def execute(conn: Connection, stmt: Statement, params: Any) -> Result:
    """bulk insert ... select: read the source, then write its rows in pages."""
    if stmt.select_start is None:
        if params is None:
            raise ProgrammingError("bulk insert ... values takes its rows through executemany")
        return write_pages(conn, stmt, [params])
    source = parse(stmt.text[stmt.select_start:])
    conn.check(source)
    read = select.execute(conn, source, params)
    if read.description is None:
        raise ProgrammingError("the select of bulk insert returned no columns")
    target = parse(f"{stmt.text[:stmt.select_start]}values ({', '.join('?' * len(read.description))})")
    conn.check(target)
    return write_pages(conn, target, read.rows)
