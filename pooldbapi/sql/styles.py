"""PEP 249's placeholder styles: the one type of a marker's style (parse.Placeholder) and of a
back-end's paramstyle (backends.base.Backend), and the groups the binding tells apart."""
from __future__ import annotations

from enum import StrEnum


class Paramstyle(StrEnum):
    """PEP 249's marker styles, each equal to its name (a back-end's Backend.paramstyle)."""

    QMARK = "qmark"        # ?
    NUMERIC = "numeric"    # :1
    NAMED = "named"        # :name
    FORMAT = "format"      # %s
    PYFORMAT = "pyformat"  # %(name)s


# The members as module globals, for the per-statement paths: Paramstyle.QMARK goes through
# the enum's metaclass (its __getattr__ hook makes every class attribute lookup a Python
# call on CPython 3.11), a global is read at a constant's cost
QMARK, NUMERIC, NAMED, FORMAT = Paramstyle.QMARK, Paramstyle.NUMERIC, Paramstyle.NAMED, \
    Paramstyle.FORMAT
PYFORMAT = Paramstyle.PYFORMAT

POSITIONAL = frozenset({QMARK, NUMERIC, FORMAT})
"""Styles whose values come as a sequence."""
SEQUENTIAL = frozenset({QMARK, FORMAT})
"""Styles whose markers take the values in order: the keys 0, 1, 2, ..."""
BY_NAME = frozenset({NAMED, PYFORMAT})
"""Styles whose values come as a mapping."""
PERCENT_STYLES = frozenset({FORMAT, PYFORMAT})
"""Styles in which a literal '%' is written '%%'."""
SIGNS = {QMARK: "?", FORMAT: "%s"}
"""The one marker text of each sequential style (the others number or name theirs)."""
