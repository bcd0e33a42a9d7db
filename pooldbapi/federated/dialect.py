"""The dialect a statement is written in, and its translation to SQLite's for the parts of a
federated select that run locally (sqlglot transpiles; what SQLite cannot run is an error
naming it, raised before anything runs)."""
from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError

from ..cache import cached
from ..errors import InterfaceError, ProgrammingError
from ..sql.structure import read_tree

OF_DRIVER = {"postgresql": "postgres", "sqlite": "sqlite", "oracle": "oracle"}
"""sqlglot's name of each SQL back-end's dialect (REST back-ends have none)."""


def checked(name: str | None) -> str | None:
    """Return a dialect name sqlglot knows (None: the containers' own), else InterfaceError."""
    if name is None:
        return None
    try:
        sqlglot.Dialect.get_or_raise(name)
    except (ValueError, SqlglotError):
        known = ", ".join(sorted(d for d in sqlglot.Dialects if d))
        raise InterfaceError(f"unknown dialect {name!r} (known: {known})") from None
    return name


def of_drivers(drivers: Iterable[str]) -> str | None:
    """The dialect of the containers when those that run SQL agree, else None."""
    found = {OF_DRIVER[d] for d in drivers if d in OF_DRIVER}
    return found.pop() if len(found) == 1 else None


def regexp(pattern: str | None, value: object) -> bool | None:
    """SQLite's REGEXP operator (a user function there): Python's re, as PostgreSQL's ~ reads
    ordinary patterns. A value, not a statement: no SQL text is matched here."""
    if pattern is None or value is None:
        return None
    return re.search(pattern, str(value)) is not None


@cached(1)  # (one answer: the functions of the sqlite3 module loaded)
def _sqlite_functions() -> frozenset[str]:
    db = sqlite3.connect(":memory:")
    try:
        return frozenset(row[0].lower() for row in
                         db.execute("select name from pragma_function_list")) | {"regexp"}
    finally:
        db.close()


_ROUNDING = ("postgres", "oracle")
"""Dialects whose casts of a fraction to an integer round it."""

# syntax, not functions: SQLite reads these as they are generated
_SYNTAX = (exp.Cast, exp.TryCast, exp.Case, exp.Exists, exp.CurrentTimestamp, exp.CurrentDate,
           exp.CurrentTime)


@cached(256)
def to_sqlite(text: str, read: str, names: tuple[str, ...] | None = None) -> str:
    """Translate a statement from a dialect to SQLite's. A function SQLite does not have is a
    ProgrammingError naming it as written. Unaliased select items keep their names as
    written in the text, or as `names` gives them (SQLite names such a column by its text)."""
    try:
        tree = read_tree(text, read)
    except SqlglotError as exc:
        raise ProgrammingError(f"the statement cannot be read as {read}: {exc}") from None
    for node in tree.walk():
        if not isinstance(node, exp.Func) or isinstance(node, _SYNTAX + (exp.Connector,)):
            continue  # ('and' and 'or' are functions to sqlglot)
        try:
            generated = node.sql(dialect="sqlite", unsupported_level=ErrorLevel.RAISE)
        except SqlglotError:
            generated = ""
        name = generated.split("(", 1)[0].strip().lower() if "(" in generated else ""
        called = name.replace("_", "").isalnum()  # not a call: syntax ('a = b', '-x', ...)
        if generated and (not called or name in _sqlite_functions()):
            continue
        raise ProgrammingError(
            f"{node.sql(dialect=read)!r} cannot be evaluated locally: SQLite has no such"
            " function")
    for cast in list(tree.find_all(exp.Cast)):
        if read in _ROUNDING and cast.to.is_type(*exp.DataType.INTEGER_TYPES):
            # a fraction cast to an integer rounds there, truncates in SQLite
            cast.set("this", exp.func("round", cast.this))
        elif cast.to.is_type(*exp.DataType.TEXT_TYPES) and cast.to.expressions:
            # a cast to a string of a given length cuts the string; SQLite ignores the length
            length = cast.to.expressions[0].this
            cast.replace(exp.func("substr", exp.Cast(this=cast.this, to=exp.DataType.build(
                "text")), exp.Literal.number(1), length))
    if isinstance(tree, exp.Select):
        keep_names(tree, text, read, names)
    try:
        return tree.sql(dialect="sqlite", unsupported_level=ErrorLevel.RAISE, comments=False)
    except SqlglotError as exc:
        raise ProgrammingError(f"the statement cannot be evaluated locally in SQLite: {exc}"
                               ) from None


def keep_names(tree: exp.Select, text: str, read: str = "sqlite",
               names: tuple[str, ...] | None = None) -> bool:
    """Alias each unaliased select item that is not a plain column with its text as written
    in `text` (or as `names` gives them; SQLite names such a column by its text, which
    regenerating would change). False (nothing changed) where the items of the text and of
    the tree do not pair up."""
    written = item_texts(text, read) if names is None else names
    if len(written) != len(tree.expressions):
        return False
    for item, name in zip(list(tree.expressions), written, strict=True):
        if not item.alias and not isinstance(item, exp.Column | exp.Star):
            item.replace(exp.alias_(item.copy(), exp.to_identifier(name, quoted=True)))
    return True


@cached(256)
def item_texts(text: str, read: str = "sqlite") -> tuple[str, ...]:
    """The text of each item of the outermost select list, as written (tokenized once per
    text)."""
    items: list[str] = []
    depth, start = 0, None
    for tok in sqlglot.Dialect.get_or_raise(read).tokenize(text):
        kind = tok.token_type
        if kind == sqlglot.TokenType.L_PAREN:
            depth += 1
        elif kind == sqlglot.TokenType.R_PAREN:
            depth -= 1
        elif depth == 0 and (kind == sqlglot.TokenType.SELECT and start is None or
                             kind == sqlglot.TokenType.DISTINCT and start is not None and
                             not text[start:tok.start].strip()):
            start = tok.end + 1  # the list starts after 'select' (and a 'distinct')
        elif depth == 0 and start is not None and kind in (sqlglot.TokenType.COMMA,
                                                           sqlglot.TokenType.FROM):
            items.append(text[start:tok.start].strip())
            start = tok.end + 1
            if kind == sqlglot.TokenType.FROM:
                break
    return tuple(items)
