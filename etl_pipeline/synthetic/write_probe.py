"""A write probe: OpenDental-like single-row writes on a source table, each one timed.

While the loader reads a table, OpenDental keeps writing to it. On MyISAM an UPDATE takes the table's
write lock and so waits for any read holding the read lock (a streaming SELECT holds it until its last
row is sent); an INSERT does too unless the server can append it beside the readers (a concurrent
insert: `concurrent_insert` on and no deleted rows in the data file, not under `LOCK TABLES ... READ`).
On InnoDB a plain read is a snapshot and takes no row locks. The probe measures what a
clinic would feel: on a connection of its own it alternates an UPDATE of one row's non-key column by
primary key and an INSERT of one row, one write every `interval_seconds`, and records each write's
wall time (almost all of it is the wait for the lock when something holds one).

    with WriteProbe(admin_cfg, "procedurelog") as probe:
        ...                      # run the load
    report = probe.report()      # ProbeReport: count, p50/p90/p99/max, writes over 1 s, histogram

The writes are ordinary source writes, as OpenDental would make them: the UPDATE changes a text column
(the `*Note` one if there is one) and so also bumps an `ON UPDATE CURRENT_TIMESTAMP` cursor, the
INSERT copies a row picked at start under a new AUTO_INCREMENT key with the cursor set by the server (see `clock`).
A load sees them as it sees any other change. The probe stops after `max_writes` writes or
`max_seconds`, whichever comes first, or on `stop()`; a write still blocked when `stop()` gives up
waiting is killed and reported as interrupted (not in the percentiles).
"""

from __future__ import annotations

import contextlib
import math
import random
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from etl_pipeline.db import SOURCE_ERRORS, SourceConnection, connect_source, source_error_code
from etl_pipeline.errors import ConfigError
from etl_pipeline.settings import MySQLSettings
from etl_pipeline.type_mapping import quote_mysql_ident as q

WriteKind = Literal["update", "insert"]
Clock = Literal["server", "table"]
# upper bounds (seconds) of the histogram's buckets, the last one open
BUCKETS: tuple[tuple[str, float], ...] = (
    ("<10ms", 0.010),
    ("<100ms", 0.100),
    ("<1s", 1.0),
    ("<5s", 5.0),
    (">=5s", math.inf),
)
SLOW_SECONDS = 1.0
# long enough that a write blocked behind a whole-table read is measured, not aborted
LOCK_WAIT_SECONDS = 7200
UPDATE_KEYS = 1024  # distinct rows the UPDATEs cycle through
_CONNECTION_LOST = (2006, 2013)  # server gone away / lost connection: no point in trying again
_QUERY_INTERRUPTED = 1317


@dataclass(frozen=True)
class WriteSample:
    kind: WriteKind
    started: float  # time.monotonic() when the statement was sent
    seconds: float


@dataclass(frozen=True)
class ProbeReport:
    """What the probe measured. Times in seconds; percentiles by nearest rank over completed writes."""

    count: int
    updates: int
    inserts: int
    rows_updated: int  # rows the UPDATEs changed, as the server counted them
    rows_inserted: int
    errors: dict[int, int]  # server error code -> writes that failed with it (-1: the probe failed)
    interrupted: int  # writes still blocked when the probe was stopped (killed)
    interrupted_seconds: float  # the longest of those waits, so far as it went
    seconds: float  # the probe's running time
    p50: float
    p90: float
    p99: float
    max: float
    over_1s: int
    histogram: dict[str, int]

    @classmethod
    def of(
        cls,
        samples: list[WriteSample],
        *,
        rows: Counter[str],
        errors: Counter[int],
        interrupted: list[float],
        seconds: float,
    ) -> ProbeReport:
        waits = sorted(s.seconds for s in samples)
        histogram = dict.fromkeys((name for name, _ in BUCKETS), 0)
        for wait in waits:
            histogram[next(name for name, top in BUCKETS if wait < top)] += 1
        return cls(
            count=len(waits),
            updates=sum(s.kind == "update" for s in samples),
            inserts=sum(s.kind == "insert" for s in samples),
            rows_updated=rows["update"],
            rows_inserted=rows["insert"],
            errors=dict(errors),
            interrupted=len(interrupted),
            interrupted_seconds=max(interrupted, default=0.0),
            seconds=seconds,
            p50=_percentile(waits, 50),
            p90=_percentile(waits, 90),
            p99=_percentile(waits, 99),
            max=waits[-1] if waits else 0.0,
            over_1s=sum(w > SLOW_SECONDS for w in waits),
            histogram=histogram,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "updates": self.updates,
            "inserts": self.inserts,
            "rows_updated": self.rows_updated,
            "rows_inserted": self.rows_inserted,
            "errors": {str(code): n for code, n in sorted(self.errors.items())},
            "interrupted": self.interrupted,
            "interrupted_seconds": round(self.interrupted_seconds, 4),
            "seconds": round(self.seconds, 3),
            "p50_seconds": round(self.p50, 4),
            "p90_seconds": round(self.p90, 4),
            "p99_seconds": round(self.p99, 4),
            "max_seconds": round(self.max, 4),
            "over_1s": self.over_1s,
            "histogram": dict(self.histogram),
        }


def _percentile(ordered: list[float], pct: float) -> float:
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class _Statements:
    """The probe's two writes, prepared once against the table as it is when the probe starts."""

    update: str  # parameters: (new value, key)
    insert: str  # a copy of one row, literals rendered by the server
    update_keys: tuple[int, ...]
    width: int  # of the updated column
    clock_base: float | None  # with clock="table": the epoch the writes' clock starts from


@dataclass
class _Tally:
    samples: list[WriteSample] = field(default_factory=list)
    rows: Counter[str] = field(default_factory=Counter)
    errors: Counter[int] = field(default_factory=Counter)
    interrupted: list[float] = field(default_factory=list)


class WriteProbe:
    """Timed single-row writes on `table` in a thread of its own (see the module docstring).

    `seed` picks the rows the UPDATEs change; `column` is the text column they change (default: a
    `*Note` column, else the first wide varchar that is neither a key nor indexed), to values starting
    with `marker`.

    `clock="table"` is for a source whose data is not stamped by the wall clock (the synthetic one):
    the writes' session `timestamp` continues from one second after the table's newest
    `ON UPDATE CURRENT_TIMESTAMP` value, advancing in real time, so the cursor values they leave
    follow the data's own clock (the one `synth mutate` and the loader's windows go by) instead of
    jumping to today. With "server" (the default) the server stamps them with its NOW().
    """

    def __init__(
        self,
        admin_cfg: MySQLSettings,
        table: str,
        *,
        interval_seconds: float = 0.05,
        seed: int = 1,
        max_writes: int = 100_000,
        max_seconds: float = 3600.0,
        column: str | None = None,
        clock: Clock = "server",
    ) -> None:
        if interval_seconds < 0 or max_writes < 1 or max_seconds <= 0:
            raise ConfigError(
                "write probe: interval_seconds must be >= 0, max_writes >= 1 and max_seconds > 0 "
                f"(got {interval_seconds}, {max_writes}, {max_seconds})"
            )
        self.admin_cfg = admin_cfg
        self.table = table
        self.interval_seconds = interval_seconds
        self.max_writes = max_writes
        self.max_seconds = max_seconds
        self.column = column
        self.clock = clock
        self._random = random.Random(seed)
        # the UPDATEs' values start with it: unique to this probe, so every UPDATE changes its row
        self.marker = f"wp-{secrets.token_hex(3)}-"
        self._tally = _Tally()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conn: SourceConnection | None = None
        self._thread_id = 0
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self._ended: float | None = None
        self._in_flight: float | None = None  # monotonic start of the write being waited on
        self.failure: BaseException | None = None  # what ended the probe's thread, if not a bound

    # ------------------------------------------------------------------ public

    def start(self) -> WriteProbe:
        """Connect, prepare the two writes (not timed), and start writing."""
        if self._thread is not None:
            raise RuntimeError("write probe already started")
        conn = connect_source(self.admin_cfg)
        try:
            conn.autocommit(True)  # type: ignore[attr-defined]  # both drivers have it; each write commits
            cur = conn.cursor()
            cur.execute(
                f"SET SESSION lock_wait_timeout = {LOCK_WAIT_SECONDS}, "
                f"innodb_lock_wait_timeout = {LOCK_WAIT_SECONDS}"
            )
            statements = self._prepare(cur)
            cur.close()
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        # read now: mysqlclient refuses any call on a connection another thread is waiting on
        self._thread_id = int(conn.thread_id())
        self._started = time.monotonic()
        self._thread = threading.Thread(
            target=self._run, args=(statements,), daemon=True, name=f"write-probe-{self.table}"
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 60.0) -> ProbeReport:
        """Stop writing; wait up to `timeout` s for a write in flight, then kill it. Safe to call twice."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join(timeout)
            if thread.is_alive():
                self._kill_in_flight()
                thread.join(30)
        if self._conn is not None and (thread is None or not thread.is_alive()):
            with contextlib.suppress(*SOURCE_ERRORS):
                self._conn.close()
            self._conn = None
        return self.report()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the probe stops by itself (`max_writes` or `max_seconds`); True if it has."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def wait_for_writes(self, count: int, timeout: float = 30.0) -> bool:
        """Wait until `count` writes have completed; True if they have."""
        deadline = time.monotonic() + timeout
        while self.writes_done < count:
            if time.monotonic() > deadline or not self.running:
                return self.writes_done >= count
            time.sleep(0.01)
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def writes_done(self) -> int:
        with self._lock:
            return len(self._tally.samples)

    @property
    def samples(self) -> list[WriteSample]:
        """Every completed write, in order."""
        with self._lock:
            return list(self._tally.samples)

    def report(self) -> ProbeReport:
        """What was measured so far (the final figures once the probe has stopped)."""
        with self._lock:
            end = self._ended if self._ended is not None else time.monotonic()
            return ProbeReport.of(
                list(self._tally.samples),
                rows=Counter(self._tally.rows),
                errors=Counter(self._tally.errors),
                interrupted=list(self._tally.interrupted),
                seconds=end - self._started if self._started else 0.0,
            )

    def __enter__(self) -> WriteProbe:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ preparation

    def _prepare(self, cur: Any) -> _Statements:
        columns = _columns(cur, self.table)
        key = _auto_increment_key(columns, self.table)
        column, width = self._update_column(columns, key)
        keys = self._update_keys(cur, key)
        table = q(self.table)
        copied = [c["name"] for c in columns if c["name"] != key and not c["on_update"]]
        cur.execute(
            f"SELECT CONCAT_WS(', ', {', '.join(f'QUOTE({q(c)})' for c in copied)}) "
            f"FROM {table} WHERE {q(key)} = %s",
            (keys[0],),
        )
        (literals,) = cur.fetchone()
        literals = literals.decode() if isinstance(literals, (bytes, bytearray)) else literals
        return _Statements(
            update=f"UPDATE {table} SET {q(column)} = %s WHERE {q(key)} = %s",
            insert=f"INSERT INTO {table} ({', '.join(q(c) for c in copied)}) VALUES ({literals})",
            update_keys=keys,
            width=width,
            clock_base=self._clock_base(cur, columns) if self.clock == "table" else None,
        )

    def _update_column(self, columns: list[dict[str, Any]], key: str) -> tuple[str, int]:
        if self.column is not None:
            found = [c for c in columns if c["name"].lower() == self.column.lower()]
            if not found or found[0]["width"] is None:
                raise ConfigError(f"write probe: {self.table}.{self.column} is not a text column")
            return found[0]["name"], found[0]["width"]
        candidates = [
            c
            for c in columns
            if c["name"] != key
            and c["data_type"] == "varchar"
            and (c["width"] or 0) >= 16
            and not c["indexed"]
        ]
        if not candidates:
            raise ConfigError(f"write probe: {self.table} has no unindexed varchar column to update")
        best = min(candidates, key=lambda c: ("note" not in c["name"].lower(), c["position"]))
        return best["name"], best["width"]

    def _update_keys(self, cur: Any, key: str) -> tuple[int, ...]:
        """Distinct existing keys spread over the key range, in a seeded random order."""
        cur.execute(f"SELECT MIN({q(key)}), MAX({q(key)}) FROM {q(self.table)}")
        low, high = cur.fetchone()
        if low is None:
            raise ConfigError(f"write probe: {self.table} is empty, there is no row to update")
        wanted = min(UPDATE_KEYS, self.max_writes // 2 + 1)
        found: dict[int, None] = {}
        for _ in range(4 * wanted):
            if len(found) >= wanted:
                break
            cur.execute(
                f"SELECT MIN({q(key)}) FROM {q(self.table)} WHERE {q(key)} >= %s",
                (self._random.randint(int(low), int(high)),),
            )
            found[int(cur.fetchone()[0])] = None
        return tuple(found)

    def _clock_base(self, cur: Any, columns: list[dict[str, Any]]) -> float:
        stamped = [c["name"] for c in columns if c["on_update"]]
        if not stamped:
            raise ConfigError(
                f"write probe: {self.table} has no ON UPDATE timestamp column for clock='table'"
            )
        cur.execute(f"SELECT UNIX_TIMESTAMP(MAX({q(stamped[0])})) FROM {q(self.table)}")
        (newest,) = cur.fetchone()
        return float(newest if newest is not None else time.time()) + 1.0

    # ---------------------------------------------------------------- writing

    def _elapsed(self) -> float:
        return time.monotonic() - self._started

    def _run(self, statements: _Statements) -> None:
        assert self._conn is not None
        cur = self._conn.cursor()
        deadline = self._started + self.max_seconds
        next_at = self._started
        try:
            for n in range(self.max_writes):
                if self._stop.wait(max(0.0, next_at - time.monotonic())) or time.monotonic() >= deadline:
                    break
                next_at = time.monotonic() + self.interval_seconds
                clock = None
                if statements.clock_base is not None:
                    clock = f"SET timestamp = {statements.clock_base + self._elapsed():.6f}"
                kind: WriteKind = "update" if n % 2 == 0 else "insert"
                if kind == "update":
                    key = statements.update_keys[(n // 2) % len(statements.update_keys)]
                    value = f"{self.marker}{n}"[: statements.width]
                    sql, params = statements.update, (value, key)
                else:
                    sql, params = statements.insert, None
                if not self._write(cur, kind, sql, params, clock):
                    break
        except BaseException as exc:  # reported, not lost in a thread nobody joins
            with self._lock:
                self.failure = exc
                self._tally.errors[-1] += 1
        finally:
            with self._lock:
                self._ended = time.monotonic()
            with contextlib.suppress(*SOURCE_ERRORS):
                cur.close()

    def _write(
        self, cur: Any, kind: WriteKind, sql: str, params: tuple[Any, ...] | None, clock: str | None
    ) -> bool:
        """One timed write (after `clock`, untimed: it takes no lock); False when the probe should
        stop (connection lost, or killed by stop())."""
        t0 = time.monotonic()
        try:
            if clock is not None:
                cur.execute(clock)
            t0 = self._in_flight = time.monotonic()
            cur.execute(sql, params)
            rows = cur.rowcount
        except SOURCE_ERRORS as exc:  # the code only: a driver's message may quote row values
            waited = time.monotonic() - t0
            code = source_error_code(exc) or 0
            with self._lock:
                if self._stop.is_set() and code in (_QUERY_INTERRUPTED, *_CONNECTION_LOST):
                    self._tally.interrupted.append(waited)
                    return False
                self._tally.errors[code] += 1
            return code not in _CONNECTION_LOST
        finally:
            self._in_flight = None
        seconds = time.monotonic() - t0
        with self._lock:
            self._tally.samples.append(WriteSample(kind, t0, seconds))
            self._tally.rows[kind] += max(0, rows)
        return True

    def _kill_in_flight(self) -> None:
        if self._conn is None or self._in_flight is None:
            return
        try:
            killer = connect_source(self.admin_cfg)
        except Exception:  # cannot reach the server: the thread is a daemon and ends with the process
            return
        try:
            killer.cursor().execute(f"KILL QUERY {self._thread_id}")
        except SOURCE_ERRORS:
            pass
        finally:
            killer.close()


COLUMNS_SQL = """
SELECT COLUMN_NAME, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH, COLUMN_KEY, EXTRA, ORDINAL_POSITION
  FROM information_schema.COLUMNS
 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s
 ORDER BY ORDINAL_POSITION
"""
# apart from COLUMNS_SQL: as a correlated subquery it would materialise STATISTICS once per column
INDEXED_SQL = """
SELECT DISTINCT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s
"""


def _columns(cur: Any, table: str) -> list[dict[str, Any]]:
    cur.execute(COLUMNS_SQL, (table,))
    rows = cur.fetchall()
    if not rows:
        raise ConfigError(f"write probe: table {table!r} does not exist at the source")
    cur.execute(INDEXED_SQL, (table,))
    indexed = {_text(name) for (name,) in cur.fetchall()}
    columns = []
    for name, data_type, width, column_key, extra, position in rows:
        extra_text = _text(extra).lower()
        columns.append(
            {
                "name": _text(name),
                "data_type": _text(data_type).lower(),
                "width": int(width) if width is not None else None,
                "primary": _text(column_key) == "PRI",
                "auto_increment": "auto_increment" in extra_text,
                "on_update": "on update" in extra_text,
                "position": int(position),
                "indexed": _text(name) in indexed,
            }
        )
    return columns


def _auto_increment_key(columns: list[dict[str, Any]], table: str) -> str:
    primary = [c for c in columns if c["primary"]]
    if len(primary) != 1 or not primary[0]["auto_increment"]:
        raise ConfigError(f"write probe: {table} needs a single-column AUTO_INCREMENT primary key")
    return primary[0]["name"]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, (bytes, bytearray)) else str(value or "")
