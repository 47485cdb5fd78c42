"""The analyze-schema job as steps, shared by the CLI and the `schema_analysis` DAG.

    check_source -> backup_tables_yml -> write_candidate -> report_changes -> publish_candidate

The new analysis is first written to a candidate file beside tables.yml; only after the change report,
the table-loss guard and validation pass is it renamed over tables.yml (an atomic rename on the same
file system), so tables.yml is never half-written and a failed run leaves the previous one in place.
Every step returns a small JSON-able dict (counts, paths, severity; never row values).
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from etl_pipeline.db import connect_source
from etl_pipeline.errors import ConfigError, EtlError
from etl_pipeline.schema.analyze import Analysis, render_tables_yml, run_analysis
from etl_pipeline.schema.changes import (
    ChangeReport,
    by_severity,
    diff_configs,
    lost_table_share,
    write_reports,
)
from etl_pipeline.schema.overrides import load_overrides
from etl_pipeline.schema.tables_config import TablesConfig, load_tables_config
from etl_pipeline.schema.validate import validate_tables_config
from etl_pipeline.settings import Settings

log = logging.getLogger(__name__)
BACKUPS_KEPT = 26


class SchemaGuardError(EtlError):
    """The new analysis lost too many tables; tables.yml was left as it was."""


def candidate_path(output: Path) -> Path:
    """A hidden file beside tables.yml (same file system, so the final rename is atomic), unique per run."""
    return output.with_name(f".{output.stem}.candidate.{secrets.token_hex(4)}.yml")


def check_source(settings: Settings) -> dict:
    """Connect with the read-only user and report the server version (fails fast, clearly)."""
    conn = connect_source(settings.source)
    try:
        cur = conn.cursor()
        cur.execute(
            "SELECT VERSION(), COUNT(*) FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE'",
            (settings.source.database,),
        )
        version, tables = cur.fetchone()
    finally:
        conn.close()
    if not tables:
        raise ConfigError(f"source {settings.source.display} has no tables visible to {settings.source.user}")
    return {"server_version": version, "tables": int(tables), "source": settings.source.display}


def backup_tables_yml(
    output: Path, backups_dir: Path, now: datetime | None = None, keep: int = BACKUPS_KEPT
) -> Path | None:
    """Copy the current tables.yml to backups_dir/tables_<UTC timestamp>.yml (None when there is none).

    Only the newest `keep` backups are kept (half a year of weekly runs by default).
    """
    if not output.is_file():
        return None
    now = now or datetime.now(UTC)
    backups_dir.mkdir(parents=True, exist_ok=True)
    backup = backups_dir / f"{output.stem}_{now.strftime('%Y%m%dT%H%M%S%fZ')}.yml"
    _write_atomic(backup, output.read_text())
    for old in sorted(backups_dir.glob(f"{output.stem}_*Z.yml"))[:-keep]:
        old.unlink(missing_ok=True)
    return backup


def write_candidate(settings: Settings, output: Path) -> dict:
    """Analyse the source and write the candidate tables.yml. Nothing is replaced yet."""
    return _write_candidate(settings, output)[0]


def _write_candidate(settings: Settings, output: Path, write: bool = True) -> tuple[dict, TablesConfig]:
    overrides = load_overrides(settings.overrides_yml)
    analysis = run_analysis(settings, overrides)
    candidate = candidate_path(output)
    if write:
        output.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(candidate, render_tables_yml(analysis.config))
    sizes = {
        name: {
            "rows_estimate": t.rows,
            "data_bytes": t.data_bytes,
            "index_bytes": t.index_bytes,
            "engine": t.engine,
        }
        for name, t in sorted(analysis.source.tables.items())
    }
    summary = {
        "candidate": str(candidate),
        "table_count": len(analysis.config.tables),
        "override_problems": analysis.override_problems,
        "sizes": sizes,
        "max_table_loss": overrides.max_table_loss,
        "strategies": _count(t.strategy for t in analysis.config.tables.values()),
        "tiers": _count(t.tier for t in analysis.config.tables.values()),
        "notes": analysis_notes(analysis),
    }
    return summary, analysis.config


def analysis_notes(analysis: Analysis) -> list[str]:
    """Facts worth a look that are not changes: e.g. a change cursor no index leads with."""
    notes = []
    for name, table in sorted(analysis.config.tables.items()):
        source = analysis.source.tables[name]
        if table.strategy == "incremental" and table.cursor not in source.leading_index_columns():
            notes.append(
                f"{name}: cursor {table.cursor} leads no index; each incremental read scans the table"
            )
    return notes


def compare(output: Path, candidate: TablesConfig, override_problems: list[str]) -> ChangeReport:
    previous = _previous(output)
    return diff_configs(previous, candidate, override_problems)


def report_changes(
    settings: Settings,
    output: Path,
    analysis: dict,
    *,
    force: bool = False,
    write: bool = True,
    candidate: TablesConfig | None = None,
) -> dict:
    """Diff the candidate against the current tables.yml, write the reports, apply the loss guard."""
    candidate = candidate or load_tables_config(Path(analysis["candidate"]))
    report = compare(output, candidate, analysis.get("override_problems", []))
    lost = lost_table_share(report)
    summary = {
        "severity": report.severity,
        "counts": report.counts(),
        "previous_table_count": report.previous_table_count,
        "new_table_count": report.new_table_count,
        "lost_table_share": round(lost, 4),
        "changes": [
            f"{c.severity} {c.kind} {c.table}{'.' + c.column if c.column else ''}: {c.detail}"
            for c in by_severity(report.changes)
        ],
    }
    summary["notes"] = analysis.get("notes", [])
    if write:
        json_path, md_path = write_reports(
            report,
            settings.reports_dir,
            extra={
                "analysis": {
                    k: analysis.get(k) for k in ("table_count", "strategies", "tiers", "notes", "sizes")
                }
            },
        )
        summary.update(report_json=str(json_path), report_markdown=str(md_path))
    limit = float(analysis.get("max_table_loss", 0.10))
    if lost > limit and not force:
        Path(analysis["candidate"]).unlink(missing_ok=True)
        raise SchemaGuardError(
            f"the new analysis lost {lost:.0%} of the tables in {output} (limit {limit:.0%}); "
            f"{output} was not replaced. Check the source and the read-only user's grants, "
            "or rerun with --force to accept it"
            + (f" (see {summary.get('report_markdown')})" if write else "")
        )
    return summary


def publish_candidate(output: Path, candidate: Path) -> dict:
    """Validate the candidate and rename it over tables.yml.

    Overrides naming tables or columns that no longer exist do not block publishing (the change
    report carries them as WARNINGs); `validate-config` reports them as errors until they are fixed.
    """
    if not candidate.is_file():
        raise ConfigError(f"{candidate}: no candidate to publish; run the analysis step first")
    errors = validate_tables_config(candidate)
    if errors:
        candidate.unlink(missing_ok=True)
        shown = "; ".join(str(e) for e in errors[:5])
        raise ConfigError(f"the new tables.yml failed validation, {output} not replaced: {shown}")
    os.replace(candidate, output)
    return {"tables_yml": str(output)}


def analyze_schema(
    settings: Settings, output: Path | None = None, *, force: bool = False, dry_run: bool = False
) -> dict:
    """The whole job (the CLI's analyze-schema). Returns the change summary."""
    output = Path(output or settings.tables_yml)
    analysis, candidate = _write_candidate(settings, output, write=not dry_run)
    try:
        summary = report_changes(
            settings, output, analysis, force=force, write=not dry_run, candidate=candidate
        )
        if dry_run:
            summary["dry_run"] = True
            return summary
        backup = backup_tables_yml(output, settings.backups_dir)
        summary["backup"] = str(backup) if backup else None
        summary.update(publish_candidate(output, Path(analysis["candidate"])))
        return summary
    finally:
        if not dry_run:
            Path(analysis["candidate"]).unlink(missing_ok=True)


def notify_run(results: dict[str, dict | None]) -> str:
    """The DAG's last step: one notification saying what happened; fails the run if a step failed.

    `results` maps each step to its return value (None when it did not succeed), in step order.
    """
    from etl_pipeline.notify import notify

    failed = next((step for step, result in results.items() if result is None), None)
    report = results.get("report_changes") or {}
    summary = {
        "failed_step": failed,
        "severity": report.get("severity"),
        "tables_before": report.get("previous_table_count"),
        "tables_after": report.get("new_table_count"),
        **{k.lower(): v for k, v in (report.get("counts") or {}).items()},
        "report": report.get("report_markdown"),
        "backup": (results.get("backup_tables_yml") or {}).get("backup"),
    }
    if failed:
        candidate = (results.get("analyse") or {}).get("candidate")
        if candidate:  # analysed but not published: do not leave the candidate behind
            Path(candidate).unlink(missing_ok=True)
        details = [f"step {failed} failed; tables.yml was left as it was (see the task log)"]
        notify("Schema analysis failed", "CRITICAL", summary, details + report.get("changes", []))
        raise EtlError(f"schema analysis failed at step {failed}; tables.yml unchanged")
    notify("Schema analysis", report.get("severity", "INFO"), summary, report.get("changes", []))
    return report.get("severity", "INFO")


def _previous(output: Path) -> TablesConfig | None:
    if not output.is_file():
        return None
    try:
        return load_tables_config(output)
    except ConfigError as exc:
        log.warning("previous %s unreadable (%s); reporting every table as added", output, exc)
        return None


def _count(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return dict(sorted(counts.items()))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
