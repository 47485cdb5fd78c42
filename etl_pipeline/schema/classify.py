"""How a source table is loaded: tier, strategy, cursor. Every rule lives in this module.

Strategy rules, first match wins:

1. **append_only** (cursor = the primary key) when the table has a single auto-increment integer
   primary key and either
   - its name is a known insert-only table (`INSERT_ONLY_TABLES`: audit and history tables that
     OpenDental only ever inserts into; histappointment even has an ON UPDATE `DateTStamp`, but it is
     stamped once when the history row is written), or
   - it has no ON UPDATE timestamp and has a known insert-only audit column (`INSERT_ONLY_COLUMNS`,
     e.g. securitylog.LogDateTime, histappointment.HistDateTStamp).
   Rows past the highest loaded key are new; nothing is ever re-read, so no lookback and no delete
   detection.
2. **incremental** (cursor = the change timestamp, ordered by (cursor, primary key)) when the table has
   a primary key and a `timestamp ... ON UPDATE CURRENT_TIMESTAMP` column (DateTStamp, SecDateTEdit;
   a `datetime ... ON UPDATE` column is used when there is no timestamp one).
   When several exist, `CHANGE_STAMP_PREFERENCE` picks one. The loader re-reads a `lookback_minutes`
   window (1-second stamps, long transactions) and reconciles primary keys to find hard deletes.
3. **full** otherwise (no change stamp, or no primary key to merge on): the table is replaced each
   run, which also removes deleted rows, so delete detection is not needed.

Tiers come from the row estimate: large >= 1,000,000, medium >= 100,000, small >= 10,000, tiny below
(`etl_pipeline.schema.constants.Thresholds`, configurable in the `defaults:` block of the overrides file).
"""

from __future__ import annotations

from dataclasses import dataclass

from etl_pipeline.schema.constants import DEFAULT_LOOKBACK_MINUTES, Strategy, Thresholds, Tier
from etl_pipeline.schema.introspect import SourceTable
from etl_pipeline.type_mapping import parse_column_type

# OpenDental tables that are only ever inserted into (audit trails and history).
INSERT_ONLY_TABLES = frozenset({"securitylog", "securityloghash", "histappointment", "procnote"})
# Columns written once when an audit row is inserted; with no ON UPDATE stamp they mark a log table.
INSERT_ONLY_COLUMNS = frozenset({"logdatetime", "histdatetstamp"})
# Preferred change stamps when a table has more than one ON UPDATE timestamp.
CHANGE_STAMP_PREFERENCE = ("DateTStamp", "SecDateTEdit")

DEFAULT_THRESHOLDS = Thresholds()
_INTEGER_BASES = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint"}


@dataclass(frozen=True)
class Classification:
    tier: Tier
    strategy: Strategy
    cursor: str | None
    lookback_minutes: int
    detect_deletes: bool
    reason: str


def round_estimate(rows: int) -> int:
    """Round to 2 significant digits so small InnoDB estimate jitter does not change the file."""
    rows = max(int(rows), 0)
    if rows < 100:
        return rows
    step = 10 ** (len(str(rows)) - 2)
    return (rows + step // 2) // step * step


def tier_for(rows: int, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> Tier:
    if rows >= thresholds.large:
        return "large"
    if rows >= thresholds.medium:
        return "medium"
    if rows >= thresholds.small:
        return "small"
    return "tiny"


def change_stamp(table: SourceTable) -> str | None:
    """The ON UPDATE column to use as a change cursor, if any (timestamp before datetime)."""
    stamps = [
        c
        for c in table.columns
        if c.on_update and parse_column_type(c.column_type)[0] in ("timestamp", "datetime")
    ]
    names = [c.name for c in stamps]
    for preferred in CHANGE_STAMP_PREFERENCE:
        if preferred in names:
            return preferred
    stamps.sort(key=lambda c: parse_column_type(c.column_type)[0] != "timestamp")
    return stamps[0].name if stamps else None


def classify(
    table: SourceTable,
    estimated_rows: int,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    lookback_minutes: int = DEFAULT_LOOKBACK_MINUTES,
) -> Classification:
    tier = tier_for(estimated_rows, thresholds)
    pk = table.primary_key
    stamp = change_stamp(table)
    if _has_serial_pk(table):
        if table.name.lower() in INSERT_ONLY_TABLES:
            return Classification(tier, "append_only", pk[0], 0, False, "known insert-only table")
        audit = [c.name for c in table.columns if c.name.lower() in INSERT_ONLY_COLUMNS]
        if audit and stamp is None:
            return Classification(
                tier,
                "append_only",
                pk[0],
                0,
                False,
                f"insert-only audit column {audit[0]} and no update stamp",
            )
    if stamp and pk:
        return Classification(tier, "incremental", stamp, lookback_minutes, True, f"ON UPDATE stamp {stamp}")
    reason = "no primary key to merge on" if stamp else "no change timestamp"
    return Classification(tier, "full", None, 0, False, reason)


def _has_serial_pk(table: SourceTable) -> bool:
    pk = table.primary_key
    if len(pk) != 1:
        return False
    col = table.column(pk[0])
    return col is not None and col.auto_increment and parse_column_type(col.column_type)[0] in _INTEGER_BASES
