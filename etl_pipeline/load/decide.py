"""Full refresh, incremental load or skip: decided in one place, with the reason.

`decide` looks only at what is known before the read (the table's configuration and cursor, the
saved state, raw's and the source's columns, the source marks) and returns a `Decision`. The reason
is logged, carried in `TableLoadResult.reason` and recorded in `etl.load_runs.reason`.

Full, first match wins: raw lacked the loader's columns, no primary key, strategy full, forced, no
raw table yet, no cursor, no saved cursor, the cursor column changed, the saved cursor unreadable, a
column changed to a type raw cannot widen to, a key column missing in raw, the source table
re-created (restored from a backup: rows may carry cursors older than the saved one). Incremental
otherwise; with new (or renamed) source columns, which rows outside the window hold values of too,
the incremental load also fills them for every row raw holds (`columns_added`, `column_renamed`).
Either is skipped when the source was not written since the last load (`unchanged`): an
incremental load always (but not one that fills new columns); a full refresh only when it is full
by nature (strategy full or no primary key), not forced, and raw already holds the table in the
source's current shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from etl_pipeline.load import raw, unchanged
from etl_pipeline.load.source import LiveColumn
from etl_pipeline.load.state import LoadState
from etl_pipeline.load.unchanged import SourceMark
from etl_pipeline.load.window import Cursor
from etl_pipeline.schema.tables_config import TableConfig


class Mode(StrEnum):
    FULL = "full"
    INCREMENTAL = "incremental"
    SKIP = "skip"


class Reason(StrEnum):
    """Why a table is loaded the way it is; the value is what `etl.load_runs.reason` holds."""

    RAW_LACKS_META_COLUMNS = "raw_lacks_meta_columns"
    NO_PRIMARY_KEY = "no_primary_key"
    STRATEGY_FULL = "strategy_full"
    FORCED = "forced"
    FIRST_LOAD = "first_load"
    NO_CURSOR = "no_cursor"
    NO_SAVED_CURSOR = "no_saved_cursor"
    CURSOR_CHANGED = "cursor_changed"
    SAVED_CURSOR_UNREADABLE = "saved_cursor_unreadable"
    INCOMPATIBLE_TYPE_CHANGE = "incompatible_type_change"
    KEY_NOT_IN_RAW = "key_not_in_raw"
    SOURCE_RECREATED = "source_recreated"
    COLUMNS_ADDED = "columns_added"
    COLUMN_RENAMED = "column_renamed"
    SAVED_CURSOR = "saved_cursor"
    UNCHANGED = "unchanged"


MESSAGES: dict[Reason, str] = {
    Reason.RAW_LACKS_META_COLUMNS: "raw lacked the loader's columns",
    Reason.NO_PRIMARY_KEY: "no primary key to merge on (the documented fallback)",
    Reason.STRATEGY_FULL: "strategy full",
    Reason.FORCED: "full refresh asked for",
    Reason.FIRST_LOAD: "no raw table yet",
    Reason.NO_CURSOR: "no cursor column configured",
    Reason.NO_SAVED_CURSOR: "no saved cursor",
    Reason.CURSOR_CHANGED: "the cursor column changed since the last load",
    Reason.SAVED_CURSOR_UNREADABLE: "the saved cursor is not a value of the cursor's kind",
    Reason.INCOMPATIBLE_TYPE_CHANGE: "a column changed type",
    Reason.KEY_NOT_IN_RAW: "a primary key column is missing in raw",
    Reason.SOURCE_RECREATED: "the source table was re-created since the last load (restored?)",
    Reason.COLUMNS_ADDED: "rows after the saved cursor, and the new columns filled for every row",
    Reason.COLUMN_RENAMED: "rows after the saved cursor, and the renamed columns filled for every row",
    Reason.SAVED_CURSOR: "rows after the saved cursor",
    Reason.UNCHANGED: "source not written since the last load: nothing to read",
}
# Reasons an operator should look at (the others are the loader's everyday choices).
WARNINGS = frozenset(
    {
        Reason.RAW_LACKS_META_COLUMNS,
        Reason.INCOMPATIBLE_TYPE_CHANGE,
        Reason.SOURCE_RECREATED,
        Reason.COLUMN_RENAMED,
    }
)
# Incremental loads that also fill new columns for every row raw holds (see `backfill`).
BACKFILLS = frozenset({Reason.COLUMNS_ADDED, Reason.COLUMN_RENAMED})


@dataclass(frozen=True)
class Decision:
    mode: Mode
    reason: Reason
    detail: str = ""  # column names and types only, never values

    @property
    def message(self) -> str:
        return MESSAGES[self.reason] + (f": {self.detail}" if self.detail else "")

    @property
    def warns(self) -> bool:
        """Worth a warning of its own (the others are in the load's done line)."""
        return self.reason in WARNINGS

    @property
    def backfills(self) -> bool:
        """The new source columns are filled for the rows outside the window too (`backfill`)."""
        return self.reason in BACKFILLS


def decide(
    table: TableConfig,
    *,
    cursor: Cursor | None,
    previous: LoadState | None,
    raw_columns: Mapping[str, str] | None,
    live: Sequence[LiveColumn],
    mark: SourceMark | None = None,
    previous_mark: SourceMark | None = None,
    lacking_meta: Sequence[str] = (),
    forced: bool = False,
) -> Decision:
    """How to load `table` now; `raw_columns` None: no raw table; `lacking_meta`: the loader's
    columns raw lacked (just added, see `raw.add_missing_meta_columns`); `forced`: a full refresh
    was asked for."""
    if lacking_meta:
        chosen = Decision(Mode.FULL, Reason.RAW_LACKS_META_COLUMNS, ", ".join(lacking_meta))
    else:
        chosen = _full_or_incremental(table, cursor, previous, raw_columns, live, mark, previous_mark, forced)
    if _skippable(chosen, previous, raw_columns, live, forced) and unchanged.unchanged_since(
        mark, previous_mark
    ):
        return Decision(Mode.SKIP, Reason.UNCHANGED)
    return chosen


def _full_or_incremental(
    table: TableConfig,
    cursor: Cursor | None,
    previous: LoadState | None,
    existing: Mapping[str, str] | None,
    live: Sequence[LiveColumn],
    mark: SourceMark | None,
    previous_mark: SourceMark | None,
    forced: bool,
) -> Decision:
    reason = _full_by_config(table, forced, existing)
    if reason is not None:
        return Decision(Mode.FULL, reason)
    assert existing is not None  # _full_by_config: no raw table is a first load
    reason = _full_by_cursor(table, cursor, previous)
    if reason is not None:
        return Decision(Mode.FULL, reason)
    drift = raw.plan_drift(live, existing)
    if drift.needs_rebuild:
        changes = [
            f"column {c.target_name} changed from {old} to {c.pg_type} (not a widening)"
            for c, old in drift.incompatible
        ]
        return Decision(Mode.FULL, Reason.INCOMPATIBLE_TYPE_CHANGE, "; ".join(changes))
    if any(c.lower() not in existing for c in table.primary_key):
        return Decision(Mode.FULL, Reason.KEY_NOT_IN_RAW)
    # MyISAM rebuilds a table on every ALTER, so a new CREATE_TIME with a changed shape is an ALTER
    # (handled as drift); with the same shape it is a re-creation, e.g. a restore from a backup.
    if unchanged.recreated(mark, previous_mark) and not drift.source_columns_changed:
        return Decision(Mode.FULL, Reason.SOURCE_RECREATED)
    if drift.add:
        return _columns_added(drift)
    return Decision(Mode.INCREMENTAL, Reason.SAVED_CURSOR)


def _columns_added(drift: raw.DriftPlan) -> Decision:
    """New (or renamed) source columns: the window's rows bring their values, `backfill` the others'.
    A targeted read of the key and the new columns, measured against a full refresh on the largest
    table (bench/bench_upgrade.py), is the faster of the two."""
    renamed = {col.target_name: old for old, col in drift.renamed}
    detail = "; ".join(
        f"column {renamed[c.target_name]} renamed to {c.target_name} ({renamed[c.target_name]} kept)"
        if c.target_name in renamed
        else f"column {c.target_name} {c.pg_type} added"
        for c in drift.add
    )
    return Decision(Mode.INCREMENTAL, Reason.COLUMN_RENAMED if renamed else Reason.COLUMNS_ADDED, detail)


def _full_by_config(table: TableConfig, forced: bool, existing: Mapping[str, str] | None) -> Reason | None:
    if not table.primary_key:
        return Reason.NO_PRIMARY_KEY
    if table.strategy == "full":
        return Reason.STRATEGY_FULL
    if forced:
        return Reason.FORCED
    if existing is None:
        return Reason.FIRST_LOAD
    return None


def _full_by_cursor(table: TableConfig, cursor: Cursor | None, previous: LoadState | None) -> Reason | None:
    if not table.cursor or cursor is None:
        return Reason.NO_CURSOR
    if previous is None or previous.cursor_value is None:
        return Reason.NO_SAVED_CURSOR
    if previous.cursor_column != table.cursor:
        return Reason.CURSOR_CHANGED
    try:
        cursor.value(previous.cursor_value)
    except ValueError:
        return Reason.SAVED_CURSOR_UNREADABLE
    return None


def _skippable(
    chosen: Decision,
    previous: LoadState | None,
    existing: Mapping[str, str] | None,
    live: Sequence[LiveColumn],
    forced: bool,
) -> bool:
    """May this load be skipped when the source table was not written since the last one?"""
    if chosen.backfills:
        return False  # raw lacks columns the source has
    if chosen.mode is Mode.INCREMENTAL:
        return True
    if chosen.reason not in (Reason.NO_PRIMARY_KEY, Reason.STRATEGY_FULL):
        return False  # full for a reason of its own: first load, cursor changed, drift, re-created...
    if forced or existing is None or previous is None or previous.last_status != "success":
        return False
    return not raw.plan_drift(live, existing).source_columns_changed  # a refresh would rewrite the same rows
