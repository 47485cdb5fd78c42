"""Reading the source: live columns, the source clock, and the streaming line reader.

The reader runs the rendering SELECT (see `sql_render`) on an unbuffered cursor in a thread of its
own and hands batches of COPY-text bytes to the writer through a small bounded queue, so the next
batch is read while the previous one is copied and memory stays a few batches deep. It works the same
with either source driver (`etl_pipeline.db`): the SELECT returns binary strings, which both give as bytes.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

from etl_pipeline.db import SOURCE_ERRORS, SourceConnection, connect_source, source_error_code
from etl_pipeline.errors import EtlError
from etl_pipeline.settings import MySQLSettings
from etl_pipeline.type_mapping import map_column_type, quote_mysql_ident

BATCH_ROWS = 5000
QUEUE_BATCHES = 4

# Test hook: called as hook(table, batch_number) in the reader thread after each batch is read.
batch_hook: Callable[[str, int], None] | None = None

Params = Sequence[Any] | dict[str, Any]
_KILL_ERRORS: tuple[type[Exception], ...] = (
    *SOURCE_ERRORS,
    EtlError,
)  # a failed KILL is not the read's error


class SourceTableMissing(EtlError):
    """A table named in tables.yml does not exist at the source."""


class SourceReadError(EtlError):
    """The source failed while a table was being read."""


@dataclass(frozen=True)
class LiveColumn:
    name: str
    source_type: str
    charset: str | None = None
    nullable: bool = True

    @property
    def kind(self) -> str:
        return map_column_type(self.source_type).kind

    @property
    def pg_type(self) -> str:
        return map_column_type(self.source_type).pg_type

    @property
    def target_name(self) -> str:
        return self.name.lower()


LIVE_COLUMNS_SQL = """
SELECT COLUMN_NAME, COLUMN_TYPE, CHARACTER_SET_NAME, IS_NULLABLE
  FROM information_schema.COLUMNS
 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s
 ORDER BY ORDINAL_POSITION
"""

JSON_COLUMNS_SQL = """
SELECT CHECK_CLAUSE
  FROM information_schema.CHECK_CONSTRAINTS
 WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = %s AND CHECK_CLAUSE LIKE 'json_valid(%%'
"""


def live_columns(conn: SourceConnection, table: str) -> list[LiveColumn]:
    """The table's columns as the source has them now (MariaDB JSON columns reported as json)."""
    cur = conn.cursor()
    cur.execute(LIVE_COLUMNS_SQL, (table,))
    rows = [(_text(n), _text(t), cs and _text(cs), _text(nl) == "YES") for n, t, cs, nl in cur.fetchall()]
    if not rows:
        raise SourceTableMissing(
            f"table {table!r} does not exist at the source; "
            "re-run analyze-schema or disable it in tables.overrides.yml"
        )
    cur.execute(JSON_COLUMNS_SQL, (table,))
    json_cols = {_text(clause)[len("json_valid(`") : -2].replace("``", "`") for (clause,) in cur.fetchall()}
    cur.close()
    return [
        LiveColumn(n, "json" if n in json_cols and t.lower() == "longtext" else t, cs, nl)
        for n, t, cs, nl in rows
    ]


def source_upper_bound(conn: SourceConnection, table: str, cursor: str, local_time: bool = False) -> Any:
    """The upper bound of an incremental read: the source clock minus one second (the current second
    is read next time), capped by the newest cursor value in the table.

    The cap keeps the window on the data's own clock: rows stamped by an application server whose
    clock is behind the database's (or by a simulated clock) are still read next time, because the
    next window starts at this bound minus the lookback. NULL (an empty table) means "no cursor yet".
    `local_time=True` reads the clock in the server's own time zone, for DATETIME cursors.
    """
    cur = conn.cursor()
    if local_time:
        cur.execute("SET time_zone = @@global.time_zone")
    try:
        cur.execute(
            f"SELECT LEAST(MAX({quote_mysql_ident(cursor)}), NOW() - INTERVAL 1 SECOND) "
            f"FROM {quote_mysql_ident(table)}"
        )
        (value,) = cur.fetchone()
    finally:
        if local_time:
            cur.execute("SET time_zone = '+00:00'")
        cur.close()
    return value


def source_clock_bound(conn: SourceConnection, local_time: bool = False) -> datetime:
    """The source clock minus one second: no row can still arrive at or below it with a cursor
    stamped by the database clock (the current second is read next time).

    Read without touching the table, so a window can be bounded before it is read and the new
    cursor taken from the rows actually read (one scan instead of a MAX scan plus the window).
    `local_time=True` reads the clock in the server's own time zone, for DATETIME cursors.
    """
    cur = conn.cursor()
    if local_time:
        cur.execute("SET time_zone = @@global.time_zone")
    try:
        cur.execute("SELECT NOW() - INTERVAL 1 SECOND")
        (value,) = cur.fetchone()
    finally:
        if local_time:
            cur.execute("SET time_zone = '+00:00'")
        cur.close()
    return value


def scalar(conn: SourceConnection, sql: str, params: Params = ()) -> Any:
    cur = conn.cursor()
    cur.execute(sql, params)
    row = cur.fetchone()
    cur.close()
    return row[0] if row else None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, (bytes, bytearray)) else str(value)


class LineStream:
    """A file-like object for `copy_expert`: COPY-text bytes read from the source by a thread.

    `read()` returns whole batches; `rows` and `bytes` count what went through. Errors of the
    reader thread are re-raised in the consumer. With `track_max` the SELECT returns a second
    column (the cursor as text, `sql_render.cursor_expression`) and `max_value` is the largest
    non-NULL value of it that was read (bytes).
    """

    def __init__(
        self,
        cfg: MySQLSettings,
        sql: str,
        params: Params = (),
        table: str = "",
        progress: Callable[[int], None] | None = None,
        parts: Sequence[tuple[str, Params]] | None = None,
        track_max: bool = False,
    ) -> None:
        """`parts`: optional [(sql, params), ...] read in parallel streams instead of `sql`."""
        self.rows = 0
        self.bytes = 0
        self.max_value: bytes | None = None
        self._track_max = track_max
        self._cfg = cfg
        self._table = table
        self._progress = progress
        self._queue: queue.Queue[tuple[int, bytes] | None] = queue.Queue(maxsize=QUEUE_BATCHES)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        parts = parts or [(sql, params)]
        self._pending = len(parts)
        self._lock = threading.Lock()
        self._conns = [connect_source(cfg, streaming=True) for _ in parts]
        self._threads = [
            threading.Thread(target=self._read, args=(conn, q, p), daemon=True, name=f"read-{table}-{i}")
            for i, (conn, (q, p)) in enumerate(zip(self._conns, parts, strict=False))
        ]
        for thread in self._threads:
            thread.start()

    def _read(self, conn: SourceConnection, sql: str, params: Params) -> None:
        try:
            cur = conn.cursor()
            cur.execute(sql, params or None)
            batch_no = 0
            while not self._stop.is_set():
                rows = cur.fetchmany(BATCH_ROWS)
                if not rows:
                    break
                lines = [r[0] for r in rows]
                if self._track_max:
                    self._note_max(rows)
                if None in lines:
                    raise SourceReadError(
                        f"{self._table}: a row is larger than the source's "
                        "max_allowed_packet; raise it on the source server"
                    )
                lines.append(b"")  # the last line's newline, without copying the batch again
                self._queue.put((len(rows), b"\n".join(lines)))
                batch_no += 1
                if batch_hook is not None:
                    batch_hook(self._table, batch_no)
            cur.close()
        except SOURCE_ERRORS as exc:  # the code and class only: a driver's message may quote row values
            code = source_error_code(exc)
            self._error = self._error or SourceReadError(
                f"{self._table}: source read failed: ({code if code is not None else ''}) {type(exc).__name__}"
            )
        except BaseException as exc:
            self._error = self._error or exc
        finally:
            with self._lock:
                self._pending -= 1
                last = self._pending == 0
            if last or self._error is not None:
                self._queue.put(None)

    def _note_max(self, rows: Sequence[tuple[bytes | None, ...]]) -> None:
        top = max(filter(None, map(itemgetter(1), rows)), default=None)  # C loops: millions of rows
        if top is not None:
            with self._lock:
                if self.max_value is None or top > self.max_value:
                    self.max_value = top

    def read(self, size: int = -1) -> bytes:
        item = self._queue.get()
        if item is None:
            self._queue.put(None)  # keep returning EOF
            if self._error is not None:
                raise self._error
            return b""
        rows, chunk = item
        self.rows += rows
        self.bytes += len(chunk)
        if self._progress is not None:
            self._progress(self.rows)
        return chunk

    def readline(self, size: int = -1) -> bytes:  # psycopg2 only calls read(); kept for file-likeness
        return self.read(size)

    def close(self) -> None:
        self._stop.set()
        alive = [c for c, t in zip(self._conns, self._threads, strict=False) if t.is_alive()]
        if alive:
            self._kill_queries(alive)
        while any(t.is_alive() for t in self._threads):
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.1)
        for conn in self._conns:
            with contextlib.suppress(*SOURCE_ERRORS):
                conn.close()

    def _kill_queries(self, conns: Sequence[SourceConnection]) -> None:
        # An unbuffered result must otherwise be read to its end before the connection is usable.
        try:
            killer = connect_source(self._cfg)
            for conn in conns:
                killer.cursor().execute(f"KILL QUERY {int(conn.thread_id())}")
            killer.close()
        except _KILL_ERRORS:
            pass

    def check(self) -> None:
        """Raise the reader's error, if any (after COPY finished)."""
        if self._error is not None:
            raise self._error
