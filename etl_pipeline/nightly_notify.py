"""The nightly run's notification: severity, counts and detail lines, sent through `notify`.

    severity   INFO: everything loaded, parity clean, dbt built and tested, docs published (rows
               written at the source after their table's load are in flight: counted, still INFO)
               WARNING: some tables failed or mismatched, or dbt failed / was skipped
               CRITICAL: validation failed (nothing loaded), no run report, or every table failed

The details name tables, models and counts, never row values. Anything but INFO fails the `notify`
task after sending, so the Airflow UI marks the night that needs attention.
"""

from __future__ import annotations

from etl_pipeline.errors import EtlError
from etl_pipeline.nightly_report import pipeline_success
from etl_pipeline.notify import notify

TITLE = "Nightly ETL"


class NightlyError(EtlError):
    """The nightly run was not a clean success; the message names what failed."""


def dbt_state(report: dict | None, docs: dict | None) -> str:
    """'success' once the docs were published (every model and test passed), 'failed' when loading
    succeeded but dbt did not get that far, 'skipped' when loading was incomplete."""
    if docs:
        return "success"
    return "failed" if pipeline_success(report) else "skipped"


def summarise(outcome: dict) -> tuple[str, dict, list[str]]:
    """Severity, summary counts and detail lines for a finished run (never row values).

    outcome keys: run_id, validation (None when it failed), report (None when not built),
    dbt ('success' | 'failed' | 'skipped' | 'not_run'), dbt_failures (failed dbt task ids in the
    dbt group: '<model>.run', '<model>.test'), drift, freshness.
    """
    report = outcome.get("report") or {}
    totals = report.get("totals") or {}
    dbt = outcome.get("dbt") or "not_run"
    failed = list(report.get("failed_tables") or [])
    summary = {
        "run_id": report.get("run_id") or outcome.get("run_id"),
        "tables": totals.get("tables", 0),
        "succeeded": totals.get("succeeded", 0),
        "failed": totals.get("failed", 0),
        "rows_read": totals.get("rows_read", 0),
        "in_flight": totals.get("in_flight", 0),
        "deep_tables": list(totals.get("deep_tables") or []),
        "dbt": dbt,
        "failed_tables": failed,
    }
    return _severity(outcome, report, dbt), summary, _details(outcome, report, dbt)


def _severity(outcome: dict, report: dict, dbt: str) -> str:
    failed = report.get("failed_tables")
    if outcome.get("validation") is None or not report:
        return "CRITICAL"
    if failed and (report.get("totals") or {}).get("succeeded", 0) == 0:
        return "CRITICAL"
    if failed or report.get("parity_failed_tables") or dbt != "success":
        return "WARNING"
    return "INFO"


def _details(outcome: dict, report: dict, dbt: str) -> list[str]:
    details = []
    if outcome.get("validation") is None:
        details.append("validation failed: nothing was loaded (see the validate task log)")
    elif not report:
        details.append("no run report: extraction or reporting failed")
    details += [f"table failed: {name}" for name in report.get("failed_tables") or []]
    details += [f"parity mismatch: {name}" for name in report.get("parity_failed_tables") or []]
    details += [f"new table: {row['table']}" for row in report.get("tables") or [] if row.get("new")]
    details += _parity_lines(report.get("totals") or {})
    if dbt != "success":
        details.append(f"dbt: {dbt}" + (" (loading was not complete)" if dbt == "skipped" else ""))
    details += _dbt_failure_lines(outcome.get("dbt_failures") or [])
    drift = outcome.get("drift") or {}
    if drift.get("drift"):
        details.append(
            f"schema drift: {len(drift.get('new_tables', []))} new, "
            f"{len(drift.get('missing_tables', []))} missing, "
            f"{len(drift.get('changed_tables', []))} changed table(s); run analyze-schema"
        )
    details += (outcome.get("validation") or {}).get("warnings", [])
    stale = (outcome.get("freshness") or {}).get("stale") or []
    if stale:
        details.append(f"stale sources: {', '.join(stale)}")
    return details


def _dbt_failure_lines(tasks: list[str], shown: int = 10) -> list[str]:
    """One line per failed dbt task ('<model>.run' built, '<model>.test' its tests), the first `shown`."""
    lines = []
    for task in tasks[:shown]:
        node, _, step = task.rpartition(".")
        what = {"run": "model failed", "test": "tests failed"}.get(step)
        lines.append(f"dbt {what}: {node}" if what and node else f"dbt task failed: {task}")
    if len(tasks) > shown:
        lines.append(f"dbt: {len(tasks) - shown} more failed task(s), see the dbt_models group")
    return lines


def _parity_lines(totals: dict) -> list[str]:
    """The rows in flight and tonight's deep check: figures an INFO night carries too."""
    lines = []
    if "in_flight" in totals:
        lines.append(
            f"rows in flight: {totals['in_flight']} (written at the source after their table's load)"
        )
    if "deep_tables" in totals:
        names = totals["deep_tables"]
        lines.append(f"deep check: {', '.join(names)}" if names else "deep check: none tonight")
    return lines


def notify_run(
    *,
    run_id: str,
    validation: dict | None,
    drift: dict | None,
    report: dict | None,
    freshness: dict | None,
    docs: dict | None,
    dbt_failures: list[str] | None = None,
) -> str:
    """Send the run's notification from what the steps returned (None for a step that failed or was
    skipped); raise after sending unless the run was a clean success, so the DAG run is marked failed."""
    outcome = {
        "run_id": run_id,
        "validation": validation,
        "drift": drift,
        "report": report,
        "freshness": freshness,
        "dbt": dbt_state(report, docs),
        "dbt_failures": list(dbt_failures or []),
    }
    severity, summary, details = summarise(outcome)
    notify(TITLE, severity, summary, details)
    if severity != "INFO":
        names = summary["failed_tables"]
        raise NightlyError(
            f"nightly run {severity}: {summary['failed']} table(s) failed, dbt {summary['dbt']}"
            + (f" ({', '.join(names[:10])})" if names else "")
        )
    return severity
