"""The `plan` step and the extract tasks of the nightly run: which tables load, and one table's load.

    plan_run(settings, options)            per tier, the tables to load, largest first; the source's
                                           new tables too (`"new": True`, their config in the item)
    extract_table(settings, item, run_id)  one planned table through the loader, within its large slot
    load_planned_table(item, context)      the same in an Airflow task: map-index label, raw Asset event

A source table that tables.yml does not list yet is planned with the config the schema analysis would
give it, carried in its plan item, for this run only (`etl_pipeline.tables_yml`); one that cannot be
loaded (no primary key, an unmapped column type) is logged by name and reason and left out.

The large tier shares `max_workers` run-wide slots (`large_slot`): Airflow cannot template
max_active_tis_per_dagrun from params, so the cap lives in the target database instead.

The database drivers and the loader are imported inside the steps that use them:
the DAG file imports this module every time it is parsed, and they take seconds to import.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from etl_pipeline.errors import ConfigError, ConnectionFailed
from etl_pipeline.nightly_checks import DEFAULT_MAX_WORKERS
from etl_pipeline.schema.tables_config import TIERS, TableConfig, TablesConfig
from etl_pipeline.settings import RAW_SCHEMA, Settings, task_settings
from etl_pipeline.tables_yml import NewTables, carried_config, new_tables, planned_table, tables_config

log = logging.getLogger(__name__)

LARGE_SLOT_LOCK = 7_301_001  # advisory-lock namespace for the large-tier slots
SLOT_POLL_SECONDS = 2.0
RAW_TABLES_ALIAS = "raw_tables"  # the AssetAlias every extract task announces its raw table under


def plan_run(settings: Settings, options: dict, new: NewTables | None = None) -> dict[str, list[dict]]:
    """Per tier, the tables to load this run, largest first (so the longest loads start first).

    A disabled table asked for by name in `tables` still runs: the operator said so. `new`: the
    source's new tables when already known (None: read from the source here)."""
    config = tables_config(settings)
    wanted = set(options.get("tables") or [])
    if new is None:
        new = _discover(settings, config, needed=bool(wanted - set(config.tables)))
    for name, why in sorted(new.not_loaded.items()):
        log.warning("new table %s is not loaded: %s", name, why)
    unknown = sorted(wanted - set(config.tables) - set(new.tables))
    if unknown:
        raise ConfigError(
            f"params.tables: {', '.join(unknown)} neither in {settings.tables_yml} nor a new source table "
            "that can be loaded"
        )
    every = TablesConfig(tables={**new.tables, **config.tables})
    chosen = [t for tier in TIERS for t in every.by_tier(tier) if not wanted or t.name in wanted]
    chosen += [every.tables[name] for name in sorted(wanted - {t.name for t in chosen})]
    plan: dict[str, list[dict]] = {tier: [] for tier in TIERS}
    for table in chosen:
        plan[table.tier].append(_planned(table, options, is_new=table.name not in config.tables))
    return plan


def _discover(settings: Settings, config: TablesConfig, needed: bool) -> NewTables:
    """The source's new tables; a source that does not answer leaves them for the next night, unless
    the run was asked for one of them by name."""
    from etl_pipeline.db import SOURCE_OPERATIONAL_ERRORS

    try:
        return new_tables(settings, config)
    except (ConnectionFailed, *SOURCE_OPERATIONAL_ERRORS) as exc:
        if needed:
            raise
        log.warning(
            "new tables not looked for (%s): tonight loads the tables of tables.yml", type(exc).__name__
        )
        return NewTables()


def _planned(table: TableConfig, options: dict, is_new: bool = False) -> dict:
    item = {
        "table": table.name,
        "tier": table.tier,
        "estimated_rows": table.estimated_rows,
        "full_refresh": bool(options.get("force_full_refresh")),
        "slots": int(options.get("max_workers", DEFAULT_MAX_WORKERS)) if table.tier == "large" else 0,
    }
    if is_new:
        item.update(new=True, strategy=table.strategy, config=carried_config(table))
    return item


def extract_table(settings: Settings, item: dict, run_id: str) -> dict:
    """Load one planned table (a new one with the config its item carries); a large table first takes
    one of its `slots` run-wide slots."""
    from etl_pipeline.load.engine import load_table

    table = planned_table(settings, item)
    with large_slot(settings, run_id, int(item.get("slots") or 0)):
        result = load_table(settings, table, run_id, full_refresh=bool(item.get("full_refresh")))
    return result.to_dict()


def load_planned_table(item: dict, context: Any) -> dict:
    """`extract_table` inside an Airflow task: the map index shows the table's name, and the loaded
    raw table is announced as an Asset event under the `raw_tables` alias."""
    from airflow.sdk import Asset, AssetAlias  # only in a task: the CLI and tests load without Airflow

    context["table_label"] = item["table"]  # the task's map_index_template
    settings = task_settings()
    result = extract_table(settings, item, context["run_id"])
    context["outlet_events"][AssetAlias(RAW_TABLES_ALIAS)].add(
        Asset(asset_uri(settings, result["target_name"] or item["table"].lower())),
        extra={"table": item["table"], "strategy": result["strategy"], "rows_read": result["rows_read"]},
    )
    return result


@contextmanager
def large_slot(settings: Settings, run_id: str, slots: int) -> Iterator[int | None]:
    """At most `slots` holders per run at once: a session advisory lock on one of `slots` keys.

    A waiting task holds its worker slot; the lock is released when the connection closes, even if
    the worker dies."""
    if slots <= 0:
        yield None
        return
    from etl_pipeline.db import connect_target

    conn = connect_target(settings.target, autocommit=True)
    namespace = LARGE_SLOT_LOCK + zlib.crc32(run_id.encode()) % 1000
    try:
        while True:
            with conn.cursor() as cur:
                for slot in range(slots):
                    cur.execute("SELECT pg_try_advisory_lock(%s, %s)", (namespace, slot))
                    if cur.fetchone()[0]:
                        yield slot
                        return
            time.sleep(SLOT_POLL_SECONDS)
    finally:
        conn.close()


def asset_uri(settings: Settings, target_name: str) -> str:
    """The Airflow Asset naming one raw table (postgres://host:port/database/raw/table)."""
    t = settings.target
    return f"postgres://{t.host}:{t.port}/{t.database}/{RAW_SCHEMA}/{target_name}"
