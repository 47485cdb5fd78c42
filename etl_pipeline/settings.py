"""Connection settings and paths: the one place they are read.

The source and the warehouse are the Airflow Connections `opendental_source` and `analytics_warehouse`
(etl_pipeline.connections): inside a task as Airflow resolves them, elsewhere from AIRFLOW_CONN_OPENDENTAL_SOURCE
and AIRFLOW_CONN_ANALYTICS_WAREHOUSE. A connection gives every part it names and takes the place of
SOURCE_URL / TARGET_URL; without one, the variables below say where the source and the target are.

Values come from environment variables, falling back to a `.env` file (the local stack writes one at
the project root; point `ETL_ENV_FILE` elsewhere for a clinic's servers). Real environment variables
win over the file. Passwords are registered with `etl_pipeline.redact` as soon as they are read and
never appear in a repr or a `display`.

Source (OpenDental, MySQL/MariaDB, read-only user):
    SOURCE_URL  mysql[+mysqldb|+pymysql]://user:password@host:port/database?ssl_mode=REQUIRED&ssl_ca=/ca.pem
    or the parts: SOURCE_HOST, SOURCE_PORT, SOURCE_DATABASE, SOURCE_USER, SOURCE_PASSWORD,
    SOURCE_SSL_CA, SOURCE_SSL_MODE (DISABLED | PREFERRED | REQUIRED | VERIFY_CA | VERIFY_IDENTITY)
    SOURCE_DRIVER (mysqlclient | pymysql; default mysqlclient, or the URL's +driver)
    SOURCE_ADMIN_USER, SOURCE_ADMIN_PASSWORD   (synthetic generator and tests only)
Target (analytics, PostgreSQL):
    TARGET_URL  postgresql://user:password@host:port/database?sslmode=verify-full&sslrootcert=/ca.pem
    or the parts: TARGET_HOST, TARGET_PORT, TARGET_DATABASE, TARGET_USER, TARGET_PASSWORD,
    TARGET_SSLMODE, TARGET_SSLROOTCERT (CA file for sslmode verify-ca / verify-full)
Timeouts (seconds; a load never waits forever on either end) and the MyISAM read chunks:
    SOURCE_CONNECT_TIMEOUT (10), SOURCE_READ_TIMEOUT (600: the longest the source may send nothing
    while a statement runs), SOURCE_WRITE_TIMEOUT (60), SOURCE_CHUNK_ROWS (50000) and
    SOURCE_CHUNK_SECONDS (0.2): rows and seconds one statement of a chunked MyISAM read aims at
    (SOURCE_CHUNK_ROWS=0: no chunked reads, each read one streaming statement: for a read replica)
    TARGET_CONNECT_TIMEOUT (10), TARGET_STATEMENT_TIMEOUT (21600), TARGET_LOCK_TIMEOUT (300),
    TARGET_IDLE_TIMEOUT (1800: idle_in_transaction_session_timeout, ends a dead loader's session),
    TARGET_STALL_TIMEOUT (300: a COPY PostgreSQL takes no data for, or a statement it does not answer
    this long past statement_timeout, is hung: the connection is closed), TARGET_TABLE_LOCK_WAIT (600:
    how long a load waits for another load of the same table to finish)
Other:
    ETL_ENVIRONMENT (local | staging | prod), ETL_CONFIG_DIR (tables.yml, overrides, reports)
    BUSINESS_HOURS (06:00-21:00), PRACTICE_TIMEZONE (America/Chicago), BUSINESS_HOURS_GUARD (on | off;
    on by default for prod): runs refused while the clinic is open (etl_pipeline.business_hours)

A URL gives every part it names; the separate variables fill in what it leaves out (typically the
password, kept in a secret of its own). Special characters in a URL's password are percent-encoded
(`@` as %40, `:` as %3A, `/` as %2F, `%` as %25). URLs are parsed and rendered with SQLAlchemy's `URL`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast
from urllib.parse import urlsplit

from etl_pipeline.business_hours import BusinessHours
from etl_pipeline.business_hours import from_env as business_hours_from_env
from etl_pipeline.connections import (
    SOURCE_CONN_ID,
    WAREHOUSE_CONN_ID,
    ConnectionFields,
    ConnectionLookup,
    airflow_connection,
    connection_from_env,
    source_parts,
    target_parts,
)
from etl_pipeline.errors import ConfigError
from etl_pipeline.redact import display_url, register_secret

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

PROJECT_ROOT = Path(os.environ.get("ETL_HOME") or Path(__file__).resolve().parents[1])
RAW_SCHEMA = "raw"
STATE_SCHEMA = "etl"


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a simple KEY=VALUE file (comments, blank lines and optional quotes allowed)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ")
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"{path}:{lineno}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def env_file_path() -> Path:
    return Path(os.environ.get("ETL_ENV_FILE") or PROJECT_ROOT / ".env")


def _environment() -> dict[str, str]:
    merged = read_env_file(env_file_path())
    merged.update(os.environ)
    return merged


SourceDriver = Literal["mysqlclient", "pymysql"]
SOURCE_DRIVERS: tuple[SourceDriver, ...] = ("mysqlclient", "pymysql")
SOURCE_SSL_MODES = ("DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY")


@dataclass(frozen=True)
class MySQLSettings:
    host: str
    port: int
    database: str
    user: str
    password: str = field(repr=False)
    ssl_ca: str | None = None
    ssl_mode: str | None = None
    driver: SourceDriver = "mysqlclient"
    connect_timeout: float = 10.0
    read_timeout: float = 600.0
    write_timeout: float = 60.0
    chunk_rows: int = 50_000
    chunk_seconds: float = 0.2
    # where host, user, password ... were read: a connection, SOURCE_URL or the SOURCE_* variables
    defined_by: str = field(default="SOURCE_* settings", compare=False)

    @property
    def url(self) -> URL:
        """The whole connection as a URL, password included: for a tool that needs one, never to show."""
        from sqlalchemy.engine import URL  # lazy: importing SQLAlchemy costs every command a second

        query = {k: v for k, v in (("ssl_mode", self.ssl_mode), ("ssl_ca", self.ssl_ca)) if v}
        drivername = "mysql" if self.driver == "mysqlclient" else f"mysql+{self.driver}"
        return URL.create(
            drivername, self.user, self.password or None, self.host, self.port, self.database, query
        )

    @property
    def display(self) -> str:
        """Where this points, for messages and logs: user, host, port and database, never the password."""
        return display_url(self.url)


@dataclass(frozen=True)
class PostgresSettings:
    host: str
    port: int
    database: str
    user: str
    password: str = field(repr=False)
    sslmode: str | None = None
    sslrootcert: str | None = None
    connect_timeout: float = 10.0
    statement_timeout: float = 6 * 3600.0
    lock_timeout: float = 300.0
    idle_timeout: float = 1800.0
    stall_timeout: float = 300.0
    table_lock_wait: float = 600.0
    defined_by: str = field(default="TARGET_* settings", compare=False)

    @property
    def url(self) -> URL:
        """The whole connection as a URL, password included: for a tool that needs one, never to show."""
        from sqlalchemy.engine import URL  # lazy: importing SQLAlchemy costs every command a second

        query = {k: v for k, v in (("sslmode", self.sslmode), ("sslrootcert", self.sslrootcert)) if v}
        return URL.create(
            "postgresql", self.user, self.password or None, self.host, self.port, self.database, query
        )

    @property
    def display(self) -> str:
        """Where this points, for messages and logs: user, host, port and database, never the password."""
        return display_url(self.url)

    def connect_kwargs(self) -> dict:
        kwargs: dict = {
            "host": self.host,
            "port": self.port,
            "dbname": self.database,
            "user": self.user,
            "password": self.password,
            "application_name": "etl_pipeline",
            "connect_timeout": max(1, round(self.connect_timeout)),
            # server-side limits for this session, so no statement or lock wait runs unbounded, and a
            # session whose client vanished mid-transaction (its locks with it) ends on its own: idle,
            # by the idle timeout; waiting on a COPY's data (no timeout applies there), by the server's
            # keepalives and TCP user timeout on its end of the connection
            "options": " ".join(
                f"-c {name}={value}"
                for name, value in (
                    ("statement_timeout", int(self.statement_timeout * 1000)),
                    ("lock_timeout", int(self.lock_timeout * 1000)),
                    ("idle_in_transaction_session_timeout", int(self.idle_timeout * 1000)),
                    ("tcp_keepalives_idle", 60),
                    ("tcp_keepalives_interval", 10),
                    ("tcp_keepalives_count", 6),
                    ("tcp_user_timeout", int(self.stall_timeout * 1000)),
                )
            ),
            # a dead peer is noticed by TCP: keepalives on an idle connection, and data left
            # unacknowledged for the stall timeout closes it
            "keepalives": 1,
            "keepalives_idle": 60,
            "keepalives_interval": 10,
            "keepalives_count": 6,
            "tcp_user_timeout": int(self.stall_timeout * 1000),
        }
        if self.sslmode:
            kwargs["sslmode"] = self.sslmode
        if self.sslrootcert:
            kwargs["sslrootcert"] = self.sslrootcert
        return kwargs


@dataclass(frozen=True)
class Settings:
    source: MySQLSettings
    source_admin: MySQLSettings | None
    target: PostgresSettings
    environment: str
    config_dir: Path
    business_hours: BusinessHours = BusinessHours()

    @property
    def tables_yml(self) -> Path:
        return self.config_dir / "tables.yml"

    @property
    def overrides_yml(self) -> Path:
        return self.config_dir / "tables.overrides.yml"

    @property
    def reports_dir(self) -> Path:
        return self.config_dir / "reports"

    @property
    def backups_dir(self) -> Path:
        return self.config_dir / "backups"


def _port(key: str, raw: str | int) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"{key}={raw!r} is not a port number") from None
    if not 0 < port < 65536:
        raise ConfigError(f"{key}={port} is outside 1-65535")
    return port


def _seconds(env: Mapping[str, str], key: str, default: float) -> float:
    """A positive number of seconds from `key`, or the default when it is unset."""
    raw = env.get(key)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{key}={raw!r} is not a number of seconds") from None
    if not value > 0:
        raise ConfigError(f"{key}={raw!r} must be more than 0 seconds")
    return value


def _count(env: Mapping[str, str], key: str, default: int, minimum: int = 1) -> int:
    raw = env.get(key)
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < minimum:
        raise ConfigError(f"{key}={raw!r} is not a whole number of at least {minimum}")
    return int(raw)


def _ssl_mode(key: str, raw: str | None) -> str | None:
    if raw and raw.upper() not in SOURCE_SSL_MODES:
        raise ConfigError(f"{key}={raw!r} is not one of {', '.join(SOURCE_SSL_MODES)}")
    return raw.upper() if raw else None


@dataclass(frozen=True)
class _UrlKind:
    """What a connection URL setting may say: its schemes, the drivers it may name after `+` (URL name ->
    setting value) and its query parameters (URL name -> the separate variable's suffix)."""

    schemes: tuple[str, ...]
    drivers: dict[str, str]
    query: dict[str, str]


_SOURCE_URL = _UrlKind(
    ("mysql", "mariadb"),
    {"mysqldb": "mysqlclient", "mysqlclient": "mysqlclient", "pymysql": "pymysql"},
    {"ssl_mode": "SSL_MODE", "ssl_ca": "SSL_CA"},
)
_TARGET_URL = _UrlKind(
    ("postgresql", "postgres"), {"psycopg2": "psycopg2"}, {"sslmode": "SSLMODE", "sslrootcert": "SSLROOTCERT"}
)


def _url_parts(env: Mapping[str, str], key: str, kind: _UrlKind) -> dict[str, str]:
    """The settings a connection URL gives, as {PART: value} with PART named like the separate variables'
    suffixes (HOST, PORT, DATABASE, USER, PASSWORD, DRIVER and the query's); {} when `key` is not set."""
    raw = env.get(key)
    if not raw:
        return {}
    # lazy: importing SQLAlchemy costs every command a second, and most set no URL
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigError(f"{key} is not a URL like {kind.schemes[0]}://user@host:port/database") from None
    if "@" in (url.host or ""):
        raise ConfigError(f"{key}: more than one '@'; percent-encode an '@' in the password as %40")
    scheme, _, driver = url.drivername.partition("+")
    if scheme not in kind.schemes:
        raise ConfigError(f"{key}: scheme {scheme!r} is not one of {', '.join(kind.schemes)}")
    if driver and driver not in kind.drivers:
        raise ConfigError(f"{key}: driver {driver!r} is not one of {', '.join(kind.drivers)}")
    register_secret(url.password)  # decoded, and as written (percent-encoded) in case it is echoed so
    register_secret(urlsplit(raw).password)
    parts = {
        "HOST": url.host,
        "PORT": str(url.port) if url.port else None,
        "DATABASE": url.database,
        "USER": url.username,
        "PASSWORD": url.password,
        "DRIVER": kind.drivers.get(driver),
    }
    for name, value in url.query.items():
        if name not in kind.query:
            raise ConfigError(f"{key}: unknown parameter {name!r} (known: {', '.join(kind.query)})")
        if not isinstance(value, str):
            raise ConfigError(f"{key}: parameter {name!r} is given more than once")
        parts[kind.query[name]] = value
    return {k: v for k, v in parts.items() if v}


def _part(
    env: Mapping[str, str], url_parts: dict[str, str], prefix: str, name: str, default: str = ""
) -> str:
    """A URL's part, else the separate variable (PREFIX_NAME), else the default."""
    return url_parts.get(name) or env.get(f"{prefix}_{name}") or default


def _origin(url_parts: dict[str, str], label: str, prefix: str, name: str) -> str:
    """The setting a part came from, for error messages (`label`: the URL or connection that gave them)."""
    return f"{label}'s {name.lower()}" if name in url_parts else f"{prefix}_{name}"


def _connection_or_url(
    env: Mapping[str, str], conn: ConnectionFields | None, prefix: str, kind: _UrlKind
) -> tuple[dict[str, str], str]:
    """The parts the Airflow connection gives, else those of PREFIX_URL, with a label for messages.
    Both at once must agree on every part the URL names: which one wins would be a guess."""
    url_key = f"{prefix}_URL"
    url_parts = _url_parts(env, url_key, kind)
    if conn is None:
        return url_parts, url_key
    parts = source_parts(conn) if prefix == "SOURCE" else target_parts(conn)
    for name, value in url_parts.items():
        if parts.get(name) != value:
            raise ConfigError(
                f"{url_key} and {conn.origin} disagree on the {name.lower()}: keep one "
                f"(the connection {conn.conn_id} is what Airflow and the CLI both read)"
            )
    return parts, conn.origin


def _source_driver(env: Mapping[str, str], url_parts: dict[str, str], label: str) -> SourceDriver:
    setting, from_url = env.get("SOURCE_DRIVER") or None, url_parts.get("DRIVER")
    for key, value in (("SOURCE_DRIVER", setting), (f"{label}'s driver", from_url)):
        if value and value not in SOURCE_DRIVERS:
            raise ConfigError(f"{key}={value!r} is not one of {', '.join(SOURCE_DRIVERS)}")
    if setting and from_url and setting != from_url:
        raise ConfigError(f"SOURCE_DRIVER={setting} disagrees with {label}'s driver ({from_url})")
    return cast(SourceDriver, setting or from_url or "mysqlclient")


def _source(env: Mapping[str, str], conn: ConnectionFields | None = None) -> MySQLSettings:
    parts, label = _connection_or_url(env, conn, "SOURCE", _SOURCE_URL)
    return MySQLSettings(
        host=_part(env, parts, "SOURCE", "HOST", "127.0.0.1"),
        port=_port(_origin(parts, label, "SOURCE", "PORT"), _part(env, parts, "SOURCE", "PORT", "3306")),
        database=_part(env, parts, "SOURCE", "DATABASE", "opendental"),
        user=_part(env, parts, "SOURCE", "USER", "etl_reader"),
        password=_part(env, parts, "SOURCE", "PASSWORD"),
        ssl_ca=_part(env, parts, "SOURCE", "SSL_CA") or None,
        ssl_mode=_ssl_mode(
            _origin(parts, label, "SOURCE", "SSL_MODE"), _part(env, parts, "SOURCE", "SSL_MODE") or None
        ),
        driver=_source_driver(env, parts, label),
        connect_timeout=_seconds(env, "SOURCE_CONNECT_TIMEOUT", 10.0),
        read_timeout=_seconds(env, "SOURCE_READ_TIMEOUT", 600.0),
        write_timeout=_seconds(env, "SOURCE_WRITE_TIMEOUT", 60.0),
        chunk_rows=_count(env, "SOURCE_CHUNK_ROWS", 50_000, minimum=0),
        chunk_seconds=_seconds(env, "SOURCE_CHUNK_SECONDS", 0.2),
        defined_by=label if parts else "SOURCE_* settings",
    )


def _target(env: Mapping[str, str], conn: ConnectionFields | None = None) -> PostgresSettings:
    parts, label = _connection_or_url(env, conn, "TARGET", _TARGET_URL)
    return PostgresSettings(
        host=_part(env, parts, "TARGET", "HOST", "127.0.0.1"),
        port=_port(_origin(parts, label, "TARGET", "PORT"), _part(env, parts, "TARGET", "PORT", "5432")),
        database=_part(env, parts, "TARGET", "DATABASE", "analytics"),
        user=_part(env, parts, "TARGET", "USER", "etl"),
        password=_part(env, parts, "TARGET", "PASSWORD"),
        sslmode=_part(env, parts, "TARGET", "SSLMODE") or None,
        sslrootcert=_part(env, parts, "TARGET", "SSLROOTCERT") or None,
        connect_timeout=_seconds(env, "TARGET_CONNECT_TIMEOUT", 10.0),
        statement_timeout=_seconds(env, "TARGET_STATEMENT_TIMEOUT", 6 * 3600.0),
        lock_timeout=_seconds(env, "TARGET_LOCK_TIMEOUT", 300.0),
        idle_timeout=_seconds(env, "TARGET_IDLE_TIMEOUT", 1800.0),
        stall_timeout=_seconds(env, "TARGET_STALL_TIMEOUT", 300.0),
        table_lock_wait=_seconds(env, "TARGET_TABLE_LOCK_WAIT", 600.0),
        defined_by=label if parts else "TARGET_* settings",
    )


def load_settings(
    connection: ConnectionLookup | None = None, environment: Mapping[str, str] | None = None
) -> Settings:
    """Read the settings from the Airflow connections, the environment and the `.env` file.

    `connection` finds a connection by id: inside a task, `connections.airflow_connection` (Airflow's
    lookup); by default the AIRFLOW_CONN_* variables of the environment and `.env`. `environment`
    replaces the process environment and `.env` (a component's environment being assembled)."""
    env = dict(environment) if environment is not None else _environment()
    for key in ("SOURCE_PASSWORD", "SOURCE_ADMIN_PASSWORD", "TARGET_PASSWORD"):
        register_secret(env.get(key))
    lookup = connection or (lambda conn_id: connection_from_env(env, conn_id))
    source = _source(env, lookup(SOURCE_CONN_ID))
    source_admin = None
    if env.get("SOURCE_ADMIN_USER"):
        source_admin = replace(
            source, user=env["SOURCE_ADMIN_USER"], password=env.get("SOURCE_ADMIN_PASSWORD", "")
        )
    config_dir = Path(env.get("ETL_CONFIG_DIR") or PROJECT_ROOT / "etl_pipeline" / "config")
    etl_environment = env.get("ETL_ENVIRONMENT", "local")
    return Settings(
        source=source,
        source_admin=source_admin,
        target=_target(env, lookup(WAREHOUSE_CONN_ID)),
        environment=etl_environment,
        config_dir=config_dir,
        business_hours=business_hours_from_env(env, etl_environment),
    )


def task_settings() -> Settings:
    """Inside an Airflow task: the settings, the source and the warehouse as Airflow resolves their
    connections (AIRFLOW_CONN_*, a secrets backend, the metadata database)."""
    return load_settings(connection=airflow_connection)
