"""Token scan (sqlglot's tokenizer) -> Statement(kind, occurrences, placeholders); cached by
text."""
from __future__ import annotations

import operator
import re
import string
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import accumulate, chain, repeat
from typing import Any, ClassVar, NamedTuple, overload

from sqlglot import TokenType
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import TokenError

from ..cache import Tiered
from ..errors import ProgrammingError
from .styles import FORMAT, NAMED, NUMERIC, PYFORMAT, QMARK, Paramstyle

# Token kinds of the scan (Token.ttype)
KEYWORD, NAME, QUOTED, STRING, NUMBER = "keyword", "name", "quoted-name", "string", "number"
PLACEHOLDER, SUFFIX, PUNCT, OPERATOR = "placeholder", "suffix", "punctuation", "operator"
WHITESPACE, COMMENT, BLOCK_COMMENT = "whitespace", "comment", "block-comment"
REPEATED = "repeated-rows"
"""Rows of a VALUES list, each the same text as the row before them (see _repeated_rows)."""
ROWS = "literal-rows"
"""Rows of a VALUES list read by one regular expression (see _literal_rows)."""
GAP = frozenset((WHITESPACE, COMMENT, BLOCK_COMMENT))
"""Kinds that separate tokens and mean nothing to the scan."""
LITERAL = frozenset((STRING, NUMBER))

_Q_DELIMITERS = [("[", "]"), ("(", ")"), ("{", "}"), ("<", ">")] + [
    (c, c) for c in string.punctuation if c not in "'[](){}<>"]


class _Tokenizer(Postgres.Tokenizer):
    """PostgreSQL's lexical rules, a superset of the others' here: standard strings (a
    backslash is an ordinary character; only E'...' escapes with it), dollar quotes, nested
    block comments; plus Oracle's q'[...]' quotes (any punctuation as the delimiter). No
    word makes the rest of the text one token (sqlglot's commands: call, declare, ...)."""

    COMMANDS: ClassVar[set[TokenType]] = set()

    QUOTES: ClassVar[list[str | tuple[str, str]]] = [
        *Postgres.Tokenizer.QUOTES,
        *[(f"{q}'{o}", f"{c}'") for q in ("q", "Q", "nq", "nQ", "Nq", "NQ")
          for o, c in _Q_DELIMITERS]]


_KIND = {
    **{t: STRING for t in (TokenType.STRING, TokenType.BYTE_STRING, TokenType.HEREDOC_STRING,
                           TokenType.NATIONAL_STRING, TokenType.UNICODE_STRING,
                           TokenType.BIT_STRING, TokenType.HEX_STRING, TokenType.RAW_STRING)},
    TokenType.NUMBER: NUMBER, TokenType.IDENTIFIER: QUOTED,
    **{t: PUNCT for t in (TokenType.L_PAREN, TokenType.R_PAREN, TokenType.COMMA,
                          TokenType.SEMICOLON, TokenType.L_BRACKET, TokenType.R_BRACKET,
                          TokenType.DOT, TokenType.DCOLON, TokenType.COLON, TokenType.L_BRACE,
                          TokenType.R_BRACE)},
}
# words the scan reads as keywords (as sqlparse, its lexer before, read them) that sqlglot's
# tokenizer calls names
_WORDS = frozenset((
    "ABORT", "BEGIN", "COMMENT", "DECLARE", "DEFAULT", "DO", "END", "FETCH", "GLOBAL",
    "IDENTIFIED", "IF", "IGNORE", "ISOLATION", "KEY", "LATERAL", "LEVEL", "LOCAL", "MERGE", "NO",
    "OFFSET", "ONLY", "RELEASE", "RETURNING", "SAVEPOINT", "START", "TEMP", "TEMPORARY", "TO",
    "TRANSACTION", "TRUNCATE", "UNLOGGED", "USING", "WINDOW", "WORK", "ATOMIC", "RECURSIVE",
    "PROCEDURE", "FUNCTION", "PACKAGE", "TRIGGER", "BODY", "LOOP", "WHILE", "CALL", "SET"))
_PAREN_KEYWORDS = frozenset(("CASE", "IN", "VALUES", "USING", "FROM", "AS"))
"""Keywords that stay keywords right before '(' (other words there are names: calls)."""
_WORD = frozenset(string.ascii_letters + string.digits + "_")


_OPENS = re.compile(r"['\"$\n]|--|/\*")
"""What opens a literal or a comment, or ends a line: never inside a %(name)s marker's name
(the tokens around it would read otherwise)."""


def _word_end(text: str, pos: int) -> int:
    """Where the run of word characters starting at pos ends."""
    n = len(text)
    while pos < n and (text[pos] in _WORD or text[pos].isalnum()):
        pos += 1
    return pos


class StatementKind(StrEnum):
    """What a statement does (Statement.kind), each member equal to the word messages and
    telemetry show."""

    SELECT = "select"
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"
    DDL = "ddl"
    TCL = "transaction-control"
    BULK = "bulk-insert"
    SYNC = "synchronize"
    OTHER = "other"


SELECT, INSERT, UPDATE, DELETE, DDL, TCL, BULK, SYNC, OTHER = StatementKind
_DDL_WORDS = {"CREATE", "CREATE OR REPLACE", "DROP", "ALTER", "TRUNCATE", "COMMENT"}
_TCL_WORDS = {"COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "START", "ABORT", "END"}
_STOP = {"SELECT", "VALUES", "WHERE", "SET", "ON", "USING", "GROUP BY", "ORDER BY", "HAVING",
         "LIMIT", "UNION", "UNION ALL", "INTERSECT", "EXCEPT", "RETURNING", "WINDOW", "OFFSET",
         "FETCH", "FOR", "DEFAULT"}
_SKIP = {"LATERAL", "ONLY", "IF EXISTS", "IF NOT EXISTS", "TABLE", "TEMPORARY", "TEMP",
         "UNLOGGED", "GLOBAL", "LOCAL"}
_CLAUSE_END = _STOP - {"ON", "USING"}
_TOP_CLAUSES = {"UPDATE", "DELETE", "INSERT", "INTO", "FROM", "SET", "WHERE", "VALUES",
                "GROUP BY", "HAVING", "ORDER BY", "LIMIT", "OFFSET", "RETURNING"}
_NAMEISH = frozenset((NAME, KEYWORD, QUOTED))
_NAMED_OR_NUMBERED = frozenset((NAMED, NUMERIC))  # in brackets: a slice's bounds, not markers


@dataclass(frozen=True)
class Occurrence:
    """One table occurrence: its name as written and the container list after '@' (or None)."""

    name: str
    aliases: tuple[str, ...] | None
    position: int
    suffix_position: int | None = None
    alias_positions: tuple[int, ...] = ()


class Placeholder(NamedTuple):
    """One parameter marker: its style, its key (position or name) and its span. (A named
    tuple: a generated statement holds thousands, made at a tuple's cost.)"""

    style: Paramstyle
    key: int | str | None
    start: int
    end: int


Key = int | str | None


class Markers(Sequence[Placeholder]):
    """A statement's placeholders, kept as columns (their style, key, start and end), a
    Placeholder made as one is read. A generated statement holds tens of thousands: as named
    tuples, which the garbage collector never untracks, they set off full collections of
    every object the process holds, and cost some 130 bytes each (here 16, and nothing for a
    style or key that every marker shares)."""

    __slots__ = ("_keys", "_styles", "ends", "starts")

    def __init__(self, styles: Paramstyle | tuple[Paramstyle, ...], keys: tuple[Key, ...] | None,
                 starts: array[int], ends: array[int]) -> None:
        # (see build: one style for all is kept as itself, keys all None as None)
        self._styles, self._keys, self.starts, self.ends = styles, keys, starts, ends

    @classmethod
    def build(cls, styles: Sequence[Paramstyle], keys: Sequence[Key], starts: Iterable[int],
              ends: Iterable[int]) -> Markers:
        """The markers of these columns (one entry per marker in each)."""
        first = styles[0] if styles else None
        style: Paramstyle | tuple[Paramstyle, ...] = first if first is not None and \
            styles.count(first) == len(styles) else tuple(styles)
        return cls(style, None if keys.count(None) == len(keys) else tuple(keys),
                   array("q", starts), array("q", ends))

    @classmethod
    def of(cls, placeholders: Iterable[Placeholder]) -> Markers:
        """The markers of these placeholders, in their order."""
        found = tuple(placeholders)
        if not found:
            return EMPTY
        styles, keys, starts, ends = zip(*found, strict=True)
        return cls.build(styles, keys, starts, ends)

    def styles(self) -> set[Paramstyle]:
        """The styles of the markers (none, one, or the several that are mixed)."""
        if not self.starts:
            return set()
        return set(self._styles) if isinstance(self._styles, tuple) else {self._styles}

    def style_at(self, index: int) -> Paramstyle:
        styles = self._styles
        return styles[index] if isinstance(styles, tuple) else styles

    def key_at(self, index: int) -> Key:
        return None if self._keys is None else self._keys[index]

    def pick(self, indices: Sequence[int], shifts: Sequence[int]) -> Markers:
        """The markers at these indices, in that order, each moved by its shift."""
        starts, ends = self.starts, self.ends
        styles = tuple(map(self._styles.__getitem__, indices)) \
            if type(self._styles) is tuple else self._styles
        keys = None if self._keys is None else tuple(map(self._keys.__getitem__, indices))
        return Markers(styles, keys,
                       array("q", map(operator.add, map(starts.__getitem__, indices), shifts)),
                       array("q", map(operator.add, map(ends.__getitem__, indices), shifts)))

    def __add__(self, other: object) -> Markers:
        if not isinstance(other, Markers):
            return NotImplemented
        if not other:
            return self
        if not self:
            return other
        if type(self._styles) is not tuple and self._styles == other._styles:
            styles: Paramstyle | tuple[Paramstyle, ...] = self._styles
        else:
            styles = (*self._column(self._styles), *other._column(other._styles))
        keys = None if self._keys is None and other._keys is None else \
            (*self._column(self._keys), *other._column(other._keys))
        return Markers(styles, keys, self.starts + other.starts, self.ends + other.ends)

    def _column(self, values: Paramstyle | tuple[Any, ...] | None) -> Iterable[Any]:
        return values if type(values) is tuple else repeat(values, len(self))

    def __len__(self) -> int:
        return len(self.starts)

    @overload
    def __getitem__(self, index: int) -> Placeholder: ...

    @overload
    def __getitem__(self, index: slice) -> Markers: ...

    def __getitem__(self, index: int | slice) -> Placeholder | Markers:
        if isinstance(index, slice):
            styles, keys = self._styles, self._keys
            return Markers(styles[index] if type(styles) is tuple else styles,
                           None if keys is None else keys[index],
                           self.starts[index], self.ends[index])
        return Placeholder(self.style_at(index), self.key_at(index), self.starts[index],
                           self.ends[index])

    def __iter__(self) -> Iterator[Placeholder]:
        return map(tuple.__new__, repeat(Placeholder), zip(
            self._column(self._styles), self._column(self._keys), self.starts, self.ends))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Markers):
            return self.starts == other.starts and self.ends == other.ends and \
                list(self._column(self._styles)) == list(other._column(other._styles)) and \
                list(self._column(self._keys)) == list(other._column(other._keys))
        if isinstance(other, tuple | list):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))


EMPTY = Markers((), None, array("q"), array("q"))
"""No markers (build and of give it for none, so that equal markers have equal columns)."""


class Rendered(NamedTuple):
    """Text for one back-end and, per marker in it, the key of its value."""

    text: str
    keys: tuple[int | str, ...]


class Derived:
    """What is worked out from a statement when first asked for, kept with it (the statement
    is shared by every caller of its text: each value follows from the text alone)."""

    __slots__ = ("bare_count", "groups", "pick", "rendered", "router_key", "style",
                 "style_known", "tokens")

    def __init__(self) -> None:
        self.tokens: tuple[Token, ...] | None = None  # significant()
        self.rendered: dict[Paramstyle | None, Rendered] = {}  # render(), by paramstyle
        self.style: Paramstyle | None = None   # paramstyle.source_style(), once style_known
        self.style_known = False
        self.router_key: str | None = None  # router.text_key() of a long text
        self.bare_count: bool | None = None  # ops.select: 'select count(*) from ...'
        # values.group_rows: the inserts of row sets of a multi-row VALUES, by rows
        self.groups: dict[Sequence[int], Statement] | None = None
        # a row set's insert: its values picked from the whole statement's parameters
        self.pick: Callable[[Any], Any] | None = None


@dataclass(frozen=True)
class Statement:
    """A parsed statement: what kind it is, its occurrences, placeholders and removed spans."""

    text: str
    kind: StatementKind
    occurrences: tuple[Occurrence, ...]
    placeholders: Markers
    removed: tuple[tuple[int, int], ...]
    values_rows: Sequence[tuple[int, int]] = ()
    words: tuple[str, ...] = ()
    select_start: int | None = None      # insert ... select: where the select begins
    columns: tuple[str, ...] | None = None   # insert: the column list, as written
    # top-level clauses: (keyword, keyword's start, body start, body end), in order
    clauses: tuple[tuple[str, int, int, int], ...] = ()
    end: int | None = None   # where the statement ends: before a final ';' and what follows
    dollar_markers: tuple[int, ...] = ()   # where PostgreSQL's own $1, $2 stand (refused)
    derived: Derived = field(default_factory=Derived, compare=False, repr=False)

    def __post_init__(self) -> None:
        if type(self.placeholders) is not Markers:  # given as Placeholders: kept as columns
            object.__setattr__(self, "placeholders", Markers.of(self.placeholders))

    def clause(self, keyword: str) -> tuple[int, int] | None:
        """The span of a top-level clause's body (after its keyword), or None."""
        for name, _, lo, hi in self.clauses:
            if name == keyword:
                return lo, hi
        return None

    @property
    def lists(self) -> tuple[tuple[str, ...] | None, ...]:
        """The distinct container lists of the statement, in order; None is the default list."""
        seen: dict[tuple[str, ...] | None, None] = {}
        for occ in self.occurrences:
            seen.setdefault(occ.aliases, None)
        return tuple(seen)

    def where(self, position: int) -> str:
        """Describe a position as 'position P (line L, column C)'."""
        return where(self.text, position)

    def significant(self) -> tuple[Token, ...]:
        """The scan's tokens that are neither whitespace nor comments; kept once asked for
        (most statements never need them)."""
        found = self.derived.tokens
        if found is None:
            found = self.derived.tokens = tuple(tok for tok in lex(self.text)
                                                if tok.ttype not in GAP)
        return found


class _Columns:
    """Markers as the scan finds them, column by column (no object per marker)."""

    __slots__ = ("ends", "keys", "starts", "styles")

    def __init__(self) -> None:
        self.styles: list[Paramstyle] = []
        self.keys: list[Key] = []
        self.starts: list[int] = []
        self.ends: list[int] = []

    def __len__(self) -> int:
        return len(self.starts)

    def __iter__(self) -> Iterator[Placeholder]:
        return iter(self.markers())

    def append(self, found: Placeholder) -> None:
        self.styles.append(found.style)
        self.keys.append(found.key)
        self.starts.append(found.start)
        self.ends.append(found.end)

    def extend(self, other: _Columns) -> None:
        self.styles.extend(other.styles)
        self.keys.extend(other.keys)
        self.starts.extend(other.starts)
        self.ends.extend(other.ends)

    def keep(self, wanted: Callable[[int], bool]) -> None:
        """Only the markers whose start is wanted."""
        kept = [j for j, start in enumerate(self.starts) if wanted(start)]
        self.styles = [self.styles[j] for j in kept]
        self.keys = [self.keys[j] for j in kept]
        self.starts = [self.starts[j] for j in kept]
        self.ends = [self.ends[j] for j in kept]

    def markers(self) -> Markers:
        return Markers.build(self.styles, self.keys, self.starts, self.ends) if self.starts \
            else EMPTY


def where(text: str, position: int) -> str:
    """Describe a position in text as 'position P (line L, column C)'."""
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return f"position {position} (line {line}, column {column})"


@dataclass(slots=True)
class Token:
    """One lexed token: its kind (KEYWORD, NAME, ...), its text and offset."""
    ttype: str
    value: str
    start: int

    @property
    def upper(self) -> str:
        return " ".join(self.value.upper().split())

    def is_punct(self, char: str) -> bool:
        return self.ttype is PUNCT and self.value == char

    @property
    def is_keyword(self) -> bool:
        return self.ttype is KEYWORD


def lex(text: str) -> list[Token]:
    """Return the tokens of a statement with their offsets: sqlglot's tokens (a private
    tokenizer), with the whitespace and comments between them, pooldbapi's markers (?, :name,
    :1, %s, %(name)s) and suffixes (@alias, @{a,b}) each one token."""
    out: list[Token] = []
    _lex(text, 0, out)
    return out


def _lex(text: str, base: int, out: list[Token]) -> None:
    tokenizer = _Tokenizer()
    try:
        found = tokenizer.tokenize(text[base:] if base else text)
        opaque = None
    except TokenError:
        # an unclosed quote or comment: the tokens before it, then the rest as one literal
        # (the back-end names the error)
        found = tokenizer.tokens
        opaque = found[-1].end + 1 + base if found else base
    n, pos = len(text), base
    k, count = 0, len(found)
    while k < count:
        raw = found[k]
        start, end = raw.start + base, raw.end + base + 1
        kind = raw.token_type
        if start > pos:
            _gap(text, pos, start, out)
        nxt = text[end] if end < n else ""
        value = None
        if text[start] == "?" and end - start > 1:
            # sqlglot's ?::, ??, ?| and ?&: the '?' is a token of its own (a marker, or where
            # an operator stands PostgreSQL's jsonb operator: the scan tells which)
            rest = text[start + 1:end]
            out.append(Token(PLACEHOLDER, "?", start))
            out.append(Token(PUNCT if rest == "::" else PLACEHOLDER if rest == "?" else
                             OPERATOR, rest, start + 1))
            pos = end
            k += 1
            continue
        if kind is TokenType.PARAMETER:   # '@' or '$'
            if text[start] == "@" and nxt == "{":
                close = start + 2
                while close < n and text[close] not in "{}":
                    close += 1
                value, ttype = text[start:close + (close < n and text[close] == "}")], SUFFIX
            elif nxt in _WORD or nxt.isalnum():
                value = text[start:_word_end(text, end)]
                ttype = SUFFIX if text[start] == "@" else PLACEHOLDER
            else:
                value, ttype = text[start], OPERATOR
        elif kind is TokenType.PLACEHOLDER:
            value, ttype = "?", PLACEHOLDER
        elif kind is TokenType.COLON and (nxt in _WORD or nxt.isalnum()) and not (
                start and (text[start - 1] in _WORD or text[start - 1] in ":")):
            value, ttype = text[start:_word_end(text, end)], PLACEHOLDER
        elif kind is TokenType.MOD:
            if nxt == "%":
                value, ttype = "%%", OPERATOR
            elif nxt == "s":
                value, ttype = "%s", PLACEHOLDER
            elif nxt == "(":  # %(name)s: the name as psycopg reads it, anything up to ')'
                close = text.find(")", end + 1)
                if close > end + 1 and text.startswith(")s", close) and \
                        not _OPENS.search(text, end + 1, close):
                    value, ttype = text[start:close + 2], PLACEHOLDER
        if value is None:
            ttype = _KIND.get(kind) or (
                OPERATOR if not (text[start] in _WORD or text[start].isalpha()) else
                NAME if (kind is TokenType.VAR and text[start:end].upper() not in _WORDS)
                or nxt and nxt in ".(" and text[start:end].upper() not in _PAREN_KEYWORDS
                or start and text[start - 1] == "." else KEYWORD)
            value = text[start:end]
        stop = start + len(value)
        k += 1
        if stop != end:  # a token of pooldbapi's made of several of sqlglot's, or of part of one
            while k < count and found[k].start + base < stop:
                k += 1
            if stop < found[k - 1].end + base + 1:
                out.append(Token(ttype, value, start))
                _lex(text, stop, out)  # it ended inside one of sqlglot's: read the rest again
                return
        if ttype is KEYWORD and out:
            _merge(text, out, Token(ttype, value, start))
        else:
            out.append(Token(ttype, value, start))
        pos = stop
    if opaque is not None:
        if opaque > pos:
            _gap(text, pos, opaque, out)
            pos = opaque
        _gap(text, pos, n, out, STRING)
    elif pos < n:
        _gap(text, pos, n, out)


_MERGED = frozenset((("IF", "EXISTS"), ("IF", "NOT"), ("IF NOT", "EXISTS"), ("CREATE", "OR"),
                     ("CREATE OR", "REPLACE"), ("UNION", "ALL"), ("END", "IF"), ("END", "LOOP"),
                     ("END", "WHILE"), ("END", "FOR"), ("END", "CASE")))
"""Keywords read as one where only whitespace separates them (as the scan's rules name them:
'if not exists', 'create or replace', 'end loop', ...)."""


def _merge(text: str, out: list[Token], tok: Token) -> None:
    if len(out) > 1 and out[-1].ttype is WHITESPACE and out[-2].ttype is KEYWORD and \
            (out[-2].upper, tok.value.upper()) in _MERGED:
        del out[-1]
        first = out[-1]
        out[-1] = Token(KEYWORD, text[first.start:tok.start + len(tok.value)], first.start)
    else:
        out.append(tok)


def _gap(text: str, pos: int, stop: int, out: list[Token], rest: str = OPERATOR) -> None:
    """The whitespace and comments between two of sqlglot's tokens, each a token; anything
    else (the rest of a text sqlglot could not read) one token of the kind `rest`."""
    while pos < stop:
        if text.startswith("--", pos):
            end = text.find("\n", pos, stop)
            end = stop if end < 0 else end + 1
            out.append(Token(COMMENT, text[pos:end], pos))
        elif text.startswith("/*", pos):
            depth, end = 1, pos + 2  # block comments nest, as PostgreSQL reads them
            while depth and end < stop:
                if text.startswith("/*", end):
                    depth, end = depth + 1, end + 2
                elif text.startswith("*/", end):
                    depth, end = depth - 1, end + 2
                else:
                    end += 1
            end = min(end, stop)
            out.append(Token(BLOCK_COMMENT, text[pos:end], pos))
        elif text[pos].isspace():
            end = pos + 1
            while end < stop and text[end].isspace():
                end += 1
            out.append(Token(WHITESPACE, text[pos:end], pos))
        else:
            out.append(Token(rest, text[pos:stop], pos))
            return
        pos = end


def _suffix(text: str, tok: Token) -> tuple[tuple[str, ...], tuple[int, ...]]:
    body = tok.value[1:]
    if not body.startswith("{"):
        return (body,), (tok.start + 1,)
    if not body.endswith("}"):
        raise ProgrammingError(f"unclosed '{{' after '@' at {where(text, tok.start)}")
    items = [item.strip() for item in body[1:-1].split(",")]
    if items == [""]:
        raise ProgrammingError(f"empty container list '@{{}}' at {where(text, tok.start)}")
    offset = tok.start + 2
    positions = []
    for item in body[1:-1].split(","):
        name = item.strip()
        at = offset + (len(item) - len(item.lstrip()))
        if not name or not all(c.isalnum() or c == "_" for c in name):
            what = "an empty entry" if not name else f"{name!r}, not a container alias"
            raise ProgrammingError(f"{what} in the container list at {where(text, at)}")
        positions.append(at)
        offset += len(item) + 1
    return tuple(items), tuple(positions)


def _is_suffix(tok: Token) -> bool:
    return tok.ttype is SUFFIX


def _cte_names(sig: list[Token], match: dict[int, int]) -> set[str]:
    names = set()
    for i, tok in enumerate(sig[:-2]):
        if tok.ttype not in _NAMEISH or tok.is_keyword and tok.upper in ("AS", "WITH"):
            continue
        j = i + 1
        if sig[j].is_punct("(") and j in match:
            j = match[j] + 1
        if (j + 1 < len(sig) and sig[j].is_keyword and sig[j].upper == "AS"
                and sig[j + 1].is_punct("(") and i > 0
                and (sig[i - 1].is_punct(",") or sig[i - 1].upper in ("WITH", "RECURSIVE"))):
            names.add(_folded(tok.value))
    return names


def unquote(name: str) -> str:
    """Return an identifier without its double quotes."""
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def _folded(name: str) -> str:
    """An identifier as the server knows it: quoted is exact, unquoted is case-insensitive."""
    return unquote(name) if name.startswith('"') else name.lower()


def _before(toks: list[Token], i: int) -> int:
    """The index of the last token before toks[i] that is not whitespace (-1: none)."""
    i -= 1
    while i >= 0 and toks[i].ttype is WHITESPACE:
        i -= 1
    return i


def _kind(sig: list[Token], match: dict[int, int]) -> StatementKind:
    if not sig:
        return OTHER
    first = sig[0].upper
    second = sig[1].upper if len(sig) > 1 else ""
    if first in ("SELECT", "VALUES", "TABLE", "("):
        return SELECT
    if first == "WITH":
        depth = 0
        for tok in sig[1:]:
            if tok.is_punct("("):
                depth += 1
            elif tok.is_punct(")"):
                depth -= 1
            elif depth == 0 and tok.upper in ("INSERT", "UPDATE", "DELETE", "MERGE"):
                return OTHER if tok.upper == "MERGE" else StatementKind(tok.upper.lower())
        return SELECT
    if first in ("INSERT", "UPDATE", "DELETE"):
        return StatementKind(first.lower())
    if first == "BULK" and second == "INSERT":
        return BULK
    if first == "SYNCHRONIZE":
        return SYNC
    if first in _DDL_WORDS:
        return DDL
    if first in _TCL_WORDS or (first == "BEGIN" and second in ("", ";", "TRANSACTION", "WORK")):
        return TCL
    return OTHER


_UNITS = {"PROCEDURE", "FUNCTION", "PACKAGE", "TRIGGER", "TYPE BODY"}
_LOOP_ENDS = {"IF", "LOOP", "WHILE", "FOR", "REPEAT"}  # their openers are not counted
_NOT_BLOCK = {";", "TRANSACTION", "WORK", "ISOLATION", "READ", "NOT", "DEFERRABLE"}


def _second_statement(sig: list[Token]) -> Token | None:
    """The first token after the end of the statement, where one follows (None: one
    statement). A ';' inside a block (PL/SQL's begin ... end, declare ..., a routine's body,
    PostgreSQL's begin atomic ... end) ends an inner statement, not this one."""
    words = [t.upper if t.is_keyword else "" for t in sig]
    lead = " ".join(words[:5]).replace("CREATE OR REPLACE", "CREATE").split()
    lead = [w for w in lead if w not in ("EDITIONABLE", "NONEDITIONABLE", "TEMP", "TEMPORARY")]
    unit = lead[:1] == ["CREATE"] and (lead[1:2] and lead[1] in _UNITS
                                        or lead[1:3] == ["TYPE", "BODY"])
    trigger = unit and lead[1] == "TRIGGER"
    depth, declared = 0, False
    for n, tok in enumerate(sig):
        word = words[n]
        after = sig[n + 1] if n + 1 < len(sig) else None
        if unit and not trigger and depth == 0 and word in ("IS", "AS") and after is not None \
                and after.ttype not in LITERAL and not after.is_punct("("):
            return None  # an Oracle unit's body: Oracle compiles the rest as one unit
        if word == "DECLARE" and depth == 0 and (n == 0 or trigger) and \
                any(w == "BEGIN" for w in words[n + 1:]):
            depth, declared = 1, True
        elif word == "BEGIN" and (depth > 0 or n == 0 and after is not None and (
                after.upper if after.is_keyword or after.ttype is PUNCT
                else "") not in _NOT_BLOCK or after is not None and after.upper == "ATOMIC"
                or trigger and n > 0):  # a trigger's body, whatever its header says before it
            if declared:
                declared = False
            else:
                depth += 1
        elif depth and word == "CASE" and words[n - 1] != "END":
            depth += 1
        elif depth and word.split()[:1] == ["END"]:
            follows = word.split()[1:] or ([after.upper] if after is not None and
                                           after.is_keyword else [])
            if not follows or follows[0] not in _LOOP_ENDS:
                depth -= 1
        elif depth == 0 and tok.is_punct(";") and after is not None:
            return after
    return None


ROWS_HEAD = 4096
"""Characters lexed first where a long statement may be a VALUES list of repeated rows."""
_ROW_WORDS = frozenset(("NULL", "TRUE", "FALSE", "DEFAULT"))


def _repeated_rows(text: str) -> tuple[list[Token], int, int] | None:
    """The tokens of a long 'insert ... values (row), (row), ...' whose rows after the first
    repeat its text exactly (as generated statements write them: '(?, ?, ?), (?, ?, ?), ...'),
    with one REPEATED token standing for the repeats; and the length of one repeat (', ' and
    the row) and their number. None where the text has not that shape.

    Only the head and what follows the repeats are lexed: the same text in the same lexical
    context (after a row's ')', outside any literal or comment) gives the same tokens, so the
    repeats' tokens, and what the scan reads from them, are the first row's, moved."""
    if len(text) <= ROWS_HEAD:
        return None
    for size in (512, ROWS_HEAD):  # most first rows are short: a short head first
        found = _rows_in_head(text, size)
        if found != size:
            return found if isinstance(found, tuple) else None
    return None


def _rows_in_head(text: str, size: int) -> tuple[list[Token], int, int] | int | None:
    """_repeated_rows from a head of `size` characters; `size` where the first row does not
    end inside it."""
    head: list[Token] = []
    _lex(text[:size], 0, head)
    sig = [(k, t) for k, t in enumerate(head) if t.ttype not in GAP]
    words = [t.upper for _, t in sig[:2]]
    if words[:1] != ["INSERT"] and words != ["BULK", "INSERT"]:
        return None
    depth, n = 0, 0
    while n < len(sig) and not (depth == 0 and sig[n][1].upper == "VALUES"):
        tok = sig[n][1]
        depth += tok.is_punct("(") - tok.is_punct(")")
        n += 1
    n += 1
    if n >= len(sig):
        return size
    if not sig[n][1].is_punct("("):
        return None
    depth, m = 0, n
    for m in range(n, len(sig)):
        tok = sig[m][1]
        if tok.ttype is PUNCT and tok.value in "()":
            depth += 1 if tok.value == "(" else -1
            if depth == 0:
                break
        elif not (tok.ttype in (PLACEHOLDER, STRING, NUMBER, OPERATOR) or tok.is_punct(",")
                  or tok.is_keyword and tok.upper in _ROW_WORDS):
            return None  # a row that names something (a subquery, a call) is read whole
    else:
        return size
    last = sig[m][0]
    row_start, row_end = sig[n][1].start, head[last].start + 1
    if row_end > size - 64:
        return size  # the row is not wholly inside the head, clear of where it was cut
    gap = last + 1
    while gap < len(head) and (head[gap].ttype is WHITESPACE or head[gap].is_punct(",")):
        gap += 1
    if gap >= len(head) or not head[gap].is_punct("(") or \
            sum(head[k].is_punct(",") for k in range(last + 1, gap)) != 1:
        return None
    unit = text[row_end:head[gap].start] + text[row_start:row_end]
    pos, count = row_end, 0
    while text.startswith(unit, pos):
        pos += len(unit)
        count += 1
    if count < 2:
        return None
    toks = head[:last + 1]
    toks.append(Token(REPEATED, text[row_end:pos], row_end))
    _lex(text, pos, toks)
    return toks, len(unit), count


# (no possessive quantifier: Python 3.11 before 3.11.5 matched wrongly with them, CPython
# gh-106052; an atomic group is what they mean)
_SPACE = "(?>[ \t\r\n]*)"
_NUMBER = r"(?:(?>[0-9]+)(?>(?:\.(?>[0-9]+))?)|\.(?>[0-9]+))(?>(?:[eE](?>[-+]?)(?>[0-9]+))?)"
_ITEM = (rf"(?>'(?>[^']*)(?>(?:''(?>[^']*))*)'|(?>[-+]?){_SPACE}{_NUMBER}"
         r"|(?i:null|true|false|default)|\?|%s|%\((?>[A-Za-z0-9_]+)\)s|:(?>[A-Za-z0-9_]+))")
_ROW = re.compile(rf"(\({_SPACE}{_ITEM}(?>(?:{_SPACE},{_SPACE}{_ITEM})*){_SPACE}\))")
"""One row of plain values (numbers, standard strings with '' escapes, null, true, false,
default, pooldbapi's markers); as a group, so that splitting a text by it keeps the rows."""
_SEPARATOR = re.compile(r"(?:[ \t\r\n]*,[ \t\r\n]*)?")
"""What may stand between two rows the expression read: a comma, spaces around it, or
nothing ('(1)(2)' is two rows to the tokenizer too)."""
_VALUES = re.compile(r"\bvalues(?=[ \t\r\n]|\()", re.IGNORECASE)
_MARKER = re.compile(r"'[^']*(?:''[^']*)*'|(\?|%s|%\([A-Za-z0-9_]+\)s|:[A-Za-z0-9_]+)")


def _values_head(text: str) -> tuple[list[Token], int, int] | None:
    """The tokens of an insert up to its VALUES keyword, where VALUES ends and where what
    follows it begins (after spaces); None where the text is no 'insert ... values'."""
    found = _VALUES.search(text)
    if found is None:
        return None
    toks: list[Token] = []
    _lex(text[:found.end()], 0, toks)
    sig = [t for t in toks if t.ttype not in GAP]
    if not sig or sig[-1].start != found.start() or sig[-1].upper != "VALUES" or \
            sig[0].upper not in ("INSERT", "BULK"):
        return None  # the word is in a literal or a comment, or the text is no insert
    pos = found.end()
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return toks, found.end(), pos


_PLAIN_ROWS = re.compile(
    r"(?>(?:\((?>(?:(?>[0-9 \t\r\n,.+'-]+)|(?<=[0-9.])[eE](?=[-+]?[0-9])"
    r"|(?<![A-Za-z0-9_])(?i:null|true|false|default)(?![A-Za-z0-9_]))*)\)"
    r"(?>[ \t\r\n]*)(?>,?)(?>[ \t\r\n]*))+)")
"""A VALUES list to the end of the text, each string literal reduced to one quote: rows
(without nested parentheses) of digits, signs, dots, exponents, commas, strings, null, true,
false and default, with commas and spaces between them."""


def _plain_rows(text: str) -> list[Token] | None:
    """The tokens of 'insert ... values (row), (row), ...' whose rows run to the end of the
    text and hold only numbers, standard strings, null, true, false, default (no marker, no
    name, no comment, no other kind of literal, no ';', no nested parentheses): the head
    lexed, and one ROWS token for the rest. None where the text has not that shape.

    Such rows can mean nothing to the scan but their spans, so none is read: the strings are
    cut out (a split at the quotes, standard strings having no other escape than ''), and
    one expression checks what is left, both at C speed. The spans are found when asked for
    (see Rows); on one container nothing asks."""
    head = _values_head(text)
    if head is None:
        return None
    toks, after, pos = head
    parts = text[pos:].split("'")
    if len(parts) % 2 == 0:
        return None  # an unclosed quote
    skeleton = "'".join(parts[0::2])
    if _PLAIN_ROWS.fullmatch(skeleton) is None or "--" in skeleton:
        return None
    if pos > after:
        toks.append(Token(WHITESPACE, text[after:pos], after))
    toks.append(Token(ROWS, text[pos:], pos))
    return toks


def _masked(text: str, chars: str) -> str:
    """The text (of standard strings only) with the given characters blanked inside its
    strings: the same length, each of them left only where it stands outside a literal."""
    parts = text.split("'")
    if len(parts) > 1:
        inside = "'".join(parts[1::2])
        for char in chars:
            inside = inside.replace(char, " ")
        parts[1::2] = inside.split("'")
    return "'".join(parts)


def _qmarks(masked: str, pos: int, out: _Columns) -> None:
    """The qmark placeholders of rows the row expression read, where '?' is their only
    marker: one at each '?' outside their strings (masked: blanked inside), found at C speed
    (a generated statement holds tens of thousands)."""
    starts = accumulate(map(operator.add, map(len, masked.split("?")[:-1]), repeat(1)),
                        initial=pos - 1)
    next(starts)  # (the initial value)
    at = list(starts)
    out.starts.extend(at)
    out.ends.extend(map(operator.add, at, repeat(1)))
    out.styles.extend(repeat(QMARK, len(at)))
    out.keys.extend(repeat(None, len(at)))


def _plain_spans(text: str, pos: int) -> tuple[tuple[int, int], ...]:
    """The rows' spans of a VALUES list _plain_rows took, its rows from pos: each '(' and ')'
    outside the strings opens and closes one (they nest in none); found in the text with the
    parentheses inside its strings blanked, at C speed (splits, maps and sums)."""
    masked = _masked(text[pos:], "()")

    def places(char: str) -> Iterator[int]:
        at = accumulate(map(operator.add, map(len, masked.split(char)[:-1]), repeat(1)),
                        initial=pos - 1)
        next(at)  # (the initial value)
        return at

    return tuple(zip(places("("), map(operator.add, places(")"), repeat(1))))


class Rows(Sequence[tuple[int, int]]):
    """The spans of the rows _plain_rows took without reading them, found when first asked
    for (see _plain_spans)."""

    __slots__ = ("_pos", "_spans", "_text")

    def __init__(self, text: str, pos: int) -> None:
        self._text, self._pos = text, pos
        self._spans: tuple[tuple[int, int], ...] | None = None

    def _get(self) -> tuple[tuple[int, int], ...]:
        spans = self._spans
        if spans is None:
            spans = self._spans = _plain_spans(self._text, self._pos)
        return spans

    def __len__(self) -> int:
        return len(self._get())

    def __getitem__(self, index: Any) -> Any:
        return self._get()[index]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self._get())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (Rows, tuple, list)):
            return self._get() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._get())

    def __repr__(self) -> str:
        return repr(self._get())


def _literal_rows(text: str) -> tuple[list[Token], list[tuple[int, int]], _Columns] | None:
    """The tokens of 'insert ... values (row), (row), ...' with one ROWS token standing for
    the rows after VALUES that _ROW recognises (plain values only: anything else, a cast, a
    comment, an E'' or dollar quote, a call, ends them, and the tokenizer reads the rest);
    and those rows' spans and placeholders. None where the text has not that shape.

    The tokenizer lexes the text up to VALUES and what follows the rows; the rows themselves
    are found in one pass of the expression over the rest (a split of the text by it: rows
    and what lies between them), their spans by adding up the pieces' lengths, at C speed;
    only their markers, where the rows hold any, are read a row (of each distinct text) at a
    time."""
    head = _values_head(text)
    if head is None:
        return None
    toks, after, pos = head
    # rows and, between them, what separates them: [before, row, gap, row, ..., row, rest]
    pieces = _ROW.split(text[pos:])
    if len(pieces) < 3 or pieces[0]:
        return None  # no row of plain values right after VALUES
    count = len(pieces) // 2  # rows found; they are the list's while the gaps are separators
    gaps = pieces[2:-1:2]
    for gap in set(gaps):
        if _SEPARATOR.fullmatch(gap) is None:
            count = min(count, gaps.index(gap) + 1)
    ends = list(accumulate(map(len, pieces[:2 * count]), initial=pos))
    spans = list(zip(ends[1::2], ends[2::2]))
    end = spans[-1][1]
    region = text[pos:end]
    markers = _Columns()
    if "?" in region and "%" not in region and ":" not in region:
        masked = _masked(region, "?")
        if "?" in masked:  # (not only inside strings)
            _qmarks(masked, pos, markers)
    elif "?" in region or "%" in region or ":" in region:
        seen: dict[str, list[tuple[Paramstyle, int | str | None, int, int]]] = {}  # a row's markers
        for body, (lo, _) in zip(pieces[1:2 * count:2], spans):
            marks = seen.get(body)
            if marks is None:
                marks = seen[body] = _row_markers(body)
            for style, key, start, stop in marks:
                markers.styles.append(style)
                markers.keys.append(key)
                markers.starts.append(start + lo)
                markers.ends.append(stop + lo)
    if pos > after:
        toks.append(Token(WHITESPACE, text[after:pos], after))
    toks.append(Token(ROWS, region, pos))
    if end < len(text):
        _lex(text, end, toks)
    return toks, spans, markers


def _row_markers(body: str) -> list[tuple[Paramstyle, int | str | None, int, int]]:
    """The placeholders of one row _ROW recognised, at their offsets in the row."""
    out = []
    for mark in _MARKER.finditer(body):
        if mark.group(1):
            made = _placeholder(Token(PLACEHOLDER, mark.group(1), mark.start()))
            assert made is not None
            out.append((made.style, made.key, made.start, made.end))
    return out


def _scan(text: str) -> Statement:
    plain = _plain_rows(text)
    if plain is not None:
        stmt = _read(text, plain, rows=(Rows(text, plain[-1].start), _Columns()))
        if stmt is not None:
            return stmt
    return _scan_rows(text)


def _scan_rows(text: str) -> Statement:
    """The scan that reads every row of a VALUES list (by the row expression, the repeated-
    row shortcut or the tokenizer)."""
    literal = _literal_rows(text)
    if literal is not None:
        stmt = _read(text, literal[0], rows=literal[1:])
        if stmt is not None:
            return stmt
    repeated = _repeated_rows(text)
    if repeated is not None:
        stmt = _read(text, *repeated)
        if stmt is not None:
            return stmt
    found = _read(text, lex(text))
    assert found is not None
    return found


def _read(text: str, toks: list[Token], unit: int = 0, count: int = 0,
          rows: tuple[Sequence[tuple[int, int]], _Columns] | None = None
          ) -> Statement | None:
    """The statement the tokens of a text say; None where the REPEATED token of the shortcut
    stands where the scan is not just after a VALUES list's first row, or the ROWS token
    where it is not just after an insert's VALUES (then every row is lexed: the shortcuts
    read rows only there)."""
    sig = [t for t in toks if t.ttype not in GAP]
    second = _second_statement(sig)
    if second is not None:
        raise ProgrammingError(
            f"one execute runs one statement: another begins at {where(text, second.start)}"
            " (run each statement on its own)")
    stack, match = [], {}
    for i, tok in enumerate(sig):
        if tok.is_punct("("):
            stack.append(i)
        elif tok.is_punct(")") and stack:
            match[stack.pop()] = i
    kind = _kind(sig, match)
    ctes = _cte_names(sig, match)
    occurrences: list[Occurrence] = []
    removed: list[tuple[int, int]] = []
    placeholders = _Columns()
    dollar_markers: list[int] = []
    values_rows: list[tuple[int, int]] = []

    # Where a suffix is written, that name is an occurrence whatever the context.
    index = {id(t): k for k, t in enumerate(toks)}
    claimed: set[int] = set()
    for k, tok in enumerate(toks):
        if tok.ttype is OPERATOR and tok.value == "@" and k > 0:
            prev, nxt = toks[k - 1], toks[k + 1] if k + 1 < len(toks) else None
            if prev.ttype in _NAMEISH and (nxt is None or nxt.ttype is WHITESPACE
                                           or nxt.value in (",", ";", ")", "}")):
                raise ProgrammingError(f"stray '@' without a container alias or list at"
                                       f" {where(text, tok.start)}")
        if not _is_suffix(tok):
            continue
        if k == 0 or toks[k - 1].ttype not in _NAMEISH or toks[k - 1].is_keyword and \
                toks[k - 1].upper in _STOP:
            if tok.value.startswith("@{"):  # (a lone '@name' there is the back-end's: '@' x)
                raise ProgrammingError(
                    f"container list '{tok.value}' at {where(text, tok.start)} does not follow"
                    " a table's name: write it right after the name, as t@{a,b}")
            continue
        aliases, positions = _suffix(text, tok)
        start = k - 1
        while True:  # back over 'schema.' and 'catalog..', spaces around the dots allowed
            dot = _before(toks, start)
            if dot < 0 or not toks[dot].is_punct("."):
                break
            part = _before(toks, dot)
            if part >= 0 and toks[part].is_punct("."):
                part = _before(toks, part)
            if part < 0 or toks[part].ttype not in _NAMEISH:
                break
            start = part
        occurrences.append(_occurrence(text, toks, start, k - 1, aliases, tok, removed,
                                       positions))
        claimed.update(range(start, k + 1))

    depth = 0
    expect: str | None = None
    from_list = {0: False}
    select_seen = {0: kind == SELECT}
    bracket = 0
    values_depth: int | None = None
    select_start: int | None = None
    columns: tuple[str, ...] | None = None
    prev_upper = ""
    marks: list[tuple[str, int, int]] = []
    operator_like: set[int] = set()  # '?' right after an operand: where an operator stands
    lazy: Rows | None = None
    i = 0
    while i < len(sig):
        tok = sig[i]
        if tok.ttype is REPEATED:
            if not (kind in (INSERT, BULK) and values_depth == 0 == depth and values_rows
                    and values_rows[-1][1] == tok.start):
                return None
            _repeat(unit, count, placeholders, values_rows, dollar_markers, operator_like)
            i += 1
            continue
        if tok.ttype is ROWS:
            if not (kind in (INSERT, BULK) and values_depth == 0 == depth == bracket
                    and not values_rows and rows is not None):
                return None
            if isinstance(rows[0], Rows):
                lazy = rows[0]  # the rows run to the end: nothing after them is read
            else:
                values_rows.extend(rows[0])
            placeholders.extend(rows[1])
            prev_upper = ""  # as after the last row's ')'
            i += 1
            continue
        up = tok.upper if tok.is_keyword else ""
        if values_depth == 0 and depth == 0 and up != "VALUES" and \
                not (tok.is_punct("(") or tok.is_punct(",")):
            values_depth = None  # the rows end at the first other token (on conflict, ...)
        if depth == 0 and up in _TOP_CLAUSES:
            marks.append((up, tok.start, tok.start + len(tok.value)))
        if kind == SYNC and i == 0:
            expect, i = "from", 1
            continue
        if kind == SYNC and up == "WITH" and depth == 0:
            break  # the rest names columns, not tables
        if tok.ttype is PLACEHOLDER:
            found = _placeholder(tok)
            if found is None and tok.value[:1] == "$" and tok.value[1:].isdigit():
                dollar_markers.append(tok.start)
            if found is not None and bracket and found.style in _NAMED_OR_NUMBERED:
                found = None  # a[1:n] is a slice; ARRAY[?, %s] holds placeholders
            if found is not None:
                placeholders.append(found)
                if found.style == QMARK and i > 0 and _operand(sig[i - 1]):
                    operator_like.add(found.start)
        if tok.is_punct("["):
            bracket += 1
        elif tok.is_punct("]"):
            bracket = max(0, bracket - 1)
        if expect and tok.ttype in _NAMEISH and up not in _STOP and not _is_suffix(tok):
            if up in _SKIP:
                i += 1
                continue
            j = i
            while j + 2 < len(sig) and sig[j + 1].is_punct(".") and \
                    (sig[j + 2].ttype in _NAMEISH or sig[j + 2].is_punct(".")):
                j += 2 if not sig[j + 2].is_punct(".") else 1
            # in from and join, a name followed by '(' calls a function ('f (1)' as well)
            is_function = expect in ("from", "join") and j + 1 < len(sig) and \
                sig[j + 1].is_punct("(")
            first, last = index[id(sig[i])], index[id(sig[j])]
            name = "".join(t.value for t in toks[first:last + 1])
            if not is_function and first not in claimed and \
                    _folded(name) not in ctes:
                occurrences.append(_occurrence(text, toks, first, last, None, None, removed))
            if expect in ("from", "join"):
                from_list[depth] = True
            expect = None
            i = j + 1
            continue
        if tok.is_punct("("):
            if kind in (INSERT, BULK) and depth == 0 and columns is None and occurrences and \
                    values_depth is None and select_start is None and not values_rows and \
                    i in match:  # the column list comes before the rows (not 'on conflict (x)')
                columns = tuple(t.value for t in sig[i + 1:match[i]]
                                if not t.is_punct(","))
            if expect in ("from", "join"):
                from_list[depth] = True
            if values_depth == depth:
                values_rows.append((tok.start, -1))
            depth += 1
            from_list[depth] = False
            select_seen[depth] = False
            expect = None
        elif tok.is_punct(")"):
            depth = max(0, depth - 1)
            if values_depth == depth and values_rows and values_rows[-1][1] == -1:
                values_rows[-1] = (values_rows[-1][0], tok.start + 1)
        elif tok.is_punct(","):
            if from_list.get(depth):
                expect = "from"
        elif up:
            if up in ("SELECT", "WITH") and depth == 0 and kind in (INSERT, BULK) and \
                    select_start is None and values_depth is None:
                select_start = tok.start
            if up == "SELECT":
                select_seen[depth] = True
            if up in _CLAUSE_END:
                from_list[depth] = False
                expect = None
            if up == "VALUES" and kind in (INSERT, BULK) and depth == 0:
                values_depth = 0
            elif up in _CLAUSE_END and depth == 0:
                values_depth = None
            if up == "FROM" and (depth == 0 or select_seen.get(depth)):
                expect = "from"
            elif up.endswith("JOIN"):
                expect = "join"
            elif up == "INTO" and (kind in (INSERT, BULK) or prev_upper == "MERGE"):
                expect = "into"
            elif up == "UPDATE" and prev_upper not in ("FOR", "DO", "KEY", "ON", "NO KEY", "OR"):
                expect = "table"
            elif up in ("TABLE", "TRUNCATE") and kind == DDL:
                expect = "table"
                # truncate and drop table name a list of tables
                from_list[depth] = sig[0].upper in ("TRUNCATE", "DROP")
            elif up == "TABLE" and kind == SELECT and (i == 0 or prev_upper in (
                    "UNION", "UNION ALL", "INTERSECT", "EXCEPT") or sig[i - 1].is_punct("(")):
                expect = "table"  # 'table t' selects the table t
            elif up == "USING" and kind in (DELETE, OTHER):
                expect = "from"
            elif up == "TO" and kind == SYNC:
                expect = "table"
        prev_upper = (prev_upper + " " + up).strip() if prev_upper == "BULK" else (up or "")
        i += 1

    if operator_like and set(placeholders.styles) - {QMARK}:
        # with another style in the statement, a '?' where an operator stands is PostgreSQL's
        # jsonb operator (?, ?|, ?&); one where a value stands is still a (mixed) placeholder
        placeholders.keep(lambda start: start not in operator_like)
    occurrences.sort(key=lambda o: o.position)
    removed.sort()
    words = tuple(t.upper for t in sig[:3] if t.is_keyword)
    if kind == BULK:  # 'bulk' is pooldbapi's word: the back-end gets a plain insert
        after = next(t for t in toks if t.start > sig[0].start)
        removed.insert(0, (sig[0].start, after.start + (len(after.value)
                                                        if after.ttype is WHITESPACE
                                                        else 0)))
    end = sig[-1].start if sig and sig[-1].is_punct(";") else len(text.rstrip())
    if values_rows and values_rows[-1][1] == -1:
        values_rows.pop()  # a row left open at the end (only the last one can be)
    clauses = tuple((name, at, body, marks[n + 1][1] if n + 1 < len(marks) else end)
                    for n, (name, at, body) in enumerate(marks))
    return Statement(text, kind, tuple(occurrences), placeholders.markers(), tuple(removed),
                     lazy if lazy is not None else tuple(values_rows), words, select_start=select_start,
                     columns=columns, clauses=clauses, end=end,
                     dollar_markers=tuple(dollar_markers))


def _repeat(unit: int, count: int, placeholders: _Columns,
            values_rows: list[tuple[int, int]], dollar_markers: list[int],
            operator_like: set[int]) -> None:
    """What the scan read from the row before the repeats, once for each repeat, moved by
    the repeat's length: its placeholders, its span, its markers."""
    lo, hi = values_rows[-1]
    first = len(placeholders)
    while first and placeholders.starts[first - 1] >= lo:
        first -= 1
    styles, keys = placeholders.styles[first:], placeholders.keys[first:]
    starts, ends = placeholders.starts[first:], placeholders.ends[first:]
    dollars = [d for d in dollar_markers if d >= lo]
    operators = [d for d in operator_like if d >= lo]
    shifts = range(unit, unit * count + 1, unit)
    values_rows.extend([(lo + shift, hi + shift) for shift in shifts])
    # every repeat's markers at once, column by column: the row's, moved by each shift
    width = len(starts)
    moved: Sequence[int] = list(chain.from_iterable(map(repeat, shifts, repeat(width)))) \
        if width > 1 else shifts
    placeholders.styles.extend(styles * count)
    placeholders.keys.extend(keys * count)
    placeholders.starts.extend(map(operator.add, starts * count, moved))
    placeholders.ends.extend(map(operator.add, ends * count, moved))
    if dollars or operators:
        for shift in shifts:
            dollar_markers.extend(d + shift for d in dollars)
            operator_like.update(d + shift for d in operators)


# keywords after which a value, not an operator, comes: a '?' there is a placeholder
_BEFORE_VALUE = {"SELECT", "VALUES", "WHERE", "AND", "OR", "NOT", "LIMIT", "OFFSET", "SET",
                 "THEN", "WHEN", "ELSE", "IN", "BY", "ON", "HAVING", "RETURNING", "IS", "LIKE",
                 "ILIKE", "BETWEEN", "CASE", "AS", "FROM", "INTERVAL", "ALL", "ANY", "SOME",
                 "DISTINCT", "FETCH", "FIRST", "NEXT", "TOP", "RETURN", "EXISTS", "USING"}


_OPERAND = frozenset((NAME, QUOTED, STRING, NUMBER, PLACEHOLDER, SUFFIX))


def _operand(tok: Token) -> bool:
    """Tell whether a token ends an operand (so that an operator may follow it)."""
    if tok.ttype is PUNCT:
        return tok.value in (")", "]")
    if tok.is_keyword:
        return tok.upper not in _BEFORE_VALUE
    return tok.ttype in _OPERAND


def _occurrence(text: str, toks: list[Token], first: int, last: int,
                aliases: tuple[str, ...] | None, suffix: Token | None,
                removed: list[tuple[int, int]], positions: tuple[int, ...] = ()) -> Occurrence:
    parts = toks[first:last + 1]
    # catalog..name: the catalog is dropped on the way to the back-end
    for k in range(len(parts) - 2):
        if parts[k + 1].is_punct(".") and parts[k + 2].is_punct("."):
            removed.append((parts[0].start, parts[k + 2].start + 1))
            parts = parts[k + 3:]
            break
    if suffix is not None:
        removed.append((suffix.start, suffix.start + len(suffix.value)))
    name = "".join(p.value for p in parts)
    return Occurrence(name, aliases, parts[0].start if parts else toks[first].start,
                      suffix.start if suffix else None, positions)


def _placeholder(tok: Token) -> Placeholder | None:
    value, start = tok.value, tok.start
    end = start + len(value)
    if value == "?":
        return Placeholder(QMARK, None, start, end)
    if value == "%s":
        return Placeholder(FORMAT, None, start, end)
    if value.startswith("%("):
        return Placeholder(PYFORMAT, value[2:-2], start, end)
    if value.startswith(":"):
        if value[1:].isdigit():
            return Placeholder(NUMERIC, int(value[1:]), start, end)
        return Placeholder(NAMED, value[1:], start, end)
    return None   # $1, ?name and the like are the back-end's business, sent as written


CACHE_SIZE = 4096
"""Statements of up to 16 KiB (cache.LARGEST) kept by text, at most."""
CACHE_BYTES = 4 << 20
"""Text of those statements kept, at most."""
CACHE: Tiered[str, Statement] = Tiered(CACHE_SIZE, CACHE_BYTES)
"""The statements parsed, by text, under cache.py's one policy (least recently used out
first). A longer one (a generated multi-row insert) is kept in the long tier apart (64 of
them, up to 1 MiB each, 4 MiB in all), as psycopg and sqlite3 keep theirs: the batches of an
ORM flush or a to_sql call repeat one long text, a load repeats its few generated ones, and a
one-off generated statement pushes out only those, never the ordinary statements."""


def parse(text: str) -> Statement:
    """Parse a statement, cached process-wide by its text."""
    if type(text) is not str and not isinstance(text, str):
        raise ProgrammingError(f"a statement must be a str, not {type(text).__name__}")
    stmt = CACHE.get(text)
    if stmt is not None:
        return stmt
    return CACHE.put(text, _scan(text), len(text))
