"""Loading one table: decide how, read its window, write raw and the state in one transaction.

`load_table` asks `decide` for a full refresh, an incremental load or a skip, reads the rows of a
`window.Window` with `full` or `incremental`, and commits raw, the saved cursor and the history row
in one PostgreSQL transaction, so the state is never ahead of the data. A failure is recorded in
`etl.load_runs` before it is re-raised (so an Airflow task is marked failed), with a message that
names the table, the column and types where there are some, and what to do (`failure`). New source
columns are filled for every row in the load that first sees them (`backfill`). The transaction
holds the table's load lock from its start, so a second load of the same table waits (`table_lock`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg2.extensions import connection

from etl_pipeline.db import connect_source, connect_target
from etl_pipeline.errors import ConfigError
from etl_pipeline.load import backfill, failure, raw, state, table_lock, unchanged
from etl_pipeline.load.context import LoadContext, Progress
from etl_pipeline.load.decide import Decision, Mode, decide
from etl_pipeline.load.full import load_full
from etl_pipeline.load.incremental import load_incremental
from etl_pipeline.load.result import LoadCounts, TableLoadResult
from etl_pipeline.load.source import LiveColumn, live_columns, scalar, source_clock_bound, source_upper_bound
from etl_pipeline.load.unchanged import SourceMark
from etl_pipeline.load.window import (
    AnyWindow,
    Cursor,
    CursorValue,
    after_full,
    after_incremental,
    cursor_of,
    cursor_text,
    full_window,
    incremental_window,
)
from etl_pipeline.schema.constants import Strategy
from etl_pipeline.schema.tables_config import TableConfig
from etl_pipeline.settings import Settings
from etl_pipeline.type_mapping import quote_mysql_ident

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What a load wrote, before it is committed with the state row."""

    counts: LoadCounts
    cursor: str | None  # the cursor to save (see `window`)
    strategy: Strategy  # what was done
    mark: SourceMark | None  # the source mark to keep (see `unchanged`)
    raw_rows: int
    decision: Decision
    window: AnyWindow | None = None  # what was read (None: nothing, a skip)


def load_table(
    settings: Settings,
    table: TableConfig,
    run_id: str,
    full_refresh: bool = False,
    progress: Progress | None = None,
    pg: connection | None = None,
) -> TableLoadResult:
    """Load one table into raw; returns counts. Failures are recorded in etl.load_runs and re-raised.

    `pg`: an open target connection whose state tables are known to exist, reused across tables (`run`
    passes one per worker); it is left committed or rolled back, never closed. Without it the load
    opens and closes its own. The exception re-raised carries the message recorded (read it with
    `failure.message_of`): the table, column and types where there are some, and what to do.
    """
    started = datetime.now(UTC)
    t0 = time.monotonic()
    result = TableLoadResult(table=table.name, strategy=table.strategy, target_name=table.target_name)
    own = pg is None
    ctx: LoadContext | None = None
    try:
        if pg is None:
            pg = connect_target(settings.target)
            state.ensure_state_tables(pg)
        # one load of a table at a time: held by the data transaction, released by its commit or rollback
        table_lock.acquire(pg, table.name)
        ctx = LoadContext(settings, table, pg, started, progress=progress)
        outcome = _load(ctx, full_refresh, result)
        result.strategy = outcome.strategy
        result.set_counts(outcome.counts)
        result.seconds = round(time.monotonic() - t0, 3)
        with pg.cursor() as cur:
            cursor_column = table.cursor if outcome.cursor is not None else None
            read = outcome.window
            bounds = (None, None) if read is None else (cursor_text(read.lower), cursor_text(read.upper))
            state.record_success(
                cur, result, run_id, started, outcome.cursor, outcome.raw_rows, cursor_column, bounds
            )
            state.record_mark(cur, table.name, outcome.mark)
        pg.commit()
        log.info(
            "%s: %s load done (%s): read %d, inserted %d, updated %d, deleted %d, %.1f s",
            table.name,
            result.strategy,
            outcome.decision.message,
            result.rows_read,
            result.inserted,
            result.updated,
            result.deleted,
            result.seconds,
        )
        return result
    except BaseException as exc:
        result.status = "failed"
        result.error_class = type(exc).__name__
        where = ctx.where() if ctx is not None else failure.Where(table.name, table.target_name)
        result.message = failure.explain(exc, where)
        failure.attach(exc, result.message)
        result.seconds = round(time.monotonic() - t0, 3)
        _record_failure(settings, pg, result, run_id, started)
        raise
    finally:
        if own and pg is not None:
            pg.close()


def _load(ctx: LoadContext, full_refresh: bool, result: TableLoadResult) -> Outcome:
    """Decide, then read and write; `result.reason` is set as soon as the decision is made."""
    table = ctx.table
    src = connect_source(ctx.settings.source)
    try:
        live = _live_columns(src, table)
        ctx.live = live
        by_name = {c.name.lower(): c for c in live}
        ctx.pk_live = _key_columns(table, by_name)
        cursor = cursor_of(table, by_name)
        with ctx.pg.cursor() as cur:
            existing = raw.raw_columns(cur, table.target_name)
            previous = state.read_state(cur, table.name)
            previous_mark = state.read_mark(cur, table.name)
            ctx.raw_types = dict(existing or {})
            lacking = raw.add_missing_meta_columns(cur, table.name, table.target_name, existing)
        mark = unchanged.read_mark(src, table.name)  # before reading: see `unchanged`
        decision = decide(
            table,
            cursor=cursor,
            previous=previous,
            raw_columns=existing,
            live=live,
            mark=mark,
            previous_mark=previous_mark,
            lacking_meta=lacking,
            forced=full_refresh,
        )
        result.reason = decision.reason.value
        if decision.warns:
            log.warning("%s: %s load: %s", table.name, decision.mode, decision.message)
        if decision.mode is Mode.SKIP:
            assert previous is not None  # an unchanged table was loaded before
            # the previous mark stays: its checked_at still bounds the last read
            raw_rows = previous.raw_rows or 0
            return Outcome(
                LoadCounts(), previous.cursor_value, table.strategy, previous_mark, raw_rows, decision
            )
        upper = _upper_bound(src, table, cursor)
    finally:
        src.close()
    if decision.mode is Mode.FULL:
        tracked = cursor is not None and cursor.tracked
        every = full_window(cursor, upper)
        counts = load_full(ctx, live, existing, every, track_cursor=tracked)
        _mark_vanished(ctx, live)
        saved = after_full(cursor, counts.max_cursor, upper)
        return Outcome(counts, saved, "full", mark, counts.raw_rows or 0, decision, every)
    # incremental: decide saw a raw table, a cursor and a saved cursor value
    assert cursor is not None and existing is not None and previous is not None and previous.cursor_value
    window = incremental_window(cursor, previous.cursor_value, upper, table.lookback_minutes)
    counts = _incremental(ctx, live, existing, window, cursor.tracked, decision.backfills)
    _mark_vanished(ctx, live)
    saved = after_incremental(cursor, previous.cursor_value, counts.max_cursor, upper)
    raw_rows = (previous.raw_rows or 0) + counts.inserted
    return Outcome(counts, saved, table.strategy, mark, raw_rows, decision, window)


def _incremental(
    ctx: LoadContext,
    live: list[LiveColumn],
    existing: dict[str, str],
    window: AnyWindow,
    tracked: bool,
    backfills: bool,
) -> LoadCounts:
    """The incremental load; with `backfills` the new source columns are added to raw with their
    defaults before it and filled for every row raw holds after it (see `backfill`)."""
    if not backfills:
        return load_incremental(ctx, live, existing, window, track_cursor=tracked)
    ctx.step = "adding the new columns to raw"
    filling = backfill.prepare(ctx, raw.plan_drift(live, existing).add, existing)
    ctx.step = ""
    counts = load_incremental(ctx, live, existing, window, track_cursor=tracked)
    ctx.step = "filling the new columns of every row raw holds"
    counts = backfill.fill(ctx, filling, counts)
    ctx.step = ""
    return counts


def _mark_vanished(ctx: LoadContext, live: list[LiveColumn]) -> None:
    with ctx.pg.cursor() as cur:
        raw.mark_vanished(cur, ctx.table.name, ctx.table.target_name, {c.target_name for c in live})


def _live_columns(src: Any, table: TableConfig) -> list[LiveColumn]:
    """The source's columns now, less the excluded ones (never read); `src`: a MySQLdb connection."""
    excluded = {c.lower() for c in table.excluded_columns}
    return [c for c in live_columns(src, table.name) if c.name.lower() not in excluded]


def _key_columns(table: TableConfig, by_name: Mapping[str, LiveColumn]) -> list[LiveColumn]:
    missing = [c for c in table.primary_key if c.lower() not in by_name]
    if missing:
        raise ConfigError(
            f"{table.name}: primary key column(s) {missing} not found at the source; re-run analyze-schema"
        )
    return [by_name[c.lower()] for c in table.primary_key]


def _upper_bound(src: Any, table: TableConfig, cursor: Cursor | None) -> CursorValue | None:
    """The end of this run's read window, fixed before reading (None: no cursor, or an empty table).

    A key cursor ends at MAX(key); a time cursor at the source clock alone, so the table is scanned
    once (the new cursor is the newest value read); a date cursor at min(MAX(cursor), clock)."""
    if cursor is None:
        return None
    if cursor.kind == "key":
        top = scalar(
            src, f"SELECT MAX({quote_mysql_ident(cursor.column)}) FROM {quote_mysql_ident(table.name)}"
        )
        return int(top or 0)
    if cursor.tracked:
        return source_clock_bound(src, local_time=cursor.local_time)
    return source_upper_bound(src, table.name, cursor.column, local_time=cursor.local_time)


def _record_failure(
    settings: Settings, pg: connection | None, result: TableLoadResult, run_id: str, started: datetime
) -> None:
    log.error("%s: load failed (%s): %s", result.table, result.error_class, result.message)
    conn = None
    try:
        if pg is not None and not pg.closed:
            pg.rollback()
            conn = pg
        else:
            conn = connect_target(settings.target)
        state.ensure_state_tables(conn)
        state.record_failure(conn, result, run_id, started)
    except Exception as exc:
        log.error("%s: could not record the failure in etl.load_runs (%s)", result.table, type(exc).__name__)
    finally:
        if conn is not None and conn is not pg:
            conn.close()
