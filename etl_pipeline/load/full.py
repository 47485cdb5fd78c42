"""Full refresh: load into a new table, build the primary key after the data, swap it in atomically.

Everything happens in one PostgreSQL transaction: a crash or error at any point rolls back the new
table and leaves the old one as it was. Rows of the old table that are not at the source any more
are carried over with `_deleted_at` set, so delete history survives a rebuild. The new table takes
the old one's name by renames; the views on the old one are recreated on it (`raw.swap_in`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import psycopg2
from psycopg2.extensions import cursor

from etl_pipeline.load import key_summary, raw, views
from etl_pipeline.load.context import LoadContext
from etl_pipeline.load.read_plan import window_stream
from etl_pipeline.load.result import LoadCounts
from etl_pipeline.load.source import LiveColumn
from etl_pipeline.load.sql_render import copy_column_list
from etl_pipeline.load.window import Window
from etl_pipeline.type_mapping import quote_ident

log = logging.getLogger(__name__)


def load_full(
    ctx: LoadContext,
    live: Sequence[LiveColumn],
    existing: dict[str, str] | None,
    window: Window,
    track_cursor: bool = False,
) -> LoadCounts:
    """Read `window` (every row, or up to a key) into a new table and swap it in; the counts carry
    `raw_rows`, and with `track_cursor` `max_cursor`, the largest cursor value read."""
    where, params = window.where()
    cur = ctx.pg.cursor()
    target, new = ctx.table.target_name, f"{ctx.table.target_name}__new"
    pk = ctx.pk_targets
    raw.ensure_raw_schema(cur)
    if existing is not None:  # a view the swap could not recreate stops the load before the read
        views.check_dependents(cur, raw.qualified(target))
    cur.execute(f"DROP TABLE IF EXISTS {raw.qualified(new)}")
    default = cur.mogrify("%s::timestamptz", (ctx.load_ts,)).decode()
    cur.execute(raw.create_table_sql(new, live, loaded_at_default=default))
    if pk and key_summary.eligible(ctx):
        # the delete check's index of deleted keys (see incremental), made before the rows: every copied
        # row is live, so the index stays empty and costs the COPY next to nothing (a scan after it would not)
        raw.create_deleted_index(cur, new, pk)

    cols = copy_column_list(live)
    t0 = time.monotonic()
    also = ctx.table.cursor if track_cursor else None
    # MyISAM in key-range chunks (the clinic's writes wait one chunk at most), InnoDB one snapshot
    stream = window_stream(
        ctx, live, where, params, also=also, track_max=track_cursor, parallel=True, progress=ctx.progress
    )
    try:
        cur.copy_expert(f"COPY {raw.qualified(new)} ({cols}) FROM STDIN WITH (FREEZE)", stream, size=1 << 20)
    except psycopg2.Error:
        stream.check()  # the reader's own error (the source failed or hung) says more than the aborted COPY
        raise
    finally:
        stream.close()
    stream.check()
    log.debug("%s: copied %d rows in %.1f s", ctx.table.name, stream.rows, time.monotonic() - t0)
    cur.execute(f"ALTER TABLE {raw.qualified(new)} ALTER COLUMN _loaded_at DROP DEFAULT")
    if pk:
        pk_cols = ", ".join(quote_ident(c) for c in pk)
        cur.execute(
            f"ALTER TABLE {raw.qualified(new)} ADD CONSTRAINT {quote_ident(new + '_pkey')} "
            f"PRIMARY KEY ({pk_cols})"
        )

    deleted, carried = 0, 0
    if existing is not None and pk:
        deleted, carried = _carry_over(cur, ctx, live, existing, new)
    raw_rows = stream.rows + carried
    raw.swap_in(cur, target, new, pk, had_old=existing is not None)
    # statistics first: they also tell the planner the pages are all-visible, so the key summary
    # below reads the primary key index rather than the rows. A small sample (statistics target 25)
    # gives dbt's planner null fractions and distinct counts enough for whole-table reads of raw.
    cur.execute("SET LOCAL default_statistics_target = 25")
    cur.execute(f"ANALYZE {raw.qualified(target)}")
    cur.execute("RESET default_statistics_target")
    if key_summary.eligible(ctx):  # the delete reconciliation's raw-side summary, from the new table
        key_summary.recompute(cur, ctx.table.name, raw.qualified(target), pk[0])
    else:
        key_summary.forget(cur, ctx.table.name)
    log.debug("%s: key, carry-over, swap and analyze done at %.1f s", ctx.table.name, time.monotonic() - t0)
    return LoadCounts(
        rows_read=stream.rows,
        inserted=stream.rows,
        updated=0,
        deleted=deleted,
        bytes=stream.bytes,
        raw_rows=raw_rows,
        max_cursor=stream.max_value,
    )


def _carry_over(
    cur: cursor, ctx: LoadContext, live: Sequence[LiveColumn], existing: dict[str, str], new: str
) -> tuple[int, int]:
    """Keep rows (marked deleted) and vanished columns of the old table in the new one; returns
    (rows marked deleted now, rows carried over)."""
    old = ctx.table.target_name
    live_types = {c.target_name: c.pg_type for c in live}
    plan = raw.plan_drift(live, existing)
    vanished = plan.vanished
    raw.warn_vanished(ctx.table.name, plan)
    for name in vanished:
        cur.execute(f"ALTER TABLE {raw.qualified(new)} ADD COLUMN {quote_ident(name)} {existing[name]}")
    common = [n for n, t in live_types.items() if existing.get(n) == t] + vanished
    join = " AND ".join(f"n.{quote_ident(c)} = o.{quote_ident(c)}" for c in ctx.pk_targets)
    if vanished:
        sets = ", ".join(f"{quote_ident(n)} = o.{quote_ident(n)}" for n in vanished)
        cur.execute(f"UPDATE {raw.qualified(new)} n SET {sets} FROM {raw.qualified(old)} o WHERE {join}")
    pk_ok = all(existing.get(c) == live_types.get(c) for c in ctx.pk_targets)
    deleted = carried = 0
    if pk_ok:
        col_list = ", ".join(quote_ident(c) for c in common)
        cur.execute(
            f"""
            WITH carried AS (
            INSERT INTO {raw.qualified(new)} ({col_list}, _loaded_at, _deleted_at)
            SELECT {", ".join("o." + quote_ident(c) for c in common)}, o._loaded_at,
                   COALESCE(o._deleted_at, %s)
              FROM {raw.qualified(old)} o
             WHERE NOT EXISTS (SELECT 1 FROM {raw.qualified(new)} n WHERE {join})
            RETURNING (_deleted_at = %s) AS fresh)
            SELECT count(*) FILTER (WHERE fresh), count(*) FROM carried""",
            (ctx.load_ts, ctx.load_ts),
        )
        row = cur.fetchone()
        assert row is not None
        deleted, carried = int(row[0]), int(row[1])
    return deleted, carried
