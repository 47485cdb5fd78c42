"""Reading the source: live columns, the source clock, and the streaming line reader.

The reader runs the rendering SELECT (see `sql_render`) on an unbuffered cursor in a thread of its
own and hands batches of COPY-text bytes to the writer through a small bounded queue, so the next
batch is read while the previous one is copied and memory stays a few batches deep. It works the same
with either source driver (`etl_pipeline.db`): the SELECT returns binary strings, which both give as bytes.

A part of the read is one statement, or `KeyChunks`: statements over successive key ranges, each
fetched whole before its rows are handed on, so that on MyISAM (which read-locks the table for a
statement's whole life, its sending included) the lock is held for one chunk at a time and the
clinic's writes wait at most that long (`read_plan` decides which). With `snapshot` every reader
connection reads inside START TRANSACTION WITH CONSISTENT SNAPSHOT (InnoDB: no locks, one view).

Nothing waits forever: the driver's read timeout ends a statement the source stopped answering, the
writer gives up on a reader that sent nothing for longer than that, and a reader whose batches the
writer stopped taking ends when the stream is closed.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

from etl_pipeline.db import SOURCE_ERRORS, SourceConnection, SourceCursor, connect_source, source_error_code
from etl_pipeline.errors import EtlError
from etl_pipeline.redact import redact_error
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


class SourceStalled(SourceReadError):
    """The source stopped answering while a table was being read (its read timeout passed)."""


@dataclass(frozen=True)
class KeyChunks:
    """A part read as successive statements over ranges of an integer key.

    `sql` ends in `<key> BETWEEN %s AND %s` and is run with `params` plus each range, from `low` to
    `high`. The first range is `width` keys wide; each next one is sized from the last one's rows and
    time to return about `rows` rows within `seconds` (sparse keys widen it, wide rows narrow it).
    """

    sql: str
    params: tuple[Any, ...]
    low: int
    high: int
    rows: int
    seconds: float
    width: int


Part = tuple[str, "Params"] | KeyChunks


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


def clock_fell_back(conn: SourceConnection, saved: datetime) -> timedelta:
    """How far the server's local clock was set back since the saved DATETIME cursor `saved` (0: not).

    The UTC offset of the server's zone now is compared with its offsets at `saved` and two hours
    before it (a wall time in the repeated hour is ambiguous; the earlier one is not), so a fall-back
    shortly after the saved cursor's time is seen whichever way the server reads that time. Times
    before 1970 (no UNIX time) are not compared.
    """
    cur = conn.cursor()
    cur.execute("SET time_zone = @@global.time_zone")
    try:
        earlier = saved - timedelta(hours=2)
        # now as UNIX_TIMESTAMP() itself: NOW()'s wall time may be the ambiguous one
        cur.execute(
            "SELECT UNIX_TIMESTAMP(%s), UNIX_TIMESTAMP(%s), UNIX_TIMESTAMP(), NOW()", (earlier, saved)
        )
        at_earlier, at_saved, at_now, now = cur.fetchone()
    finally:
        cur.execute("SET time_zone = '+00:00'")
        cur.close()
    offset_now = _utc_offset(now, at_now)
    before = [_utc_offset(w, e) for w, e in ((earlier, at_earlier), (saved, at_saved)) if e]
    if offset_now is None or not before:
        return timedelta(0)
    shift = max(o for o in before if o is not None) - offset_now
    return max(shift, timedelta(0))


def _utc_offset(wall: datetime, epoch: Any) -> timedelta | None:
    """The zone's UTC offset at local time `wall`, whose UNIX time the server gave as `epoch`."""
    if epoch is None or float(epoch) <= 0:
        return None
    utc = datetime.fromtimestamp(float(epoch), UTC).replace(tzinfo=None)
    return timedelta(
        seconds=round((wall.replace(microsecond=0) - utc.replace(microsecond=0)).total_seconds())
    )


def scalar(conn: SourceConnection, sql: str, params: Params = ()) -> Any:
    cur = conn.cursor()
    cur.execute(sql, params)
    row = cur.fetchone()
    cur.close()
    return row[0] if row else None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, (bytes, bytearray)) else str(value)


class LineStream:
    """A file-like object for `copy_expert`: COPY-text bytes read from the source by threads.

    `read()` returns whole batches; `rows` and `bytes` count what went through. Errors of the
    reader threads are re-raised in the consumer. With `track_max` each SELECT returns a second
    column (the cursor as text, `sql_render.cursor_expression`) and `max_value` is the largest
    non-NULL value of it that was read (bytes). `chunks` counts the statements run.
    """

    def __init__(
        self,
        cfg: MySQLSettings,
        sql: str,
        params: Params = (),
        table: str = "",
        progress: Callable[[int], None] | None = None,
        parts: Sequence[Part] | None = None,
        track_max: bool = False,
        snapshot: bool = False,
    ) -> None:
        """`parts`: statements or `KeyChunks` read by parallel threads instead of `sql`; `snapshot`:
        read in a consistent-snapshot transaction (InnoDB)."""
        self.rows = 0
        self.bytes = 0
        self.chunks = 0
        self.slowest_chunk = 0.0  # seconds of the longest chunk statement (KeyChunks parts)
        self._batches = 0
        self._local = threading.local()  # per reader thread: when it last received data
        self.max_value: bytes | None = None
        self.table = table
        self._track_max = track_max
        self._snapshot = snapshot
        self._cfg = cfg
        self._progress = progress
        self._queue: queue.Queue[tuple[int, bytes] | None] = queue.Queue(maxsize=QUEUE_BATCHES)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        parts = parts or [(sql, params)]
        self._pending = len(parts)
        self._lock = threading.Lock()
        # the writer gives up on readers that sent nothing for longer than a read may take
        self._stall_seconds = 2 * cfg.read_timeout + 10
        self._conns = [connect_source(cfg, streaming=True) for _ in parts]
        self._threads = [
            threading.Thread(target=self._read, args=(conn, part), daemon=True, name=f"read-{table}-{i}")
            for i, (conn, part) in enumerate(zip(self._conns, parts, strict=True))
        ]
        for thread in self._threads:
            thread.start()

    def _read(self, conn: SourceConnection, part: Part) -> None:
        self._local.last_data = time.monotonic()
        try:
            cur = conn.cursor()
            if self._snapshot:
                cur.execute("START TRANSACTION READ ONLY, WITH CONSISTENT SNAPSHOT")
            if isinstance(part, KeyChunks):
                self._read_chunks(cur, part)
            else:
                sql, params = part
                cur.execute(sql, params or None)
                with self._lock:
                    self.chunks += 1
                while not self._stop.is_set():
                    rows = cur.fetchmany(BATCH_ROWS)
                    if not rows:
                        break
                    self._local.last_data = time.monotonic()
                    self._emit(rows)
            cur.close()
            if self._snapshot:
                conn.commit()
        except _Stopped:
            pass
        except SOURCE_ERRORS as exc:  # a driver's message may quote row values: redacted
            self._error = self._error or self._source_error(exc)
        except BaseException as exc:
            self._error = self._error or exc
        finally:
            with self._lock:
                self._pending -= 1
                last = self._pending == 0
            if last or self._error is not None:
                self._put(None, final=True)

    def _read_chunks(self, cur: SourceCursor, part: KeyChunks) -> None:
        """Statement after statement over key ranges; each is fetched whole first, so it ends (and a
        MyISAM table lock with it) before its rows wait in the queue for the writer."""
        low, width = part.low, max(1, part.width)
        while low <= part.high and not self._stop.is_set():
            high = min(part.high, low + width - 1)
            t0 = time.monotonic()
            cur.execute(part.sql, (*part.params, low, high))
            rows = cur.fetchall()
            elapsed = time.monotonic() - t0
            self._local.last_data = time.monotonic()
            with self._lock:
                self.chunks += 1
                self.slowest_chunk = max(self.slowest_chunk, elapsed)
            for start in range(0, len(rows), BATCH_ROWS):
                self._emit(rows[start : start + BATCH_ROWS])
            width = next_width(width, len(rows), elapsed, part.rows, part.seconds)
            low = high + 1

    def _emit(self, rows: Sequence[tuple[Any, ...]]) -> None:
        lines = [r[0] for r in rows]
        if self._track_max:
            self._note_max(rows)
        if None in lines:
            raise SourceReadError(
                f"{self.table}: a row is larger than the source's max_allowed_packet; raise it on the source server"
            )
        lines.append(b"")  # the last line's newline, without copying the batch again
        self._put((len(rows), b"\n".join(lines)))
        with self._lock:
            self._batches += 1
            batch_no = self._batches
        if batch_hook is not None:
            batch_hook(self.table, batch_no)

    def _put(self, item: tuple[int, bytes] | None, final: bool = False) -> None:
        """Queue a batch, waiting while the writer is busy; once the stream is closed, stop reading
        (`final`: the end marker, dropped then)."""
        while True:
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                if self._stop.is_set():
                    if final:
                        return
                    raise _Stopped from None

    def _source_error(self, exc: BaseException) -> SourceReadError:
        silent = time.monotonic() - self._local.last_data
        if source_error_code(exc) in _LOST_CONNECTION and silent >= self._cfg.read_timeout * 0.9:
            return SourceStalled(
                f"{self.table}: the source {self._cfg.display} hung: it sent nothing for {silent:.0f} s "
                f"(SOURCE_READ_TIMEOUT {self._cfg.read_timeout:g} s) while the table was read; nothing of "
                "this load was committed. Check the source server and the network path, then re-run."
            )
        return SourceReadError(f"{self.table}: source read failed: {redact_error(exc)}")

    def _note_max(self, rows: Sequence[tuple[bytes | None, ...]]) -> None:
        top = max(filter(None, map(itemgetter(1), rows)), default=None)  # C loops: millions of rows
        if top is not None:
            with self._lock:
                if self.max_value is None or top > self.max_value:
                    self.max_value = top

    def read(self, size: int = -1) -> bytes:
        try:
            item = self._queue.get(timeout=self._stall_seconds)
        except queue.Empty:
            self._error = self._error or SourceStalled(
                f"{self.table}: the source {self._cfg.display} hung: no rows arrived for "
                f"{self._stall_seconds:g} s (twice SOURCE_READ_TIMEOUT, and then some); nothing of this load "
                "was committed. Check the source server and the network path, then re-run."
            )
            raise self._error from None
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
        """Stop the readers (their statements killed) and close their connections; bounded by the
        source's timeouts even when it hangs."""
        self._stop.set()
        alive = [c for c, t in zip(self._conns, self._threads, strict=True) if t.is_alive()]
        if alive:
            self._kill_queries(alive)
        deadline = time.monotonic() + self._cfg.read_timeout + 5
        while any(t.is_alive() for t in self._threads) and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.1)
        for conn, thread in zip(self._conns, self._threads, strict=True):
            if (
                not thread.is_alive()
            ):  # a thread still blocked keeps its connection (a daemon: it ends with us)
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


class _Stopped(Exception):
    """The stream was closed while a reader waited to hand on a batch."""


_LOST_CONNECTION = (2006, 2013)  # server gone away, lost connection during query (a read timeout too)
CHUNK_GROWTH = 8  # the most a range widens or narrows from one statement to the next


def next_width(width: int, rows: int, seconds: float, target_rows: int, target_seconds: float) -> int:
    """The next key range's width: scaled so a statement returns about `target_rows` rows within
    `target_seconds`, by what the last one (`width` keys) returned and took."""
    by_rows = target_rows / rows if rows else float(CHUNK_GROWTH)
    by_time = target_seconds / seconds if seconds > 0 else float(CHUNK_GROWTH)
    factor = min(by_rows, by_time, float(CHUNK_GROWTH))
    return max(1, int(width * max(factor, 1 / CHUNK_GROWTH)))
