"""CLI commands of the schema area: `analyze-schema` and `validate-config`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from etl_pipeline.cli_support import Subparsers, add_command, add_json_flag, print_json
from etl_pipeline.errors import EXIT_CONFIG
from etl_pipeline.settings import load_settings

CHANGES_SHOWN = 50


def register(subparsers: Subparsers) -> None:
    analyze = add_command(
        subparsers,
        "analyze-schema",
        help="introspect the source and write tables.yml (with a change report)",
        description="Introspect the source database (read-only user), classify every table (tier, "
        "strategy, cursor), merge tables.overrides.yml and write tables.yml. The previous file "
        "is backed up and a change report (JSON + Markdown) is written under the reports dir.",
        examples="""
etl analyze-schema                       # write the config dir's tables.yml
etl analyze-schema --dry-run             # show the changes, write nothing
etl analyze-schema --output /tmp/tables.yml
etl analyze-schema --json | jq '.counts'
""",
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
    add_json_flag(analyze)
    analyze.set_defaults(func=_analyze)

    validate = add_command(
        subparsers,
        "validate-config",
        help="check tables.yml and tables.overrides.yml (errors with line numbers)",
        description="Validate tables.yml and the overrides file; prints one FILE:LINE: FIELD: PROBLEM "
        f"line per error and exits {EXIT_CONFIG} (configuration error) when there are any.",
        examples="""
etl validate-config
etl validate-config --file tables.yml --overrides tables.overrides.yml
etl validate-config --json | jq '.errors[] | "\\(.line): \\(.message)"'
""",
    )
    validate.add_argument("--file", type=Path, help="tables.yml to check (default: the config dir's)")
    validate.add_argument("--overrides", type=Path, help="overrides file (default: the config dir's)")
    add_json_flag(validate)
    validate.set_defaults(func=_validate)


def _analyze(args: argparse.Namespace) -> int:
    # introspection pulls in the classifier and the YAML writer; imported here to keep `etl --help` quick
    from etl_pipeline.schema.workflow import analyze_schema

    settings = load_settings()
    output = args.output or settings.tables_yml
    print(f"analysing {settings.source.display} ...", file=sys.stderr)
    summary = analyze_schema(settings, output, force=args.force, dry_run=args.dry_run)
    if args.json:
        print_json(analysis_document(summary, dry_run=args.dry_run))
        return 0
    counts = summary["counts"]
    print(
        f"{summary['new_table_count']} tables (previously {summary['previous_table_count']}); "
        f"changes: {counts['CRITICAL']} critical, {counts['WARNING']} warning, {counts['INFO']} info; "
        f"severity {summary['severity']}"
    )
    for line in summary["changes"][:CHANGES_SHOWN]:
        print(f"  {line}")
    if len(summary["changes"]) > CHANGES_SHOWN:
        print(f"  ... {len(summary['changes']) - CHANGES_SHOWN} more (see the report)")
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


def analysis_document(summary: dict[str, Any], *, dry_run: bool) -> dict[str, Any]:
    """`analyze-schema --json`: counts, severity, every change line (identifiers and types) and the paths."""
    return {
        "dry_run": dry_run,
        "severity": summary["severity"],
        "counts": summary["counts"],
        "table_count": summary["new_table_count"],
        "previous_table_count": summary["previous_table_count"],
        "lost_table_share": summary.get("lost_table_share"),
        "changes": summary["changes"],
        "notes": summary.get("notes", []),
        "tables_yml": summary.get("tables_yml"),
        "report_json": summary.get("report_json"),
        "report_markdown": summary.get("report_markdown"),
        "backup": summary.get("backup"),
    }


def _validate(args: argparse.Namespace) -> int:
    # the validator composes YAML nodes with line marks; imported here to keep `etl --help` quick
    from etl_pipeline.schema.validate import validate_tables_config

    settings = load_settings()
    path = args.file or settings.tables_yml
    overrides = args.overrides or settings.overrides_yml
    errors = validate_tables_config(path, overrides)
    with_overrides = Path(overrides).is_file()
    if args.json:
        print_json(
            {
                "ok": not errors,
                "file": str(path),
                "overrides": str(overrides) if with_overrides else None,
                "error_count": len(errors),
                "errors": [
                    {"file": e.file, "line": e.line, "path": e.path, "message": e.message} for e in errors
                ],
            }
        )
        return EXIT_CONFIG if errors else 0
    for error in errors:
        print(error)
    if errors:
        print(f"{len(errors)} error(s)", file=sys.stderr)
        return EXIT_CONFIG
    print(f"{path}: ok" + (f" (with {overrides})" if with_overrides else ""))
    return 0
