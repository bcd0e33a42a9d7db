"""Token scan (sqlparse) -> Statement(kind, occurrences, placeholders); cached by text."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sqlparse import keywords, tokens
from sqlparse.lexer import Lexer

from ..errors import ProgrammingError

# A private lexer: sqlparse's rules plus Oracle q-quotes and the @alias / @{a,b} suffix.
# sqlparse's shared default lexer is never changed.
_LEXER = Lexer()
_LEXER.default_initialization()  # type: ignore[no-untyped-call]
_LEXER.set_SQL_REGEX([  # type: ignore[no-untyped-call]
    (r"[nN]?[qQ]'(?s:\[.*?\]|\(.*?\)|\{.*?\}|<.*?>|([^\s\[({<]).*?\1)'",
     tokens.Literal.String.Single),
    (r"@(?:\w+|\{[^{}]*\}?)", tokens.Name),
    # Standard SQL strings: a backslash is an ordinary character (PostgreSQL's default,
    # SQLite, Oracle); only PostgreSQL's E'...' strings escape with it. Quoted names likewise.
    (r"[eE]'(?:''|\\.|[^'\\])*'", tokens.Literal.String.Single),
    (r"'(?:''|[^'])*'", tokens.Literal.String.Single),
    (r'"(?:""|[^"])*"', tokens.Literal.String.Symbol),
    *keywords.SQL_REGEX,
])

SELECT, INSERT, UPDATE, DELETE, DDL, TCL, BULK, SYNC, OTHER = (
    "select", "insert", "update", "delete", "ddl", "transaction-control", "bulk-insert",
    "synchronize", "other")
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
_NAMEISH = (tokens.Name, tokens.Keyword, tokens.Literal.String.Symbol)


@dataclass(frozen=True)
class Occurrence:
    """One table occurrence: its name as written and the container list after '@' (or None)."""

    name: str
    aliases: tuple[str, ...] | None
    position: int
    suffix_position: int | None = None
    alias_positions: tuple[int, ...] = ()


@dataclass(frozen=True)
class Placeholder:
    """One parameter marker: its style, its key (position or name) and its span."""

    style: str   # qmark, numeric, named, format, pyformat
    key: int | str | None
    start: int
    end: int


@dataclass(frozen=True)
class Statement:
    """A parsed statement: what kind it is, its occurrences, placeholders and removed spans."""

    text: str
    kind: str
    occurrences: tuple[Occurrence, ...]
    placeholders: tuple[Placeholder, ...]
    removed: tuple[tuple[int, int], ...]
    values_rows: tuple[tuple[int, int], ...] = ()
    words: tuple[str, ...] = ()
    select_start: int | None = None      # insert ... select: where the select begins
    columns: tuple[str, ...] | None = None   # insert: the column list, as written
    # top-level clauses: (keyword, keyword's start, body start, body end), in order
    clauses: tuple[tuple[str, int, int, int], ...] = ()
    end: int | None = None   # where the statement ends: before a final ';' and what follows
    dollar_markers: tuple[int, ...] = ()   # where PostgreSQL's own $1, $2 stand (refused)
    cache: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

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
        """The scan's tokens that are neither whitespace nor comments, each with its depth in
        parentheses; kept once asked for (most statements never need them)."""
        found: tuple[Token, ...] | None = self.cache.get("tokens")
        if found is None:
            out, depth = [], 0
            for tok in lex(self.text):
                if tok.ttype in tokens.Whitespace or tok.ttype in tokens.Comment:
                    continue
                if tok.is_punct(")"):
                    depth = max(0, depth - 1)
                tok.depth = depth
                out.append(tok)
                if tok.is_punct("("):
                    depth += 1
            found = self.cache["tokens"] = tuple(out)
        return found


def where(text: str, position: int) -> str:
    """Describe a position in text as 'position P (line L, column C)'."""
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return f"position {position} (line {line}, column {column})"


@dataclass
class Token:
    """One lexed token: its sqlparse type, text and offset (and its depth in parentheses,
    where Statement.significant() gave it)."""
    ttype: Any
    value: str
    start: int
    depth: int = 0

    @property
    def upper(self) -> str:
        return " ".join(self.value.upper().split())

    def is_punct(self, char: str) -> bool:
        return self.ttype in tokens.Punctuation and self.value == char

    @property
    def is_keyword(self) -> bool:
        return self.ttype in tokens.Keyword


def lex(text: str) -> list[Token]:
    """Return the tokens of a statement with their offsets (a private sqlparse lexer)."""
    out, pos = [], 0
    for ttype, value in _LEXER.get_tokens(text):  # type: ignore[no-untyped-call]
        out.append(Token(ttype, value, pos))
        pos += len(value)
    if any(t.ttype in tokens.Comment.Multiline and t.value.count("/*") > 1 for t in out):
        out = _nest_comments(text, out)
    return out


def _nest_comments(text: str, toks: list[Token]) -> list[Token]:
    """Block comments nest, as PostgreSQL reads them: '/* a /* b */ c */' is one comment.
    (Elsewhere such text is an error, so reading it PostgreSQL's way costs nothing.)"""
    out: list[Token] = []
    k = 0
    while k < len(toks):
        tok = toks[k]
        k += 1
        if tok.ttype not in tokens.Comment.Multiline or tok.value.count("/*") < 2:
            out.append(tok)
            continue
        depth, pos = 0, tok.start
        while pos < len(text):
            if text.startswith("/*", pos):
                depth, pos = depth + 1, pos + 2
            elif text.startswith("*/", pos):
                depth, pos = depth - 1, pos + 2
                if depth == 0:
                    break
            else:
                pos += 1
        out.append(Token(tokens.Comment.Multiline, text[tok.start:pos], tok.start))
        while k < len(toks) and toks[k].start < pos:
            k += 1
        if pos < (toks[k].start if k < len(toks) else len(text)):
            # a token cut by the comment's real end: what follows was read in the wrong
            # context (inside a string, say), so all of it is read again
            out.extend(Token(t.ttype, t.value, t.start + pos) for t in lex(text[pos:]))
            break
    return out


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
    return tok.ttype in tokens.Name and tok.value.startswith("@") and len(tok.value) > 1


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
    while i >= 0 and toks[i].ttype in tokens.Whitespace:
        i -= 1
    return i


def _kind(sig: list[Token], match: dict[int, int]) -> str:
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
                return {"MERGE": OTHER}.get(tok.upper, tok.upper.lower())
        return SELECT
    if first in ("INSERT", "UPDATE", "DELETE"):
        return first.lower()
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
    lead = [w for w in lead if w not in ("EDITIONABLE", "NONEDITIONABLE")]
    unit = lead[:1] == ["CREATE"] and (lead[1:2] and lead[1] in _UNITS
                                        or lead[1:3] == ["TYPE", "BODY"])
    trigger = unit and lead[1] == "TRIGGER"
    depth, declared = 0, False
    for n, tok in enumerate(sig):
        word = words[n]
        after = sig[n + 1] if n + 1 < len(sig) else None
        if unit and not trigger and depth == 0 and word in ("IS", "AS") and after is not None \
                and after.ttype not in tokens.Literal and not after.is_punct("("):
            return None  # an Oracle unit's body: Oracle compiles the rest as one unit
        if word == "DECLARE" and depth == 0 and (n == 0 or trigger) and \
                any(w == "BEGIN" for w in words[n + 1:]):
            depth, declared = 1, True
        elif word == "BEGIN" and (depth > 0 or n == 0 and after is not None and (
                after.upper if after.is_keyword or after.ttype in tokens.Punctuation
                else "") not in _NOT_BLOCK or after is not None and after.upper == "ATOMIC"
                or trigger and n > 0 and (words[n - 1] in ("ROW", "STATEMENT")
                                          or sig[n - 1].is_punct(")"))):
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


def _scan(text: str) -> Statement:
    toks = lex(text)
    sig = [t for t in toks if t.ttype not in tokens.Whitespace and t.ttype not in tokens.Comment]
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
    placeholders: list[Placeholder] = []
    dollar_markers: list[int] = []
    values_rows: list[tuple[int, int]] = []

    # Where a suffix is written, that name is an occurrence whatever the context.
    index = {id(t): k for k, t in enumerate(toks)}
    claimed: set[int] = set()
    for k, tok in enumerate(toks):
        if tok.ttype in tokens.Operator and tok.value == "@" and k > 0:
            prev, nxt = toks[k - 1], toks[k + 1] if k + 1 < len(toks) else None
            if prev.ttype in _NAMEISH and (nxt is None or nxt.ttype in tokens.Whitespace
                                           or nxt.value in (",", ";", ")", "}")):
                raise ProgrammingError(f"stray '@' without a container alias or list at"
                                       f" {where(text, tok.start)}")
        if not _is_suffix(tok):
            continue
        if k == 0 or toks[k - 1].ttype not in _NAMEISH or toks[k - 1].is_keyword and \
                toks[k - 1].upper in _STOP:
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
    i = 0
    while i < len(sig):
        tok = sig[i]
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
        if tok.ttype in tokens.Name.Placeholder:
            found = _placeholder(tok)
            if found is None and tok.value[:1] == "$" and tok.value[1:].isdigit():
                dollar_markers.append(tok.start)
            if found is not None and bracket and found.style in ("named", "numeric"):
                found = None  # a[1:n] is a slice; ARRAY[?, %s] holds placeholders
            if found is not None:
                placeholders.append(found)
                if found.style == "qmark" and i > 0 and _operand(sig[i - 1]):
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
            elif up == "USING" and kind in (DELETE, OTHER):
                expect = "from"
            elif up == "TO" and kind == SYNC:
                expect = "table"
        prev_upper = (prev_upper + " " + up).strip() if prev_upper == "BULK" else (up or "")
        i += 1

    if operator_like and {p.style for p in placeholders} - {"qmark"}:
        # with another style in the statement, a '?' where an operator stands is PostgreSQL's
        # jsonb operator (?, ?|, ?&); one where a value stands is still a (mixed) placeholder
        placeholders = [p for p in placeholders if p.start not in operator_like]
    occurrences.sort(key=lambda o: o.position)
    removed.sort()
    words = tuple(t.upper for t in sig[:3] if t.is_keyword)
    if kind == BULK:  # 'bulk' is pooldbapi's word: the back-end gets a plain insert
        after = next(t for t in toks if t.start > sig[0].start)
        removed.insert(0, (sig[0].start, after.start + (len(after.value)
                                                        if after.ttype in tokens.Whitespace
                                                        else 0)))
    end = sig[-1].start if sig and sig[-1].is_punct(";") else len(text.rstrip())
    clauses = tuple((name, at, body, marks[n + 1][1] if n + 1 < len(marks) else end)
                    for n, (name, at, body) in enumerate(marks))
    return Statement(text, kind, tuple(occurrences), tuple(placeholders), tuple(removed),
                     tuple(r for r in values_rows if r[1] != -1), words, select_start=select_start,
                     columns=columns, clauses=clauses, end=end,
                     dollar_markers=tuple(dollar_markers))


# keywords after which a value, not an operator, comes: a '?' there is a placeholder
_BEFORE_VALUE = {"SELECT", "VALUES", "WHERE", "AND", "OR", "NOT", "LIMIT", "OFFSET", "SET",
                 "THEN", "WHEN", "ELSE", "IN", "BY", "ON", "HAVING", "RETURNING", "IS", "LIKE",
                 "ILIKE", "BETWEEN", "CASE", "AS", "FROM", "INTERVAL", "ALL", "ANY", "SOME",
                 "DISTINCT", "FETCH", "FIRST", "NEXT", "TOP", "RETURN", "EXISTS", "USING"}


def _operand(tok: Token) -> bool:
    """Tell whether a token ends an operand (so that an operator may follow it)."""
    if tok.ttype in tokens.Punctuation:
        return tok.value in (")", "]")
    if tok.is_keyword:
        return tok.upper not in _BEFORE_VALUE
    return tok.ttype in tokens.Name or tok.ttype in tokens.Literal


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
        return Placeholder("qmark", None, start, end)
    if value == "%s":
        return Placeholder("format", None, start, end)
    if value.startswith("%("):
        return Placeholder("pyformat", value[2:-2], start, end)
    if value.startswith(":"):
        if value[1:].isdigit():
            return Placeholder("numeric", int(value[1:]), start, end)
        return Placeholder("named", value[1:], start, end)
    return None   # $1, ?name and the like are the back-end's business, sent as written


_CACHE: dict[str, Statement] = {}
_CACHE_LOCK = threading.Lock()
CACHE_SIZE = 4096
"""Statements kept by text, at most (oldest out first)."""
CACHE_BYTES = 4 << 20
"""Text kept in the cache, at most; a statement longer than CACHE_TEXT is never kept (a
generated multi-row insert would push out everything else, as psycopg also reasons)."""
CACHE_TEXT = 16 << 10
_cached_bytes = 0


def parse(text: str) -> Statement:
    """Parse a statement, cached process-wide by its text."""
    global _cached_bytes
    if type(text) is not str and not isinstance(text, str):
        raise ProgrammingError(f"a statement must be a str, not {type(text).__name__}")
    stmt = _CACHE.get(text)
    if stmt is not None:
        return stmt
    stmt = _scan(text)
    if len(text) > CACHE_TEXT:
        return stmt
    with _CACHE_LOCK:
        while _CACHE and (len(_CACHE) >= CACHE_SIZE or _cached_bytes + len(text) > CACHE_BYTES):
            _cached_bytes -= len(_CACHE.pop(next(iter(_CACHE))).text)
        if text not in _CACHE:
            _CACHE[text] = stmt
            _cached_bytes += len(text)
    return stmt
