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

`load_tables_config(path, overrides_path)` applies the overrides again at read time, so an edit takes
effect on the next nightly run without re-analysis. Validate both files with
`python -m etl_pipeline.cli validate-config` (`etl_pipeline.schema.validate.validate_tables_config`).

Source names are kept exactly; target names are lowercase. Column `target_name` is derived
(`name.lower()`), so it is not stored per column.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from etl_pipeline.errors import ConfigError
from etl_pipeline.type_mapping import map_column_type, target_identifier

TIERS = ("large", "medium", "small", "tiny")
# libyaml's C loader when present: a 450-table file loads in well under a second instead of ~8 s.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
STRATEGIES = ("incremental", "append_only", "full")


@dataclass(frozen=True)
class ColumnConfig:
    name: str
    source_type: str
    target_type: str
    nullable: bool = True

    @property
    def target_name(self) -> str:
        return target_identifier(self.name)

    @property
    def kind(self) -> str:
        """The loader's read/write kind for this column (see etl_pipeline.type_mapping)."""
        return map_column_type(self.source_type).kind


@dataclass(frozen=True)
class TableConfig:
    name: str
    target_name: str
    tier: str
    strategy: str
    columns: tuple[ColumnConfig, ...]
    primary_key: tuple[str, ...] = ()
    cursor: str | None = None
    lookback_minutes: int = 60
    detect_deletes: bool = False
    enabled: bool = True
    estimated_rows: int = 0
    excluded_columns: tuple[str, ...] = ()

    @property
    def loaded_columns(self) -> tuple[ColumnConfig, ...]:
        """Columns copied to raw (excluded ones are never read)."""
        excluded = {c.lower() for c in self.excluded_columns}
        return tuple(c for c in self.columns if c.name.lower() not in excluded)

    def column(self, name: str) -> ColumnConfig:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)


@dataclass(frozen=True)
class TablesConfig:
    tables: dict[str, TableConfig]
    metadata: dict = field(default_factory=dict)
    path: Path | None = None

    def enabled_tables(self) -> list[TableConfig]:
        return [t for t in self.tables.values() if t.enabled]

    def by_tier(self, tier: str) -> list[TableConfig]:
        """Enabled tables of one tier, largest first (so the longest loads start first)."""
        return sorted(
            (t for t in self.enabled_tables() if t.tier == tier), key=lambda t: (-t.estimated_rows, t.name)
        )


def table_from_dict(name: str, data: dict) -> TableConfig:
    columns = tuple(
        ColumnConfig(
            name=c["name"],
            source_type=c["source_type"],
            target_type=c["target_type"],
            nullable=bool(c.get("nullable", True)),
        )
        for c in data.get("columns") or []
    )
    return TableConfig(
        name=name,
        target_name=data.get("target_name") or target_identifier(name),
        tier=data["tier"],
        strategy=data["strategy"],
        columns=columns,
        primary_key=tuple(data.get("primary_key") or ()),
        cursor=data.get("cursor"),
        lookback_minutes=int(data.get("lookback_minutes", 60)),
        detect_deletes=bool(data.get("detect_deletes", False)),
        enabled=bool(data.get("enabled", True)),
        estimated_rows=int(data.get("estimated_rows", 0)),
        excluded_columns=tuple(data.get("excluded_columns") or ()),
    )


def table_to_dict(table: TableConfig) -> dict:
    return {
        "target_name": table.target_name,
        "enabled": table.enabled,
        "tier": table.tier,
        "estimated_rows": table.estimated_rows,
        "primary_key": list(table.primary_key),
        "strategy": table.strategy,
        "cursor": table.cursor,
        "lookback_minutes": table.lookback_minutes,
        "detect_deletes": table.detect_deletes,
        "columns": [
            {
                "name": c.name,
                "source_type": c.source_type,
                "target_type": c.target_type,
                "nullable": c.nullable,
            }
            for c in table.columns
        ],
        "excluded_columns": list(table.excluded_columns),
    }


def load_tables_config(path: Path, overrides_path: Path | None = None) -> TablesConfig:
    """Read tables.yml and, when `overrides_path` is given (and exists), merge the overrides again.

    analyze-schema already wrote tables.yml merged with the overrides of its time; passing
    `overrides_path` (the nightly run passes `settings.overrides_yml`) applies the current overrides at
    read time, so an edit to tables.overrides.yml (disable a table, exclude a column, pin a tier,
    strategy, cursor or lookback) takes effect on the next run without re-analysis. Exclusions only
    add up: un-excluding a column needs a re-analysis. Overrides naming unknown tables or columns are
    logged as warnings here (validate-config reports them as errors). Raises ConfigError.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: not found; run `python -m etl_pipeline.cli analyze-schema` to create it")
    try:
        data = yaml.load(path.read_text(), Loader=SAFE_LOADER) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: malformed YAML: {getattr(exc, 'problem', exc)}") from None
    tables = {}
    for name, table_data in (data.get("tables") or {}).items():
        try:
            tables[name] = table_from_dict(name, table_data)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: tables.{name}: invalid entry ({exc})") from None
    if overrides_path is not None:
        tables = _apply_overrides_at_read_time(tables, Path(overrides_path))
    return TablesConfig(tables=tables, metadata=data.get("metadata") or {}, path=path)


def _apply_overrides_at_read_time(tables: dict[str, TableConfig], overrides_path: Path) -> dict:
    from etl_pipeline.schema.overrides import apply_overrides, load_overrides  # overrides imports this module

    merged, problems = apply_overrides(tables, load_overrides(overrides_path))
    for problem in problems:
        logging.getLogger(__name__).warning("%s: %s", overrides_path, problem)
    return merged
