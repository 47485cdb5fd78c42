"""`python -m etl_pipeline.cli`: one command per user job.

Each area of the package registers its own commands (see `COMMAND_MODULES`); this module only wires
them together, sets up logging and turns `EtlError`s into a one-line message and a non-zero exit.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from etl_pipeline.errors import EtlError
from etl_pipeline.redact import install_log_filter, redact

# Modules exposing `register(subparsers)`; each adds the commands of its area.
COMMAND_MODULES = (
    "etl_pipeline.local.commands",
    "etl_pipeline.synthetic.commands",
    "etl_pipeline.schema.commands",
    "etl_pipeline.load.commands",
    "etl_pipeline.docs_commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m etl_pipeline.cli",
        description="Copy an OpenDental MySQL/MariaDB database into PostgreSQL and build the dbt marts.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    install_log_filter()
    try:
        result = args.func(args)
    except EtlError as exc:
        print(f"error: {redact(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
