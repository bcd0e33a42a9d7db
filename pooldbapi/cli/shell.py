"""The interactive prompt of `pooldbapi sql`: statements end with ';' and may span lines;
history is kept in ~/.pooldbapi_history; Ctrl-C clears the line being typed, Ctrl-D ends."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

from .sql import Session, complete, split

PROMPT = "pooldbapi> "
MORE = "       ...> "
HISTORY = Path(os.environ.get("POOLDBAPI_HISTORY", Path.home() / ".pooldbapi_history"))


def _readline() -> None:
    try:
        import readline
    except ImportError:  # no line editing where readline is missing; input() still works
        return
    with contextlib.suppress(OSError):
        readline.read_history_file(HISTORY)
    readline.set_history_length(1000)
    import atexit
    atexit.register(lambda: _save(readline))


def _save(readline: object) -> None:
    with contextlib.suppress(OSError):
        readline.write_history_file(HISTORY)  # type: ignore[attr-defined]


def interact(session: Session) -> int:
    """Read statements from the terminal until end of input; return the exit status."""
    _readline()
    mode = "one transaction until commit" if session.transaction else "autocommit"
    print(f"pooldbapi {mode}; end statements with ';', Ctrl-D to leave", file=session.err)
    buffer: list[str] = []
    status = 0
    while True:
        try:
            line = input(MORE if buffer else PROMPT)
        except EOFError:
            print(file=session.err)
            break
        except KeyboardInterrupt:  # at the prompt: drop what was typed, as psql does
            print(file=session.err)
            buffer = []
            continue
        buffer.append(line)
        text = "\n".join(buffer)
        if not text.strip():
            buffer = []
            continue
        if not complete(text):
            continue
        buffer = []
        for statement in split(text):
            if not session.run_one(statement):
                status = 1
    if session.transaction and session.pending:  # as close() does: what was not committed goes
        session.conn.rollback()
        session.say(f"left without commit: rolled back {len(session.pending)} statement(s)")
        session.pending = []
    return status
