"""Opening connections to the source (MySQL/MariaDB) and the target (PostgreSQL).

Every source session runs with `time_zone = '+00:00'` (timestamp columns come back in UTC) and
`sql_mode = ''` (OpenDental's own setting, so zero dates read back as they are stored). Failures
become `ConnectionFailed` with host, port and user named and the password never shown.
"""

from __future__ import annotations

import MySQLdb
import MySQLdb.cursors
import psycopg2

from etl_pipeline.errors import ConnectionFailed
from etl_pipeline.redact import redact
from etl_pipeline.settings import MySQLSettings, PostgresSettings

SOURCE_SESSION_SQL = ("SET time_zone = '+00:00'", "SET SESSION sql_mode = ''")


def connect_source(cfg: MySQLSettings, *, streaming: bool = False, connect_timeout: int = 10):
    """A mysqlclient connection. `streaming=True` gives unbuffered (server-side) cursors."""
    kwargs = cfg.connect_kwargs()
    kwargs["connect_timeout"] = connect_timeout
    if streaming:
        kwargs["cursorclass"] = MySQLdb.cursors.SSCursor
    try:
        conn = MySQLdb.connect(**kwargs)
    except MySQLdb.Error as exc:
        raise ConnectionFailed(f"cannot connect to source {cfg.display}: {_mysql_reason(exc)}") from None
    _require_tls(conn, cfg)
    cur = conn.cursor()
    for statement in SOURCE_SESSION_SQL:
        cur.execute(statement)
    cur.close()
    return conn


def _require_tls(conn, cfg: MySQLSettings) -> None:
    """Refuse a plain-text session when TLS was asked for.

    With MariaDB Connector/C, mysqlclient's `ssl_mode=REQUIRED` (and `ssl={"ca": ...}`) silently fall back
    to plain text when the server has no TLS (only VERIFY_CA/VERIFY_IDENTITY refuse), so check the session.
    """
    mode = (cfg.ssl_mode or "").upper()
    if mode not in ("REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY") and not cfg.ssl_ca:
        return
    cur = conn.cursor()
    cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
    row = cur.fetchone()
    cur.close()
    if not row or not row[1]:
        conn.close()
        raise ConnectionFailed(
            f"cannot connect to source {cfg.display}: TLS is required "
            f"(SOURCE_SSL_MODE={mode or 'unset'}, SOURCE_SSL_CA={'set' if cfg.ssl_ca else 'unset'}) "
            "but the server does not encrypt the session"
        )


def connect_target(cfg: PostgresSettings, *, connect_timeout: int = 10, autocommit: bool = False):
    """A psycopg2 connection to the analytics database."""
    try:
        conn = psycopg2.connect(connect_timeout=connect_timeout, **cfg.connect_kwargs())
    except psycopg2.Error as exc:
        reason = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        raise ConnectionFailed(f"cannot connect to target {cfg.display}: {reason}") from None
    conn.autocommit = autocommit
    return conn


def _mysql_reason(exc: MySQLdb.Error) -> str:
    args = getattr(exc, "args", ())
    if len(args) >= 2:
        return redact(f"({args[0]}) {args[1]}")
    return redact(str(exc))
