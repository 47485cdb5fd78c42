"""Skipping a nightly for a source table that has not been written since the last load.

MyISAM (OpenDental's default engine) reports as `information_schema.TABLES.UPDATE_TIME` the data
file's modification time, which every INSERT, UPDATE that changes a value, DELETE, TRUNCATE and
ALTER moves. Each successful load records, in the same transaction as its data, the table's
UPDATE_TIME and the source clock taken BEFORE the read began (`checked_at`). A later load may skip
the read, the merge and the delete reconciliation when the table is still MyISAM and its
UPDATE_TIME is unchanged and lies at least SAFETY_SECONDS before that `checked_at`: the last write
then finished before the previous read started, so that read saw it. UPDATE_TIME has whole seconds
(hence the strict margin); other engines (InnoDB forgets it on restart, keeps it in memory only)
are never skipped. A changed CREATE_TIME (the table re-created, e.g. restored from a backup with
older cursor values) makes the next load a full refresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

SKIP_ENGINES = ("MyISAM",)
SAFETY_SECONDS = 2

MARK_SQL = """
SELECT ENGINE, UPDATE_TIME, NOW(), CREATE_TIME
  FROM information_schema.TABLES
 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s
"""


@dataclass(frozen=True)
class SourceMark:
    engine: str | None
    update_time: datetime | None
    checked_at: datetime
    create_time: datetime | None = None


def read_mark(src: Any, table: str) -> SourceMark | None:
    # src: a MySQLdb connection (the driver has no type information)
    """The table's engine and last write time, and the source clock (session time zone +00:00)."""
    cur = src.cursor()
    try:
        cur.execute(MARK_SQL, (table,))
        row = cur.fetchone()
    finally:
        cur.close()
    if row is None:
        return None
    engine, update_time, now, create_time = row
    engine = engine.decode() if isinstance(engine, (bytes, bytearray)) else engine
    return SourceMark(engine, update_time, now, create_time)


def recreated(mark: SourceMark | None, previous: SourceMark | None) -> bool:
    """The table was re-created (dropped and restored from a backup, or rebuilt) since the last load:
    its rows may carry cursor values older than the saved cursor, so only a full refresh is safe."""
    if mark is None or previous is None or mark.create_time is None or previous.create_time is None:
        return False
    return mark.create_time != previous.create_time


def unchanged_since(mark: SourceMark | None, previous: SourceMark | None) -> bool:
    """True when the previous successful load read everything the table holds now."""
    if mark is None or previous is None:
        return False
    if mark.engine not in SKIP_ENGINES or previous.engine != mark.engine:
        return False
    if mark.update_time is None or mark.update_time != previous.update_time:
        return False
    return mark.update_time <= previous.checked_at - timedelta(seconds=SAFETY_SECONDS)
