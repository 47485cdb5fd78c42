"""The nightly run's dbt steps around the Cosmos task group, and the `tables` selection of models.

    source_freshness(settings)                 `dbt source freshness`: stale sources reported, not fatal
    source_tests(settings, tables)             the tests on the raw sources, before any model is built
    dbt_models_for(tables)                     the models (and their tests) downstream of those raw tables
    generate_docs(settings, failed_nodes=...)  `dbt docs generate`, published to DBT_DOCS_DIR

Every dbt command goes through `etl_pipeline.dbt_runner.run_dbt` (the connection, the target).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from etl_pipeline.dbt_runner import DBT_MANIFEST, DBT_TARGET_DIR, DbtError, failure_summary, run_dbt
from etl_pipeline.settings import PROJECT_ROOT, Settings

DEFAULT_DOCS_DIR = PROJECT_ROOT / ".local" / "dbt-docs"
DOCS_FILES = ("index.html", "manifest.json", "catalog.json")
PARTIAL_PARSE_FILE = "partial_parse.msgpack"


def docs_dir() -> Path:
    """Where the docs site is published for the Cosmos docs plugin (DBT_DOCS_DIR)."""
    return Path(os.environ.get("DBT_DOCS_DIR") or DEFAULT_DOCS_DIR)


@contextmanager
def scratch_target(prefix: str) -> Iterator[str]:
    """A throwaway `--target-path` (the project's own target/manifest.json is what the DAG renders
    from), seeded with the project's partial-parse state: without it dbt parses the whole project
    again. dbt still parses in full when the project, profile or vars changed since."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        state = DBT_TARGET_DIR / PARTIAL_PARSE_FILE
        if state.is_file():
            shutil.copyfile(state, Path(tmp) / PARTIAL_PARSE_FILE)
        yield tmp


def source_freshness(settings: Settings) -> dict:
    """`dbt source freshness`; stale sources are reported (warning), a dbt error fails the step."""
    with scratch_target("dbt-freshness-") as tmp:
        result = run_dbt(
            ["source", "freshness", "--target-path", tmp, "--output", f"{tmp}/sources.json"],
            settings=settings,
            check=False,
        )
        sources = _freshness_counts(Path(tmp) / "sources.json")
    if result.returncode not in (0, 1) or sources is None:
        raise DbtError(f"dbt source freshness failed: {failure_summary(result.output)}")
    return sources


def _freshness_counts(path: Path) -> dict | None:
    if not path.is_file():
        return None
    counts: dict[str, int] = {}
    stale = []
    for result in json.loads(path.read_text()).get("results", []):
        status = result.get("status", "unknown")
        counts[status] = counts.get(status, 0) + 1
        if status in ("warn", "error"):
            stale.append(result.get("unique_id", "").rsplit(".", 1)[-1])
    return {"counts": counts, "stale": sorted(stale)}


def source_tests(settings: Settings, tables: list[str] | None = None) -> dict:
    """The dbt tests declared on the raw sources (keys unique and not null), before any model is built.

    They run here rather than in the models' `dbt build` because no model task stands for them there:
    a failure is this task's, and the models do not run on top of it. With `tables`, only theirs."""
    selection = [f"source:opendental.{t.lower()}" for t in tables] if tables else ["source:opendental"]
    result = run_dbt(["test", "--select", *selection], settings=settings, check=False)
    if not result.ok:
        raise DbtError(f"dbt tests on the raw sources failed: {failure_summary(result.output)}")
    passed = re.search(r"PASS=(\d+)", result.output)
    return {"passed": int(passed.group(1)) if passed else 0}


def dbt_models_for(tables: list[str] | None, manifest_path: Path = DBT_MANIFEST) -> set[str] | None:
    """Names of the dbt models downstream of the raw tables named, plus the tests that only touch those
    models (None = everything)."""
    if not tables:
        return None
    manifest = json.loads(Path(manifest_path).read_text())
    wanted = {t.lower() for t in tables}
    frontier = [
        uid
        for uid, source in manifest["sources"].items()
        if (source.get("identifier") or source["name"]).lower() in wanted
    ]
    children = manifest.get("child_map") or {}
    seen: set[str] = set()
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child not in seen:
                seen.add(child)
                frontier.append(child)
    models = {uid for uid in seen if uid.startswith("model.")}
    tests = {
        uid
        for uid in seen
        if uid.startswith("test.")
        and {d for d in manifest["nodes"][uid]["depends_on"]["nodes"] if d.startswith("model.")} <= models
    }
    return {manifest["nodes"][uid]["name"] for uid in models | tests}


def generate_docs(settings: Settings, dest: Path | None = None, *, failed_nodes: Sequence[str] = ()) -> dict:
    """`dbt docs generate` into a scratch target dir, then publish the static site where the Cosmos
    docs plugin serves it (DBT_DOCS_DIR); the project's own target/manifest.json is left alone.

    Refused while a dbt model or test task of the run has failed (`failed_nodes`): the docs describe
    a project that built."""
    if failed_nodes:
        raise DbtError(f"{len(failed_nodes)} dbt task(s) failed: {', '.join(failed_nodes[:10])}")
    dest = dest or docs_dir()
    with scratch_target("dbt-docs-") as tmp:
        run_dbt(["docs", "generate", "--target-path", tmp], settings=settings)
        dest.mkdir(parents=True, exist_ok=True)
        for name in DOCS_FILES:  # each file swapped in whole: the plugin never serves half a file
            shutil.copyfile(Path(tmp) / name, dest / f".{name}.tmp")
            (dest / f".{name}.tmp").replace(dest / name)
    return {"docs_dir": str(dest)}
