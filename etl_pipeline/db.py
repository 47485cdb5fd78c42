"""Opening connections to the source (MySQL/MariaDB) and the target (PostgreSQL).

The source has two drivers behind one interface, chosen by `SOURCE_DRIVER` (see `settings`):
mysqlclient (`MySQLdb`, C, the default and the faster) and PyMySQL (pure Python, for hosts where
mysqlclient cannot be built). Both give DB-API connections whose cursors are used the same way;
`connect_source(cfg, streaming=True)` gives unbuffered (server-side) cursors with either, and
callers catch `SOURCE_ERRORS` / `SOURCE_OPERATIONAL_ERRORS` instead of naming a driver's classes.
A driver that is not installed is simply not offered.

Every source session runs with `time_zone = '+00:00'` (timestamp columns come back in UTC) and
`sql_mode = ''` (OpenDental's own setting, so zero dates read back as they are stored). Failures
become `ConnectionFailed` with host, port and user named and the password never shown.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

import psycopg2

from etl_pipeline.errors import ConfigError, ConnectionFailed, EtlError
from etl_pipeline.redact import redact
from etl_pipeline.settings import SOURCE_DRIVERS, MySQLSettings, PostgresSettings

try:
    import MySQLdb
    import MySQLdb.cursors
except ImportError:  # mysqlclient could not be built here: PyMySQL stands in
    MySQLdb = None
try:
    import pymysql
    import pymysql.converters
    import pymysql.cursors
    from pymysql.constants import FIELD_TYPE
except ImportError:
    pymysql = None  # type: ignore[assignment]

SOURCE_SESSION_SQL = ("SET time_zone = '+00:00'", "SET SESSION sql_mode = ''")
TLS_MODES = ("REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY")


class SourceCursor(Protocol):
    """What the code uses of a source cursor (mysqlclient's and PyMySQL's alike)."""

    description: Any

    def execute(self, query: str, args: Any = ...) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchmany(self, size: int = ...) -> Any: ...
    def fetchall(self) -> Any: ...
    def close(self) -> None: ...


class SourceConnection(Protocol):
    """What the code uses of a source connection (mysqlclient's and PyMySQL's alike)."""

    def cursor(self) -> SourceCursor: ...
    def commit(self) -> None: ...
    def close(self) -> None: ...
    def thread_id(self) -> int: ...


@dataclass(frozen=True)
class SourceDriver:
    name: str
    module: ModuleType
    streaming_cursor: type
    connect_kwargs: Callable[[MySQLSettings], dict[str, Any]]


def mysqlclient_kwargs(cfg: MySQLSettings) -> dict[str, Any]:
    """Keyword arguments for mysqlclient (MySQLdb).

    The mode goes through as `ssl_mode` (an empty `ssl={}` alone would be falsy and silently connect
    in plain text); the CA as `ssl={"ca": ...}`, which on its own turns TLS on.
    """
    kwargs: dict[str, Any] = {**_common_kwargs(cfg)}
    if cfg.ssl_mode:
        kwargs["ssl_mode"] = cfg.ssl_mode.upper()
    if cfg.ssl_ca:
        kwargs["ssl"] = {"ca": cfg.ssl_ca}
    return kwargs


def pymysql_kwargs(cfg: MySQLSettings) -> dict[str, Any]:
    """Keyword arguments for PyMySQL: the same modes as mysqlclient's, as an `ssl.SSLContext`.

    REQUIRED encrypts without checking the certificate; a CA file (alone or with VERIFY_CA) checks the
    chain; VERIFY_IDENTITY also the host name. DISABLED turns TLS off; unset or PREFERRED is PyMySQL's
    own default (TLS when the server offers it). Zero dates read as None, as mysqlclient reads them.
    """
    kwargs: dict[str, Any] = {**_common_kwargs(cfg), "conv": _pymysql_conversions()}
    mode = (cfg.ssl_mode or "").upper()
    if mode == "DISABLED":
        kwargs["ssl_disabled"] = True
    elif mode in TLS_MODES or cfg.ssl_ca:
        kwargs["ssl"] = _tls_context(mode, cfg.ssl_ca)
    return kwargs


def _common_kwargs(cfg: MySQLSettings) -> dict[str, Any]:
    return {
        "host": cfg.host,
        "port": cfg.port,
        "user": cfg.user,
        "password": cfg.password,
        "database": cfg.database,
        "charset": "utf8mb4",
    }


def _tls_context(mode: str, ca: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca)
    context.check_hostname = mode == "VERIFY_IDENTITY"
    verify = mode in ("VERIFY_CA", "VERIFY_IDENTITY") or (ca is not None and mode != "REQUIRED")
    context.verify_mode = ssl.CERT_REQUIRED if verify else ssl.CERT_NONE
    return context


def _none_unless(convert: Callable[[Any], Any], kind: type) -> Callable[[Any], Any]:
    def decode(value: Any) -> Any:
        decoded = convert(value)
        return decoded if isinstance(decoded, kind) else None  # PyMySQL returns bad dates as text

    return decode


def _pymysql_conversions() -> dict[Any, Any]:
    conv = dict(pymysql.converters.conversions)
    datetime_or_none = _none_unless(pymysql.converters.convert_datetime, dt.datetime)
    conv[FIELD_TYPE.DATETIME] = conv[FIELD_TYPE.TIMESTAMP] = datetime_or_none
    conv[FIELD_TYPE.DATE] = _none_unless(pymysql.converters.convert_date, dt.date)
    return conv


def _drivers() -> dict[str, SourceDriver]:
    found = {}
    if MySQLdb is not None:
        found["mysqlclient"] = SourceDriver(
            "mysqlclient", MySQLdb, MySQLdb.cursors.SSCursor, mysqlclient_kwargs
        )
    if pymysql is not None:
        found["pymysql"] = SourceDriver("pymysql", pymysql, pymysql.cursors.SSCursor, pymysql_kwargs)
    return found


DRIVERS = _drivers()
AVAILABLE_DRIVERS = tuple(name for name in SOURCE_DRIVERS if name in DRIVERS)
# for `except` clauses: any error of any installed source driver, and their "server said no" kind
SOURCE_ERRORS: tuple[type[Exception], ...] = tuple(d.module.Error for d in DRIVERS.values())
SOURCE_OPERATIONAL_ERRORS: tuple[type[Exception], ...] = tuple(
    d.module.OperationalError for d in DRIVERS.values()
)


def source_driver(cfg: MySQLSettings) -> SourceDriver:
    try:
        return DRIVERS[cfg.driver]
    except KeyError:
        raise ConfigError(
            f"SOURCE_DRIVER={cfg.driver} is not installed here; "
            f"installed: {', '.join(AVAILABLE_DRIVERS) or 'none'}"
        ) from None


def source_error_code(exc: BaseException) -> int | None:
    """The server's (or client library's) error number of a source driver error, if it has one."""
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def connect_source(
    cfg: MySQLSettings, *, streaming: bool = False, connect_timeout: int = 10
) -> SourceConnection:
    """A source connection with `cfg.driver`. `streaming=True` gives unbuffered (server-side) cursors."""
    driver = source_driver(cfg)
    kwargs = driver.connect_kwargs(cfg)
    kwargs["connect_timeout"] = connect_timeout
    if streaming:
        kwargs["cursorclass"] = driver.streaming_cursor
    try:
        conn = driver.module.connect(**kwargs)
    except SOURCE_ERRORS as exc:
        raise ConnectionFailed(f"cannot connect to source {cfg.display}: {source_reason(exc)}") from None
    _require_tls(conn, cfg)
    cur = conn.cursor()
    for statement in SOURCE_SESSION_SQL:
        cur.execute(statement)
    cur.close()
    return conn


def source_tls(conn: SourceConnection) -> tuple[str, str] | None:
    """(cipher, protocol version) of the session, or None for plain text."""
    cur = conn.cursor()
    cur.execute("SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_cipher', 'Ssl_version')")
    status = {_text(name): _text(value) for name, value in cur.fetchall()}
    cur.close()
    cipher = status.get("Ssl_cipher")
    return (cipher, status.get("Ssl_version", "")) if cipher else None


def _require_tls(conn: SourceConnection, cfg: MySQLSettings) -> None:
    """Refuse a plain-text session when TLS was asked for.

    With MariaDB Connector/C, mysqlclient's `ssl_mode=REQUIRED` (and `ssl={"ca": ...}`) silently fall back
    to plain text when the server has no TLS (only VERIFY_CA/VERIFY_IDENTITY refuse), so check the session.
    """
    mode = (cfg.ssl_mode or "").upper()
    if mode not in TLS_MODES and not cfg.ssl_ca:
        return
    if source_tls(conn) is None:
        conn.close()
        raise ConnectionFailed(
            f"cannot connect to source {cfg.display}: TLS is required "
            f"(SOURCE_SSL_MODE={mode or 'unset'}, SOURCE_SSL_CA={'set' if cfg.ssl_ca else 'unset'}) "
            "but the server does not encrypt the session"
        )


def connect_target(
    cfg: PostgresSettings, *, connect_timeout: int = 10, autocommit: bool = False
) -> psycopg2.extensions.connection:
    """A psycopg2 connection to the analytics database."""
    try:
        conn = psycopg2.connect(connect_timeout=connect_timeout, **cfg.connect_kwargs())
    except psycopg2.Error as exc:
        reason = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        raise ConnectionFailed(f"cannot connect to target {cfg.display}: {reason}") from None
    conn.autocommit = autocommit
    return conn


def fetch_value(cur: psycopg2.extensions.cursor) -> Any:
    """The single value of a query that returns one row (an aggregate, a lookup by key)."""
    row = cur.fetchone()
    if row is None:
        raise EtlError("expected one row from the target, got none")
    return row[0]


def source_reason(exc: BaseException) -> str:
    """A source driver error as `(code) message`, secrets masked."""
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    if len(args) >= 2:
        return redact(f"({args[0]}) {args[1]}")
    return redact(str(exc) or type(exc).__name__)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, (bytes, bytearray)) else str(value)
