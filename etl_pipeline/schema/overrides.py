"""`tables.overrides.yml`: hand-edited decisions merged over the analysis.

    defaults:                        # optional; analysis-wide settings
      lookback_minutes: 60
      tier_thresholds: {large: 1000000, medium: 100000, small: 10000}
      max_table_loss: 0.10           # guard: refuse a new tables.yml that lost more tables than this
    tables:
      patient: {exclude_columns: [SSN], note: PII}
      securitylog: {tier: large}
      someaddon: {enabled: false}
      claimproc: {strategy: incremental, cursor: SecDateTEdit, lookback_minutes: 180}

Table keys: enabled, tier, strategy, cursor, lookback_minutes, detect_deletes, exclude_columns, note.
Overrides are applied twice: by `analyze-schema` (so tables.yml shows the merged result and stays
safe to use on its own) and again by `load_tables_config(..., overrides_path)` at read time (so an edit
takes effect on the next nightly run without re-analysis). Applying them twice gives the same result.
An override naming a table or column that does not exist is reported, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from etl_pipeline.errors import ConfigError
from etl_pipeline.schema.classify import DEFAULT_LOOKBACK_MINUTES, Thresholds
from etl_pipeline.schema.tables_config import SAFE_LOADER

TABLE_KEYS = (
    "enabled",
    "tier",
    "strategy",
    "cursor",
    "lookback_minutes",
    "detect_deletes",
    "exclude_columns",
    "note",
)
DEFAULT_KEYS = ("lookback_minutes", "tier_thresholds", "max_table_loss")
DEFAULT_MAX_TABLE_LOSS = 0.10


@dataclass(frozen=True)
class Overrides:
    tables: dict[str, dict] = field(default_factory=dict)
    lookback_minutes: int = DEFAULT_LOOKBACK_MINUTES
    thresholds: Thresholds = field(default_factory=Thresholds)
    max_table_loss: float = DEFAULT_MAX_TABLE_LOSS
    path: Path | None = None


def load_overrides(path: Path | None) -> Overrides:
    """Read and validate the overrides file; a missing file means no overrides."""
    if path is None or not Path(path).is_file():
        return Overrides()
    from etl_pipeline.schema.validate import validate_overrides_file  # validate imports this module

    path = Path(path)
    errors = validate_overrides_file(path)
    if errors:
        raise ConfigError("; ".join(str(e) for e in errors[:5]) + (" ..." if len(errors) > 5 else ""))
    data = yaml.load(path.read_text(), Loader=SAFE_LOADER) or {}
    defaults = data.get("defaults") or {}
    thresholds = Thresholds(**(defaults.get("tier_thresholds") or {}))
    return Overrides(
        tables={name: dict(entry or {}) for name, entry in (data.get("tables") or {}).items()},
        lookback_minutes=int(defaults.get("lookback_minutes", DEFAULT_LOOKBACK_MINUTES)),
        thresholds=thresholds,
        max_table_loss=float(defaults.get("max_table_loss", DEFAULT_MAX_TABLE_LOSS)),
        path=path,
    )


def apply_overrides(tables: dict, overrides: Overrides) -> tuple[dict, list[str]]:
    """Merge overrides over {name: TableConfig}. Returns (merged tables, problems found)."""
    merged = dict(tables)
    problems: list[str] = []
    for name, entry in sorted(overrides.tables.items()):
        table = merged.get(name)
        if table is None:
            problems.append(f"overrides: table {name!r} does not exist in the source")
            continue
        merged[name], table_problems = _apply_to_table(table, entry, overrides.lookback_minutes)
        problems.extend(table_problems)
    return merged, problems


def _apply_to_table(table, entry: dict, default_lookback: int):
    problems = []
    known = {c.name.lower(): c.name for c in table.columns}
    changes: dict = {}
    for key in ("enabled", "tier", "detect_deletes"):
        if key in entry:
            changes[key] = entry[key]
    if "strategy" in entry:
        changes["strategy"] = entry["strategy"]
        if entry["strategy"] == "full":
            changes.update(cursor=None, lookback_minutes=0, detect_deletes=entry.get("detect_deletes", False))
        elif entry["strategy"] == "incremental" and table.strategy != "incremental":
            changes.update(
                lookback_minutes=default_lookback, detect_deletes=entry.get("detect_deletes", True)
            )
    if "cursor" in entry:
        cursor = entry["cursor"]
        if cursor is not None and cursor.lower() not in known:
            problems.append(
                f"overrides: tables.{table.name}.cursor: unknown column {cursor!r} (override ignored)"
            )
        else:
            changes["cursor"] = known[cursor.lower()] if cursor else None
    if "lookback_minutes" in entry:
        changes["lookback_minutes"] = int(entry["lookback_minutes"])
    excluded = list(table.excluded_columns)
    protected = {c.lower() for c in (*table.primary_key, changes.get("cursor", table.cursor) or "")}
    for column in entry.get("exclude_columns") or []:
        if column.lower() not in known:
            problems.append(f"overrides: tables.{table.name}.exclude_columns: unknown column {column!r}")
        elif column.lower() in protected:
            problems.append(
                f"overrides: tables.{table.name}.exclude_columns: {column!r} is the primary key "
                "or cursor and cannot be excluded (override ignored)"
            )
        elif known[column.lower()] not in excluded:
            excluded.append(known[column.lower()])
    order = {c.name: i for i, c in enumerate(table.columns)}
    changes["excluded_columns"] = tuple(sorted(excluded, key=lambda c: order.get(c, len(order))))
    merged = replace(table, **changes)
    if merged.strategy in ("incremental", "append_only") and not merged.cursor:
        problems.append(
            f"overrides: tables.{table.name}: strategy {merged.strategy} needs a cursor (override ignored)"
        )
        return table, problems
    if merged.strategy == "incremental" and not merged.primary_key:
        problems.append(
            f"overrides: tables.{table.name}: strategy incremental needs a primary key to merge on "
            "(override ignored)"
        )
        return table, problems
    return merged, problems
