"""The `tables.yml` model: the contract between the source and the nightly run.

Format (written by `analyze-schema`, read by the loader and the DAGs):

    metadata:                       # run-level facts; the only part that changes on every run
      generated_at: '2026-11-21T23:00:00+00:00'
      analyzer_version: '1'
      source_server_version: 10.11.19-MariaDB
      source_database: opendental
      environment: local
      table_count: 36
      schema_fingerprint: sha256:<hex>
    tables:                         # sorted by source name
      patient:
        target_name: patient        # raw.<target_name>, lowercase
        enabled: true
        tier: small                 # large | medium | small | tiny
        estimated_rows: 35000       # rounded to 2 significant digits (stable between runs)
        primary_key: [PatNum]       # [] when the table has none
        strategy: incremental       # incremental | append_only | full (rules: etl_pipeline/schema/classify.py)
        cursor: DateTStamp          # incremental: change timestamp, read in (cursor, primary key) order;
                                    # append_only: the auto-increment primary key; null for full
        lookback_minutes: 60        # incremental only (0 otherwise): window re-read below the high-water mark
        detect_deletes: true        # primary-key reconciliation after each load (incremental tables)
        columns:                    # source ordinal order
          - {name: PatNum, source_type: bigint(20), target_type: bigint, nullable: false}
          ...
        excluded_columns: []        # from overrides (e.g. SSN): never read from the source

Per-table fields never change on an unchanged source (estimated_rows is rounded), so two runs give
byte-identical `tables:` sections. Source types are the server's COLUMN_TYPE, except a MariaDB JSON
column (longtext + json_valid CHECK), recorded as `json`. Target types come from
`etl_pipeline.type_mapping` (table in etl_pipeline/schema/TYPE_MAPPING.md).

`tables.overrides.yml` (hand-edited, merged over the analysis, survives regeneration; full format in
`etl_pipeline/schema/overrides.py`):

    defaults: {lookback_minutes: 60, tier_thresholds: {large: 1000000, medium: 100000, small: 10000},
               max_table_loss: 0.10}
    tables:
      patient: {exclude_columns: [SSN], note: PII}
      securitylog: {tier: large}
      someaddon: {enabled: false}

`load_tables_config(path, overrides_path)` parses tables.yml and applies the overrides again at read
time, so an edit takes effect on the next nightly run without re-analysis. It stops at input it cannot
use; the full check of both files (with line numbers) is `python -m etl_pipeline.cli validate-config`
(`etl_pipeline.schema.validate.validate_tables_config`), which the nightly run's first step also runs.

Source names are kept exactly; target names are lowercase. Column `target_name` is derived
(`name.lower()`), so it is not stored per column.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from etl_pipeline.errors import ConfigError
from etl_pipeline.schema.constants import TIERS
from etl_pipeline.schema.overrides import apply_overrides, load_overrides
from etl_pipeline.schema.tables_model import (
    ColumnConfig,
    TableConfig,
    TablesConfig,
    table_from_dict,
    table_to_dict,
)
from etl_pipeline.schema.validate import validate_tables_config
from etl_pipeline.schema.yaml_nodes import SAFE_LOADER, yaml_error

# The model's names are imported from here across the package (and TIERS, for planning).
__all__ = [
    "TIERS",
    "ColumnConfig",
    "TableConfig",
    "TablesConfig",
    "load_tables_config",
    "table_from_dict",
    "table_to_dict",
]

log = logging.getLogger(__name__)


def load_tables_config(path: Path, overrides_path: Path | None = None) -> TablesConfig:
    """Read tables.yml and, when `overrides_path` is given (and exists), merge the overrides again.

    analyze-schema already wrote tables.yml merged with the overrides of its time; passing
    `overrides_path` (the nightly run passes `settings.overrides_yml`) applies the current overrides at
    read time, so an edit to tables.overrides.yml (disable a table, exclude a column, pin a tier,
    strategy, cursor or lookback) takes effect on the next run without re-analysis. Exclusions only
    add up: un-excluding a column needs a re-analysis. Overrides naming unknown tables or columns are
    logged as warnings here (validate-config reports them as errors). Raises ConfigError naming
    file:line: field for input it cannot use.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: not found; run `python -m etl_pipeline.cli analyze-schema` to create it")
    data = _read(path)
    try:
        tables = {name: table_from_dict(name, entry) for name, entry in (data.get("tables") or {}).items()}
        metadata = dict(data.get("metadata") or {})
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise _unusable(path, exc) from None
    if overrides_path is not None:
        tables, problems = apply_overrides(tables, load_overrides(Path(overrides_path)))
        for problem in problems:
            log.warning("%s: %s", overrides_path, problem)
    return TablesConfig(tables=tables, metadata=metadata, path=path)


def _read(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(), Loader=SAFE_LOADER) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(str(yaml_error(str(path), exc))) from None


def _unusable(path: Path, exc: Exception) -> ConfigError:
    """The error for a file the loader cannot use. Plain data has no line numbers, so the validator
    (which reads nodes) locates the problem; this runs only on the failure path."""
    errors = validate_tables_config(path)
    if not errors:
        return ConfigError(f"{path}: cannot be used ({type(exc).__name__}: {exc}); run validate-config")
    more = f" (+{len(errors) - 1} more: run validate-config)" if len(errors) > 1 else ""
    return ConfigError(f"{errors[0]}{more}")
