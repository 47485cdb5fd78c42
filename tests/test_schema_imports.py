"""The schema package's imports form a tree: no module imports itself back, not even lazily."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from etl_pipeline.settings import PROJECT_ROOT

SCHEMA = PROJECT_ROOT / "etl_pipeline" / "schema"
MODULES = sorted(p.stem for p in SCHEMA.glob("*.py") if p.stem != "__init__")


def _imports(module: str) -> set[str]:
    """The schema modules `module` imports anywhere in its body (top level and inside functions)."""
    tree = ast.parse((SCHEMA / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[:2] == ["etl_pipeline", "schema"] and len(parts) > 2 and parts[2] in MODULES:
                found.add(parts[2])
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in `graph` (as a path that ends where it starts), or None."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                return [*path[path.index(dep) :], dep]
            if dep not in state and (cycle := visit(dep, [*path, dep])):
                return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_schema_modules_import_each_other_without_a_cycle():
    graph = {module: _imports(module) for module in MODULES}
    assert _cycle(graph) is None


def test_constants_is_a_leaf():
    tree = ast.parse((SCHEMA / "constants.py").read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not {name for name in imported if name and name.startswith("etl_pipeline")}


def test_no_lazy_imports_between_schema_modules():
    """A schema module that imports another inside a function does so for a reason that is not a
    cycle; today none needs to (commands.py, the CLI's, keeps start-up light on purpose)."""
    lazy = {}
    for module in MODULES:
        if module == "commands":
            continue
        tree = ast.parse((SCHEMA / f"{module}.py").read_text())
        for func in ast.walk(tree):
            if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                for node in ast.walk(func):
                    if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                        "etl_pipeline.schema"
                    ):
                        lazy[f"{module}.{func.name}"] = node.module
    assert lazy == {}


@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_on_its_own(module):
    """In a fresh interpreter, so the order other tests imported things in cannot hide a cycle."""
    done = subprocess.run(
        [sys.executable, "-c", f"import etl_pipeline.schema.{module}"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
