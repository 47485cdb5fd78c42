"""The rows a load reads, and the cursor it saves: one object each, with explicit ends.

Shaped after dlt's `Incremental` (cursor_path, initial_value, end_value, lag, range_start,
range_end): a `Window` names the cursor column and its kind, the lower bound and whether it is open
or closed, the upper bound and whether it is open or closed, and the lookback already taken off the
lower bound; `where()` renders the MySQL condition and its parameters from it.

| cursor kind                      | lower end (incremental)        | upper end                              |
|----------------------------------|--------------------------------|----------------------------------------|
| key: append_only's integer key   | open at saved - lookback_keys  | closed at MAX(key), taken before       |
| datetime, timestamp              | closed at saved - lookback     | closed at the source clock - 1 s       |
| date                             | closed at saved - lookback     | closed at min(MAX(cursor), clock - 1 s)|

A full load has no lower end (and no upper end but for a key cursor). Rows tied at the saved
value are read again by a closed lower end, which is what the lookback is for: a second can
receive more rows after a load read it. The upper end is fixed before the read, so rows written
during the read are left to the next window. `incremental_window` builds the window from the saved
cursor; `reread` then moves its lower end down for what only the source can tell:

- Keys (`lookback_keys`): on InnoDB a transaction can commit key 11 after key 12 was committed and
  read, so the key window re-reads the last `lookback_keys` keys below the saved one; a key that
  was missing there and has appeared since is loaded (a late row). Re-read rows that did not change
  are not rewritten by the merge. Keys that commit later than that are found by the append-only
  key check (see `append_only`).
- The clock falling back (DATETIME cursors): DATETIME values are the server's local wall time,
  which repeats an hour when the clocks fall back (America/Chicago 2026-11-01 01:00-02:00 happens
  twice). The loader guarantees no row is missed there whatever `lookback_minutes` is: when the
  source zone's UTC offset now is smaller than at the saved cursor (or two hours before it), the
  lower end moves down by the difference (`source.clock_fell_back`), so rows stamped in the repeated
  hour after a load that read its first pass are read. The saved cursor never moves back (a row of
  the second pass stamped below it is still read, as the lookback reaches it), so for a day after
  the change each load re-reads up to an hour more. Not covered: loads more than half a year apart,
  where a fall-back and the next spring-forward cancel out. TIMESTAMP cursors are read in UTC and
  never repeat.

The saved cursor (`etl.load_state.cursor_value`) is text: the key in decimal, a time as
'YYYY-MM-DD HH:MM:SS[.ffffff]'. How it moves after a load is in `after_incremental` and
`after_full`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, Literal, TypeVar

from etl_pipeline.errors import ConfigError
from etl_pipeline.load.source import LiveColumn
from etl_pipeline.schema.constants import CURSOR_STRATEGIES
from etl_pipeline.schema.tables_config import TableConfig
from etl_pipeline.type_mapping import quote_mysql_ident

CursorKind = Literal["key", "datetime", "timestamp", "date"]
End = Literal["open", "closed"]
# int for a key cursor, datetime for a time cursor (a date cursor's bound is the datetime of its midnight)
CursorValue = int | datetime
_TIME_KINDS: dict[str, CursorKind] = {"datetime": "datetime", "timestamp": "timestamp", "date": "date"}


@dataclass(frozen=True)
class Cursor:
    """A table's cursor column as the source has it now."""

    table: str
    column: str
    kind: CursorKind

    @property
    def tracked(self) -> bool:
        """The new cursor is the newest value read, taken in the read's own scan (no MAX query;
        cursor columns mostly have no index): datetime and timestamp cursors."""
        return self.kind in ("datetime", "timestamp")

    @property
    def local_time(self) -> bool:
        """DATETIME values are in the server's own time zone; TIMESTAMPs are read in UTC."""
        return self.kind == "datetime"

    def value(self, text: str) -> CursorValue:
        """A saved cursor's value; ValueError when the text is not one of this kind."""
        if self.kind == "key":
            return int(text)
        return datetime.fromisoformat(text)


def cursor_of(table: TableConfig, live: Mapping[str, LiveColumn]) -> Cursor | None:
    """The cursor of `table` (None: it has none); `live` maps lowercase source names to columns.

    A cursor missing at the source, or of a kind no window can be bounded by, is a configuration
    error for the strategies that read by cursor; a `full` table then just keeps no cursor.
    """
    if not table.cursor:
        return None
    reads_by_cursor = table.strategy in CURSOR_STRATEGIES
    col = live.get(table.cursor.lower())
    if col is None:
        if reads_by_cursor:
            raise ConfigError(f"{table.name}: cursor column {table.cursor!r} not found at the source")
        return None
    if table.strategy == "append_only" and tuple(table.primary_key) == (table.cursor,):
        if col.kind == "integer":
            return Cursor(table.name, table.cursor, "key")
    elif col.kind in _TIME_KINDS:
        return Cursor(table.name, table.cursor, _TIME_KINDS[col.kind])
    if reads_by_cursor:
        raise ConfigError(
            f"{table.name}: cursor column {col.name!r} is of kind {col.kind}; a cursor is a date, datetime "
            "or timestamp column (or append_only's integer primary key): fix tables.overrides.yml"
        )
    return None


V = TypeVar("V", int, datetime)


@dataclass(frozen=True)
class Window(Generic[V]):
    """The rows of one read: `lower`/`upper` None means no bound on that side."""

    column: str | None = None  # None: no cursor, every row
    kind: CursorKind | None = None
    lower: V | None = None
    lower_end: End = "closed"
    upper: V | None = None
    upper_end: End = "closed"
    lookback: timedelta = timedelta(0)  # already taken off `lower`
    lookback_keys: int = 0  # already taken off `lower` (a key cursor)
    empty: bool = False  # the source table was empty when the upper bound was read: nothing to read

    def where(self) -> tuple[str, tuple[V, ...]]:
        """The MySQL condition ('' for every row) and its parameters."""
        if self.empty:
            return "1 = 0", ()
        if self.column is None:
            return "", ()
        col = quote_mysql_ident(self.column)
        parts: list[str] = []
        params: list[V] = []
        if self.lower is not None:
            parts.append(f"{col} {'>' if self.lower_end == 'open' else '>='} %s")
            params.append(self.lower)
        if self.upper is not None:
            parts.append(f"{col} {'<' if self.upper_end == 'open' else '<='} %s")
            params.append(self.upper)
        return " AND ".join(parts), tuple(params)

    def contains(self, value: V) -> bool:
        """Whether a row with this cursor value is read: the condition of `where`, in Python."""
        if self.empty:
            return False
        if self.lower is not None:
            above = value > self.lower if self.lower_end == "open" else value >= self.lower
            if not above:
                return False
        if self.upper is None:
            return True
        return value < self.upper if self.upper_end == "open" else value <= self.upper


AnyWindow = Window[int] | Window[datetime]
EVERY_ROW: Window[int] = Window()


def full_window(cursor: Cursor | None, upper: CursorValue | None) -> AnyWindow:
    """A full load reads every row; with a key cursor only up to the MAX(key) taken before the read,
    so the saved key is exactly the end of what was read."""
    if cursor is not None and cursor.kind == "key" and upper is not None:
        return Window(cursor.column, cursor.kind, upper=_key(upper))
    return EVERY_ROW


def incremental_window(
    cursor: Cursor, saved: str, upper: CursorValue | None, lookback_minutes: int
) -> AnyWindow:
    """The rows after the saved cursor up to `upper` (None: the source table is empty now)."""
    if upper is None:
        return Window(cursor.column, cursor.kind, empty=True)
    if cursor.kind == "key":  # keys only grow: nothing is re-read, so no lookback
        return Window(cursor.column, cursor.kind, lower=int(saved), lower_end="open", upper=_key(upper))
    lookback = timedelta(minutes=int(lookback_minutes))
    return Window(
        cursor.column,
        cursor.kind,
        lower=datetime.fromisoformat(saved) - lookback,
        upper=_time(upper),
        lookback=lookback,
    )


def reread(window: AnyWindow, *, lookback_keys: int = 0, clock_shift: timedelta = timedelta(0)) -> AnyWindow:
    """`window` with its lower end moved down (see the module): by `lookback_keys` keys for a key
    cursor, by `clock_shift` (the source clock fell back) for a time cursor. An empty window, or one
    without a lower end, stays as it is."""
    if window.empty or window.lower is None:
        return window
    if window.kind == "key" and lookback_keys > 0:
        keys: Window[int] = Window(
            window.column,
            window.kind,
            lower=_key(window.lower) - lookback_keys,
            lower_end=window.lower_end,
            upper=None if window.upper is None else _key(window.upper),
            upper_end=window.upper_end,
            lookback_keys=window.lookback_keys + lookback_keys,
        )
        return keys
    if window.kind in ("datetime", "timestamp", "date") and clock_shift > timedelta(0):
        times: Window[datetime] = Window(
            window.column,
            window.kind,
            lower=_time(window.lower) - clock_shift,
            lower_end=window.lower_end,
            upper=None if window.upper is None else _time(window.upper),
            upper_end=window.upper_end,
            lookback=window.lookback + clock_shift,
        )
        return times
    return window


def saved_value(window: AnyWindow) -> CursorValue | None:
    """The saved cursor a lookback was taken from (the lower end plus what was taken off it)."""
    if window.lower is None:
        return None
    if window.kind == "key":
        return _key(window.lower) + window.lookback_keys
    return _time(window.lower) + window.lookback


def _key(value: CursorValue) -> int:
    if not isinstance(value, int):
        raise TypeError(f"a key cursor's bound is an int, not {type(value).__name__}")
    return value


def _time(value: CursorValue) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"a time cursor's bound is a datetime, not {type(value).__name__}")
    return value


def cursor_text(value: object) -> str | None:
    """A cursor value as it is saved (bytes: the reader's text of a time cursor)."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return value.decode()
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def after_incremental(
    cursor: Cursor, saved: str, read_max: bytes | None, upper: CursorValue | None
) -> str | None:
    """The cursor saved after an incremental load.

    A tracked (time) cursor is the newest value read, but never before the saved one (the newest row
    may have been deleted) and never past the upper bound (no second that can still receive rows is
    passed; the window's closed upper end already keeps every value read at or below it). A key or
    date cursor is the upper bound itself, taken before the read: a key cursor may so move back when
    the newest keys were deleted, and an auto-increment that reuses them is still read.
    """
    if not cursor.tracked:
        return cursor_text(upper)
    read = cursor_text(read_max)
    if read is None or _later(saved, read):
        return saved
    bound = cursor_text(upper)
    if bound is not None and _later(read, bound):
        return bound
    return read


def after_full(cursor: Cursor | None, read_max: bytes | None, upper: CursorValue | None) -> str | None:
    """The cursor saved after a full load (None: no cursor, or an empty table).

    A tracked cursor is the newest value read, capped at the clock bound taken before the read: a
    full load has no upper end, and a row stamped ahead of the source clock must not carry the
    cursor past rows still to come (it is read again next time). Otherwise the upper bound.
    """
    if cursor is None:
        return None
    if not cursor.tracked:
        return cursor_text(upper)
    read = cursor_text(read_max)
    bound = cursor_text(upper)
    if read is None or bound is None:
        return read
    return bound if _later(read, bound) else read


def _later(a: str, b: str) -> bool:
    """Time cursor text `a` is after `b` (compared as times: '…:05' and '…:05.000' are one time)."""
    return datetime.fromisoformat(a) > datetime.fromisoformat(b)
