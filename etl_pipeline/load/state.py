"""Load state and history in PostgreSQL schema `etl`.

`etl.load_state`: one row per table, the cursor and the last run's outcome. It is written in the
same transaction as the table's data, so the state is never ahead of the data.
`etl.source_marks`: per table, the source's last write time seen by the last successful load and the
source clock before it read (see `unchanged`); written in the data transaction too.
`etl.load_runs`: one row per table per run (counts, bytes, seconds, status, error class, the reason for
full, incremental or skip; never row values). The nightly report and anomaly checks read it.
`etl.nightly_runs`: one row per nightly run, its status, totals and per-table summary (see `nightly`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg2.extensions import connection, cursor

from etl_pipeline.load import key_summary
from etl_pipeline.load.result import TableLoadResult
from etl_pipeline.load.unchanged import SourceMark
from etl_pipeline.settings import STATE_SCHEMA
from etl_pipeline.type_mapping import quote_ident

S = quote_ident(STATE_SCHEMA)

DDL = f"""
CREATE SCHEMA IF NOT EXISTS {S};
CREATE TABLE IF NOT EXISTS {S}.load_state (
    table_name        text PRIMARY KEY,
    target_name       text NOT NULL,
    strategy          text,
    cursor_column     text,
    cursor_value      text,
    raw_rows          bigint,
    last_run_id       text,
    last_status       text,
    last_error_class  text,
    last_started_at   timestamptz,
    last_finished_at  timestamptz,
    last_success_at   timestamptz,
    last_seconds      double precision
);
CREATE TABLE IF NOT EXISTS {S}.load_runs (
    run_id       text NOT NULL,
    table_name   text NOT NULL,
    strategy     text,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    rows_read    bigint,
    inserted     bigint,
    updated      bigint,
    deleted      bigint,
    bytes        bigint,
    seconds      double precision,
    status       text NOT NULL,
    error_class  text,
    PRIMARY KEY (run_id, table_name, started_at)
);
CREATE TABLE IF NOT EXISTS {S}.source_marks (
    table_name    text PRIMARY KEY,
    engine        text,
    update_time   timestamp,
    checked_at    timestamp NOT NULL
);
ALTER TABLE {S}.source_marks ADD COLUMN IF NOT EXISTS create_time timestamp;
ALTER TABLE {S}.load_runs ADD COLUMN IF NOT EXISTS reason text;
ALTER TABLE {S}.load_runs ADD COLUMN IF NOT EXISTS window_lower text;
ALTER TABLE {S}.load_runs ADD COLUMN IF NOT EXISTS window_upper text;
ALTER TABLE {S}.load_runs ADD COLUMN IF NOT EXISTS message text;
"""

NIGHTLY_RUNS_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {S};
CREATE TABLE IF NOT EXISTS {S}.nightly_runs (
    run_id       text PRIMARY KEY,
    finished_at  timestamptz NOT NULL,
    status       text NOT NULL,
    totals       jsonb NOT NULL,
    tables       jsonb NOT NULL
);
"""

_LOCK_KEY = 80417  # advisory lock serialising the idempotent DDL between parallel loaders
_ADDED_MARK_COLUMNS = ("create_time",)  # the ADD COLUMN IF NOT EXISTS of DDL, by table
_ADDED_RUN_COLUMNS = ("reason", "window_lower", "window_upper", "message")


def ensure_state_tables(conn: connection) -> None:
    with conn.cursor() as cur:
        # every column DDL adds to an older table (ADD COLUMN IF NOT EXISTS above) must be there
        cur.execute(
            f"SELECT count(*) = %s FROM pg_attribute WHERE NOT attisdropped AND ("
            f"(attrelid = to_regclass('{STATE_SCHEMA}.source_marks') AND attname = ANY(%s)) OR "
            f"(attrelid = to_regclass('{STATE_SCHEMA}.load_runs') AND attname = ANY(%s))) "
            f"AND to_regclass('{STATE_SCHEMA}.load_state') IS NOT NULL "
            f"AND to_regclass('{STATE_SCHEMA}.key_summaries') IS NOT NULL "
            f"AND to_regnamespace('raw') IS NOT NULL",
            (
                len(_ADDED_MARK_COLUMNS) + len(_ADDED_RUN_COLUMNS),
                list(_ADDED_MARK_COLUMNS),
                list(_ADDED_RUN_COLUMNS),
            ),
        )
        if _one(cur):  # the usual case: no DDL lock round trips for every table
            conn.commit()
            return
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident('raw')}")
        cur.execute(DDL)
        cur.execute(key_summary.DDL)
    conn.commit()


@dataclass(frozen=True)
class LoadState:
    """A table's row of etl.load_state, as a load reads it."""

    table_name: str
    target_name: str
    strategy: str | None
    cursor_column: str | None
    cursor_value: str | None  # the saved cursor's text (see `window`)
    raw_rows: int | None
    last_status: str | None


def read_state(cur: cursor, table: str) -> LoadState | None:
    cur.execute(
        f"SELECT table_name, target_name, strategy, cursor_column, cursor_value, raw_rows, last_status "
        f"FROM {S}.load_state WHERE table_name = %s",
        (table,),
    )
    row = cur.fetchone()
    return None if row is None else LoadState(*row)


def read_mark(cur: cursor, table: str) -> SourceMark | None:
    cur.execute(
        f"SELECT engine, update_time, checked_at, create_time FROM {S}.source_marks WHERE table_name = %s",
        (table,),
    )
    row = cur.fetchone()
    return None if row is None else SourceMark(*row)


def record_mark(cur: cursor, table: str, mark: SourceMark | None) -> None:
    """The source mark of a successful load; call inside the data transaction (None: forget it)."""
    if mark is None:
        cur.execute(f"DELETE FROM {S}.source_marks WHERE table_name = %s", (table,))
        return
    cur.execute(
        f"""
        INSERT INTO {S}.source_marks (table_name, engine, update_time, checked_at, create_time)
        VALUES (%s, %s, %s, %s, %s)
        ON CONFLICT (table_name) DO UPDATE SET engine = EXCLUDED.engine, update_time = EXCLUDED.update_time,
               checked_at = EXCLUDED.checked_at, create_time = EXCLUDED.create_time""",
        (table, mark.engine, mark.update_time, mark.checked_at, mark.create_time),
    )


def record_success(
    cur: cursor,
    result: TableLoadResult,
    run_id: str,
    started_at: datetime,
    cursor_value: str | None,
    raw_rows: int,
    cursor_column: str | None = None,
    window: tuple[str | None, str | None] = (None, None),
) -> None:
    """State + history for a successful load; call inside the data transaction. `window`: the read
    window's lower and upper cursor bounds as text (None: no bound), which the nightly parity reads."""
    cur.execute(
        f"""
        INSERT INTO {S}.load_state AS s (table_name, target_name, strategy, cursor_column, cursor_value, raw_rows,
               last_run_id,
               last_status, last_error_class, last_started_at, last_finished_at, last_success_at, last_seconds)
        VALUES (%(t)s, %(target)s, %(strategy)s, %(cursor_column)s, %(cursor)s, %(raw_rows)s, %(run)s,
                'success', NULL, %(started)s, clock_timestamp(), clock_timestamp(), %(seconds)s)
        ON CONFLICT (table_name) DO UPDATE SET
               target_name = EXCLUDED.target_name, strategy = EXCLUDED.strategy,
               cursor_column = EXCLUDED.cursor_column, cursor_value = EXCLUDED.cursor_value, raw_rows = EXCLUDED.raw_rows,
               last_run_id = EXCLUDED.last_run_id, last_status = 'success', last_error_class = NULL,
               last_started_at = EXCLUDED.last_started_at, last_finished_at = EXCLUDED.last_finished_at,
               last_success_at = EXCLUDED.last_success_at, last_seconds = EXCLUDED.last_seconds""",
        {
            "t": result.table,
            "target": result.target_name,
            "strategy": result.strategy,
            "cursor": cursor_value,
            "raw_rows": raw_rows,
            "cursor_column": cursor_column,
            "run": run_id,
            "started": started_at,
            "seconds": result.seconds,
        },
    )
    insert_run(cur, result, run_id, started_at, window)


def insert_run(
    cur: cursor,
    result: TableLoadResult,
    run_id: str,
    started_at: datetime,
    window: tuple[str | None, str | None] = (None, None),
) -> None:
    cur.execute(
        f"""
        INSERT INTO {S}.load_runs (run_id, table_name, strategy, started_at, finished_at, rows_read,
               inserted, updated, deleted, bytes, seconds, status, error_class, reason, window_lower, window_upper,
               message)
        VALUES (%s, %s, %s, %s, clock_timestamp(), %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (
            run_id,
            result.table,
            result.strategy,
            started_at,
            result.rows_read,
            result.inserted,
            result.updated,
            result.deleted,
            result.bytes,
            result.seconds,
            result.status,
            result.error_class,
            result.reason or None,
            *window,
            result.message or None,  # failure.explain's text: table, column, types, never row values
        ),
    )


def record_failure(conn: connection, result: TableLoadResult, run_id: str, started_at: datetime) -> None:
    """History + state for a failed load, in its own transaction (the data one was rolled back)."""
    with conn.cursor() as cur:
        insert_run(cur, result, run_id, started_at)
        cur.execute(
            f"""
            INSERT INTO {S}.load_state AS s (table_name, target_name, strategy, last_run_id, last_status,
                   last_error_class, last_started_at, last_finished_at, last_seconds)
            VALUES (%s, %s, %s, %s, 'failed', %s, %s, clock_timestamp(), %s)
            ON CONFLICT (table_name) DO UPDATE SET last_run_id = EXCLUDED.last_run_id, last_status = 'failed',
                   last_error_class = EXCLUDED.last_error_class, last_started_at = EXCLUDED.last_started_at,
                   last_finished_at = EXCLUDED.last_finished_at, last_seconds = EXCLUDED.last_seconds""",
            (
                result.table,
                result.target_name,
                result.strategy,
                run_id,
                result.error_class,
                started_at,
                result.seconds,
            ),
        )
    conn.commit()


def all_states(conn: connection) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(f"""
            SELECT s.table_name, s.target_name, s.strategy, s.cursor_column, s.cursor_value, s.raw_rows, s.last_status,
                   s.last_error_class, s.last_run_id, s.last_started_at, s.last_finished_at,
                   s.last_success_at, s.last_seconds
              FROM {S}.load_state s ORDER BY s.table_name""")
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def record_nightly_run(
    conn: connection, run_id: str, status: str, totals: dict[str, Any], tables: list[dict[str, Any]]
) -> None:
    """The nightly run's summary, replacing an earlier one of the same run id; commits."""
    with conn.cursor() as cur:
        cur.execute(NIGHTLY_RUNS_DDL)
        cur.execute(
            f"""
            INSERT INTO {S}.nightly_runs (run_id, finished_at, status, totals, tables)
            VALUES (%s, now(), %s, %s, %s)
            ON CONFLICT (run_id) DO UPDATE
               SET finished_at = EXCLUDED.finished_at, status = EXCLUDED.status,
                   totals = EXCLUDED.totals, tables = EXCLUDED.tables""",
            (run_id, status, json.dumps(totals), json.dumps(tables)),
        )
    conn.commit()


def _one(cur: cursor) -> Any:
    """The single value of a one-row query."""
    row = cur.fetchone()
    assert row is not None
    return row[0]
