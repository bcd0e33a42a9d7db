"""bulk insert: rows in pages of page-size, each page to the next container, pages for
different containers written concurrently; a page is never split."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..backends import backend as load_backend
from ..errors import ProgrammingError
from ..result import Result
from ..runner import Item, run_items
from ..sql.paramstyle import source_style
from ..sql.parse import Statement
from ..sql.render import strip
from ..sql.styles import SEQUENTIAL
from .writes import write_from_select

if TYPE_CHECKING:
    from ..session import Session

def page_size(conn: Session, stmt: Statement) -> int:
    """Return the page size: the smallest page-size of the target list's containers."""
    target = conn.router.resolve(stmt.occurrences[0].aliases if stmt.occurrences else None, stmt)
    return max(1, min(conn.specs[a].options.page_size for a in target))


def _copy_target(stmt: Statement) -> tuple[str, tuple[str, ...] | None] | None:
    """Return (table, columns) when every value is a bare placeholder, so COPY can carry it."""
    if len(stmt.values_rows) != 1 or not stmt.occurrences:
        return None
    lo, hi = stmt.values_rows[0]
    # plain values only: the row is markers and commas, one marker per item
    markers = [p for p in stmt.placeholders if lo < p.start < hi]
    rest, pos = [], lo + 1
    for marker in markers:
        rest.append(stmt.text[pos:marker.start])
        pos = marker.end
    rest.append(stmt.text[pos:hi - 1])
    if not markers or any(piece.strip() not in ("", ",") for piece in rest) or \
            sum(piece.count(",") for piece in rest) != len(markers) - 1:
        return None
    occ = stmt.occurrences[0]
    table = "".join(text for _, text in strip(stmt, occ.position, occ.position + len(occ.name)))
    return table, stmt.columns


def plan_pages(conn: Session, stmt: Statement, rows: Sequence[Sequence[Any]],
               first: int = 0) -> dict[str, list[Item]]:
    """Cut rows into pages, each page for the next container of the target's list."""
    size = page_size(conn, stmt)
    copy = _copy_target(stmt) if source_style(stmt) in SEQUENTIAL else None
    starts = range(0, len(rows), size)
    picks = conn.assign(stmt, len(starts))
    plan: dict[str, list[Item]] = {}
    for n, start in enumerate(starts):
        alias = picks if isinstance(picks, str) else picks[n]
        backend = load_backend(conn.specs[alias].driver, alias)
        plan.setdefault(alias, []).append(Item(
            stmt, range(first + start, first + min(start + size, len(rows))),
            rows[start:start + size], page=True, copy=copy if backend.copies_rows else None))
    return plan


def executemany(conn: Session, stmt: Statement, seq: Sequence[Any]) -> Result:
    """bulk insert ... values (...) with executemany: the parameter sets in pages."""
    if stmt.select_start is not None:
        raise ProgrammingError("bulk insert ... select takes no executemany: use execute")
    if not stmt.values_rows:
        raise ProgrammingError("bulk insert needs values (...) or a select")
    return run_items(conn, plan_pages(conn, stmt, seq))


def execute(conn: Session, stmt: Statement, params: Any) -> Result:
    """bulk insert ... select: stream the source and write its rows in pages as they come."""
    if stmt.select_start is None:
        if params is None:
            raise ProgrammingError("bulk insert ... values takes its rows through executemany")
        return run_items(conn, plan_pages(conn, stmt, [params]))
    target_list = conn.router.resolve(stmt.occurrences[0].aliases, stmt)
    # one round holds a page for each distinct container, so that they are written together
    batch = page_size(conn, stmt) * len(set(target_list))
    return write_from_select(conn, stmt, params, batch,
                             lambda target, rows, first: plan_pages(conn, target, rows, first))
