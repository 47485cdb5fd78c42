"""After the extract tasks: parity, the run report, and the gate in front of dbt.

    verify_run(settings, run_id)                source vs raw parity for every table this run loaded
    build_report(settings, run_id, plan, ...)   per planned table strategy/rows/seconds/status, totals;
                                                kept in etl.nightly_runs and returned (the task's XCom)
    pipeline_success(report)                    dbt runs only when every planned table loaded, parity clean

The report names tables and counts, never row values.

The database drivers, the load state and the parity checks are imported inside the steps that use them:
the DAG file imports this module every time it is parsed, and they take seconds to import.
"""

from __future__ import annotations

from etl_pipeline.errors import EtlError
from etl_pipeline.schema.tables_config import TIERS
from etl_pipeline.settings import Settings
from etl_pipeline.tables_yml import tables_config


def verify_run(settings: Settings, run_id: str) -> dict[str, dict]:
    """Parity for the tables this run loaded successfully (etl.load_runs says which)."""
    from etl_pipeline.quality.report import run_report

    return verify_tables(
        settings, [r["table_name"] for r in run_report(settings, run_id) if r["status"] == "success"]
    )


def verify_tables(settings: Settings, names: list[str]) -> dict[str, dict]:
    """Parity per table (row count and primary keys); a check that errors is reported, not raised."""
    from etl_pipeline.quality.parity import verify_table

    config = tables_config(settings)
    results: dict[str, dict] = {}
    for name in names:
        try:
            results[name] = verify_table(settings, config.tables[name]).to_dict()
        except Exception as exc:
            results[name] = {"table": name, "ok": False, "error": type(exc).__name__}
    return results


def build_report(settings: Settings, run_id: str, plan: dict | None, parity: dict | None) -> dict:
    """Per planned table: strategy, rows, seconds, status (+ parity); totals; stored in etl.nightly_runs."""
    from etl_pipeline.db import connect_target
    from etl_pipeline.load.state import record_nightly_run
    from etl_pipeline.quality.report import run_report

    if plan is None:
        raise EtlError("no plan: validation or planning failed, nothing was loaded")
    loaded = {row["table_name"]: row for row in run_report(settings, run_id)}
    rows = [
        _table_row(item["table"], tier, loaded.get(item["table"]) or {}, (parity or {}).get(item["table"]))
        for tier in TIERS
        for item in plan.get(tier, [])
    ]
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
    status = "success" if rows and not failed and not parity_failed else "failed"
    conn = connect_target(settings.target)
    try:
        record_nightly_run(conn, run_id, status, totals, rows)
    finally:
        conn.close()
    return {
        "run_id": run_id,
        "status": status,
        "totals": totals,
        "failed_tables": failed,
        "parity_failed_tables": parity_failed,
        "tables": rows,
    }


def _table_row(name: str, tier: str, loaded: dict, check: dict | None) -> dict:
    return {
        "table": name,
        "tier": tier,
        "strategy": loaded.get("strategy"),
        "rows_read": loaded.get("rows_read") or 0,
        "inserted": loaded.get("inserted") or 0,
        "updated": loaded.get("updated") or 0,
        "deleted": loaded.get("deleted") or 0,
        "seconds": float(loaded.get("seconds") or 0),
        "status": loaded.get("status") or "not_run",
        "error_class": loaded.get("error_class"),
        "parity_ok": None if check is None else bool(check.get("ok")),
    }


def pipeline_success(report: dict | None) -> bool:
    return report is not None and report.get("status") == "success"
