"""Validate tables.yml and tables.overrides.yml against their schema, with line numbers.

    errors = validate_tables_config(tables_yml, overrides_yml)
    for e in errors: print(e)      # tables.yml:812: tables.procedurelog.cursor: unknown column "DateTStmp"

The YAML is composed into nodes (which keep their line marks) rather than loaded into plain data,
so every message points at the line to fix. Checked: malformed YAML, duplicate and unknown keys,
wrong types, bad enum values, target types that disagree with `etl_pipeline.type_mapping`, primary
key / cursor / excluded columns naming unknown columns, strategies without the cursor they need, and
overrides naming unknown tables or columns. The nightly DAG calls the same function.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from etl_pipeline.errors import ConfigError
from etl_pipeline.schema.tables_config import SAFE_LOADER, STRATEGIES, TIERS
from etl_pipeline.type_mapping import map_column_type

_INT, _STR, _BOOL, _NULL, _FLOAT = (f"tag:yaml.org,2002:{t}" for t in ("int", "str", "bool", "null", "float"))


@dataclass(frozen=True)
class ValidationError:
    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.path}: {self.message}"


# key -> (allowed YAML tags, required)
METADATA_KEYS = {
    "generated_at": ({_STR}, False),
    "analyzer_version": ({_STR}, False),
    "source_server_version": ({_STR}, False),
    "source_database": ({_STR}, False),
    "environment": ({_STR}, False),
    "table_count": ({_INT}, False),
    "schema_fingerprint": ({_STR}, False),
}
TABLE_KEYS = {
    "target_name": ({_STR}, False),
    "enabled": ({_BOOL}, False),
    "tier": ({_STR}, True),
    "estimated_rows": ({_INT}, False),
    "primary_key": ("list", False),
    "strategy": ({_STR}, True),
    "cursor": ({_STR, _NULL}, False),
    "lookback_minutes": ({_INT}, False),
    "detect_deletes": ({_BOOL}, False),
    "columns": ("seq", True),
    "excluded_columns": ("list", False),
}
COLUMN_KEYS = {
    "name": ({_STR}, True),
    "source_type": ({_STR}, True),
    "target_type": ({_STR}, True),
    "nullable": ({_BOOL}, False),
}
OVERRIDE_TABLE_KEYS = {
    "enabled": ({_BOOL}, False),
    "tier": ({_STR}, False),
    "strategy": ({_STR}, False),
    "cursor": ({_STR, _NULL}, False),
    "lookback_minutes": ({_INT}, False),
    "detect_deletes": ({_BOOL}, False),
    "exclude_columns": ("list", False),
    "note": ({_STR}, False),
}
OVERRIDE_DEFAULT_KEYS = {
    "lookback_minutes": ({_INT}, False),
    "tier_thresholds": ("map", False),
    "max_table_loss": ({_FLOAT, _INT}, False),
}
_TAG_NAMES = {
    _INT: "an integer",
    _STR: "a string",
    _BOOL: "true/false",
    _NULL: "null",
    _FLOAT: "a number",
    "list": "a list",
    "seq": "a list",
    "map": "a mapping",
}


class _Checker:
    def __init__(self, file: str):
        self.file = file
        self.errors: list[ValidationError] = []

    def error(self, node: Node | None, path: str, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 1
        self.errors.append(ValidationError(self.file, line, path, message))

    def mapping(self, node: Node | None, path: str, keys: dict | None = None) -> dict[str, tuple[Node, Node]]:
        """{key: (key node, value node)} of a mapping node, reporting duplicates, unknown and missing keys."""
        if node is None or (isinstance(node, ScalarNode) and node.tag == _NULL):
            node_items = []
        elif not isinstance(node, MappingNode):
            self.error(node, path, "expected a mapping")
            return {}
        else:
            node_items = node.value
        items: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node_items:
            key = str(key_node.value)
            if key in items:
                self.error(key_node, f"{path}.{key}", "duplicate key")
            if keys is not None and key not in keys:
                self.error(key_node, f"{path}.{key}", f"unknown key (expected one of: {', '.join(keys)})")
                continue
            items[key] = (key_node, value_node)
        for key, (_tags, required) in (keys or {}).items():
            if required and key not in items:
                self.error(node, path, f"missing required key {key!r}")
        return items

    def typed(self, items: dict, keys: dict, path: str) -> dict:
        """Plain values of the keys whose node type is right; wrong types are reported."""
        values = {}
        for key, (_key_node, value_node) in items.items():
            tags = keys[key][0]
            where = f"{path}.{key}"
            if tags == "list":
                if not isinstance(value_node, SequenceNode):
                    self.error(value_node, where, "expected a list")
                    continue
                bad = [n for n in value_node.value if not (isinstance(n, ScalarNode) and n.tag == _STR)]
                for n in bad:
                    self.error(n, where, "expected a list of names (strings)")
                values[key] = [n.value for n in value_node.value if n not in bad]
            elif tags == "seq":
                if not isinstance(value_node, SequenceNode):
                    self.error(value_node, where, "expected a list")
                    continue
                values[key] = value_node
            elif tags == "map":
                values[key] = value_node
            elif not isinstance(value_node, ScalarNode) or value_node.tag not in tags:
                expected = " or ".join(_TAG_NAMES[t] for t in sorted(tags))
                self.error(value_node, where, f"expected {expected}, got {_describe(value_node)}")
            else:
                values[key] = SafeConstructor().construct_object(value_node)
        return values

    def enum(self, values: dict, items: dict, key: str, allowed, path: str) -> None:
        if key in values and values[key] not in allowed:
            self.error(items[key][1], f"{path}.{key}", f"{values[key]!r} is not one of {', '.join(allowed)}")
            del values[key]


def _describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return f"{node.value!r}"


def _compose(path: Path, checker: _Checker) -> Node | None:
    try:
        text = path.read_text()
    except OSError as exc:
        checker.errors.append(ValidationError(checker.file, 1, "(file)", f"cannot read: {exc.strerror}"))
        return None
    try:
        return yaml.compose(text, Loader=SAFE_LOADER)  # libyaml nodes keep their marks too
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        checker.errors.append(
            ValidationError(
                checker.file,
                mark.line + 1 if mark else 1,
                "(file)",
                f"malformed YAML: {getattr(exc, 'problem', None) or exc}",
            )
        )
        return None


def _check_tables_yml(root: Node | None, c: _Checker) -> dict[str, dict]:
    """Validate tables.yml; returns {table: {"columns": {lower: name}}} for checking overrides."""
    known: dict[str, dict] = {}
    top = c.mapping(root, "(top)", {"metadata": ({}, False), "tables": ({}, True)})
    meta_items, meta = {}, {}
    if "metadata" in top:
        meta_items = c.mapping(top["metadata"][1], "metadata", METADATA_KEYS)
        meta = c.typed(meta_items, METADATA_KEYS, "metadata")
    if "tables" not in top:
        return known
    for name, (_key_node, table_node) in c.mapping(top["tables"][1], "tables").items():
        known[name] = _check_table(name, table_node, c)
    if "table_count" in meta and meta["table_count"] != len(known):
        c.error(
            meta_items["table_count"][1],
            "metadata.table_count",
            f"says {meta['table_count']} but the file lists {len(known)} tables",
        )
    return known


def _check_table(name: str, node: Node, c: _Checker) -> dict:
    path = f"tables.{name}"
    items = c.mapping(node, path, TABLE_KEYS)
    values = c.typed(items, TABLE_KEYS, path)
    c.enum(values, items, "tier", TIERS, path)
    c.enum(values, items, "strategy", STRATEGIES, path)
    columns: dict[str, str] = {}
    if "columns" in values:
        for index, col_node in enumerate(items["columns"][1].value):
            columns.update(_check_column(f"{path}.columns[{index}]", col_node, c))
    if "columns" not in items:
        return {"columns": columns}
    for key in ("primary_key", "excluded_columns"):
        for i, col in enumerate(values.get(key, [])):
            if col.lower() not in columns:
                c.error(items[key][1].value[i], f"{path}.{key}", f'unknown column "{col}"')
    cursor = values.get("cursor")
    if cursor and cursor.lower() not in columns:
        c.error(items["cursor"][1], f"{path}.cursor", f'unknown column "{cursor}"')
    strategy = values.get("strategy")
    if strategy in ("incremental", "append_only") and "cursor" in items and not cursor:
        c.error(items["cursor"][1], f"{path}.cursor", f"strategy {strategy} needs a cursor column")
    elif strategy in ("incremental", "append_only") and "cursor" not in items:
        c.error(node, path, f"strategy {strategy} needs a cursor column")
    if strategy == "incremental" and "primary_key" in values and not values["primary_key"]:
        c.error(items["strategy"][1], f"{path}.strategy", "incremental needs a primary key to merge on")
    for key in ("lookback_minutes", "estimated_rows"):
        if isinstance(values.get(key), int) and values[key] < 0:
            c.error(items[key][1], f"{path}.{key}", "must not be negative")
    return {"columns": columns}


def _check_column(path: str, node: Node, c: _Checker) -> dict[str, str]:
    items = c.mapping(node, path, COLUMN_KEYS)
    values = c.typed(items, COLUMN_KEYS, path)
    if "source_type" in values:
        try:
            expected = map_column_type(values["source_type"]).pg_type
        except ConfigError as exc:
            c.error(items["source_type"][1], f"{path}.source_type", str(exc))
        else:
            if "target_type" in values and values["target_type"] != expected:
                c.error(
                    items["target_type"][1],
                    f"{path}.target_type",
                    f"{values['target_type']!r} does not match the type mapping for "
                    f"{values['source_type']!r} ({expected!r})",
                )
    return {values["name"].lower(): values["name"]} if "name" in values else {}


def _check_overrides(root: Node | None, c: _Checker, known: dict[str, dict] | None) -> None:
    top = c.mapping(root, "(top)", {"defaults": ({}, False), "tables": ({}, False)})
    if "defaults" in top:
        items = c.mapping(top["defaults"][1], "defaults", OVERRIDE_DEFAULT_KEYS)
        values = c.typed(items, OVERRIDE_DEFAULT_KEYS, "defaults")
        if "tier_thresholds" in values:
            limits = {"large": ({_INT}, False), "medium": ({_INT}, False), "small": ({_INT}, False)}
            t_items = c.mapping(values["tier_thresholds"], "defaults.tier_thresholds", limits)
            t_values = c.typed(t_items, limits, "defaults.tier_thresholds")
            ordered = [t_values.get(k) for k in ("large", "medium", "small")]
            if None not in ordered and not ordered[0] >= ordered[1] >= ordered[2] >= 0:
                c.error(
                    values["tier_thresholds"],
                    "defaults.tier_thresholds",
                    "need large >= medium >= small >= 0",
                )
        loss = values.get("max_table_loss")
        if loss is not None and not 0 <= loss <= 1:
            c.error(items["max_table_loss"][1], "defaults.max_table_loss", "must be between 0 and 1")
    if "tables" not in top:
        return
    for name, (key_node, node) in c.mapping(top["tables"][1], "tables").items():
        path = f"tables.{name}"
        items = c.mapping(node, path, OVERRIDE_TABLE_KEYS)
        values = c.typed(items, OVERRIDE_TABLE_KEYS, path)
        c.enum(values, items, "tier", TIERS, path)
        c.enum(values, items, "strategy", STRATEGIES, path)
        if known is None:
            continue
        if name not in known:
            c.error(key_node, path, f'unknown table "{name}" (not in tables.yml)')
            continue
        columns = known[name]["columns"]
        for i, col in enumerate(values.get("exclude_columns", [])):
            if col.lower() not in columns:
                c.error(
                    items["exclude_columns"][1].value[i], f"{path}.exclude_columns", f'unknown column "{col}"'
                )
        if values.get("cursor") and values["cursor"].lower() not in columns:
            c.error(items["cursor"][1], f"{path}.cursor", f'unknown column "{values["cursor"]}"')


def validate_overrides_file(path: Path, known: dict[str, dict] | None = None) -> list[ValidationError]:
    c = _Checker(str(path))
    root = _compose(Path(path), c)
    if not c.errors:
        _check_overrides(root, c, known)
    return c.errors


def validate_tables_config(path: Path, overrides_path: Path | None = None) -> list[ValidationError]:
    """All problems in tables.yml and (when given and present) the overrides file; [] when valid."""
    path = Path(path)
    c = _Checker(str(path))
    if not path.is_file():
        c.errors.append(ValidationError(str(path), 1, "(file)", "not found; run analyze-schema to create it"))
        return c.errors
    root = _compose(path, c)
    known = _check_tables_yml(root, c) if not c.errors else None
    errors = list(c.errors)
    if overrides_path is not None and Path(overrides_path).is_file():
        errors.extend(validate_overrides_file(Path(overrides_path), known))
    return errors
