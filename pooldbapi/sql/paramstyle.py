"""?, :name, :1, %s, %(name)s -> the back-end's style, token by token; binding of values."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ProgrammingError
from .parse import Rendered, Statement
from .styles import BY_NAME, FORMAT, NUMERIC, PERCENT_STYLES, SEQUENTIAL, SIGNS, Paramstyle


def source_style(stmt: Statement) -> Paramstyle | None:
    """Return the one placeholder style of a statement; mixing styles is a ProgrammingError."""
    derived = stmt.derived
    if derived.style_known:
        return derived.style
    styles = stmt.placeholders.styles()
    if len(styles) > 1:
        first = stmt.placeholders[0]
        other = next(p for p in stmt.placeholders if p.style != first.style)
        raise ProgrammingError(
            f"placeholder styles are mixed: {first.style} at {stmt.where(first.start)} and"
            f" {other.style} at {stmt.where(other.start)}; use one style per statement")
    style = styles.pop() if styles else None
    derived.style, derived.style_known = style, True
    return style


def render_markers(stmt: Statement, pieces: list[tuple[int, str]], style: Paramstyle) -> Rendered:
    """Replace each placeholder by the target style's marker and fix up literal '%'."""
    source = source_style(stmt)
    if stmt.dollar_markers:
        # psycopg sends its markers as $1, $2, ...: one written by hand would bind whatever
        # value the first rendered marker has
        at = end = stmt.dollar_markers[0]
        while end + 1 < len(stmt.text) and stmt.text[end + 1].isdigit():
            end += 1
        raise ProgrammingError(
            f"'{stmt.text[at:end + 1]}' at {stmt.where(at)}: PostgreSQL's numbered markers are"
            " not a placeholder style of pooldbapi; write ? or :1 (or pass no parameters)")
    out: list[str] = []
    keys: list[int | str] = []
    markers = iter(stmt.placeholders)
    marker = next(markers, None)
    sequential = 0

    def literal(text: str) -> str:
        # the text between markers, literals and comments included: what the user meant is
        # one '%' for each '%%' of a format/pyformat statement (as psycopg reads it) and each
        # other '%' as written; psycopg reads every '%' of its query, so each goes doubled
        if source in PERCENT_STYLES and "%" in text:
            text = text.replace("%%", "%")
        if style == FORMAT:
            return text.replace("%", "%%")
        return text

    fixed = style == FORMAT or source in PERCENT_STYLES  # else no '%' changes
    sign = SIGNS.get(style)
    for offset, text in pieces:
        pos = 0
        while marker is not None and marker.start < offset + len(text):
            between = text[pos:marker.start - offset]
            out.append(literal(between) if fixed and "%" in between else between)
            if marker.key is None and sign is not None:  # the common case, kept short
                keys.append(sequential)
                sequential += 1
                out.append(sign)
                pos = marker.end - offset
                marker = next(markers, None)
                continue
            if marker.key is None:
                keys.append(sequential)
                sequential += 1
            elif isinstance(marker.key, int):
                if marker.key < 1:
                    raise ProgrammingError(f"placeholder :{marker.key} at"
                                           f" {stmt.where(marker.start)}: numbering starts at 1")
                keys.append(marker.key - 1)
            else:
                keys.append(marker.key)
            n = len(keys)
            out.append(SIGNS.get(style, f":{n}"))
            pos = marker.end - offset
            marker = next(markers, None)
        out.append(literal(text[pos:]))
    return Rendered("".join(out), tuple(keys))


def bind(stmt: Statement, keys: tuple[int | str, ...], params: Any) -> Sequence[Any]:
    """Return the values for the rendered markers, checking params against the statement."""
    style = source_style(stmt)
    if style in SEQUENTIAL and len(keys) == (len(params) if type(params) in (
            tuple, list) else -1):
        # the common case, before the checks of abstract types: the keys of these styles are
        # 0, 1, 2, ... (a list copied at C speed, not value by value)
        return params if type(params) is tuple else tuple(params)
    if style is None:
        if isinstance(params, Mapping) or (isinstance(params, Sequence) and
                                           not isinstance(params, str | bytes) and
                                           len(params) == 0):
            return ()
        raise ProgrammingError(f"the statement has no placeholders but {_count(params)}"
                               " parameters were given")
    if style in BY_NAME:
        if not isinstance(params, Mapping):
            raise ProgrammingError(f"the statement uses {style} placeholders: parameters must be"
                                   f" a mapping, not {type(params).__name__}")
        missing = [k for k in dict.fromkeys(keys) if k not in params]
        if missing:
            raise ProgrammingError(f"no value for parameter(s) {', '.join(map(str, missing))}")
        return tuple(params[k] for k in keys)
    if isinstance(params, Mapping | str | bytes) or not isinstance(params, Sequence):
        raise ProgrammingError(f"the statement uses {style} placeholders: parameters must be"
                               f" a sequence, not {type(params).__name__}")
    wanted = max(keys) + 1 if style == NUMERIC else len(keys)  # type: ignore[operator]
    if len(params) != wanted:
        raise ProgrammingError(f"the statement takes {wanted} parameters, {len(params)} given")
    if style != NUMERIC and type(params) is tuple:
        return params
    return tuple(params[k] for k in keys)  # type: ignore[index]


def bind_many(stmt: Statement, keys: tuple[int | str, ...], seq: Sequence[Any],
              indices: Sequence[int] | None = None) -> Sequence[Sequence[Any]]:
    """Return the values of many parameter sets, checked first; a bad set is named by its
    index in the caller's sequence (indices, where seq is a part of it)."""
    style = source_style(stmt)
    if style in SEQUENTIAL and set(map(type, seq)) <= {tuple} and \
            set(map(len, seq)) <= {len(keys)}:
        return seq  # the common case, checked at C speed: tuples of the right length
    out = []
    for index, params in enumerate(seq):
        try:
            out.append(bind(stmt, keys, params))
        except ProgrammingError as exc:
            number = indices[index] if indices is not None else index
            raise ProgrammingError(f"parameter set {number}: {exc}") from None
    return out


def _count(params: Any) -> str:
    try:
        return str(len(params))
    except TypeError:
        return "non-sequence"
