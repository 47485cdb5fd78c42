"""Incremental load: read the changed rows, merge them through a staging table, mark deletes.

The rows read are a `window.Window` (after the saved cursor, up to a bound taken before reading);
for a time cursor the new cursor is the largest value among the rows read, taken in the same scan
(see `window.after_incremental`). Rows are merged with
`INSERT ... ON CONFLICT DO UPDATE ... WHERE row IS DISTINCT FROM`, so re-read rows that did not
change are not rewritten. Data, delete marks and the new cursor are committed in one transaction.

Deletes cost what they find, not what the table holds: key counts and raw's deleted keys usually
show that nothing vanished (`nothing_vanished`); otherwise per-bucket key counts narrow the keys
streamed for the anti-join (`mark_deletes`). The window read is the one scan of the source table.

Before the read the window's lower end is moved down where the source calls for it (`window.reread`):
the last `lookback_keys` keys of an append_only table, and the hour a DATETIME cursor's clock was set
back. An append_only table's keys are then checked against the source (`append_only.reconcile`):
purged keys are marked deleted, keys that appeared below the window are loaded (`late_rows`).
Source reads go through `read_plan.window_stream` (MyISAM in key-range chunks, InnoDB one snapshot).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg2.extensions import cursor

from etl_pipeline.db import connect_source
from etl_pipeline.load import key_summary, raw
from etl_pipeline.load.context import LoadContext
from etl_pipeline.load.key_summary import _U64, BUCKET_KEYS
from etl_pipeline.load.read_plan import window_stream
from etl_pipeline.load.result import LoadCounts
from etl_pipeline.load.source import LineStream, LiveColumn, clock_fell_back
from etl_pipeline.load.sql_render import copy_column_list
from etl_pipeline.load.window import AnyWindow, Window, reread, saved_value
from etl_pipeline.type_mapping import quote_ident, quote_mysql_ident

log = logging.getLogger(__name__)


@dataclass
class IncrementalCounts(LoadCounts):
    """`late_rows`: append_only rows below the saved key that earlier loads had not read (committed
    after higher keys were read), loaded now; they are among `inserted`."""

    late_rows: int = 0


def load_incremental(
    ctx: LoadContext,
    live: Sequence[LiveColumn],
    existing: dict[str, str],
    window: Window,
    track_cursor: bool = False,
) -> LoadCounts:
    """Read `window`, merge it into raw and mark deletes; with `track_cursor` the counts carry
    `max_cursor`, the largest cursor value among the rows read (None when none were read)."""
    cur = ctx.pg.cursor()
    plan = raw.plan_drift(live, existing)
    raw.apply_drift(cur, ctx.table.name, ctx.table.target_name, plan)
    target = raw.qualified(ctx.table.target_name)
    names = [c.target_name for c in live]
    saved = saved_value(window)
    window = _reread(ctx, window)
    stream = stage_window(cur, ctx, live, target, window, track_cursor)
    summary = key_summary.eligible(ctx)
    if summary:
        key_summary.ensure(cur, ctx.table.name, target, ctx.pk_targets[0])
        key_summary.start_delta(cur)
        _note_revived(cur, ctx, target)
    else:
        key_summary.forget(cur, ctx.table.name)
    late_below = saved if window.kind == "key" and isinstance(saved, int) else None
    inserted, updated, late = merge(
        cur, target, names, ctx.pk_targets, ctx.load_ts, note_inserted=summary, late_below=late_below
    )
    if summary:
        key_summary.apply_delta(cur, ctx.table.name)
    deleted, key_bytes = 0, 0
    if window.kind == "key" and summary:
        from etl_pipeline.load import append_only  # builds on this module's merge and key check

        check = append_only.reconcile(cur, ctx, live, target, window)
        deleted, key_bytes = check.deleted, check.bytes
        inserted, updated, late = inserted + check.inserted, updated + check.updated, late + check.inserted
    elif ctx.table.detect_deletes and ctx.pk_targets:
        deleted, key_bytes = mark_deletes(cur, ctx, target)
    if late:
        log.info(
            "%s: %d row(s) below the saved key read late (committed after higher keys)", ctx.table.name, late
        )
    return IncrementalCounts(
        rows_read=stream.rows,
        inserted=inserted,
        updated=updated,
        deleted=deleted,
        bytes=stream.bytes + key_bytes,
        max_cursor=stream.max_value,
        late_rows=late,
    )


def _reread(ctx: LoadContext, window: AnyWindow) -> AnyWindow:
    """The window with its lower end moved down by the key lookback, or by a fall-back of the source's
    clock since the saved DATETIME cursor (see `window`)."""
    if window.kind == "key":
        return reread(window, lookback_keys=ctx.table.lookback_keys)
    saved = saved_value(window)
    if window.kind != "datetime" or window.empty or not isinstance(saved, datetime):
        return window
    src = connect_source(ctx.source_cfg)
    try:
        shift = clock_fell_back(src, saved)
    finally:
        src.close()
    if shift:
        log.info(
            "%s: the source clock was set back %s since the saved cursor: window widened",
            ctx.table.name,
            shift,
        )
    return reread(window, clock_shift=shift)


def stage_window(
    cur: cursor, ctx: LoadContext, live: Sequence[LiveColumn], target: str, window: Window, track_cursor: bool
) -> LineStream:
    """Read this run's window from the source into the temp table `_stage` (one scan of the source)."""
    cols = ", ".join(quote_ident(c.target_name) for c in live)
    cur.execute(f"CREATE TEMP TABLE _stage ON COMMIT DROP AS SELECT {cols} FROM {target} WITH NO DATA")
    where, params = window.where()
    also = ctx.table.cursor if track_cursor else None
    stream = window_stream(ctx, live, where, params, also=also, track_max=track_cursor, progress=ctx.progress)
    try:
        cur.copy_expert(f"COPY _stage ({copy_column_list(live)}) FROM STDIN", stream, size=1 << 20)
    finally:
        stream.close()
    stream.check()
    return stream


def _note_revived(cur: cursor, ctx: LoadContext, target: str) -> None:
    """Staged keys marked deleted in raw: the merge makes them live again (its new keys it notes itself).
    Found through the partial index of deleted keys, so the cost follows the deletes, not the table."""
    raw.ensure_deleted_index(cur, ctx.table.target_name, ctx.pk_targets)
    k = quote_ident(ctx.pk_targets[0])
    cur.execute(f"""
        INSERT INTO _key_delta (k, sign)
        SELECT DISTINCT s.{k}, 1 FROM _stage s
         WHERE EXISTS (SELECT 1 FROM {target} t WHERE t.{k} = s.{k} AND t._deleted_at IS NOT NULL)""")


def merge(
    cur: cursor,
    target: str,
    names: list[str],
    pk: tuple[str, ...],
    load_ts: datetime,
    note_inserted: bool = False,
    late_below: int | None = None,
) -> tuple[int, int, int]:
    """Upsert `_stage` into raw; (inserted, updated, inserted at or below `late_below`: keys that were
    missing below the saved key). `note_inserted`: add the new keys to `_key_delta`."""
    q = [quote_ident(n) for n in names]
    pk_q = ", ".join(quote_ident(c) for c in pk)
    non_pk = [quote_ident(n) for n in names if n not in pk]
    sets = ", ".join(
        [f"{c} = EXCLUDED.{c}" for c in non_pk] + ["_loaded_at = EXCLUDED._loaded_at", "_deleted_at = NULL"]
    )
    changed = "t._deleted_at IS NOT NULL"
    if non_pk:
        changed = (
            f"({', '.join('t.' + c for c in non_pk)}) IS DISTINCT FROM "
            f"({', '.join('EXCLUDED.' + c for c in non_pk)}) OR {changed}"
        )
    if len(non_pk) == 1:  # a one-element row constructor is not a row; compare the values
        changed = f"t.{non_pk[0]} IS DISTINCT FROM EXCLUDED.{non_pk[0]} OR t._deleted_at IS NOT NULL"
    noted = ""
    if note_inserted:
        noted = ", noted AS (INSERT INTO _key_delta (k, sign) SELECT k, 1 FROM merged WHERE inserted)"
    cur.execute(
        f"""
        WITH merged AS (
            INSERT INTO {target} AS t ({", ".join(q)}, _loaded_at, _deleted_at)
            SELECT DISTINCT ON ({pk_q}) {", ".join(q)}, %s, NULL FROM _stage
                ON CONFLICT ({pk_q}) DO UPDATE SET {sets}
                WHERE {changed}
            RETURNING (xmax = 0) AS inserted, t.{quote_ident(pk[0])} AS k){noted}
        SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted),
               count(*) FILTER (WHERE inserted AND k <= %s) FROM merged""",
        (load_ts, late_below),
    )
    inserted, updated, late = _row(cur)
    return int(inserted), int(updated), int(late)


def mark_deletes(cur: cursor, ctx: LoadContext, target: str) -> tuple[int, int]:
    """Primary-key reconciliation: mark raw rows whose key is gone from the source, unmark returned ones.

    For a single integer key (up to bigint) it narrows down first, reading no table whole:
    `nothing_vanished` compares key counts (and looks up raw's deleted keys) and usually ends it there;
    otherwise `_differing_key_ranges` compares per-bucket key counts, the source's from its key index,
    raw's from the summary kept in `etl.key_buckets` (see `key_summary`), and only keys of buckets
    that differ are streamed. Other keys are streamed whole. The anti-join itself is exact for the
    streamed keys. A source key that this run did not read (written during the run) can hide a vanished
    key of the same range until a later run reads it (see `nothing_vanished`); `verify` compares the
    exact key sets.
    """
    pk = ctx.pk_targets
    pk_q = ", ".join(quote_ident(c) for c in pk)
    ranges = None
    if key_summary.eligible(ctx):
        if nothing_vanished(cur, ctx, target):
            return 0, 0
        ranges = _differing_key_ranges(cur, ctx, target)
        if not ranges:
            return 0, 0
    key_col = quote_mysql_ident(ctx.pk_live[0].name)
    where = " OR ".join(f"{key_col} BETWEEN {lo} AND {hi}" for lo, hi in ranges) if ranges else ""
    cur.execute(f"CREATE TEMP TABLE _keys ON COMMIT DROP AS SELECT {pk_q} FROM {target} WITH NO DATA")
    stream = window_stream(ctx, ctx.pk_live, where, ())
    try:
        cur.copy_expert(f"COPY _keys ({copy_column_list(ctx.pk_live)}) FROM STDIN", stream, size=1 << 20)
    finally:
        stream.close()
    stream.check()
    cur.execute("ANALYZE _keys")
    join = " AND ".join(f"k.{quote_ident(c)} = t.{quote_ident(c)}" for c in pk)
    in_ranges = ""
    if ranges:
        key = f"t.{quote_ident(pk[0])}"
        in_ranges = "AND (" + " OR ".join(f"{key} BETWEEN {lo} AND {hi}" for lo, hi in ranges) + ")"
    summary = ranges is not None
    key = quote_ident(pk[0])
    cur.execute(
        f"""
        WITH marked AS (
            UPDATE {target} t SET _deleted_at = %s
             WHERE t._deleted_at IS NULL {in_ranges}
               AND NOT EXISTS (SELECT 1 FROM _keys k WHERE {join})
            RETURNING t.{key} AS k)
        {"INSERT INTO _key_delta (k, sign) SELECT k, -1 FROM marked" if summary else "SELECT count(*) FROM marked"}""",
        (ctx.load_ts,),
    )
    deleted = cur.rowcount if summary else int(_row(cur)[0])
    # A row restored at the source with its old change time is outside the read window: unmark it.
    cur.execute(f"""
        WITH restored AS (
            UPDATE {target} t SET _deleted_at = NULL
             WHERE t._deleted_at IS NOT NULL
               AND EXISTS (SELECT 1 FROM _keys k WHERE {join})
            RETURNING t.{key} AS k)
        {"INSERT INTO _key_delta (k, sign) SELECT k, 1 FROM restored" if summary else "SELECT count(*) FROM restored"}""")
    if summary:
        key_summary.apply_delta(cur, ctx.table.name)
    return deleted, stream.bytes


# The restored-key probe reads raw's deleted keys and looks each up at the source (a lookup a key);
# the per-bucket count reads the source's key index once (far cheaper a row). Above this many deleted
# keys, or one for every PROBE_ROWS_PER_KEY live rows if that is more, the probe gives way to
# buckets compared by count, sum and xor.
RESTORED_PROBE_MAX = 20_000
PROBE_ROWS_PER_KEY = 20
PROBE_CHUNK = 2_000


def nothing_vanished(cur: cursor, ctx: LoadContext, target: str, floor: int | None = None) -> bool:
    """True when no key that is live in raw has vanished at the source and no key marked deleted in
    raw is back, checked without scanning either table; False means "reconcile by buckets".

    Call after the merge (inside its transaction). With H the largest live raw key, it compares
    the source's count of keys <= H (the source's row count and MAX(key) in one statement, which
    MyISAM answers from its table status and index; a range count on the key index when MAX(key) > H)
    with raw's count of live keys (the kept bucket summary), and looks up raw's deleted keys at the
    source (their partial index keeps that proportional to the deletes).

    Why equal counts mean nothing vanished: count(source keys <= H) = live - vanished + unread, where
    `unread` are source keys <= H that are neither live in raw nor marked deleted in raw (the probe
    rules out restored keys). The merge has just made every key read in this run's window live, so an
    unread key is a row this window did not see: one written during this run (auto-increment keys
    of rows inserted after the read are above H; the rest is a row committed late or stamped beyond
    the clock bound), or a row whose cursor lies before the window (outside what the incremental load
    guarantees at all: raw then lacks that row itself, which `verify` shows and a full refresh
    repairs). A row written during the run is read by a later window, and from then on the count
    shows the vanished key: a delete hidden this way is marked by a later run, not lost. On a source
    that is quiet during the load, equal counts are exact. `floor`: raw's deleted keys below it are
    known to stay gone (an append_only table's purged keys) and are not looked up.
    """
    key_pg = quote_ident(ctx.pk_targets[0])
    high = _high_live_key(cur, target, key_pg)
    live = key_summary.live_keys(cur, ctx.table.name)
    src = connect_source(ctx.source_cfg)
    try:
        scur = src.cursor()
        if _source_keys_upto(scur, ctx, high) != live:
            return False
        return _deleted_keys_back(cur, scur, ctx, target, floor) == []
    finally:
        src.close()


def _source_keys_upto(scur: Any, ctx: LoadContext, high: int | None) -> int:
    """How many keys <= `high` the source holds: its row count (MyISAM keeps it) less the keys above
    `high` (the few written since: a short range of the key index), in one statement so both counts
    see the same rows."""
    if high is None:
        return 0
    key_my = quote_mysql_ident(ctx.pk_live[0].name)
    table_my = quote_mysql_ident(ctx.table.name)
    scur.execute(
        f"SELECT COUNT(*) - (SELECT COUNT(*) FROM {table_my} WHERE {key_my} > %s) FROM {table_my}", (high,)
    )
    (count,) = scur.fetchone()
    return int(count)


def _high_live_key(cur: cursor, target: str, key_pg: str) -> int | None:
    """The largest key live in raw (its primary-key index read backwards)."""
    cur.execute(f"SELECT max({key_pg}) FROM {target} WHERE _deleted_at IS NULL")
    high = _row(cur)[0]
    return None if high is None else int(high)


def _deleted_keys_back(
    cur: cursor, scur: Any, ctx: LoadContext, target: str, floor: int | None = None
) -> list[int] | None:
    """The keys marked deleted in raw that exist at the source again (restored with an old cursor
    value, or re-inserted and not read yet); None when there are too many to look up. Keys below
    `floor` are not looked up."""
    key_pg = quote_ident(ctx.pk_targets[0])
    key_my = quote_mysql_ident(ctx.pk_live[0].name)
    raw.ensure_deleted_index(cur, ctx.table.target_name, ctx.pk_targets)
    limit = max(RESTORED_PROBE_MAX, key_summary.live_keys(cur, ctx.table.name) // PROBE_ROWS_PER_KEY)
    above = "" if floor is None else f" AND {key_pg} >= {int(floor)}"
    cur.execute(f"SELECT {key_pg} FROM {target} WHERE _deleted_at IS NOT NULL{above} LIMIT {limit + 1}")
    keys = [int(k) for (k,) in cur.fetchall()]
    if len(keys) > limit:
        return None
    back: list[int] = []
    for start in range(0, len(keys), PROBE_CHUNK):
        listed = ", ".join(str(k) for k in keys[start : start + PROBE_CHUNK])
        scur.execute(f"SELECT {key_my} FROM {quote_mysql_ident(ctx.table.name)} WHERE {key_my} IN ({listed})")
        back.extend(int(k) for (k,) in scur.fetchall())
    return back


def _differing_key_ranges(
    cur: cursor, ctx: LoadContext, target: str, floor: int | None = None
) -> list[tuple[int, int]]:
    """[(low, high)] key ranges whose live keys may differ between the source and raw.

    Per bucket of BUCKET_KEYS keys the source's count of keys up to raw's largest live key is compared
    with raw's (the kept summary), from the top buckets down as far as needed
    (`_bucket_counts_from_the_top`), and the buckets of raw's deleted keys that are back at the source
    are added. Equal counts in a bucket mean equal key sets for the reason given in `nothing_vanished`.
    When raw holds too many deleted keys to look them up, buckets are compared by count, sum and xor
    instead, which also shows restored keys (unless a vanished key in the same bucket balances all three).
    `floor`: as in `nothing_vanished`.
    """
    key_my = quote_mysql_ident(ctx.pk_live[0].name)
    source: Mapping[int, object]  # per bucket: the key count, or (count, sum, xor)
    raw_side: Mapping[int, object]
    src = connect_source(ctx.source_cfg)
    try:
        scur = src.cursor()
        back = _deleted_keys_back(cur, scur, ctx, target, floor)
        if back is None:
            scur.execute(f"""
                SELECT {key_my} DIV {BUCKET_KEYS}, COUNT(*), SUM({key_my}), BIT_XOR({key_my})
                  FROM {quote_mysql_ident(ctx.table.name)} GROUP BY 1""")
            source = {int(b): (int(n), int(s), int(x) & _U64) for b, n, s, x in scur.fetchall()}
            raw_side = key_summary.buckets(cur, ctx.table.name)
        else:  # keys above raw's largest live key cannot hide a vanished one: not counted
            high = _high_live_key(cur, target, quote_ident(ctx.pk_targets[0]))
            source, raw_side = _bucket_counts_from_the_top(cur, scur, ctx, high)
    finally:
        src.close()
    differing = {b for b in source.keys() | raw_side.keys() if source.get(b) != raw_side.get(b)}
    differing |= {key_summary.bucket_of(k) for k in back or ()}
    ranges: list[tuple[int, int]] = []
    for low, high in map(key_summary.bucket_range, sorted(differing)):
        if ranges and ranges[-1][1] + 1 == low:
            ranges[-1] = (ranges[-1][0], high)
        else:
            ranges.append((low, high))
    return ranges


# Shares of raw's key buckets, from the top, whose source counts are read before all of them are.
TOP_SHARES = (1 / 64, 1 / 8)


def _bucket_counts_from_the_top(
    cur: cursor, scur: Any, ctx: LoadContext, high: int | None
) -> tuple[dict[int, int], dict[int, int]]:
    """({bucket: source count}, {bucket: raw count}) for the buckets that may differ, up to `high`.

    Deletes are mostly of recent rows, which have the highest keys. So the source's per-bucket counts
    are read for the top 1/64 of the buckets first (a range of its key index), then the top 1/8, then
    all: a share is enough when the source's count of the keys below it (its count up to `high` less
    the share's) equals raw's, by the argument of `nothing_vanished`.
    """
    key_my = quote_mysql_ident(ctx.pk_live[0].name)
    table_my = quote_mysql_ident(ctx.table.name)
    raw_side = {b: n for b, (n, _, _) in key_summary.buckets(cur, ctx.table.name).items()}
    if high is None:
        return {}, raw_side
    buckets = sorted(raw_side)
    total = _source_keys_upto(scur, ctx, high)
    for share in (*TOP_SHARES, 1.0):
        first = buckets[int(len(buckets) * (1 - share))] if share < 1.0 and buckets else None
        low = -(1 << 63) if first is None else key_summary.bucket_range(first)[0]
        scur.execute(
            f"SELECT {key_my} DIV {BUCKET_KEYS}, COUNT(*) FROM {table_my} "
            f"WHERE {key_my} BETWEEN %s AND %s GROUP BY 1",
            (low, high),
        )
        source = {int(b): int(n) for b, n in scur.fetchall()}
        raw_top = {b: n for b, n in raw_side.items() if first is None or b >= first}
        if total - sum(source.values()) == sum(raw_side.values()) - sum(raw_top.values()):
            return source, raw_top
    return source, raw_side  # all buckets (a count that moved between the two reads ends here too)


def _row(cur: cursor) -> tuple[Any, ...]:
    """The one row of an aggregate query."""
    row = cur.fetchone()
    assert row is not None
    return row
