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

Neither end can make a load wait forever. Source sessions have the driver's read and write timeouts
(SOURCE_READ_TIMEOUT, SOURCE_WRITE_TIMEOUT) and TCP keepalives. Target sessions have
statement_timeout, lock_timeout and idle_in_transaction_session_timeout set by the server and
keepalives (see `settings.PostgresSettings.connect_kwargs`); and since an answer the server sends can
still be lost on the way (a stalled proxy or firewall keeps the TCP connection open), every statement,
COPY and commit on a target connection is watched from the client too: a statement not answered
within statement_timeout + TARGET_STALL_TIMEOUT, or a COPY PostgreSQL takes no data for
TARGET_STALL_TIMEOUT, has its socket shut down and raises `TargetStalled`. A target error is rewritten
by `redact.redact_error` before it leaves the cursor, so no log or traceback quotes a row value.
"""

from __future__ import annotations

import datetime as dt
import math
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import IO, Any, Protocol

import psycopg2
import psycopg2.extensions

from etl_pipeline.errors import ConfigError, ConnectionFailed, EtlError
from etl_pipeline.redact import redact, redact_error
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
        # whole seconds: mysqlclient takes unsigned ints
        "read_timeout": _whole_seconds(cfg.read_timeout),
        "write_timeout": _whole_seconds(cfg.write_timeout),
    }


def _whole_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds))


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
    cfg: MySQLSettings, *, streaming: bool = False, connect_timeout: float | None = None
) -> SourceConnection:
    """A source connection with `cfg.driver`. `streaming=True` gives unbuffered (server-side) cursors.
    `connect_timeout` (seconds) defaults to SOURCE_CONNECT_TIMEOUT; it also bounds the server's greeting."""
    driver = source_driver(cfg)
    kwargs = driver.connect_kwargs(cfg)
    limit = _whole_seconds(cfg.connect_timeout if connect_timeout is None else connect_timeout)
    kwargs["connect_timeout"] = limit
    if driver.name == "pymysql":  # PyMySQL reads the greeting with its read timeout: bound it like a connect
        kwargs["read_timeout"] = min(kwargs["read_timeout"], limit)
    if streaming:
        kwargs["cursorclass"] = driver.streaming_cursor
    try:
        conn = driver.module.connect(**kwargs)
    except SOURCE_ERRORS as exc:
        raise ConnectionFailed(f"cannot connect to source {cfg.display}: {source_reason(exc)}") from None
    if driver.name == "pymysql":
        conn._read_timeout = _whole_seconds(cfg.read_timeout)
    _keepalive(_source_socket(conn))
    _require_tls(conn, cfg)
    cur = conn.cursor()
    for statement in SOURCE_SESSION_SQL:
        cur.execute(statement)
    cur.close()
    return conn


def _source_socket(conn: Any) -> int | None:
    """The file descriptor of a source connection's socket (mysqlclient has fileno(), PyMySQL a socket)."""
    if hasattr(conn, "fileno"):
        return int(conn.fileno())
    sock = getattr(conn, "_sock", None)
    return sock.fileno() if sock is not None else None


def _keepalive(fd: int | None) -> None:
    """TCP keepalives on a socket: a peer that vanished is noticed in about two minutes of silence."""
    if fd is None or fd < 0:
        return
    sock = socket.socket(fileno=fd)
    try:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 6)):
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
    finally:
        sock.detach()  # the driver owns the descriptor


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
    cfg: PostgresSettings, *, connect_timeout: float | None = None, autocommit: bool = False
) -> psycopg2.extensions.connection:
    """A psycopg2 connection to the analytics database, its statements watched (see the module)."""
    kwargs = cfg.connect_kwargs()
    if connect_timeout is not None:
        kwargs["connect_timeout"] = max(1, round(connect_timeout))
    try:
        conn = psycopg2.connect(connection_factory=TargetConnection, cursor_factory=TargetCursor, **kwargs)
    except psycopg2.Error as exc:
        reason = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        raise ConnectionFailed(f"cannot connect to target {cfg.display}: {reason}") from None
    conn.settings = cfg
    conn.autocommit = autocommit
    return conn


class TargetStalled(EtlError):
    """The target stopped answering (or stopped taking a COPY's data); its connection was closed."""


class TargetConnection(psycopg2.extensions.connection):
    """A target connection whose statements, COPYs and commits are watched (see `_watched`).

    `loading`: the table a load holds this connection for (set by `load.table_lock`), named in errors."""

    settings: PostgresSettings | None = None
    loading: str | None = None

    def commit(self) -> None:
        with _watched(self, "to a COMMIT"):
            super().commit()

    def rollback(self) -> None:
        with _watched(self, "to a ROLLBACK"):
            super().rollback()


class TargetCursor(psycopg2.extensions.cursor):
    """A cursor of a `TargetConnection`: each call watched, each error stripped of row values."""

    def execute(self, query: Any, vars: Any = None) -> None:
        with _watched(self.connection, "to a statement"):
            super().execute(query, vars)

    def executemany(self, query: Any, vars_list: Any) -> None:
        with _watched(self.connection, "to a statement"):
            super().executemany(query, vars_list)

    def copy_expert(self, sql: Any, file: Any, size: int = 8192) -> None:
        table = getattr(file, "table", None)
        with _watched(self.connection, "during a COPY", table=table) as watch:
            if hasattr(file, "read"):
                file = _WatchedFile(file, watch)
            super().copy_expert(sql, file, size)


@dataclass
class _Watch:
    """One call on a target connection, and when it is declared hung."""

    conn: Any
    what: str
    limit: float  # seconds the current wait may last
    deadline: float
    table: str | None = None
    fired: bool = False
    waited: float = 0.0  # how long it had waited when it fired
    reader_error: BaseException | None = None  # what a COPY's data source raised
    since: float = field(default_factory=time.monotonic)  # the last progress (the call's start, a COPY chunk)

    def extend(self, seconds: float) -> None:
        self.since = time.monotonic()
        self.limit, self.deadline = seconds, self.since + seconds

    def fire(self) -> None:
        """Shut the socket down: the call blocked in libpq returns with an error at once."""
        self.fired, self.waited = True, self.limit
        try:
            sock = socket.socket(fileno=self.conn.fileno())
        except (OSError, psycopg2.Error):
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        finally:
            sock.detach()


class _Watchdog:
    """One daemon thread checking the watched calls of every target connection a few times a second."""

    def __init__(self) -> None:
        self._by_id: dict[int, _Watch] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, watch: _Watch) -> None:
        with self._lock:
            self._by_id[id(watch)] = watch
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="target-watchdog")
                self._thread.start()

    def remove(self, watch: _Watch) -> None:
        with self._lock:
            self._by_id.pop(id(watch), None)

    def _run(self) -> None:
        while True:
            time.sleep(0.1)
            now = time.monotonic()
            with self._lock:
                due = [w for w in self._by_id.values() if not w.fired and w.deadline <= now]
            for watch in due:
                watch.fire()


_WATCHDOG = _Watchdog()


@contextmanager
def _watched(conn: Any, what: str, table: str | None = None) -> Iterator[_Watch]:
    """Run one call on `conn` under the watchdog; a psycopg2 error leaving it is redacted, and one
    caused by the watchdog becomes `TargetStalled`."""
    cfg: PostgresSettings | None = getattr(conn, "settings", None)
    limit = math.inf if cfg is None else cfg.statement_timeout + cfg.stall_timeout
    watch = _Watch(conn, what, limit, time.monotonic() + limit, table or getattr(conn, "loading", None))
    _WATCHDOG.add(watch)
    try:
        yield watch
    except psycopg2.Error as exc:
        if watch.fired or _timed_out(exc, watch, cfg):
            raise TargetStalled(_stalled_message(watch, cfg)) from None
        if watch.reader_error is not None:  # psycopg2 wraps what a COPY's read() raised: raise it itself
            raise watch.reader_error from None
        exc.args = (redact_error(exc),)
        raise
    finally:
        _WATCHDOG.remove(watch)


def _timed_out(exc: psycopg2.Error, watch: _Watch, cfg: PostgresSettings | None) -> bool:
    """The connection broke (no server report) after a stall timeout's silence: TCP's own user timeout
    (set to the stall timeout, see `settings`) closed it before the watchdog did."""
    if exc.pgcode is not None or cfg is None:
        return False
    silent = time.monotonic() - watch.since
    if silent < 0.9 * cfg.stall_timeout:
        return False
    watch.waited = round(silent, 1)
    return True


def _stalled_message(watch: _Watch, cfg: PostgresSettings | None) -> str:
    where = f"{watch.table}: " if watch.table else ""
    target = f"target {cfg.display}" if cfg is not None else "the target"
    return (
        f"{where}{target} hung: no answer for {watch.waited:g} s {watch.what} (TARGET_STALL_TIMEOUT"
        f"{', past TARGET_STATEMENT_TIMEOUT' if watch.what != 'during a COPY' else ''}); the connection "
        "was closed (its open transaction is lost). Check the network path to PostgreSQL, then re-run."
    )


@dataclass
class _WatchedFile:
    """The data of a COPY: while PostgreSQL is being sent a chunk (outside `read`), it must take it
    within the stall timeout; while `read` waits for the source, the source's own timeouts apply."""

    file: IO[bytes]
    watch: _Watch
    stall: float = field(init=False)

    def __post_init__(self) -> None:
        cfg: PostgresSettings | None = getattr(self.watch.conn, "settings", None)
        self.stall = math.inf if cfg is None else cfg.stall_timeout
        self._after_eof = self.watch.limit  # the server answers the finished COPY like a statement
        self.watch.extend(self.stall)

    def read(self, size: int = -1) -> bytes:
        self.watch.extend(math.inf)
        try:
            data = self.file.read(size)
        except BaseException as exc:
            self.watch.reader_error = exc
            raise
        self.watch.extend(self.stall if data else self._after_eof)
        return data

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)


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
