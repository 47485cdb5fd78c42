"""The loader's entry points, where the CLI and the nightly code import them from.

    load_table(settings, table, run_id, full_refresh=False) -> TableLoadResult     (see `table`)
    run(settings, tables=None, tier=None, full_refresh=False, max_workers=2, run_id=None,
        dry_run=False) -> list[TableLoadResult]                                    (see `parallel`)
    select_tables(settings, tables=None, tier=None), new_run_id()                  (see `parallel`)

How a table is loaded is decided in `decide`; the rows it reads are a `window.Window`.
"""

from etl_pipeline.load.parallel import WorkerConnections, new_run_id, run, select_tables
from etl_pipeline.load.result import LoadCounts, TableLoadResult
from etl_pipeline.load.table import load_table

__all__ = [
    "LoadCounts",
    "TableLoadResult",
    "WorkerConnections",
    "load_table",
    "new_run_id",
    "run",
    "select_tables",
]
