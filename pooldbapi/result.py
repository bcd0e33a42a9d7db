"""The result of one call: rows, description, rowcount, lastrowid and who ran what."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .dbapi import Description


@dataclass(slots=True)
class Part:
    """What one container returned for its share of a call."""

    alias: str
    rows: list[Sequence[Any]] | None = None
    description: Description | None = None
    rowcount: int = -1
    lastrowid: Any = None
    units: int = 1


@dataclass(slots=True)
class Result:
    """The merged result of one call over one or more containers."""

    description: Description | None = None
    rows: list[Sequence[Any]] = field(default_factory=list)
    rowcount: int = -1
    lastrowid: Any = None
    containers: dict[str, int] = field(default_factory=dict)
    written: dict[str, list[int]] = field(default_factory=dict)  # row indices per container

    def add(self, other: Result) -> None:
        """Fold the result of a later round of the same call into this one."""
        self.rowcount = -1 if -1 in (self.rowcount, other.rowcount) else \
            self.rowcount + other.rowcount
        for alias, units in other.containers.items():
            self.containers[alias] = self.containers.get(alias, 0) + units
        for alias, rows in other.written.items():
            self.written.setdefault(alias, []).extend(rows)

    @classmethod
    def of(cls, part: Part) -> Result:
        """The result of a call that ran on one container."""
        return cls(part.description, part.rows or [], part.rowcount, part.lastrowid,
                   {part.alias: part.units})

    @classmethod
    def merge(cls, parts: Sequence[Part]) -> Result:
        """Merge parts: rows concatenated, rowcount summed (-1 if any is unknown)."""
        if len(parts) == 1:
            return cls.of(parts[0])
        result = cls()
        known = True
        written = [p for p in parts if p.rowcount and p.rowcount > 0]
        total = 0
        for part in parts:
            if part.description is not None and result.description is None:
                result.description = part.description
            if part.rows:
                result.rows.extend(part.rows)
            if part.rowcount < 0:
                known = False
            else:
                total += part.rowcount
            result.containers[part.alias] = result.containers.get(part.alias, 0) + part.units
        result.rowcount = total if known else -1
        if len(written) == 1 and written[0].rowcount == 1:
            result.lastrowid = written[0].lastrowid
        return result
