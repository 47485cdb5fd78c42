"""An append_only table's keys checked against the source after its window was merged: no row lost.

An append_only table is read by its integer key: `key > saved - lookback_keys` up to MAX(key) taken
before the read (see `window`). Two things escape such a window, and `reconcile` finds both at the
cost of what it finds:

- Purges. OpenDental's audit-log archiving deletes the oldest rows; raw must mark them deleted. A
  purge removes the lowest keys, so the source's MIN(key) (one look at its key index) tells it: raw's
  live keys below it are marked deleted in one range UPDATE, starting at raw's lowest live bucket
  (the key summary), so keys purged long ago are not visited again.
- Late keys. On InnoDB a transaction can hold key 11 while key 12 is committed and read; the window
  re-reads the last `lookback_keys` keys, which catches it in the usual case. A key committed later
  still is a row the source holds that raw lacks; like any other difference of the key sets it shows
  in the counts the delete check compares (`incremental.nothing_vanished`, the source's count of keys
  up to raw's largest live key against raw's kept summary), and the key buckets that differ
  (`incremental._differing_key_ranges`) are read again whole: their missing rows are loaded (counted
  as late rows) and their vanished rows marked deleted.

On a source quiet during the load the check is exact; a row written during it is judged by the next
run (see `incremental.nothing_vanished`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from psycopg2.extensions import cursor

from etl_pipeline.db import connect_source
from etl_pipeline.load import incremental, key_summary
from etl_pipeline.load.context import LoadContext
from etl_pipeline.load.read_plan import window_stream
from etl_pipeline.load.source import LiveColumn, scalar
from etl_pipeline.load.sql_render import copy_column_list
from etl_pipeline.load.window import AnyWindow
from etl_pipeline.type_mapping import quote_ident, quote_mysql_ident


@dataclass(frozen=True)
class KeyCheck:
    """What `reconcile` changed: rows marked deleted (purged or vanished), rows loaded that raw lacked
    (late), rows updated by the re-read (restored keys), and the bytes it read."""

    deleted: int = 0
    inserted: int = 0
    updated: int = 0
    bytes: int = 0


def reconcile(
    cur: cursor, ctx: LoadContext, live: Sequence[LiveColumn], target: str, window: AnyWindow
) -> KeyCheck:
    """Mark purged keys, then load the keys raw lacks and mark the ones the source lost, by bucket.
    Call after the window's merge, in its transaction, with the key summary's delta table started."""
    key_my = quote_mysql_ident(ctx.pk_live[0].name)
    src = connect_source(ctx.source_cfg)
    try:
        floor = scalar(src, f"SELECT MIN({key_my}) FROM {quote_mysql_ident(ctx.table.name)}")
    finally:
        src.close()
    floor = None if floor is None else int(floor)
    purged = mark_purged(cur, ctx, target, floor)
    if incremental.nothing_vanished(cur, ctx, target, floor=floor):
        return KeyCheck(deleted=purged)
    upper = window.upper if isinstance(window.upper, int) else None
    ranges = [
        (low, min(high, upper) if upper is not None else high)
        for low, high in incremental._differing_key_ranges(cur, ctx, target, floor=floor)
        if upper is None or low <= upper
    ]
    if not ranges:
        return KeyCheck(deleted=purged)
    check = _read_ranges_again(cur, ctx, live, target, ranges)
    return KeyCheck(purged + check.deleted, check.inserted, check.updated, check.bytes)


def mark_purged(cur: cursor, ctx: LoadContext, target: str, floor: int | None) -> int:
    """Mark raw's live keys below the source's lowest key (`floor`; None: the source is empty) deleted."""
    k = quote_ident(ctx.pk_targets[0])
    lowest = key_summary.lowest_live_key(cur, ctx.table.name)
    if lowest is None or (floor is not None and floor <= lowest):
        return 0  # nothing live in raw, or nothing live below the floor
    below = "" if floor is None else f" AND t.{k} < {int(floor)}"
    cur.execute(
        f"""
        WITH marked AS (
            UPDATE {target} t SET _deleted_at = %s
             WHERE t.{k} >= {int(lowest)}{below} AND t._deleted_at IS NULL
            RETURNING t.{k} AS k)
        INSERT INTO _key_delta (k, sign) SELECT k, -1 FROM marked""",
        (ctx.load_ts,),
    )
    purged = cur.rowcount
    key_summary.apply_delta(cur, ctx.table.name)
    return purged


def _read_ranges_again(
    cur: cursor, ctx: LoadContext, live: Sequence[LiveColumn], target: str, ranges: list[tuple[int, int]]
) -> KeyCheck:
    """Read the key ranges whole into `_stage`, merge them, and mark raw's keys there that the source
    lacks deleted."""
    key_my = quote_mysql_ident(ctx.pk_live[0].name)
    where = key_summary.in_ranges(key_my, ranges)
    cur.execute("TRUNCATE _stage")
    stream = window_stream(ctx, live, where, ())
    try:
        cur.copy_expert(f"COPY _stage ({copy_column_list(live)}) FROM STDIN", stream, size=1 << 20)
    finally:
        stream.close()
    stream.check()
    incremental._note_revived(cur, ctx, target)
    names = [c.target_name for c in live]
    inserted, updated, _ = incremental.merge(
        cur, target, names, ctx.pk_targets, ctx.load_ts, note_inserted=True
    )
    k = quote_ident(ctx.pk_targets[0])
    in_ranges = key_summary.in_ranges(f"t.{k}", ranges)
    cur.execute(
        f"""
        WITH marked AS (
            UPDATE {target} t SET _deleted_at = %s
             WHERE t._deleted_at IS NULL AND ({in_ranges})
               AND NOT EXISTS (SELECT 1 FROM _stage s WHERE s.{k} = t.{k})
            RETURNING t.{k} AS k)
        INSERT INTO _key_delta (k, sign) SELECT k, -1 FROM marked""",
        (ctx.load_ts,),
    )
    deleted = cur.rowcount
    key_summary.apply_delta(cur, ctx.table.name)
    return KeyCheck(deleted, inserted, updated, stream.bytes)
