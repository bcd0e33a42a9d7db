"""Rows written per container, shown on a terminal while a statement runs (rich)."""
from __future__ import annotations

import threading
from typing import Any, TextIO


class ProgressView:
    """Told (alias, rows) from the runner's worker threads; draws a line per container once
    the first rows arrive, and clears it when the statement ends."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    def __call__(self, alias: str, rows: int) -> None:
        with self._lock:
            if self._progress is None:
                from rich.console import Console
                from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
                self._progress = Progress(
                    SpinnerColumn(), TextColumn("{task.description}"),
                    TextColumn("{task.completed:>10,.0f} rows written"), TimeElapsedColumn(),
                    console=Console(file=self._stream), transient=True)
                self._progress.start()
            task = self._tasks.get(alias)
            if task is None:
                task = self._tasks[alias] = self._progress.add_task(alias, total=None)
            self._progress.advance(task, rows)

    def finish(self) -> None:
        """The statement ended: clear the lines."""
        with self._lock:
            if self._progress is not None:
                self._progress.stop()
            self._progress, self._tasks = None, {}
