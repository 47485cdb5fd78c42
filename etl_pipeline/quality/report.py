"""Run report rows: what etl.load_runs says about one run (counts and outcomes, never row values)."""

from __future__ import annotations

from typing import Any

from etl_pipeline.db import connect_target
from etl_pipeline.load import state
from etl_pipeline.settings import STATE_SCHEMA, Settings
from etl_pipeline.type_mapping import quote_ident


def run_report(settings: Settings, run_id: str) -> list[dict[str, Any]]:
    """One dict per table of the run: table_name, strategy, reason, rows_read, inserted, updated, deleted,
    bytes, seconds, status, error_class, started_at, finished_at (latest attempt per table). `reason`
    says why the table was loaded in full, incrementally or skipped (`etl_pipeline.load.decide.Reason`)."""
    conn = connect_target(settings.target)
    try:
        state.ensure_state_tables(conn)
        with conn.cursor() as cur:
            cur.execute(
                f"""
                SELECT DISTINCT ON (table_name) table_name, strategy, reason, rows_read, inserted, updated, deleted,
                       bytes, seconds, status, error_class, started_at, finished_at
                  FROM {quote_ident(STATE_SCHEMA)}.load_runs
                 WHERE run_id = %s
                 ORDER BY table_name, started_at DESC""",
                (run_id,),
            )
            names = [d[0] for d in cur.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        conn.close()
