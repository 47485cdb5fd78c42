"""What every command module shares: a subcommand with examples in its help, the `--json` flag, and
printing JSON that holds counts and identifiers only (every string masked by `redact`).

JSON goes to stdout and nothing else does while `--json` is on; logs and progress stay on stderr, so
`etl run --json | jq` reads one document.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from etl_pipeline.redact import redact

HELP_WIDTH = 88
Subparsers = Any  # argparse's _SubParsersAction is private; this is what `register(subparsers)` receives


def add_command(
    subparsers: Subparsers, name: str, *, help: str, description: str = "", examples: str = ""
) -> argparse.ArgumentParser:
    """A subcommand whose --help shows `description` (paragraphs filled) and an `examples:` block as written."""
    epilog = "examples:\n" + textwrap.indent(textwrap.dedent(examples).strip(), "  ") if examples else None
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help,
        description=_fill(description or help),
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def _fill(text: str) -> str:
    paragraphs = textwrap.dedent(text).strip().split("\n\n")
    return "\n\n".join(textwrap.fill(" ".join(p.split()), HELP_WIDTH) for p in paragraphs)


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document on stdout instead of text (logs stay on stderr)",
    )


def print_json(document: Any) -> None:
    json.dump(scrub(document), sys.stdout, indent=2, default=_plain)
    sys.stdout.write("\n")


def scrub(value: Any) -> Any:
    """`value` with every string passed through `redact` (keys and values, nested)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {scrub(k) if isinstance(k, str) else k: scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    if isinstance(value, Path):
        return redact(str(value))
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    return str(value)
