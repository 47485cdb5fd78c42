"""Validate tables.yml and tables.overrides.yml against their schema, with line numbers.

    errors = validate_tables_config(tables_yml, overrides_yml)
    for e in errors: print(e)      # tables.yml:812: tables.procedurelog.cursor: unknown column "DateTStmp"

The YAML is composed into nodes (which keep their line marks) rather than loaded into plain data,
so every message points at the line to fix. Checked: malformed YAML, duplicate and unknown keys,
wrong types, bad enum values, target types that disagree with `etl_pipeline.type_mapping`, primary
key / cursor / excluded columns naming unknown columns, strategies without the cursor they need, and
overrides naming unknown tables or columns.

This is the full check, run where a file enters the system: `validate-config`, the nightly run's
first step, and analyze-schema before it publishes a new tables.yml. Loading (`load_tables_config`)
only parses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yaml.nodes import Node, SequenceNode

from etl_pipeline.errors import ConfigError
from etl_pipeline.schema.constants import CURSOR_STRATEGIES, STRATEGIES, TIERS
from etl_pipeline.schema.overrides import TableEntry, read_overrides
from etl_pipeline.schema.yaml_nodes import (
    BOOL,
    INT,
    MAP,
    NAMES,
    NULL,
    SEQ,
    STR,
    Items,
    KeySpec,
    NodeReader,
    ValidationError,
    name_nodes,
)
from etl_pipeline.type_mapping import map_column_type

__all__ = ["ValidationError", "validate_overrides_file", "validate_tables_config"]

Known = dict[str, dict[str, str]]  # table -> {lowercase column name: column name}

TOP_KEYS: KeySpec = {"metadata": (MAP, False), "tables": (MAP, True)}
METADATA_KEYS: KeySpec = {
    "generated_at": (frozenset({STR}), False),
    "analyzer_version": (frozenset({STR}), False),
    "source_server_version": (frozenset({STR}), False),
    "source_database": (frozenset({STR}), False),
    "environment": (frozenset({STR}), False),
    "table_count": (frozenset({INT}), False),
    "schema_fingerprint": (frozenset({STR}), False),
}
TABLE_KEYS: KeySpec = {
    "target_name": (frozenset({STR}), False),
    "enabled": (frozenset({BOOL}), False),
    "tier": (frozenset({STR}), True),
    "estimated_rows": (frozenset({INT}), False),
    "primary_key": (NAMES, False),
    "strategy": (frozenset({STR}), True),
    "cursor": (frozenset({STR, NULL}), False),
    "lookback_minutes": (frozenset({INT}), False),
    "detect_deletes": (frozenset({BOOL}), False),
    "columns": (SEQ, True),
    "excluded_columns": (NAMES, False),
}
COLUMN_KEYS: KeySpec = {
    "name": (frozenset({STR}), True),
    "source_type": (frozenset({STR}), True),
    "target_type": (frozenset({STR}), True),
    "nullable": (frozenset({BOOL}), False),
}


def validate_tables_config(path: Path, overrides_path: Path | None = None) -> list[ValidationError]:
    """All problems in tables.yml and (when given and present) the overrides file; [] when valid."""
    path = Path(path)
    reader = NodeReader(str(path))
    if not path.is_file():
        reader.error(None, "(file)", "not found; run analyze-schema to create it")
        return reader.errors
    root = reader.compose(path)
    known = _check_tables_yml(root, reader) if not reader.errors else None
    errors = list(reader.errors)
    if overrides_path is not None and Path(overrides_path).is_file():
        errors.extend(validate_overrides_file(Path(overrides_path), known))
    return errors


def validate_overrides_file(path: Path, known: Known | None = None) -> list[ValidationError]:
    """All problems in an overrides file; with `known` (from tables.yml) also unknown tables and columns."""
    reader = NodeReader(str(path))
    root = reader.compose(Path(path))
    if not reader.errors:
        _defaults, tables = read_overrides(root, reader)
        if known is not None:
            for name, entry in tables.items():
                _check_override_names(name, entry, known, reader)
    return reader.errors


def _check_tables_yml(root: Node | None, reader: NodeReader) -> Known:
    """Validate tables.yml; returns the columns of each table, to check the overrides against."""
    known: Known = {}
    top = reader.mapping(root, "(top)", TOP_KEYS)
    meta_items: Items = {}
    meta: dict[str, Any] = {}
    if "metadata" in top:
        meta_items = reader.mapping(top["metadata"][1], "metadata", METADATA_KEYS)
        meta = reader.typed(meta_items, METADATA_KEYS, "metadata")
    if "tables" not in top:
        return known
    for name, (_key_node, table_node) in reader.mapping(top["tables"][1], "tables").items():
        known[name] = _check_table(name, table_node, reader)
    if "table_count" in meta and meta["table_count"] != len(known):
        reader.error(
            meta_items["table_count"][1],
            "metadata.table_count",
            f"says {meta['table_count']} but the file lists {len(known)} tables",
        )
    return known


def _check_table(name: str, node: Node, reader: NodeReader) -> dict[str, str]:
    """Check one table entry; returns its columns ({lowercase name: name})."""
    path = f"tables.{name}"
    items = reader.mapping(node, path, TABLE_KEYS)
    values = reader.typed(items, TABLE_KEYS, path)
    reader.one_of(values, items, "tier", TIERS, path)
    reader.one_of(values, items, "strategy", STRATEGIES, path)
    columns: dict[str, str] = {}
    column_nodes: SequenceNode | None = values.get("columns")
    for index, col_node in enumerate(column_nodes.value if column_nodes else []):
        columns.update(_check_column(f"{path}.columns[{index}]", col_node, reader))
    if "columns" in items:
        _check_column_references(path, items, values, columns, reader)
        _check_strategy_needs(path, node, items, values, reader)
        for key in ("lookback_minutes", "estimated_rows"):
            if isinstance(values.get(key), int) and values[key] < 0:
                reader.error(items[key][1], f"{path}.{key}", "must not be negative")
    return columns


def _check_column_references(
    path: str, items: Items, values: dict[str, Any], columns: dict[str, str], reader: NodeReader
) -> None:
    """Primary key, excluded columns and cursor name columns of the table."""
    for key in ("primary_key", "excluded_columns"):
        for col in name_nodes(items[key][1]) if key in items else []:
            if col.value.lower() not in columns:
                reader.error(col, f"{path}.{key}", f'unknown column "{col.value}"')
    cursor = values.get("cursor")
    if cursor and cursor.lower() not in columns:
        reader.error(items["cursor"][1], f"{path}.cursor", f'unknown column "{cursor}"')


def _check_strategy_needs(
    path: str, node: Node, items: Items, values: dict[str, Any], reader: NodeReader
) -> None:
    """A cursor strategy has a cursor; incremental has a primary key to merge on."""
    strategy = values.get("strategy")
    if strategy in CURSOR_STRATEGIES:
        if "cursor" not in items:
            reader.error(node, path, f"strategy {strategy} needs a cursor column")
        elif not values.get("cursor"):
            reader.error(items["cursor"][1], f"{path}.cursor", f"strategy {strategy} needs a cursor column")
    if strategy == "incremental" and "primary_key" in values and not values["primary_key"]:
        reader.error(items["strategy"][1], f"{path}.strategy", "incremental needs a primary key to merge on")


def _check_column(path: str, node: Node, reader: NodeReader) -> dict[str, str]:
    items = reader.mapping(node, path, COLUMN_KEYS)
    values = reader.typed(items, COLUMN_KEYS, path)
    if "source_type" in values:
        try:
            expected = map_column_type(values["source_type"]).pg_type
        except ConfigError as exc:
            reader.error(items["source_type"][1], f"{path}.source_type", str(exc))
        else:
            if "target_type" in values and values["target_type"] != expected:
                reader.error(
                    items["target_type"][1],
                    f"{path}.target_type",
                    f"{values['target_type']!r} does not match the type mapping for "
                    f"{values['source_type']!r} ({expected!r})",
                )
    return {values["name"].lower(): values["name"]} if "name" in values else {}


def _check_override_names(name: str, entry: TableEntry, known: Known, reader: NodeReader) -> None:
    """The table and the columns an override names exist in tables.yml."""
    path = f"tables.{name}"
    if name not in known:
        reader.error(entry.key_node, path, f'unknown table "{name}" (not in tables.yml)')
        return
    columns = known[name]
    excluded = entry.items.get("exclude_columns")
    for col in name_nodes(excluded[1]) if excluded else []:
        if col.value.lower() not in columns:
            reader.error(col, f"{path}.exclude_columns", f'unknown column "{col.value}"')
    cursor = entry.values.get("cursor")
    if cursor and cursor.lower() not in columns:
        reader.error(entry.items["cursor"][1], f"{path}.cursor", f'unknown column "{cursor}"')
