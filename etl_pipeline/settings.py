"""Connection settings and paths: the one place they are read.

Values come from environment variables, falling back to a `.env` file (the local stack writes one at
the project root; point `ETL_ENV_FILE` elsewhere for a clinic's servers). Real environment variables
win over the file. Passwords are registered with `etl_pipeline.redact` as soon as they are read and
never appear in a repr.

Source (OpenDental, MySQL/MariaDB, read-only user):
    SOURCE_HOST, SOURCE_PORT, SOURCE_DATABASE, SOURCE_USER, SOURCE_PASSWORD,
    SOURCE_SSL_CA, SOURCE_SSL_MODE (DISABLED | PREFERRED | REQUIRED | VERIFY_CA | VERIFY_IDENTITY)
    SOURCE_ADMIN_USER, SOURCE_ADMIN_PASSWORD   (synthetic generator and tests only)
Target (analytics, PostgreSQL):
    TARGET_HOST, TARGET_PORT, TARGET_DATABASE, TARGET_USER, TARGET_PASSWORD, TARGET_SSLMODE,
    TARGET_SSLROOTCERT (CA file for sslmode verify-ca / verify-full)
Other:
    ETL_ENVIRONMENT (local | staging | prod), ETL_CONFIG_DIR (tables.yml, overrides, reports)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from etl_pipeline.errors import ConfigError
from etl_pipeline.redact import register_secret

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


@dataclass(frozen=True)
class MySQLSettings:
    host: str
    port: int
    database: str
    user: str
    password: str = field(repr=False)
    ssl_ca: str | None = None
    ssl_mode: str | None = None

    @property
    def display(self) -> str:
        """Where this points, for messages: never includes the password."""
        return f"mysql://{self.user}@{self.host}:{self.port}/{self.database}"

    def connect_kwargs(self) -> dict:
        """Keyword arguments for mysqlclient (MySQLdb).

        The mode goes through as `ssl_mode` (an empty `ssl={}` alone would be falsy and silently connect
        in plain text); the CA as `ssl={"ca": ...}`, which on its own turns TLS on.
        """
        kwargs: dict = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "database": self.database,
            "charset": "utf8mb4",
        }
        if self.ssl_mode:
            kwargs["ssl_mode"] = self.ssl_mode.upper()
        if self.ssl_ca:
            kwargs["ssl"] = {"ca": self.ssl_ca}
        return kwargs


@dataclass(frozen=True)
class PostgresSettings:
    host: str
    port: int
    database: str
    user: str
    password: str = field(repr=False)
    sslmode: str | None = None
    sslrootcert: str | None = None

    @property
    def display(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"

    def connect_kwargs(self) -> dict:
        kwargs: dict = {
            "host": self.host,
            "port": self.port,
            "dbname": self.database,
            "user": self.user,
            "password": self.password,
            "application_name": "etl_pipeline",
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


def _port(env: dict[str, str], key: str, default: int) -> int:
    raw = env.get(key, str(default))
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"{key}={raw!r} is not a port number") from None
    if not 0 < port < 65536:
        raise ConfigError(f"{key}={port} is outside 1-65535")
    return port


SOURCE_SSL_MODES = ("DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY")


def _ssl_mode(env: dict[str, str]) -> str | None:
    raw = env.get("SOURCE_SSL_MODE") or None
    if raw and raw.upper() not in SOURCE_SSL_MODES:
        raise ConfigError(f"SOURCE_SSL_MODE={raw!r} is not one of {', '.join(SOURCE_SSL_MODES)}")
    return raw.upper() if raw else None


def load_settings() -> Settings:
    """Read the settings from the environment and the `.env` file."""
    env = _environment()
    for key in ("SOURCE_PASSWORD", "SOURCE_ADMIN_PASSWORD", "TARGET_PASSWORD"):
        register_secret(env.get(key))

    source = MySQLSettings(
        host=env.get("SOURCE_HOST", "127.0.0.1"),
        port=_port(env, "SOURCE_PORT", 3306),
        database=env.get("SOURCE_DATABASE", "opendental"),
        user=env.get("SOURCE_USER", "etl_reader"),
        password=env.get("SOURCE_PASSWORD", ""),
        ssl_ca=env.get("SOURCE_SSL_CA") or None,
        ssl_mode=_ssl_mode(env),
    )
    source_admin = None
    if env.get("SOURCE_ADMIN_USER"):
        source_admin = replace(
            source, user=env["SOURCE_ADMIN_USER"], password=env.get("SOURCE_ADMIN_PASSWORD", "")
        )
    target = PostgresSettings(
        host=env.get("TARGET_HOST", "127.0.0.1"),
        port=_port(env, "TARGET_PORT", 5432),
        database=env.get("TARGET_DATABASE", "analytics"),
        user=env.get("TARGET_USER", "etl"),
        password=env.get("TARGET_PASSWORD", ""),
        sslmode=env.get("TARGET_SSLMODE") or None,
        sslrootcert=env.get("TARGET_SSLROOTCERT") or None,
    )
    config_dir = Path(env.get("ETL_CONFIG_DIR") or PROJECT_ROOT / "etl_pipeline" / "config")
    return Settings(
        source=source,
        source_admin=source_admin,
        target=target,
        environment=env.get("ETL_ENVIRONMENT", "local"),
        config_dir=config_dir,
    )
