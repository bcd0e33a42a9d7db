"""`pooldbapi sql`: statements run in autocommit (each commits on its own) or in one transaction
for the run; when a statement fails, or the run is interrupted, what was committed and what was
rolled back is said."""
from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

import sqlparse
from sqlparse import tokens

from .. import Connection, Error, PartialCommitError
from .output import result
from .progress import ProgressView

CONTROL = ("commit", "rollback")
"""Statements the command runs as the connection's commit() and rollback()."""


def split(text: str) -> list[str]:
    """Split a script into statements with sqlparse (a ';' inside a literal or comment is not
    an end); statements that are only comments are dropped, a final ';' is taken off."""
    out = []
    for piece in sqlparse.split(text):
        parsed = sqlparse.parse(piece)
        if not parsed or all(t.is_whitespace or t.ttype in tokens.Comment
                             or t.ttype is tokens.Punctuation and t.value == ";"
                             for t in parsed[0].flatten()):  # type: ignore[no-untyped-call]
            continue
        statement = piece.strip()
        if statement.endswith(";"):
            statement = statement[:-1].rstrip()
        out.append(statement)
    return out


def complete(text: str) -> bool:
    """Tell whether typed text ends a statement: its last token that is not a comment or
    whitespace is a ';' (outside literals, as sqlparse reads them)."""
    parsed = sqlparse.parse(text)
    if not parsed:
        return False
    last = [t for t in parsed[-1].flatten()  # type: ignore[no-untyped-call]
            if not t.is_whitespace
            and t.ttype not in tokens.Comment]
    return bool(last) and last[-1].ttype is tokens.Punctuation and last[-1].value == ";"


def _span(numbers: list[int]) -> str:
    if not numbers:
        return "none"
    if numbers == list(range(numbers[0], numbers[-1] + 1)) and len(numbers) > 2:
        return f"statements {numbers[0]}-{numbers[-1]}"
    return ("statement " if len(numbers) == 1 else "statements ") + \
        ", ".join(map(str, numbers))


class Session:
    """One run of the command over one connection: numbers the statements, prints results,
    and keeps what it needs to say what was committed and what rolled back."""

    def __init__(self, conn: Connection, fmt: str, out: TextIO, err: TextIO,
                 progress: bool) -> None:
        self.conn = conn
        self.fmt = fmt
        self.out, self.err = out, err
        self.transaction = not conn.autocommit
        self.number = 0              # the statement being run (or last run)
        self.pending: list[int] = []  # run in the open transaction, not yet committed
        self.committed: list[int] = []
        self.view = ProgressView(err) if progress else None
        conn.progress = self.view

    def say(self, text: str) -> None:
        print(f"pooldbapi: {text}", file=self.err)

    def run(self, statements: Iterable[str], stop_on_error: bool = True) -> int:
        """Run statements in order; return the exit status (0, or 1 after an error)."""
        status = 0
        for text in statements:
            if not self.run_one(text):
                status = 1
                if stop_on_error:
                    return status
        return status

    def run_one(self, text: str) -> bool:
        """Run one statement and print its outcome; False if it failed (said once)."""
        self.number += 1
        word = text.strip().lower()
        try:
            if word in CONTROL:
                self._control(word)
                return True
            cur = self.conn.execute(text)
            columns = [d[0] for d in cur.description] if cur.description is not None else None
            rows = cur.fetchall() if columns is not None else []
            if self.view is not None:
                self.view.finish()
            result(self.fmt, self.number, columns, rows, cur.rowcount, cur.containers, self.out)
        except Error as exc:
            if self.view is not None:
                self.view.finish()
            self.say(f"statement {self.number} failed: {type(exc).__name__}: {exc}")
            self._after_failure()
            return False
        if self.transaction:
            self.pending.append(self.number)
        else:
            self.committed.append(self.number)
        return True

    def _control(self, word: str) -> None:
        if word == "commit":
            self.commit()
        else:
            self.conn.rollback()
            if self.pending:
                self.say(f"rolled back: {_span(self.pending)}")
            self.pending = []

    def _after_failure(self) -> None:
        if self.transaction and self.pending:
            self.conn.rollback()
            self.say(f"rolled back: {_span(self.pending)} (the transaction; nothing of it was"
                     " committed)")
            self.pending = []
        elif self.transaction:
            self.conn.rollback()
        if self.committed:
            self.say(f"committed before: {_span(self.committed)}")

    def commit(self) -> bool:
        """Commit the open transaction (if any); say what happened; False if it failed."""
        if not self.transaction:
            return True
        try:
            self.conn.commit()
        except PartialCommitError as exc:
            self.say(f"commit failed: {exc}")
            self.pending = []
            return False
        except Error as exc:
            self.say(f"commit failed, rolled back: {_span(self.pending)}: {exc}")
            self.pending = []
            return False
        self.committed += self.pending
        self.pending = []
        return True

    def interrupted(self) -> None:
        """Ctrl-C: roll back the open transaction and say, on one line, where it stopped."""
        if self.view is not None:
            self.view.finish()
        undone = ""
        if self.transaction:
            try:
                self.conn.rollback()
            except Error as exc:  # the line below says what matters
                undone = f" (rollback failed: {exc})"
            running = [*self.pending, self.number] if self.number else self.pending
            undone = f"; rolled back: {_span(sorted(set(running)))}{undone}"
        else:
            undone = (f"; autocommit: what statement {self.number} had written before the"
                      " interruption stays")
        done = f"; committed: {_span(self.committed)}" if self.committed else ""
        self.say(f"interrupted at statement {self.number}{undone}{done}")
