"""PEP 249 type objects and constructors."""
from __future__ import annotations

import datetime
import time
from typing import Any, Self

Date = datetime.date
Time = datetime.time
Timestamp = datetime.datetime
Binary = bytes

STRING_NAME, BINARY_NAME, NUMBER_NAME, DATETIME_NAME, ROWID_NAME = (
    "STRING", "BINARY", "NUMBER", "DATETIME", "ROWID")


def DateFromTicks(ticks: float) -> datetime.date:
    """Return the local date of a POSIX timestamp."""
    return Date(*time.localtime(ticks)[:3])


def TimeFromTicks(ticks: float) -> datetime.time:
    """Return the local time of day of a POSIX timestamp."""
    return Time(*time.localtime(ticks)[3:6])


def TimestampFromTicks(ticks: float) -> datetime.datetime:
    """Return the local date and time of a POSIX timestamp."""
    return Timestamp(*time.localtime(ticks)[:6])


class TypeCode(str):
    """A description type_code: the back-end's type name, with the PEP 249 category it is in."""

    category: str | None

    def __new__(cls, name: str, category: str | None) -> Self:
        code = super().__new__(cls, name)
        code.category = category
        return code

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DBAPITypeObject):
            return other == self
        return str.__eq__(self, other)

    def __hash__(self) -> int:
        return str.__hash__(self)

    def __repr__(self) -> str:
        return f"TypeCode({str(self)!r}, {self.category!r})"


Description = tuple[tuple[str, TypeCode, int | None, int | None, int | None, int | None,
                          bool | None], ...]
"""A PEP 249 description: seven items per result column, pooldbapi type codes."""


class DBAPITypeObject:
    """A PEP 249 type object: compares equal to every type_code of its category."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DBAPITypeObject):
            return other.name == self.name
        return getattr(other, "category", None) == self.name

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"pooldbapi.{self.name}"


STRING = DBAPITypeObject(STRING_NAME)
BINARY = DBAPITypeObject(BINARY_NAME)
NUMBER = DBAPITypeObject(NUMBER_NAME)
DATETIME = DBAPITypeObject(DATETIME_NAME)
ROWID = DBAPITypeObject(ROWID_NAME)


def category_of_value(value: Any) -> str | None:
    """Return the PEP 249 category of a Python value, for back-ends that give no column types."""
    if isinstance(value, bool | int | float) or type(value).__name__ == "Decimal":
        return NUMBER_NAME
    if isinstance(value, str):
        return STRING_NAME
    if isinstance(value, bytes | bytearray | memoryview):
        return BINARY_NAME
    if isinstance(value, datetime.date | datetime.time | datetime.timedelta):
        return DATETIME_NAME
    return None
