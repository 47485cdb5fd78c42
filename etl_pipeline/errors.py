"""User-facing errors and the exit codes they map to.

An `EtlError` carries a message meant for the person at the terminal or reading the Airflow log:
it says what is wrong, where, and what to do next. The CLI prints it on one line and exits with the
error's `exit_code`. Messages never contain passwords or row values (see `etl_pipeline.redact`).
"""

EXIT_OK = 0
EXIT_FAILURE = 1  # the work failed: a table did not load, parity failed, a server was unreachable
EXIT_USAGE = 2  # argparse's own code for a bad command line
EXIT_CONFIG = 3  # bad settings, tables.yml or overrides: fix the configuration, then rerun
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)

# (code, meaning) for `etl --help` and the README, in one place
EXIT_CODES = (
    (EXIT_OK, "success"),
    (EXIT_FAILURE, "runtime failure: a table failed, a check failed, a server could not be reached"),
    (EXIT_USAGE, "usage error: unknown command or option, bad argument"),
    (EXIT_CONFIG, "configuration error: bad settings, tables.yml or tables.overrides.yml"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C)"),
)


class EtlError(Exception):
    """An error whose message is fit to show to the user as it is."""

    exit_code = EXIT_FAILURE


class ConfigError(EtlError):
    """Bad settings, bad tables.yml, bad overrides, bad CLI arguments."""

    exit_code = EXIT_CONFIG


class ConnectionFailed(EtlError):
    """A database could not be reached (message names host:port and user, never the password)."""


class LocalStackError(EtlError):
    """The throwaway local MariaDB/PostgreSQL could not be started, reached or stopped."""
