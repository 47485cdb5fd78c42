"""The nightly run's dbt steps around the Cosmos task group, and the `tables` selection of models.

    source_freshness(settings)                 `dbt source freshness`: stale sources reported, not fatal
    source_tests(settings, tables)             the tests on the raw sources, before any model is built
    nightly_source_tests(settings, tables)     those of the tables whose raw changed since their tests passed
    dbt_models_for(tables)                     the models (and their tests) downstream of those raw tables
    generate_docs(settings, failed_nodes=...)  `dbt docs generate`, published to DBT_DOCS_DIR when changed

Every dbt command goes through `etl_pipeline.dbt_runner.run_dbt` (the connection, the target).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from psycopg2.extensions import cursor

from etl_pipeline.db import connect_target
from etl_pipeline.dbt_runner import DBT_MANIFEST, DBT_TARGET_DIR, DbtError, failure_summary, run_dbt
from etl_pipeline.settings import PROJECT_ROOT, STATE_SCHEMA, Settings
from etl_pipeline.type_mapping import quote_ident

DEFAULT_DOCS_DIR = PROJECT_ROOT / ".local" / "dbt-docs"
DOCS_FILES = ("index.html", "manifest.json", "catalog.json")
FINGERPRINT_FILE = ".fingerprint"  # of the published site (see docs_fingerprint)
PARTIAL_PARSE_FILE = "partial_parse.msgpack"
S = quote_ident(STATE_SCHEMA)
SOURCE_TESTS_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {S};
CREATE TABLE IF NOT EXISTS {S}.source_tests_passed (
    table_name  text PRIMARY KEY,
    passed_at   timestamptz NOT NULL  -- when the passing test run started
)"""


@contextmanager
def _target_cursor(settings: Settings) -> Iterator[cursor]:
    """A cursor on the warehouse in one transaction, committed when the block ends without error."""
    conn = connect_target(settings.target)
    try:
        with conn, conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


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


def nightly_source_tests(settings: Settings, tables: Sequence[str]) -> dict:
    """The nightly's source tests: only those of `tables` whose raw changed since their tests last
    passed (`tables_to_test`), so a night's cost follows what it loaded. A failing run records
    nothing, so its tables are tested again the next night whether or not they change."""
    started = datetime.now(UTC)
    due = tables_to_test(settings, tables)
    counts = {"tables_tested": len(due), "tables_unchanged": len(tables) - len(due)}
    if not due:
        return {"passed": 0, **counts}
    result = source_tests(settings, due)
    record_passed(settings, due, started)
    return {**result, **counts}


def record_passed(settings: Settings, tables: Sequence[str], started: datetime) -> None:
    """The source tests of `tables` passed in a run that started at `started`."""
    with _target_cursor(settings) as cur:
        cur.execute(SOURCE_TESTS_DDL)
        cur.execute(
            f"""
            INSERT INTO {S}.source_tests_passed (table_name, passed_at)
            SELECT unnest(%s::text[]), %s
            ON CONFLICT (table_name) DO UPDATE SET passed_at = EXCLUDED.passed_at""",
            (list(tables), started),
        )


def tables_to_test(settings: Settings, tables: Sequence[str]) -> list[str]:
    """Those of `tables` whose source tests never passed, or whose raw changed since they last did:
    a successful load that finished after that test run started and reloaded the table in full or
    inserted, updated or marked deleted a row (`etl.load_runs`)."""
    with _target_cursor(settings) as cur:
        cur.execute(SOURCE_TESTS_DDL)
        cur.execute(
            f"""
            SELECT t.name
              FROM unnest(%s::text[]) AS t(name)
              LEFT JOIN {S}.source_tests_passed p ON p.table_name = t.name
             WHERE p.passed_at IS NULL
                OR EXISTS (
                   SELECT 1 FROM {S}.load_runs r
                    WHERE r.table_name = t.name
                      AND r.status = 'success'
                      AND coalesce(r.finished_at, r.started_at) >= p.passed_at
                      AND (r.strategy = 'full'
                           OR coalesce(r.inserted, 0) + coalesce(r.updated, 0) + coalesce(r.deleted, 0) > 0))
             ORDER BY 1""",
            (list(tables),),
        )
        return [name for (name,) in cur.fetchall()]


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
    Skipped when the site published there was built from the same manifest and catalog
    (`docs_fingerprint`): `regenerated` says which.

    Refused while a dbt model or test task of the run has failed (`failed_nodes`): the docs describe
    a project that built."""
    if failed_nodes:
        raise DbtError(f"{len(failed_nodes)} dbt task(s) failed: {', '.join(failed_nodes[:10])}")
    dest = dest or docs_dir()
    fingerprint = docs_fingerprint(settings)
    stamp = dest / FINGERPRINT_FILE
    published = all((dest / name).is_file() for name in DOCS_FILES)
    if published and stamp.is_file() and stamp.read_text() == fingerprint:
        return {"docs_dir": str(dest), "regenerated": False}
    with scratch_target("dbt-docs-") as tmp:
        run_dbt(["docs", "generate", "--target-path", tmp], settings=settings)
        dest.mkdir(parents=True, exist_ok=True)
        stamp.unlink(missing_ok=True)  # a site half swapped in is never taken for a current one
        for name in DOCS_FILES:  # each file swapped in whole: the plugin never serves half a file
            shutil.copyfile(Path(tmp) / name, dest / f".{name}.tmp")
            (dest / f".{name}.tmp").replace(dest / name)
        stamp.write_text(fingerprint)
    return {"docs_dir": str(dest), "regenerated": True}


# What dbt-postgres' catalog holds of a relation and its columns (no row statistics).
CATALOG_SQL = """
SELECT n.nspname, c.relname, c.relkind, obj_description(c.oid, 'pg_class'), pg_get_userbyid(c.relowner),
       a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), col_description(c.oid, a.attnum)
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
 ORDER BY 1, 2, 6"""


def docs_fingerprint(settings: Settings, manifest_path: Path = DBT_MANIFEST) -> str:
    """A hash of what the docs site shows: the project's manifest (less its run metadata) and the
    catalog of the schemas its models and sources live in."""
    manifest = json.loads(Path(manifest_path).read_text())
    manifest.pop("metadata", None)
    schemas = sorted(
        {node["schema"] for node in manifest.get("nodes", {}).values() if node.get("schema")}
        | {source["schema"] for source in manifest.get("sources", {}).values() if source.get("schema")}
    )
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode())
    with _target_cursor(settings) as cur:
        cur.execute(CATALOG_SQL, (schemas,))
        for row in cur:
            digest.update(repr(row).encode())
    return digest.hexdigest()
