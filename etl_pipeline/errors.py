"""User-facing errors.

An `EtlError` carries a message meant for the person at the terminal or reading the Airflow log:
it says what is wrong, where, and what to do next. The CLI prints it on one line and exits non-zero.
Messages never contain passwords or row values (see `etl_pipeline.redact`).
"""


class EtlError(Exception):
    """An error whose message is fit to show to the user as it is."""

    exit_code = 2


class ConfigError(EtlError):
    """Bad settings, bad tables.yml, bad overrides, bad CLI arguments."""


class ConnectionFailed(EtlError):
    """A database could not be reached (message names host:port and user, never the password)."""


class LocalStackError(EtlError):
    """The throwaway local MariaDB/PostgreSQL could not be started, reached or stopped."""
