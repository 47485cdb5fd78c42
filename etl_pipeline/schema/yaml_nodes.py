"""Read YAML as nodes, which keep their line marks, so every problem names `file:line: field`.

    reader = NodeReader("tables.overrides.yml", strict=True)   # strict: raise at the first problem
    root = reader.compose(path)
    items = reader.mapping(root, "(top)", {"tables": (MAP, False)})

A reader collects `ValidationError`s (validate-config wants them all) or, when strict, raises the
first as a `ConfigError` (loading wants to stop at input it cannot apply). Key specs map each
allowed key to (what its value must be, whether it is required); what it must be is a set of YAML
scalar tags or one of `NAMES` (a list of strings), `SEQ` (a list of anything, checked by the
caller) and `MAP` (a mapping, checked by the caller).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from etl_pipeline.errors import ConfigError

# libyaml's C parser when present: it is many times faster on a large tables.yml, and its nodes
# keep their marks too.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

INT, STR, BOOL, NULL, FLOAT = (f"tag:yaml.org,2002:{t}" for t in ("int", "str", "bool", "null", "float"))
NAMES, SEQ, MAP = "names", "seq", "map"

Kind = frozenset[str] | str
KeySpec = Mapping[str, tuple[Kind, bool]]
Items = dict[str, tuple[Node, Node]]  # key -> (key node, value node)

_KIND_NAMES = {
    INT: "an integer",
    STR: "a string",
    BOOL: "true/false",
    NULL: "null",
    FLOAT: "a number",
    NAMES: "a list",
    SEQ: "a list",
    MAP: "a mapping",
}


@dataclass(frozen=True)
class ValidationError:
    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.path}: {self.message}"


class NodeReader:
    def __init__(self, file: str, *, strict: bool = False) -> None:
        self.file = file
        self.strict = strict
        self.errors: list[ValidationError] = []

    def error(self, node: Node | None, path: str, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 1
        self.report(ValidationError(self.file, line, path, message))

    def report(self, error: ValidationError) -> None:
        if self.strict:
            raise ConfigError(str(error))
        self.errors.append(error)

    def compose(self, path: Path) -> Node | None:
        """The document's root node (None for an empty file, or when reading or parsing failed)."""
        try:
            text = path.read_text()
        except OSError as exc:
            self.report(ValidationError(self.file, 1, "(file)", f"cannot read: {exc.strerror}"))
            return None
        try:
            return yaml.compose(text, Loader=SAFE_LOADER)
        except yaml.YAMLError as exc:
            self.report(yaml_error(self.file, exc))
            return None

    def mapping(self, node: Node | None, path: str, keys: KeySpec | None = None) -> Items:
        """The items of a mapping node, reporting duplicate, unknown and missing keys.

        An empty value (`key:` or `null`) reads as an empty mapping.
        """
        if node is None or (isinstance(node, ScalarNode) and node.tag == NULL):
            pairs: list[tuple[Node, Node]] = []
        elif isinstance(node, MappingNode):
            pairs = node.value
        else:
            self.error(node, path, "expected a mapping")
            return {}
        items: Items = {}
        for key_node, value_node in pairs:
            key = str(key_node.value)
            if key in items:
                self.error(key_node, f"{path}.{key}", "duplicate key")
            if keys is not None and key not in keys:
                self.error(key_node, f"{path}.{key}", f"unknown key (expected one of: {', '.join(keys)})")
                continue
            items[key] = (key_node, value_node)
        for key, (_kind, required) in (keys or {}).items():
            if required and key not in items:
                self.error(node, path, f"missing required key {key!r}")
        return items

    def typed(self, items: Items, keys: KeySpec, path: str) -> dict[str, Any]:
        """Values of the keys whose value has the right kind; wrong kinds are reported and left out.

        Scalars become Python values, NAMES a list of str, SEQ and MAP stay nodes for the caller.
        """
        values: dict[str, Any] = {}
        for key, (_key_node, value_node) in items.items():
            kind = keys[key][0]
            where = f"{path}.{key}"
            if kind == MAP:
                values[key] = value_node
            elif kind in (NAMES, SEQ):
                if not isinstance(value_node, SequenceNode):
                    self.error(value_node, where, "expected a list")
                elif kind == SEQ:
                    values[key] = value_node
                else:
                    values[key] = self._names(value_node, where)
            elif isinstance(value_node, ScalarNode) and value_node.tag in kind:
                values[key] = SafeConstructor().construct_object(value_node)
            else:
                expected = " or ".join(_KIND_NAMES[tag] for tag in sorted(kind))
                self.error(value_node, where, f"expected {expected}, got {_describe(value_node)}")
        return values

    def one_of(
        self, values: dict[str, Any], items: Items, key: str, allowed: Iterable[str], path: str
    ) -> None:
        """Report (and drop) a value that is not one of `allowed`."""
        allowed = tuple(allowed)
        if key in values and values[key] not in allowed:
            self.error(items[key][1], f"{path}.{key}", f"{values[key]!r} is not one of {', '.join(allowed)}")
            del values[key]

    def _names(self, node: SequenceNode, where: str) -> list[str]:
        for item in node.value:
            if not _is_name(item):
                self.error(item, where, "expected a list of names (strings)")
        return [item.value for item in name_nodes(node)]


def yaml_error(file: str, exc: yaml.YAMLError) -> ValidationError:
    """A parser's error as `file:line: (file): malformed YAML: problem`."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or exc
    return ValidationError(file, mark.line + 1 if mark else 1, "(file)", f"malformed YAML: {problem}")


def name_nodes(node: Node) -> list[ScalarNode]:
    """The string items of a NAMES list, in order: the nodes of the names `typed` returned."""
    return [item for item in node.value if _is_name(item)] if isinstance(node, SequenceNode) else []


def _is_name(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == STR


def _describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return f"{node.value!r}"
