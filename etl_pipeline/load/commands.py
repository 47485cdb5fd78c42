"""CLI: `run` (load tables into raw), `status` (per-table state), `verify` (source vs raw parity)."""

from __future__ import annotations

import argparse
import json

from etl_pipeline.db import connect_target
from etl_pipeline.load import state
from etl_pipeline.load.engine import run, select_tables
from etl_pipeline.settings import load_settings


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "run",
        help="load tables from the source into PostgreSQL raw",
        description="Stream source tables into raw: incremental where possible, "
        "full refresh otherwise; deletes marked in _deleted_at.",
    )
    p.add_argument("--tables", help="comma-separated source table names (default: all enabled)")
    p.add_argument("--tier", choices=("large", "medium", "small", "tiny"), help="only tables of this tier")
    p.add_argument("--full-refresh", action="store_true", help="rebuild the chosen tables from scratch")
    p.add_argument("--dry-run", action="store_true", help="list what would be loaded and stop")
    p.add_argument("--workers", type=int, default=2, help="tables loaded in parallel (default 2)")
    p.add_argument("--run-id", help="run id recorded in etl.load_runs (default: manual__<time>)")
    p.set_defaults(func=_run)

    p = subparsers.add_parser("status", help="per-table load state: last load, rows, cursor, duration")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_status)

    p = subparsers.add_parser("verify", help="compare source and raw: live row counts and key sets")
    p.add_argument("--tables", help="comma-separated source table names (default: all enabled)")
    p.add_argument("--deep", action="store_true", help="also compare the content of every column")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_verify)


def _names(value: str | None):
    return [t.strip() for t in value.split(",") if t.strip()] if value else None


def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    results = run(
        settings,
        tables=_names(args.tables),
        tier=args.tier,
        full_refresh=args.full_refresh,
        max_workers=args.workers,
        run_id=args.run_id,
        dry_run=args.dry_run,
    )
    for r in results:
        if r.status == "skipped":
            print(f"would load {r.table} ({r.strategy})")
        elif r.status == "success":
            print(
                f"{r.table:<24} {r.strategy:<12} read {r.rows_read:>10,}  ins {r.inserted:>10,}  "
                f"upd {r.updated:>8,}  del {r.deleted:>7,}  {r.seconds:8.1f} s"
            )
        else:
            print(f"{r.table:<24} FAILED ({r.error_class}): {r.message}")
    failed = [r for r in results if r.status == "failed"]
    if failed:
        print(f"{len(failed)} of {len(results)} tables failed: {', '.join(r.table for r in failed)}")
    return 1 if failed else 0


def _status(args: argparse.Namespace) -> int:
    conn = connect_target(load_settings().target)
    try:
        state.ensure_state_tables(conn)
        rows = state.all_states(conn)
    finally:
        conn.close()
    if args.json:
        print(json.dumps(rows, default=str, indent=2))
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
    from etl_pipeline.quality.parity import verify_table

    settings = load_settings()
    results = []
    for table in select_tables(settings, _names(args.tables)):
        try:
            results.append(verify_table(settings, table, deep=args.deep))
        except Exception as exc:
            from etl_pipeline.quality.parity import ParityResult

            results.append(
                ParityResult(
                    table.name,
                    0,
                    0,
                    error=type(exc).__name__ + (f": {exc}" if hasattr(exc, "exit_code") else ""),
                )
            )
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        for r in results:
            verdict = "ok" if r.ok else "MISMATCH"
            print(
                f"{r.table:<24} {verdict:<8} source {r.source_rows:>10,}  raw {r.raw_live_rows:>10,}  "
                f"missing {r.missing_in_raw:>6,}  extra {r.extra_in_raw:>6,}"
                + (f"  error: {r.error}" if r.error else "")
            )
    return 0 if all(r.ok for r in results) else 1
