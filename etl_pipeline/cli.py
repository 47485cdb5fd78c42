"""`etl` (or `python -m etl_pipeline.cli`): one command per user job.

Each area of the package registers its own commands (see `COMMAND_MODULES`); this module only wires
them together, sets up logging (stderr) and turns errors into a one-line message and an exit code:

    0    success
    1    runtime failure: a table failed, a check failed, a server could not be reached
    2    usage error: unknown command or option, bad argument
    3    configuration error: bad settings, tables.yml or tables.overrides.yml
    130  interrupted (Ctrl-C)

(`etl_pipeline.errors.EXIT_CODES`: the same table, which `etl --help` prints.) Commands a script reads
take `--json`: one JSON document on stdout, logs and progress on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from importlib.metadata import PackageNotFoundError, version

from etl_pipeline.errors import EXIT_CODES, EXIT_INTERRUPTED, EtlError
from etl_pipeline.redact import install_log_filter, redact

PROG = "etl"
DISTRIBUTION = "etl-pipeline"

# Modules exposing `register(subparsers)`; each adds the commands of its area.
COMMAND_MODULES = (
    "etl_pipeline.local.commands",
    "etl_pipeline.synthetic.commands",
    "etl_pipeline.connection_commands",
    "etl_pipeline.schema.commands",
    "etl_pipeline.load.commands",
    "etl_pipeline.docs_commands",
)

EXAMPLES = """\
typical session:
  etl local up                  # throwaway MariaDB + PostgreSQL, settings in .env
  etl synth --scale 0.05        # a synthetic clinic to load
  etl test-connections          # both ends reachable? TLS? read-only source user?
  etl analyze-schema            # write tables.yml
  etl run                       # load every enabled table into raw
  etl verify --json             # source vs raw parity, for a script

`etl COMMAND --help` shows each command's options and examples."""


def package_version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def exit_code_table() -> str:
    return "exit codes:\n" + "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Copy an OpenDental MySQL/MariaDB database into PostgreSQL and build the dbt marts.",
        epilog=f"{EXAMPLES}\n\n{exit_code_table()}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # a usage error exits 2 here (argparse)
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
        return EXIT_INTERRUPTED
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
