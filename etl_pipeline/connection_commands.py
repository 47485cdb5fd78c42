"""`test-connections`: can both ends be reached, is the session encrypted, and is the source user read-only?

For each end: reachable or the reason why not, the server version, the TLS cipher and protocol (or off),
and for the source the driver, the user and its grants (`SHOW GRANTS` with every `IDENTIFIED ...` part
removed: it holds the password hash). The source user is meant to hold SELECT and SHOW VIEW only; any
privilege that can change data or schema is reported as a warning. Exits 1 when either end fails.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from etl_pipeline.cli_support import Subparsers, add_command, add_json_flag, print_json
from etl_pipeline.db import SOURCE_ERRORS, connect_source, connect_target, source_reason, source_tls
from etl_pipeline.errors import EtlError
from etl_pipeline.redact import redact
from etl_pipeline.settings import MySQLSettings, PostgresSettings, load_settings

# privileges that let the user change data or schema (or the server), with or without a routine
WRITE_PRIVILEGES = frozenset(
    {
        "ALL",
        "ALL PRIVILEGES",
        "ALTER",
        "ALTER ROUTINE",
        "CREATE",
        "CREATE ROUTINE",
        "CREATE TABLESPACE",
        "CREATE USER",
        "CREATE VIEW",
        "DELETE",
        "DELETE HISTORY",
        "DROP",
        "EVENT",
        "EXECUTE",
        "FILE",
        "GRANT OPTION",
        "INDEX",
        "INSERT",
        "RELOAD",
        "SHUTDOWN",
        "SUPER",
        "TRIGGER",
        "UPDATE",
    }
)
_GRANT = re.compile(
    r"^GRANT\s+(?P<privileges>.+?)\s+ON\s+(?P<on>(?:(?:TABLE|FUNCTION|PROCEDURE|PACKAGE(?:\s+BODY)?)\s+)?\S+)\s+TO\s",
    re.IGNORECASE | re.DOTALL,
)
# `IDENTIFIED BY PASSWORD '*hash'`, `IDENTIFIED VIA plugin USING '...' OR ...`: up to the next clause
_QUOTED = r"'(?:[^'\\]|\\.|'')*'"
_IDENTIFIED = re.compile(
    rf"\s+IDENTIFIED\s+(?:{_QUOTED}|[^'])*?(?=\s+(?:REQUIRE|WITH|PASSWORD\s+EXPIRE|ACCOUNT)\b|\s*$)",
    re.IGNORECASE | re.DOTALL,
)


@dataclass
class EndCheck:
    """What was found at one end (counts and identifiers only)."""

    end: str  # source | target
    url: str
    defined_by: str  # the Airflow connection (AIRFLOW_CONN_*), the URL or the separate variables
    reachable: bool = False
    server_version: str | None = None
    tls: dict[str, str] | None = None  # {"cipher": ..., "version": ...}; None: plain text
    user: str | None = None
    driver: str | None = None
    grants: list[str] = field(default_factory=list)
    write_privileges: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.reachable and self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def register(subparsers: Subparsers) -> None:
    p = add_command(
        subparsers,
        "test-connections",
        help="check both databases: reachable, TLS, server versions, the source user's grants",
        description=__doc__.split("\n\n", 1)[1].strip(),
        examples="""
etl test-connections
etl test-connections --json | jq '.source.tls, .source.write_privileges'
AIRFLOW_CONN_OPENDENTAL_SOURCE='mysql://etl_reader:PASSWORD@od-server:3306/opendental?ssl_mode=REQUIRED' etl test-connections
SOURCE_SSL_MODE=VERIFY_CA SOURCE_SSL_CA=/certs/ca.pem etl test-connections
""",
    )
    add_json_flag(p)
    p.set_defaults(func=_test_connections)


def check_source(cfg: MySQLSettings) -> EndCheck:
    check = EndCheck("source", cfg.display, cfg.defined_by, driver=cfg.driver)
    try:
        conn = connect_source(cfg)
    except EtlError as exc:
        check.error = redact(exc)
        return check
    check.reachable = True
    try:
        cur = conn.cursor()
        cur.execute("SELECT VERSION(), CURRENT_USER()")
        check.server_version, check.user = (_text(v) for v in cur.fetchone())
        cur.execute("SHOW GRANTS")
        check.grants = [scrub_grant(_text(grant)) for (grant,) in cur.fetchall()]
        cur.close()
        tls = source_tls(conn)
        check.tls = {"cipher": tls[0], "version": tls[1]} if tls else None
        check.write_privileges = write_privileges(check.grants)
    except SOURCE_ERRORS as exc:
        check.error = f"connected, but the checks failed: {source_reason(exc)}"
    finally:
        conn.close()
    return check


def check_target(cfg: PostgresSettings) -> EndCheck:
    check = EndCheck("target", cfg.display, cfg.defined_by)
    try:
        conn = connect_target(cfg)
    except EtlError as exc:
        check.error = redact(exc)
        return check
    check.reachable = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_setting('server_version'), current_user")
            version, check.user = cur.fetchone()
            check.server_version = f"PostgreSQL {version}"
            cur.execute("SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            row = cur.fetchone()
            check.tls = {"cipher": row[2], "version": row[1]} if row and row[0] else None
    except Exception as exc:  # psycopg2.Error and kin: the class only, the message may name objects
        check.error = f"connected, but the checks failed: {type(exc).__name__}"
    finally:
        conn.close()
    return check


def scrub_grant(grant: str) -> str:
    """A `SHOW GRANTS` line without its `IDENTIFIED ...` part (the password hash or plugin string)."""
    return redact(_IDENTIFIED.sub("", grant))


def write_privileges(grants: list[str]) -> list[str]:
    """["INSERT on `opendental`.*", ...]: each privilege of `grants` that can write, with its object."""
    found = []
    for grant in grants:
        match = _GRANT.match(grant)
        if not match:
            continue  # a role granted to the user: its own grants are not listed here
        privileges = re.sub(r"\([^)]*\)", "", match["privileges"])  # column lists of column grants
        names = [" ".join(p.split()).upper() for p in privileges.split(",")]
        if re.search(r"\bWITH\b.*\bGRANT\s+OPTION\b", grant, re.IGNORECASE):
            names.append("GRANT OPTION")
        found += [f"{name} on {match['on']}" for name in names if name in WRITE_PRIVILEGES]
    return found


def _test_connections(args: argparse.Namespace) -> int:
    settings = load_settings()
    source, target = check_source(settings.source), check_target(settings.target)
    ok = source.ok and target.ok
    if args.json:
        print_json({"ok": ok, "source": source.to_dict(), "target": target.to_dict()})
        return 0 if ok else 1
    for check in (source, target):
        _print_check(check)
    if source.write_privileges:
        print(
            f"warning: the source user can write ({', '.join(source.write_privileges)}); "
            "the loader needs SELECT and SHOW VIEW only: use a read-only user"
        )
    return 0 if ok else 1


def _print_check(check: EndCheck) -> None:
    print(f"{check.end:<7} {'ok' if check.ok else 'FAILED':<7} {check.url}   ({check.defined_by})")
    if check.error:
        print(f"        error   {check.error}")
    if not check.reachable:
        return
    driver = f"   driver {check.driver}" if check.driver else ""
    print(f"        server  {check.server_version}   user {check.user}{driver}")
    tls = f"{check.tls['version']} {check.tls['cipher']}".strip() if check.tls else "off"
    print(f"        TLS     {tls}")
    for i, grant in enumerate(check.grants):
        print(f"        {'grants' if i == 0 else '':<7} {grant}")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, (bytes, bytearray)) else str(value)
