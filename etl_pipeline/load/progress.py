"""Progress of a run over many tables: live lines on a terminal, log lines otherwise.

On a terminal (stderr is a tty) every table being loaded has one live line, redrawn in place by
`rich`: its name, the rows read, rows per second and the share of its row estimate read. Log
records written meanwhile are printed above the lines. Elsewhere (Airflow, a pipe, a file) each
table being loaded logs a plain line every INTERVAL_SECONDS while it reads.

`progress_for()` picks the one that fits; both are used as

    with progress_for() as progress:
        with progress.table(table) as report:   # in any worker thread
            load_table(..., progress=report)     # report(rows read so far) after each batch
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import IO

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn
from rich.text import Text

from etl_pipeline.load.context import Progress as Report
from etl_pipeline.schema.tables_config import TableConfig

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 10.0
NAME_WIDTH = 24  # a live line is at most 78 characters wide, for an 80-column terminal
MIN_RATE_SECONDS = 1.0


def progress_for(stream: IO[str] | None = None, *, live: bool = True) -> LiveProgress | PlainProgress:
    """Live lines when `stream` (stderr by default) is a terminal and `live`, log lines otherwise."""
    stream = stream or sys.stderr
    if live and stream.isatty():
        return LiveProgress(Console(file=stream, force_terminal=True))
    return PlainProgress()


def _rate(rows: int, seconds: float) -> float:
    return rows / max(seconds, 1e-6)


def _share(rows: int, estimate: int) -> str:
    """The share of the row estimate read ('' without an estimate); above 100% when it was low."""
    return f"{rows / estimate:.0%}" if estimate > 0 else ""


class PlainProgress:
    """A log line per table every `interval` seconds of its read (the first after one interval)."""

    def __init__(self, interval: float = INTERVAL_SECONDS, clock: Callable[[], float] = time.monotonic):
        self._interval = interval
        self._clock = clock

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    @contextmanager
    def table(self, table: TableConfig) -> Iterator[Report]:
        start = last = self._clock()

        def report(rows: int) -> None:
            nonlocal last
            now = self._clock()
            if now - last < self._interval:
                return
            last = now
            share = _share(rows, table.estimated_rows)
            log.info(
                "%s: %s rows read, %s rows/s%s",
                table.name,
                f"{rows:,}",
                f"{_rate(rows, now - start):,.0f}",
                f", {share} of the estimate" if share else "",
            )

        yield report


class _Rows(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{int(task.completed):>13,} rows")


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        if elapsed < MIN_RATE_SECONDS:  # a first batch read in milliseconds is no rate yet
            return Text(" " * 11)
        return Text(f"{_rate(int(task.completed), elapsed):>9,.0f}/s")


class _Share(ProgressColumn):
    def render(self, task: Task) -> Text:
        share = _share(int(task.completed), int(task.fields.get("estimate", 0)))
        return Text(f"{share:>5}")


class LiveProgress:
    """One live line per table being loaded, drawn by `rich` on `console`; a finished table's
    line goes (its done line is logged by the load)."""

    def __init__(self, console: Console, refresh_per_second: float = 4):
        self._console = console
        self._progress = Progress(
            TextColumn("{task.description}", style="bold"),
            _Rows(),
            _Rate(),
            BarColumn(bar_width=16),
            _Share(),
            console=console,
            refresh_per_second=refresh_per_second,
            transient=True,
        )
        self._lock = threading.Lock()
        self._moved: list[tuple[logging.StreamHandler[IO[str]], IO[str]]] = []

    def __enter__(self) -> LiveProgress:
        self._progress.start()
        self._log_above_the_lines()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()
        for handler, stream in self._moved:
            handler.setStream(stream)
        self._moved.clear()

    def _log_above_the_lines(self) -> None:
        """Logging handlers writing to the console's terminal keep the stream they were made with;
        while the lines are live they write through rich's proxy (now sys.stderr), which prints each
        record above the lines instead of into them."""
        for handler in logging.getLogger().handlers:
            if type(handler) is logging.StreamHandler and handler.stream in (
                sys.__stderr__,
                self._console.file,
            ):
                self._moved.append((handler, handler.stream))
                handler.setStream(sys.stderr)

    @contextmanager
    def table(self, table: TableConfig) -> Iterator[Report]:
        name = table.name if len(table.name) <= NAME_WIDTH else table.name[: NAME_WIDTH - 1] + "…"
        with self._lock:
            task = self._progress.add_task(
                f"{name:<{NAME_WIDTH}}",
                total=table.estimated_rows or None,  # None: no estimate, the bar pulses
                estimate=table.estimated_rows,
            )

        def report(rows: int) -> None:
            self._progress.update(task, completed=rows)

        try:
            yield report
        finally:
            with self._lock:
                self._progress.remove_task(task)
