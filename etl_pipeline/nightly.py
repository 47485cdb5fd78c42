"""What the nightly `etl_pipeline` DAG does, step by step; the DAG file only wires these together.

    check_params(params, settings)      trigger conf: unknown table names are named and refused
    check_tables_config(settings)        tables.yml present, valid, fresh enough, same environment
    check_connections(settings)          source (read-only user) and target answer
    drift_check(settings)                live schema fingerprint against tables.yml (reported, never fatal)
    plan_run(settings, params)           per tier: the tables to load, largest first
    extract_table(settings, item, ...)   one table through the loader, within `max_workers` large slots
    verify_tables(settings, names)       source vs raw parity per loaded table
    build_report(settings, run_id, ...)  per table strategy/rows/seconds/status + totals, kept in etl.nightly_runs
    dbt_models_for(tables)               the dbt models that depend on the given raw tables (manifest.json)
    notify_run(outcome)                  severity, counts, failed tables: log line, Slack, email

Everything here is plain Python on the project's settings, so tests and the demo call it directly.
"""

from __future__ import annotations

import json
import logging
import re
import time
import zlib
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from etl_pipeline.errors import ConfigError, EtlError
from etl_pipeline.schema.tables_config import TIERS, TablesConfig, load_tables_config
from etl_pipeline.settings import PROJECT_ROOT, STATE_SCHEMA, Settings
from etl_pipeline.type_mapping import quote_ident

log = logging.getLogger(__name__)

STALE_WARN_DAYS = 30
STALE_FAIL_DAYS = 90
MANIFEST = PROJECT_ROOT / "dbt_dental_models" / "target" / "manifest.json"
LARGE_SLOT_LOCK = 7_301_001  # advisory-lock namespace for the large-tier slots
SLOT_POLL_SECONDS = 2.0


class NightlyError(EtlError):
    """A nightly step failed in a way the notification should name."""


# --- params and validation ----------------------------------------------------------------------


def check_params(params: dict, settings: Settings) -> dict:
    """The run's options, normalised. Airflow's Param schema already checked the types and ranges;
    table names can only be checked against tables.yml, at run time."""
    tables = params.get("tables") or None
    if tables is not None:
        if not isinstance(tables, list) or not all(isinstance(t, str) and t for t in tables):
            raise ConfigError('params.tables: expected a list of table names, e.g. ["patient"]')
        config = load_tables_config(settings.tables_yml, settings.overrides_yml)
        unknown = sorted(set(tables) - set(config.tables))
        if unknown:
            raise ConfigError(
                f"params.tables: unknown table(s) {', '.join(unknown)} (not in {settings.tables_yml})"
            )
    workers = params.get("max_workers", 5)
    if not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= 16:
        raise ConfigError(f"params.max_workers: expected an integer 1-16, got {workers!r}")
    return {
        "tables": sorted(set(tables)) if tables else None,
        "force_full_refresh": bool(params.get("force_full_refresh")),
        "skip_validation": bool(params.get("skip_validation")),
        "max_workers": workers,
    }


def check_tables_config(settings: Settings, now: datetime | None = None) -> dict:
    """tables.yml is there, valid, generated for this environment, and not older than 90 days."""
    from etl_pipeline.schema.validate import validate_tables_config

    errors = validate_tables_config(settings.tables_yml, settings.overrides_yml)
    if errors:
        more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
        raise ConfigError("; ".join(str(e) for e in errors[:3]) + more)
    config = load_tables_config(settings.tables_yml, settings.overrides_yml)
    meta = config.metadata
    warnings: list[str] = []
    environment = meta.get("environment")
    if environment and environment != settings.environment:
        raise ConfigError(
            f"{settings.tables_yml}: metadata.environment is {environment!r} but this is "
            f"{settings.environment!r} (ETL_ENVIRONMENT); run analyze-schema here"
        )
    age_days = _age_days(meta.get("generated_at"), now or datetime.now(UTC), settings)
    if age_days is not None and age_days >= STALE_FAIL_DAYS:
        raise ConfigError(
            f"{settings.tables_yml}: generated {age_days} days ago (limit {STALE_FAIL_DAYS}); "
            "run analyze-schema (or the schema_analysis DAG)"
        )
    if age_days is not None and age_days >= STALE_WARN_DAYS:
        warnings.append(f"tables.yml is {age_days} days old (fails at {STALE_FAIL_DAYS})")
    for text in warnings:
        log.warning(text)
    return {"tables": len(config.enabled_tables()), "age_days": age_days, "warnings": warnings}


def _age_days(generated_at, now: datetime, settings: Settings) -> int | None:
    if not generated_at:
        return None
    try:
        stamp = datetime.fromisoformat(str(generated_at))
    except ValueError:
        raise ConfigError(
            f"{settings.tables_yml}: metadata.generated_at {generated_at!r} is not an ISO timestamp"
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return max(0, (now - stamp).days)


def check_connections(settings: Settings) -> dict:
    """Both ends answer (raises ConnectionFailed naming host/port/user otherwise)."""
    from etl_pipeline.db import connect_target
    from etl_pipeline.schema.workflow import check_source

    source = check_source(settings)
    pg = connect_target(settings.target)
    try:
        with pg.cursor() as cur:
            cur.execute("SELECT current_setting('server_version')")
            target_version = cur.fetchone()[0]
    finally:
        pg.close()
    return {
        "source_tables": source["tables"],
        "source_version": source["server_version"],
        "target_version": target_version,
    }


def drift_check(settings: Settings) -> dict:
    """Compare the live source structure with tables.yml. Drift is reported, not fatal: new tables
    wait for the next analysis, changed ones are handled by the loader's rules (widen, full refresh)."""
    from etl_pipeline.schema.analyze import run_analysis

    config = load_tables_config(settings.tables_yml, settings.overrides_yml)
    live = run_analysis(settings).config
    recorded = config.metadata.get("schema_fingerprint")
    current = live.metadata.get("schema_fingerprint")
    new = sorted(set(live.tables) - set(config.tables))
    missing = sorted(set(config.tables) - set(live.tables))
    changed = sorted(
        name
        for name in set(live.tables) & set(config.tables)
        if _shape(live.tables[name]) != _shape(config.tables[name])
    )
    drift = recorded != current or bool(new or missing or changed)
    if drift:
        log.warning(
            "schema drift against tables.yml: %d new, %d missing, %d changed table(s)",
            len(new),
            len(missing),
            len(changed),
        )
    return {"drift": drift, "new_tables": new, "missing_tables": missing, "changed_tables": changed}


def _shape(table) -> tuple:
    return tuple((c.name, c.source_type, c.nullable) for c in table.columns), tuple(table.primary_key)


# --- planning and extraction --------------------------------------------------------------------


def plan_run(settings: Settings, options: dict) -> dict[str, list[dict]]:
    """Per tier, the tables to load this run, largest first (so the longest loads start first)."""
    config = load_tables_config(settings.tables_yml, settings.overrides_yml)
    wanted = set(options.get("tables") or []) or None
    plan: dict[str, list[dict]] = {}
    for tier in TIERS:
        plan[tier] = [
            {
                "table": t.name,
                "tier": tier,
                "estimated_rows": t.estimated_rows,
                "full_refresh": bool(options.get("force_full_refresh")),
                "slots": int(options.get("max_workers", 5)) if tier == "large" else 0,
            }
            for t in config.by_tier(tier)
            if wanted is None or t.name in wanted
        ]
    if wanted:  # a disabled table asked for by name still runs: the operator said so
        planned = {item["table"] for items in plan.values() for item in items}
        for name in sorted(wanted - planned):
            table = config.tables[name]
            plan[table.tier].append(
                {
                    "table": name,
                    "tier": table.tier,
                    "estimated_rows": table.estimated_rows,
                    "full_refresh": bool(options.get("force_full_refresh")),
                    "slots": int(options.get("max_workers", 5)) if table.tier == "large" else 0,
                }
            )
    return plan


def extract_table(settings: Settings, item: dict, run_id: str) -> dict:
    """Load one planned table; large tables first take one of `slots` run-wide slots (max_workers)."""
    from etl_pipeline.load.engine import load_table

    config = load_tables_config(settings.tables_yml, settings.overrides_yml)
    table = config.tables.get(item["table"])
    if table is None:
        raise ConfigError(f"{settings.tables_yml}: table {item['table']!r} is no longer listed")
    with large_slot(settings, run_id, int(item.get("slots") or 0)):
        result = load_table(settings, table, run_id, full_refresh=bool(item.get("full_refresh")))
    return result.to_dict()


@contextmanager
def large_slot(settings: Settings, run_id: str, slots: int):
    """At most `slots` holders per run at once: a session advisory lock on one of `slots` keys.

    Airflow cannot template max_active_tis_per_dagrun from params, so the large tier's cap lives
    here, in the target database every extraction already talks to. A waiting task holds its worker
    slot; the lock is released when the connection closes, even if the worker dies."""
    if slots <= 0:
        yield None
        return
    from etl_pipeline.db import connect_target

    conn = connect_target(settings.target, autocommit=True)
    namespace = LARGE_SLOT_LOCK + zlib.crc32(run_id.encode()) % 1000
    try:
        while True:
            with conn.cursor() as cur:
                for slot in range(slots):
                    cur.execute("SELECT pg_try_advisory_lock(%s, %s)", (namespace, slot))
                    if cur.fetchone()[0]:
                        yield slot
                        return
            time.sleep(SLOT_POLL_SECONDS)
    finally:
        conn.close()


def asset_uri(settings: Settings, target_name: str) -> str:
    """The Airflow Asset naming one raw table (postgres://host:port/database/schema/table)."""
    t = settings.target
    return f"postgres://{t.host}:{t.port}/{t.database}/raw/{target_name}"


# --- verification and report --------------------------------------------------------------------


def verify_tables(settings: Settings, names: list[str]) -> dict[str, dict]:
    """Parity per loaded table (row count and primary keys); a check that errors is reported, not raised."""
    from etl_pipeline.quality.parity import verify_table

    config = load_tables_config(settings.tables_yml, settings.overrides_yml)
    results: dict[str, dict] = {}
    for name in names:
        try:
            results[name] = verify_table(settings, config.tables[name]).to_dict()
        except Exception as exc:
            results[name] = {"table": name, "ok": False, "error": type(exc).__name__}
    return results


NIGHTLY_RUNS_DDL = f"""
CREATE TABLE IF NOT EXISTS {quote_ident(STATE_SCHEMA)}.nightly_runs (
    run_id       text PRIMARY KEY,
    finished_at  timestamptz NOT NULL,
    status       text NOT NULL,
    totals       jsonb NOT NULL,
    tables       jsonb NOT NULL
)"""


def build_report(settings: Settings, run_id: str, plan: dict, parity: dict | None) -> dict:
    """Per planned table: strategy, rows, seconds, status (+ parity); totals; stored in etl.nightly_runs."""
    from etl_pipeline.db import connect_target
    from etl_pipeline.quality.report import run_report

    loaded = {row["table_name"]: row for row in run_report(settings, run_id)}
    parity = parity or {}
    rows = []
    for tier in TIERS:
        for item in plan.get(tier, []):
            name = item["table"]
            row = loaded.get(name) or {}
            check = parity.get(name)
            rows.append(
                {
                    "table": name,
                    "tier": tier,
                    "strategy": row.get("strategy"),
                    "rows_read": row.get("rows_read") or 0,
                    "inserted": row.get("inserted") or 0,
                    "updated": row.get("updated") or 0,
                    "deleted": row.get("deleted") or 0,
                    "seconds": float(row.get("seconds") or 0),
                    "status": row.get("status") or "not_run",
                    "error_class": row.get("error_class"),
                    "parity_ok": None if check is None else bool(check.get("ok")),
                }
            )
    failed = sorted(r["table"] for r in rows if r["status"] != "success")
    parity_failed = sorted(r["table"] for r in rows if r["parity_ok"] is False and r["status"] == "success")
    totals = {
        "tables": len(rows),
        "succeeded": len(rows) - len(failed),
        "failed": len(failed),
        "rows_read": sum(r["rows_read"] for r in rows),
        "seconds": round(sum(r["seconds"] for r in rows), 3),
        "parity_failed": len(parity_failed),
    }
    success = bool(rows) and not failed and not parity_failed
    report = {
        "run_id": run_id,
        "status": "success" if success else "failed",
        "totals": totals,
        "failed_tables": failed,
        "parity_failed_tables": parity_failed,
        "tables": rows,
    }
    conn = connect_target(settings.target)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(STATE_SCHEMA)}")
            cur.execute(NIGHTLY_RUNS_DDL)
            cur.execute(
                f"""
                INSERT INTO {quote_ident(STATE_SCHEMA)}.nightly_runs (run_id, finished_at, status, totals, tables)
                VALUES (%s, now(), %s, %s, %s)
                    ON CONFLICT (run_id) DO UPDATE
                   SET finished_at = excluded.finished_at, status = excluded.status,
                       totals = excluded.totals, tables = excluded.tables""",
                (run_id, report["status"], json.dumps(totals), json.dumps(rows)),
            )
        conn.commit()
    finally:
        conn.close()
    return report


def pipeline_success(report: dict | None) -> bool:
    return bool(report) and report.get("status") == "success"


# --- dbt selection ------------------------------------------------------------------------------


def dbt_models_for(tables: list[str] | None, manifest_path: Path = MANIFEST) -> set[str] | None:
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
        uid = frontier.pop()
        for child in children.get(uid, []):
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


def model_of_task(task) -> str | None:
    """The dbt model a Cosmos run/test task works on (its `select`, e.g. 'stg_patient' or 'fqn:a.b.c')."""
    select = getattr(task, "select", None) or getattr(task, "models", None)
    if isinstance(select, (list, tuple)):
        select = select[0] if len(select) == 1 else None
    if not isinstance(select, str) or select.startswith("source:") or " " in select:
        return None
    return select.split(":", 1)[-1].split(".")[-1]


# --- dbt around the models ----------------------------------------------------------------------


def source_freshness(settings: Settings) -> dict:
    """`dbt source freshness`; stale sources are reported (warning), a dbt error fails the step."""
    import tempfile

    from etl_pipeline.dbt_runner import run_dbt

    with tempfile.TemporaryDirectory(prefix="dbt-freshness-") as tmp:
        result = run_dbt(
            ["source", "freshness", "--target-path", tmp, "--output", f"{tmp}/sources.json"],
            settings=settings,
            check=False,
        )
        sources = _freshness_counts(Path(tmp) / "sources.json")
    if result.returncode not in (0, 1) or sources is None:
        from etl_pipeline.dbt_runner import DbtError, failure_summary

        raise DbtError(f"dbt source freshness failed: {failure_summary(result.output)}")
    return sources


def source_tests(settings: Settings, tables: list[str] | None = None) -> dict:
    """The dbt tests declared on the raw sources (keys unique and not null), before any model is built.

    They run here rather than in the models' `dbt build` because no model task stands for them there:
    a failure is this task's, and the models do not run on top of it. With `tables`, only theirs."""
    from etl_pipeline.dbt_runner import DbtError, failure_summary, run_dbt

    selection = [f"source:opendental.{t.lower()}" for t in tables] if tables else ["source:opendental"]
    result = run_dbt(["test", "--select", *selection], settings=settings, check=False)
    if not result.ok:
        raise DbtError(f"dbt tests on the raw sources failed: {failure_summary(result.output)}")
    passed = re.search(r"PASS=(\d+)", result.output)
    return {"passed": int(passed.group(1)) if passed else 0}


def _freshness_counts(path: Path) -> dict | None:
    if not path.is_file():
        return None
    results = json.loads(path.read_text()).get("results", [])
    counts: dict[str, int] = {}
    stale = []
    for r in results:
        counts[r.get("status", "unknown")] = counts.get(r.get("status", "unknown"), 0) + 1
        if r.get("status") in ("warn", "error"):
            stale.append(r.get("unique_id", "").rsplit(".", 1)[-1])
    return {"counts": counts, "stale": sorted(stale)}


def docs_dir() -> Path:
    import os

    return Path(os.environ.get("DBT_DOCS_DIR") or PROJECT_ROOT / ".local" / "dbt-docs")


def failed_dbt_nodes(task_states: dict[str, str | None]) -> list[str]:
    """The dbt models/tests whose Cosmos task ended failed, from {task_id: state} of the dbt task group.

    The watcher producer's own state is left out: a node that failed in its `dbt build` fails its task,
    and a task that then succeeded on retry has healed it."""
    producer = ("dbt_producer_watcher", "dbt_producer_watcher_done")
    return sorted(
        task_id.split(".", 1)[-1]
        for task_id, state in task_states.items()
        if state in ("failed", "upstream_failed") and task_id.split(".", 1)[-1] not in producer
    )


def generate_docs(settings: Settings, dest: Path | None = None) -> dict:
    """`dbt docs generate` into a scratch target dir, then publish the static site where the Cosmos
    docs plugin serves it (DBT_DOCS_DIR); the project's own target/manifest.json is left alone."""
    import shutil
    import tempfile

    from etl_pipeline.dbt_runner import run_dbt

    dest = dest or docs_dir()
    with tempfile.TemporaryDirectory(prefix="dbt-docs-") as tmp:
        run_dbt(["docs", "generate", "--target-path", tmp], settings=settings)
        dest.mkdir(parents=True, exist_ok=True)
        for name in ("index.html", "manifest.json", "catalog.json"):
            shutil.copyfile(Path(tmp) / name, dest / f".{name}.tmp")
            (dest / f".{name}.tmp").replace(dest / name)
    return {"docs_dir": str(dest)}


# --- notification -------------------------------------------------------------------------------


def summarise(outcome: dict) -> tuple[str, dict, list[str]]:
    """Severity, summary counts and detail lines for a finished run (never row values).

    outcome keys: params, validation (None when it failed), report (None when not built),
    dbt ('success' | 'failed' | 'skipped' | 'not_run'), drift, freshness.
    """
    report = outcome.get("report") or {}
    totals = report.get("totals") or {}
    dbt_state = outcome.get("dbt") or "not_run"
    failed = list(report.get("failed_tables") or [])
    details: list[str] = []
    if outcome.get("validation") is None:
        severity = "CRITICAL"
        details.append("validation failed: nothing was loaded (see the validate task log)")
    elif not report:
        severity = "CRITICAL"
        details.append("no run report: extraction or reporting failed")
    elif failed and totals.get("succeeded", 0) == 0:
        severity = "CRITICAL"
    elif failed or report.get("parity_failed_tables") or dbt_state != "success":
        severity = "WARNING"
    else:
        severity = "INFO"
    details += [f"table failed: {name}" for name in failed]
    details += [f"parity mismatch: {name}" for name in report.get("parity_failed_tables") or []]
    if dbt_state != "success":
        details.append(
            f"dbt: {dbt_state}" + (" (loading was not complete)" if dbt_state == "skipped" else "")
        )
    drift = outcome.get("drift") or {}
    if drift.get("drift"):
        details.append(
            f"schema drift: {len(drift.get('new_tables', []))} new, "
            f"{len(drift.get('missing_tables', []))} missing, "
            f"{len(drift.get('changed_tables', []))} changed table(s); run analyze-schema"
        )
    for text in (outcome.get("validation") or {}).get("warnings", []):
        details.append(text)
    stale = (outcome.get("freshness") or {}).get("stale") or []
    if stale:
        details.append(f"stale sources: {', '.join(stale)}")
    summary = {
        "run_id": report.get("run_id") or outcome.get("run_id"),
        "tables": totals.get("tables", 0),
        "succeeded": totals.get("succeeded", 0),
        "failed": totals.get("failed", 0),
        "rows_read": totals.get("rows_read", 0),
        "dbt": dbt_state,
        "failed_tables": failed,
    }
    return severity, summary, details


def notify_run(outcome: dict) -> str:
    """Send the run's notification; raise after sending when the run was not a clean success, so the
    DAG run is marked failed."""
    from etl_pipeline.notify import notify

    severity, summary, details = summarise(outcome)
    notify("Nightly ETL", severity, summary, details)
    if severity != "INFO":
        raise NightlyError(
            f"nightly run {severity}: {summary['failed']} table(s) failed, dbt {summary['dbt']}"
            + (f" ({', '.join(summary['failed_tables'][:10])})" if summary["failed_tables"] else "")
        )
    return severity


def tables_config(settings: Settings) -> TablesConfig:
    return load_tables_config(settings.tables_yml, settings.overrides_yml)
