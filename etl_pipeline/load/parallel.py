"""A run over many tables: the chosen tables loaded largest first, a few at a time.

Each worker thread keeps one target connection for table after table (`WorkerConnections`). A
failing table is recorded and reported in its result; the others still load.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from psycopg2.extensions import connection

from etl_pipeline.db import connect_target
from etl_pipeline.errors import ConfigError
from etl_pipeline.load import failure, state
from etl_pipeline.load.progress import progress_for
from etl_pipeline.load.result import TableLoadResult
from etl_pipeline.load.table import load_table
from etl_pipeline.schema.tables_config import TableConfig, TablesConfig, load_tables_config
from etl_pipeline.settings import Settings

log = logging.getLogger(__name__)


def new_run_id() -> str:
    return "manual__" + datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def select_tables(
    settings: Settings, tables: Sequence[str] | None = None, tier: str | None = None
) -> list[TableConfig]:
    """The enabled tables (or the named ones), of one tier if given, largest first. A named table that
    tables.yml does not list yet is classified from the source as the nightly's plan does (`new_tables`)."""
    config = load_tables_config(settings.tables_yml, settings.overrides_yml)
    chosen = config.enabled_tables()
    if tables:
        known = dict(config.tables)
        unknown = [t for t in tables if t not in known]
        if unknown:
            known.update(_new_tables(settings, config, unknown))
        chosen = [known[t] for t in tables]
    if tier:
        chosen = [t for t in chosen if t.tier == tier]
    return sorted(chosen, key=lambda t: (-t.estimated_rows, t.name))


def _new_tables(settings: Settings, config: TablesConfig, names: Sequence[str]) -> dict[str, TableConfig]:
    """`names`, none in tables.yml, as new source tables; ConfigError naming each one that is not loadable."""
    from etl_pipeline.tables_yml import new_tables  # reads the source's structure: only when needed

    found = new_tables(settings, config)
    problems = [
        f"{name}: {found.not_loaded[name]}"
        if name in found.not_loaded
        else f"{name}: not at the source either"
        for name in names
        if name not in found.tables
    ]
    if problems:
        raise ConfigError(f"{settings.tables_yml}: no table(s) to load: {'; '.join(problems)}")
    for name in names:
        log.info("%s: not in tables.yml yet: loaded as a new table (the weekly analysis adds it)", name)
    return {name: found.tables[name] for name in names}


def run(
    settings: Settings,
    tables: Sequence[str] | None = None,
    tier: str | None = None,
    full_refresh: bool = False,
    max_workers: int = 2,
    run_id: str | None = None,
    dry_run: bool = False,
    live_progress: bool = True,
) -> list[TableLoadResult]:
    """Load the chosen tables (all enabled by default), largest first, `max_workers` at a time.

    A failing table is recorded and reported in its result; the others still load. `dry_run`: the
    results say what would be loaded (status skipped), nothing is read. `live_progress=False` keeps
    the progress to log lines even on a terminal (for output that a script reads).
    """
    chosen = select_tables(settings, tables, tier)
    run_id = run_id or new_run_id()
    if dry_run:
        return [
            TableLoadResult(table=t.name, strategy=t.strategy, status="skipped", target_name=t.target_name)
            for t in chosen
        ]
    targets = WorkerConnections(settings)

    with progress_for(live=live_progress) as progress:

        def one(table: TableConfig) -> TableLoadResult:
            try:
                with progress.table(table) as report:
                    return load_table(
                        settings, table, run_id, full_refresh, progress=report, pg=targets.get()
                    )
            except Exception as exc:
                targets.discard()  # whatever failed may have been the connection itself
                return TableLoadResult(
                    table=table.name,
                    strategy=table.strategy,
                    status="failed",
                    error_class=type(exc).__name__,
                    target_name=table.target_name,
                    message=failure.message_of(exc),
                )

        try:
            with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
                return list(pool.map(one, chosen))
        finally:
            targets.close_all()


class WorkerConnections:
    """One target connection per worker thread, reused for table after table (a PostgreSQL log-in
    costs more than loading an unchanged table). `get` returns None when connecting fails, so that
    `load_table` connects itself and records the failure as usual."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._local = threading.local()
        self._opened: list[connection] = []
        self._lock = threading.Lock()

    def get(self) -> connection | None:
        pg: connection | None = getattr(self._local, "pg", None)
        if pg is not None and not pg.closed:
            return pg
        pg = None
        try:
            pg = connect_target(self._settings.target)
            state.ensure_state_tables(pg)
        except Exception:
            if pg is not None:
                pg.close()
            return None
        self._local.pg = pg
        with self._lock:
            self._opened.append(pg)
        return pg

    def discard(self) -> None:
        pg: connection | None = getattr(self._local, "pg", None)
        self._local.pg = None
        if pg is not None and not pg.closed:
            pg.close()

    def close_all(self) -> None:
        with self._lock:
            for pg in self._opened:
                if not pg.closed:
                    pg.close()
