"""CLI commands of the schema area: `analyze-schema` and `validate-config`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from etl_pipeline.settings import load_settings


def register(subparsers) -> None:
    analyze = subparsers.add_parser(
        "analyze-schema",
        help="introspect the source and write tables.yml (with a change report)",
        description="Introspect the source database (read-only user), classify every table (tier, "
        "strategy, cursor), merge tables.overrides.yml and write tables.yml. The previous file "
        "is backed up and a change report (JSON + Markdown) is written under the reports dir.",
    )
    analyze.add_argument("--output", type=Path, help="where to write tables.yml (default: the config dir's)")
    analyze.add_argument(
        "--force",
        action="store_true",
        help="replace tables.yml even if the analysis lost more tables than the guard allows",
    )
    analyze.add_argument(
        "--dry-run", action="store_true", help="analyse and print the changes; write nothing"
    )
    analyze.set_defaults(func=_analyze)

    validate = subparsers.add_parser(
        "validate-config",
        help="check tables.yml and tables.overrides.yml (errors with line numbers)",
        description="Validate tables.yml and the overrides file; prints one FILE:LINE: FIELD: PROBLEM "
        "line per error and exits 1 when there are any.",
    )
    validate.add_argument("--file", type=Path, help="tables.yml to check (default: the config dir's)")
    validate.add_argument("--overrides", type=Path, help="overrides file (default: the config dir's)")
    validate.set_defaults(func=_validate)


def _analyze(args: argparse.Namespace) -> int:
    from etl_pipeline.schema.workflow import analyze_schema

    settings = load_settings()
    output = args.output or settings.tables_yml
    print(f"analysing {settings.source.display} ...", file=sys.stderr)
    summary = analyze_schema(settings, output, force=args.force, dry_run=args.dry_run)
    counts = summary["counts"]
    print(
        f"{summary['new_table_count']} tables (previously {summary['previous_table_count']}); "
        f"changes: {counts['CRITICAL']} critical, {counts['WARNING']} warning, {counts['INFO']} info; "
        f"severity {summary['severity']}"
    )
    for line in summary["changes"][:50]:
        print(f"  {line}")
    if len(summary["changes"]) > 50:
        print(f"  ... {len(summary['changes']) - 50} more (see the report)")
    if summary.get("notes"):
        print(f"{len(summary['notes'])} note(s), e.g. {summary['notes'][0]}")
    if args.dry_run:
        print("dry run: nothing written")
    else:
        print(f"wrote {summary['tables_yml']}")
        print(f"report {summary['report_markdown']}")
        if summary.get("backup"):
            print(f"backup {summary['backup']}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from etl_pipeline.schema.validate import validate_tables_config

    settings = load_settings()
    path = args.file or settings.tables_yml
    overrides = args.overrides or settings.overrides_yml
    errors = validate_tables_config(path, overrides)
    for error in errors:
        print(error)
    if errors:
        print(f"{len(errors)} error(s)", file=sys.stderr)
        return 1
    print(f"{path}: ok" + (f" (with {overrides})" if Path(overrides).is_file() else ""))
    return 0
