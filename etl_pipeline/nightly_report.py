"""After the extract tasks: parity, the run report, and the gate in front of dbt.

    verify_run(settings, run_id)                source vs raw parity for every table this run loaded, judged
                                                against what its load saw (`quality.load_parity`): rows
                                                written after it are in flight, not mismatches; a content
                                                check of the rows it read; tonight's share of the rotating
                                                deep check (`quality.rotation`)
    build_report(settings, run_id, plan, ...)   per planned table strategy/rows/seconds/status, totals;
                                                kept in etl.nightly_runs and returned (the task's XCom)
    pipeline_success(report)                    dbt runs only when every planned table loaded, parity clean

The report names tables and counts, never row values.

The database drivers, the load state and the parity checks are imported inside the steps that use them:
the DAG file imports this module every time it is parsed, and they take seconds to import.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from etl_pipeline.errors import EtlError
from etl_pipeline.schema.tables_config import TIERS
from etl_pipeline.settings import Settings
from etl_pipeline.tables_yml import tables_config


def verify_run(settings: Settings, run_id: str, day: int | None = None) -> dict[str, dict]:
    """Parity for the tables this run loaded successfully (etl.load_runs says which); `day`: the
    rotation's day number (default today's, `quality.rotation.day_number`): tonight's key ranges of
    every table with a single integer key, and the other tables dealt to tonight, get the deep check."""
    from etl_pipeline.quality import rotation
    from etl_pipeline.quality.report import run_report

    config = tables_config(settings)
    day = rotation.day_number() if day is None else day
    weights = {t.name: t.estimated_rows for t in config.enabled_tables() if not rotation.sliced(t)}
    deep = rotation.deep_tonight(weights, day)
    loaded = [r["table_name"] for r in run_report(settings, run_id) if r["status"] == "success"]
    return verify_tables(settings, loaded, deep=deep, day=day)


def verify_tables(
    settings: Settings, names: list[str], deep: Iterable[str] = (), day: int | None = None
) -> dict[str, dict]:
    """Judged parity and content check per table, the full deep check for the tables in `deep`, and
    the key ranges due on day number `day` for the others (`load_parity.verify_loaded`); a check
    that errors is reported, not raised. Tables the plan found at the source but tables.yml does not
    list yet are classified as the plan classified them. One source and one target connection serve
    every table (a table whose check fails gets fresh ones for the next)."""
    from etl_pipeline.db import connect_source, connect_target
    from etl_pipeline.quality.load_parity import verify_loaded
    from etl_pipeline.tables_yml import new_tables

    config = tables_config(settings)
    tables = dict(config.tables)
    if any(name not in tables for name in names):
        tables.update(new_tables(settings, config).tables)
    due = set(deep)
    results: dict[str, dict] = {}
    src = pg = None
    try:
        for name in names:
            try:
                src = src or connect_source(settings.source)
                pg = pg or connect_target(settings.target)
                result = verify_loaded(settings, tables[name], deep=name in due, day=day, src=src, pg=pg)
                results[name] = result.to_dict()
            except Exception as exc:
                results[name] = {"table": name, "ok": False, "deep": name in due, "error": type(exc).__name__}
                _close(src, pg)
                src = pg = None
    finally:
        _close(src, pg)
    return results


def _close(*conns: Any) -> None:
    """Close each of `conns` (None: nothing), whatever state it is in."""
    for conn in conns:
        if conn is not None:
            with contextlib.suppress(Exception):  # a broken connection: nothing left to close
                conn.close()


def build_report(settings: Settings, run_id: str, plan: dict | None, parity: dict | None) -> dict:
    """Per planned table: strategy, rows, seconds, status (+ parity); totals; stored in etl.nightly_runs."""
    from etl_pipeline.db import connect_target
    from etl_pipeline.load.state import record_nightly_run
    from etl_pipeline.quality.report import run_report

    if plan is None:
        raise EtlError("no plan: validation or planning failed, nothing was loaded")
    loaded = {row["table_name"]: row for row in run_report(settings, run_id)}
    rows = [
        _table_row(item, tier, loaded.get(item["table"]) or {}, (parity or {}).get(item["table"]))
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
        "in_flight": sum(r["in_flight"] for r in rows),
        "deep_tables": sorted(r["table"] for r in rows if r["deep"]),
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


def _table_row(item: dict, tier: str, loaded: dict, check: dict | None) -> dict:
    check = check or {}
    return {
        "table": item["table"],
        "tier": tier,
        "new": bool(item.get("new", False)),
        "strategy": loaded.get("strategy"),
        "rows_read": loaded.get("rows_read") or 0,
        "inserted": loaded.get("inserted") or 0,
        "updated": loaded.get("updated") or 0,
        "deleted": loaded.get("deleted") or 0,
        "seconds": float(loaded.get("seconds") or 0),
        "status": loaded.get("status") or "not_run",
        "error_class": loaded.get("error_class"),
        "parity_ok": bool(check["ok"]) if "ok" in check else None,
        "parity_mismatches": sum(
            int(check.get(k) or 0) for k in ("missing_in_raw", "extra_in_raw", "content_mismatches")
        ),
        "in_flight": int(check.get("in_flight") or 0),
        "content_checked_rows": int(check.get("content_checked_rows") or 0),
        "deep": bool(check.get("deep")) and check.get("error") is None,
    }


def pipeline_success(report: dict | None) -> bool:
    return report is not None and report.get("status") == "success"
