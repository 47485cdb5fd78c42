"""The tables.yml model: one `TableConfig` per source table, and its plain-dict form.

The file format is described in `etl_pipeline.schema.tables_config`, which reads it; the DAGs, the
loader and the parity checks use these classes. Everyone imports them from `tables_config`; they
live here so that `overrides` can build on them while `tables_config` builds on `overrides`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etl_pipeline.schema.constants import (
    DEFAULT_LOOKBACK_KEYS,
    DEFAULT_LOOKBACK_MINUTES,
    Strategy,
    Tier,
    is_strategy,
    is_tier,
)
from etl_pipeline.type_mapping import map_column_type, target_identifier


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
    tier: Tier
    strategy: Strategy
    columns: tuple[ColumnConfig, ...]
    primary_key: tuple[str, ...] = ()
    cursor: str | None = None
    lookback_minutes: int = DEFAULT_LOOKBACK_MINUTES
    detect_deletes: bool = False
    enabled: bool = True
    estimated_rows: int = 0
    excluded_columns: tuple[str, ...] = ()
    # append_only: keys below the saved key read again each load (see load.window); overrides only
    lookback_keys: int = DEFAULT_LOOKBACK_KEYS
    # rows per statement of a chunked (MyISAM) read; None: SOURCE_CHUNK_ROWS (see load.read_plan); overrides only
    chunk_rows: int | None = None

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
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def enabled_tables(self) -> list[TableConfig]:
        return [t for t in self.tables.values() if t.enabled]

    def by_tier(self, tier: str) -> list[TableConfig]:
        """Enabled tables of one tier, largest first (so the longest loads start first)."""
        return sorted(
            (t for t in self.enabled_tables() if t.tier == tier), key=lambda t: (-t.estimated_rows, t.name)
        )


def table_from_dict(name: str, data: Mapping[str, Any]) -> TableConfig:
    """A table entry of tables.yml as read by a YAML loader. Raises KeyError, TypeError or ValueError
    on an entry that cannot be used (a missing key, a tier or strategy no loader knows)."""
    tier, strategy = data["tier"], data["strategy"]
    if not is_tier(tier):
        raise ValueError(f"tier {tier!r} is not a tier")
    if not is_strategy(strategy):
        raise ValueError(f"strategy {strategy!r} is not a strategy")
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
        tier=tier,
        strategy=strategy,
        columns=columns,
        primary_key=tuple(data.get("primary_key") or ()),
        cursor=data.get("cursor"),
        lookback_minutes=int(data.get("lookback_minutes", DEFAULT_LOOKBACK_MINUTES)),
        detect_deletes=bool(data.get("detect_deletes", False)),
        enabled=bool(data.get("enabled", True)),
        estimated_rows=int(data.get("estimated_rows", 0)),
        excluded_columns=tuple(data.get("excluded_columns") or ()),
        lookback_keys=int(data.get("lookback_keys", DEFAULT_LOOKBACK_KEYS)),
        chunk_rows=int(data["chunk_rows"]) if data.get("chunk_rows") else None,
    )


def table_to_dict(table: TableConfig) -> dict[str, Any]:
    """The entry tables.yml stores for a table (keys in the file's order). `lookback_keys` and
    `chunk_rows` are not stored: they come from the overrides, merged again at read time."""
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
