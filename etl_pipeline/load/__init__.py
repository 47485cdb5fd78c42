"""Extract-load: stream MySQL/MariaDB tables into PostgreSQL `raw`, full or incremental, with deletes.

Public API (the CLI and the nightly DAG call these):
    load_table(settings, table, run_id, full_refresh=False) -> TableLoadResult
    run(settings, tables=None, tier=None, full_refresh=False, max_workers=2, run_id=None, dry_run=False)
    verify_table(settings, table, deep=False) -> ParityResult   (etl_pipeline.quality.parity)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from etl_pipeline.load.engine import TableLoadResult, load_table, new_run_id, run, select_tables
from etl_pipeline.schema.tables_config import TableConfig
from etl_pipeline.settings import Settings

if TYPE_CHECKING:
    from etl_pipeline.quality.parity import ParityResult

__all__ = ["TableLoadResult", "load_table", "new_run_id", "run", "select_tables", "verify_table"]


def verify_table(settings: Settings, table: TableConfig, deep: bool = False) -> ParityResult:
    # imported here: quality.parity imports this package's modules (raw, source, sql_render)
    from etl_pipeline.quality.parity import verify_table as _verify

    return _verify(settings, table, deep=deep)
