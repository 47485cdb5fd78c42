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

      securitylog: {lookback_keys: 5000, chunk_rows: 20000}

Table keys: enabled, tier, strategy, cursor, lookback_minutes, detect_deletes, exclude_columns, note,
lookback_keys (append_only: keys below the saved key read again each load, for late InnoDB commits;
default 1000), chunk_rows (rows per statement when a MyISAM table is read in key-range chunks;
default SOURCE_CHUNK_ROWS). The last two are not written to tables.yml: they apply at read time.
Overrides are merged by `analyze-schema` (so tables.yml shows the merged result and is safe to use on
its own) and again by `load_tables_config(..., overrides_path)` at read time (so an edit takes effect
on the next nightly run without re-analysis); merging twice gives the same result.

`load_overrides` parses: it stops with a `file:line: field` error at input it cannot apply (malformed
YAML, unknown keys, wrong types, a tier or strategy that does not exist). Whether the names in it exist
is a question for tables.yml: `apply_overrides` returns an override naming an unknown table or column
as a problem (and skips it), and `validate-config` reports it as an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypedDict, cast

from yaml.nodes import Node

from etl_pipeline.schema.constants import (
    CURSOR_STRATEGIES,
    DEFAULT_LOOKBACK_MINUTES,
    DEFAULT_MAX_TABLE_LOSS,
    STRATEGIES,
    TIERS,
    Strategy,
    Thresholds,
    Tier,
)
from etl_pipeline.schema.tables_model import TableConfig
from etl_pipeline.schema.yaml_nodes import BOOL, FLOAT, INT, MAP, NAMES, NULL, STR, Items, KeySpec, NodeReader

TOP_KEYS: KeySpec = {"defaults": (MAP, False), "tables": (MAP, False)}
DEFAULT_KEYS: KeySpec = {
    "lookback_minutes": (frozenset({INT}), False),
    "tier_thresholds": (MAP, False),
    "max_table_loss": (frozenset({FLOAT, INT}), False),
}
THRESHOLD_KEYS: KeySpec = {tier: (frozenset({INT}), False) for tier in ("large", "medium", "small")}
_DEFAULT_THRESHOLDS = Thresholds()
TABLE_KEYS: KeySpec = {
    "enabled": (frozenset({BOOL}), False),
    "tier": (frozenset({STR}), False),
    "strategy": (frozenset({STR}), False),
    "cursor": (frozenset({STR, NULL}), False),
    "lookback_minutes": (frozenset({INT}), False),
    "detect_deletes": (frozenset({BOOL}), False),
    "exclude_columns": (NAMES, False),
    "note": (frozenset({STR}), False),
    "lookback_keys": (frozenset({INT}), False),
    "chunk_rows": (frozenset({INT}), False),
}


class TableOverride(TypedDict, total=False):
    enabled: bool
    tier: Tier
    strategy: Strategy
    cursor: str | None
    lookback_minutes: int
    detect_deletes: bool
    exclude_columns: list[str]
    note: str
    lookback_keys: int
    chunk_rows: int


@dataclass(frozen=True)
class Overrides:
    tables: dict[str, TableOverride] = field(default_factory=dict)
    lookback_minutes: int = DEFAULT_LOOKBACK_MINUTES
    thresholds: Thresholds = field(default_factory=Thresholds)
    max_table_loss: float = DEFAULT_MAX_TABLE_LOSS
    path: Path | None = None


@dataclass(frozen=True)
class TableEntry:
    """One table's override as read, with the nodes that locate it in the file."""

    key_node: Node
    items: Items
    values: TableOverride


def load_overrides(path: Path | None) -> Overrides:
    """Parse the overrides file; a missing file means no overrides. Raises ConfigError (file:line)."""
    if path is None or not Path(path).is_file():
        return Overrides()
    path = Path(path)
    reader = NodeReader(str(path), strict=True)
    defaults, tables = read_overrides(reader.compose(path), reader)
    return Overrides(
        tables={name: entry.values for name, entry in tables.items()},
        lookback_minutes=int(defaults.get("lookback_minutes", DEFAULT_LOOKBACK_MINUTES)),
        thresholds=Thresholds(**defaults.get("tier_thresholds", {})),
        max_table_loss=float(defaults.get("max_table_loss", DEFAULT_MAX_TABLE_LOSS)),
        path=path,
    )


def read_overrides(root: Node | None, reader: NodeReader) -> tuple[dict[str, Any], dict[str, TableEntry]]:
    """The `defaults:` values and the table entries of an overrides document, checked for structure,
    types and allowed values (not for the names of tables and columns: that needs tables.yml)."""
    top = reader.mapping(root, "(top)", TOP_KEYS)
    defaults = _read_defaults(top["defaults"][1], reader) if "defaults" in top else {}
    tables: dict[str, TableEntry] = {}
    table_items = reader.mapping(top["tables"][1], "tables") if "tables" in top else {}
    for name, (key_node, node) in table_items.items():
        path = f"tables.{name}"
        items = reader.mapping(node, path, TABLE_KEYS)
        values = reader.typed(items, TABLE_KEYS, path)
        reader.one_of(values, items, "tier", TIERS, path)
        reader.one_of(values, items, "strategy", STRATEGIES, path)
        _not_negative(values, items, "lookback_minutes", path, reader)
        _not_negative(values, items, "lookback_keys", path, reader)
        if "chunk_rows" in values and values["chunk_rows"] < 1:
            reader.error(items["chunk_rows"][1], f"{path}.chunk_rows", "must be at least 1")
            del values["chunk_rows"]
        tables[name] = TableEntry(key_node, items, cast(TableOverride, values))  # values follow TABLE_KEYS
    return defaults, tables


def _read_defaults(node: Node, reader: NodeReader) -> dict[str, Any]:
    items = reader.mapping(node, "defaults", DEFAULT_KEYS)
    values = reader.typed(items, DEFAULT_KEYS, "defaults")
    _not_negative(values, items, "lookback_minutes", "defaults", reader)
    if "tier_thresholds" in values:
        where = "defaults.tier_thresholds"
        limits = reader.typed(
            reader.mapping(values["tier_thresholds"], where, THRESHOLD_KEYS), THRESHOLD_KEYS, where
        )
        # a threshold left out keeps its default, so the order is checked with the defaults filled in
        large, medium, small = (limits.get(key, getattr(_DEFAULT_THRESHOLDS, key)) for key in THRESHOLD_KEYS)
        if not large >= medium >= small >= 0:
            reader.error(
                values["tier_thresholds"],
                where,
                f"need large >= medium >= small >= 0, got {large}, {medium}, {small} (with defaults filled in)",
            )
        values["tier_thresholds"] = limits
    loss = values.get("max_table_loss")
    if loss is not None and not 0 <= loss <= 1:
        reader.error(items["max_table_loss"][1], "defaults.max_table_loss", "must be between 0 and 1")
    return values


def _not_negative(values: dict[str, Any], items: Items, key: str, path: str, reader: NodeReader) -> None:
    if key in values and values[key] < 0:
        reader.error(items[key][1], f"{path}.{key}", "must not be negative")
        del values[key]


def apply_overrides(
    tables: dict[str, TableConfig], overrides: Overrides
) -> tuple[dict[str, TableConfig], list[str]]:
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


def _apply_to_table(
    table: TableConfig, entry: TableOverride, default_lookback: int
) -> tuple[TableConfig, list[str]]:
    """The table with one override applied, or the table unchanged when the result could not load."""
    where = f"overrides: tables.{table.name}"
    known = {c.name.lower(): c.name for c in table.columns}
    problems: list[str] = []
    changes: dict[str, Any] = {
        k: v
        for k, v in entry.items()
        if k in ("enabled", "tier", "detect_deletes", "lookback_keys", "chunk_rows")
    }
    if "strategy" in entry:
        changes.update(_strategy_changes(table, entry, default_lookback))
    if "cursor" in entry:
        cursor = entry["cursor"]
        if cursor is not None and cursor.lower() not in known:
            problems.append(f"{where}.cursor: unknown column {cursor!r} (override ignored)")
        else:
            changes["cursor"] = known[cursor.lower()] if cursor else None
    if "lookback_minutes" in entry:
        changes["lookback_minutes"] = int(entry["lookback_minutes"])
    cursor_after = changes.get("cursor", table.cursor)
    changes["excluded_columns"] = _excluded_columns(
        table, entry.get("exclude_columns") or [], cursor_after, problems
    )
    merged = replace(table, **changes)
    unloadable = _why_unloadable(merged)
    if unloadable:
        return table, [*problems, f"{where}: {unloadable} (override ignored)"]
    return merged, problems


def _excluded_columns(
    table: TableConfig, names: list[str], cursor: str | None, problems: list[str]
) -> tuple[str, ...]:
    """The table's excluded columns plus `names` (source spelling, column order); the primary key and
    the cursor are never excluded. Names that cannot be excluded are added to `problems`."""
    where = f"overrides: tables.{table.name}.exclude_columns"
    known = {c.name.lower(): c.name for c in table.columns}
    protected = {c.lower() for c in (*table.primary_key, cursor or "")}
    excluded = list(table.excluded_columns)
    for name in names:
        if name.lower() not in known:
            problems.append(f"{where}: unknown column {name!r}")
        elif name.lower() in protected:
            problems.append(
                f"{where}: {name!r} is the primary key or cursor and cannot be excluded (override ignored)"
            )
        elif known[name.lower()] not in excluded:
            excluded.append(known[name.lower()])
    order = {c.name: i for i, c in enumerate(table.columns)}
    return tuple(sorted(excluded, key=lambda c: order.get(c, len(order))))


def _strategy_changes(table: TableConfig, entry: TableOverride, default_lookback: int) -> dict[str, Any]:
    """What a new strategy brings with it (a cursor, lookback and delete check it needs or drops)."""
    strategy = entry["strategy"]
    if strategy == "full":
        return {
            "strategy": strategy,
            "cursor": None,
            "lookback_minutes": 0,
            "detect_deletes": entry.get("detect_deletes", False),
        }
    if strategy == "incremental" and table.strategy != "incremental":
        return {
            "strategy": strategy,
            "lookback_minutes": default_lookback,
            "detect_deletes": entry.get("detect_deletes", True),
        }
    return {"strategy": strategy}


def _why_unloadable(table: TableConfig) -> str | None:
    if table.strategy in CURSOR_STRATEGIES and not table.cursor:
        return f"strategy {table.strategy} needs a cursor"
    if table.strategy == "incremental" and not table.primary_key:
        return "strategy incremental needs a primary key to merge on"
    return None
