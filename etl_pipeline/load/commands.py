"""CLI: `run` (load tables into raw), `status` (per-table state), `verify` (source vs raw parity)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from etl_pipeline import business_hours
from etl_pipeline.cli_support import Subparsers, add_command, add_json_flag, print_json
from etl_pipeline.db import connect_target
from etl_pipeline.load import state
from etl_pipeline.load.engine import TableLoadResult, new_run_id, run, select_tables
from etl_pipeline.redact import redact
from etl_pipeline.settings import load_settings

TIERS = ("large", "medium", "small", "tiny")
COUNTS = ("rows_read", "inserted", "updated", "deleted", "bytes")


def register(subparsers: Subparsers) -> None:
    p = add_command(
        subparsers,
        "run",
        help="load tables from the source into PostgreSQL raw",
        description="Stream source tables into raw: incremental where possible, full refresh otherwise; "
        "deletes marked in _deleted_at. Exits 1 when any table failed (the others still load). Where "
        "BUSINESS_HOURS_GUARD is on (prod by default), a run inside BUSINESS_HOURS is refused (exit 3) "
        "unless --allow-business-hours.",
        examples="""
etl run                                  # every enabled table, largest first
etl run --tables patient,procedurelog    # just these (source names, as in tables.yml)
etl run --tier large --workers 4
etl run --tables claim --full-refresh    # rebuild one table from scratch
etl run --dry-run                        # what would be loaded, and how
etl run --json | jq '.failed'            # tables that failed, for a script
etl run --tables patient --allow-business-hours   # while the clinic is open, on purpose
""",
    )
    p.add_argument("--tables", help="comma-separated source table names (default: all enabled)")
    p.add_argument("--tier", choices=TIERS, help="only tables of this tier")
    p.add_argument("--full-refresh", action="store_true", help="rebuild the chosen tables from scratch")
    p.add_argument("--dry-run", action="store_true", help="list what would be loaded and stop")
    p.add_argument("--workers", type=_positive, default=2, help="tables loaded in parallel (default 2)")
    p.add_argument("--run-id", help="run id recorded in etl.load_runs (default: manual__<time>)")
    p.add_argument(
        "--allow-business-hours",
        action="store_true",
        help="load even inside the practice's BUSINESS_HOURS (where BUSINESS_HOURS_GUARD is on)",
    )
    add_json_flag(p)
    p.set_defaults(func=_run)

    p = add_command(
        subparsers,
        "status",
        help="per-table load state: last load, rows, cursor, duration",
        examples="""
etl status
etl status --json | jq '.[] | select(.last_status == "failed") | .table_name'
""",
    )
    add_json_flag(p)
    p.set_defaults(func=_status)

    p = add_command(
        subparsers,
        "verify",
        help="compare source and raw: live row counts and key sets",
        description="Compare the source with raw for each table: live row counts and the exact primary-key "
        "sets (with --deep, every loaded column). Exits 1 on any mismatch.",
        examples="""
etl verify
etl verify --tables patient,appointment --deep
etl verify --json | jq '.[] | select(.ok | not)'
""",
    )
    p.add_argument("--tables", help="comma-separated source table names (default: all enabled)")
    p.add_argument("--deep", action="store_true", help="also compare the content of every column")
    add_json_flag(p)
    p.set_defaults(func=_verify)


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return number


def _names(value: str | None) -> list[str] | None:
    return [t.strip() for t in value.split(",") if t.strip()] if value else None


def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    if not args.dry_run:  # a dry run reads nothing; a load is refused here, before any connection
        business_hours.check(settings, datetime.now(UTC), args.allow_business_hours)
    run_id = args.run_id or new_run_id()
    results = run(
        settings,
        tables=_names(args.tables),
        tier=args.tier,
        full_refresh=args.full_refresh,
        max_workers=args.workers,
        run_id=run_id,
        dry_run=args.dry_run,
        live_progress=not args.json,
    )
    failed = [r for r in results if r.status == "failed"]
    if args.json:
        print_json(run_document(run_id, results, dry_run=args.dry_run))
        return 1 if failed else 0
    for r in results:
        print(_result_line(r))
    if failed:
        print(f"{len(failed)} of {len(results)} tables failed: {', '.join(r.table for r in failed)}")
    return 1 if failed else 0


def run_document(run_id: str, results: list[TableLoadResult], *, dry_run: bool = False) -> dict[str, Any]:
    """`run --json`: the run's identity, totals and one entry per table (counts and identifiers only)."""
    tables = [r.to_dict() for r in results]
    failed = [r.table for r in results if r.status == "failed"]
    return {
        "run_id": run_id,
        "dry_run": dry_run,
        "ok": not failed,
        "failed": failed,
        "totals": {
            "tables": len(results),
            "succeeded": sum(r.status == "success" for r in results),
            "failed": len(failed),
            **{key: sum(int(t.get(key) or 0) for t in tables) for key in COUNTS},
            "seconds": round(sum(float(t.get("seconds") or 0) for t in tables), 3),
        },
        "tables": tables,
    }


def _result_line(r: TableLoadResult) -> str:
    reason = r.to_dict().get("reason") or ""  # why full / incremental / skipped
    if r.status == "skipped":
        return f"would load {r.table} ({r.strategy}{': ' + reason if reason else ''})"
    if r.status == "success":
        return (
            f"{r.table:<24} {r.strategy:<12} read {r.rows_read:>10,}  ins {r.inserted:>10,}  "
            f"upd {r.updated:>8,}  del {r.deleted:>7,}  {r.seconds:8.1f} s"
            + (f"  ({reason})" if reason else "")
        )
    return f"{r.table:<24} FAILED ({r.error_class}): {redact(r.message)}"


def _status(args: argparse.Namespace) -> int:
    conn = connect_target(load_settings().target)
    try:
        state.ensure_state_tables(conn)
        rows = state.all_states(conn)
    finally:
        conn.close()
    if args.json:
        print_json(rows)
        return 0
    print(
        f"{'table':<24} {'state':<8} {'strategy':<12} {'raw rows':>10} {'cursor':<20} {'seconds':>8}  last load"
    )
    for r in rows:
        print(
            f"{r['table_name']:<24} {r['last_status'] or '':<8} {r['strategy'] or '':<12} "
            f"{r['raw_rows'] if r['raw_rows'] is not None else '':>10} {r['cursor_value'] or '':<20} "
            f"{r['last_seconds'] or 0:>8.1f}  {r['last_finished_at'] or ''}"
        )
    return 0


def _verify(args: argparse.Namespace) -> int:
    # parity reads the loader's modules and the target; imported here to keep `etl --help` quick
    from etl_pipeline.quality.parity import ParityResult, verify_table

    settings = load_settings()
    results = []
    for table in select_tables(settings, _names(args.tables)):
        try:
            results.append(verify_table(settings, table, deep=args.deep))
        except Exception as exc:  # one table's failure is its result; the others are still checked
            shown = (
                f": {redact(exc)}" if hasattr(exc, "exit_code") else ""
            )  # EtlError messages are fit to show
            results.append(ParityResult(table.name, 0, 0, error=type(exc).__name__ + shown))
    if args.json:
        print_json([r.to_dict() for r in results])
    else:
        for r in results:
            verdict = "ok" if r.ok else "MISMATCH"
            print(
                f"{r.table:<24} {verdict:<8} source {r.source_rows:>10,}  raw {r.raw_live_rows:>10,}  "
                f"missing {r.missing_in_raw:>6,}  extra {r.extra_in_raw:>6,}"
                + (f"  error: {r.error}" if r.error else "")
            )
    return 0 if all(r.ok for r in results) else 1
