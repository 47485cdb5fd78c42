"""The source and the warehouse as Airflow Connections: their ids, how a definition is read, and what
each field and extra means to the settings.

    opendental_source     mysql://etl_reader:PASSWORD@host:3306/opendental?ssl_mode=VERIFY_IDENTITY&ssl_ca=/ca.pem
    analytics_warehouse   postgres://etl:PASSWORD@host:5432/analytics?sslmode=verify-full&sslrootcert=/ca.pem

Inside a task the definition comes from Airflow (`airflow_connection`: AIRFLOW_CONN_* variables, a
secrets backend or the metadata database, and Airflow masks the password in the task's log). Outside
Airflow (the CLI, `make demo`), `connection_from_env` reads the same AIRFLOW_CONN_* variable, from the
environment or the `.env` file, as a URI or as Airflow's JSON form. Either way `source_parts` and
`target_parts` turn it into the settings' parts (etl_pipeline.settings), and a connection that is not
defined leaves the SOURCE_*/TARGET_* settings in charge.

Extras: the source's `ssl_mode` (DISABLED ... VERIFY_IDENTITY), `ssl_ca` (or the MySQL provider's
`ssl: {"ca": ...}`) and `driver` (mysqlclient | pymysql); the warehouse's `sslmode` and `sslrootcert`.
Any other extra is refused by name, as a misspelled TLS option must not pass unnoticed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from etl_pipeline.errors import ConfigError
from etl_pipeline.redact import register_secret

if TYPE_CHECKING:
    from etl_pipeline.settings import MySQLSettings, PostgresSettings, Settings

SOURCE_CONN_ID = "opendental_source"
WAREHOUSE_CONN_ID = "analytics_warehouse"
SOURCE_CONN_TYPES = ("mysql", "mariadb")
WAREHOUSE_CONN_TYPES = ("postgres",)
_AIRFLOW_EXTRA_KEY = "__extra__"  # a URI query holding the whole extra as JSON (Airflow's convention)
_JSON_FIELDS = {"conn_type", "description", "host", "login", "password", "schema", "port", "extra"}


@dataclass(frozen=True)
class ConnectionFields:
    """One Airflow connection's fields; `origin` says where it was read, for messages."""

    conn_id: str
    origin: str
    conn_type: str
    host: str | None = None
    port: int | None = None
    schema: str | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    extra: Mapping[str, object] = field(default_factory=dict)


ConnectionLookup = Callable[[str], "ConnectionFields | None"]


def env_key(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def connection_from_env(env: Mapping[str, str], conn_id: str) -> ConnectionFields | None:
    """The connection AIRFLOW_CONN_<ID> defines in `env` (a URI or Airflow's JSON form), None if unset."""
    key = env_key(conn_id)
    raw = (env.get(key) or "").strip()
    if not raw:
        return None
    fields = _from_json(key, conn_id, raw) if raw.startswith("{") else _from_uri(key, conn_id, raw)
    register_secret(fields.password)
    return fields


def airflow_connection(conn_id: str) -> ConnectionFields | None:
    """Inside a task: the connection as Airflow resolves it (environment, secrets backend, metadata DB);
    None when no backend defines it."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = Connection.get(conn_id)
    except AirflowNotFoundException:
        return None
    register_secret(conn.password)
    return ConnectionFields(
        conn_id=conn_id,
        origin=f"Airflow connection {conn_id}",
        conn_type=conn.conn_type or "",
        host=conn.host or None,
        port=conn.port,
        schema=conn.schema or None,
        login=conn.login or None,
        password=conn.password or None,
        extra=conn.extra_dejson,
    )


def _from_uri(key: str, conn_id: str, raw: str) -> ConnectionFields:
    """Airflow's URI rules: scheme = conn type (postgresql -> postgres), path = schema, query = extras
    (or `__extra__` = the extras as JSON), every part percent-decoded."""
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise ConfigError(f"{key}: the port is not a number") from None
    if not parts.scheme or not parts.netloc:
        raise ConfigError(f"{key} is not a connection URI like mysql://user:password@host:3306/database")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    extra: Mapping[str, object] = query
    if _AIRFLOW_EXTRA_KEY in query:
        extra = _json_object(key, f"the {_AIRFLOW_EXTRA_KEY} parameter", query[_AIRFLOW_EXTRA_KEY])
    return ConnectionFields(
        conn_id=conn_id,
        origin=key,
        conn_type=_normalize_conn_type(parts.scheme),
        host=unquote(parts.hostname) if parts.hostname else None,
        port=port,
        schema=unquote(parts.path[1:]) or None,
        login=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        extra=extra,
    )


def _from_json(key: str, conn_id: str, raw: str) -> ConnectionFields:
    values = _json_object(key, "the value", raw)
    unknown = sorted(set(values) - _JSON_FIELDS)
    if unknown:
        raise ConfigError(f"{key}: unknown field {unknown[0]!r} (known: {', '.join(sorted(_JSON_FIELDS))})")
    if not values.get("conn_type"):
        raise ConfigError(f"{key}: conn_type is missing")
    extra = values.get("extra") or {}
    if isinstance(extra, str):
        extra = _json_object(key, "extra", extra)
    if not isinstance(extra, dict):
        raise ConfigError(f"{key}: extra is not a JSON object")
    raw_port = values.get("port")
    try:
        port = int(str(raw_port)) if raw_port not in (None, "") else None
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: port {raw_port!r} is not a number") from None
    return ConnectionFields(
        conn_id=conn_id,
        origin=key,
        conn_type=_normalize_conn_type(str(values["conn_type"])),
        host=values.get("host") or None,
        port=port,
        schema=values.get("schema") or None,
        login=values.get("login") or None,
        password=values.get("password") or None,
        extra=extra,
    )


def _json_object(key: str, what: str, raw: str) -> dict:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        # position only: the text itself may hold the password
        raise ConfigError(
            f"{key}: {what} is not valid JSON (line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: {what} is not a JSON object")
    return value


def _normalize_conn_type(conn_type: str) -> str:
    return "postgres" if conn_type == "postgresql" else conn_type.replace("-", "_")


# --- fields -> settings parts (named like the SOURCE_*/TARGET_* suffixes) ------------------------------


def source_parts(conn: ConnectionFields) -> dict[str, str]:
    """The source settings the `opendental_source` connection gives."""
    _check_type(conn, SOURCE_CONN_TYPES)
    extra = dict(conn.extra)
    ssl = extra.pop("ssl", None)
    if isinstance(ssl, str) and ssl.strip().startswith("{"):
        ssl = _json_object(conn.origin, "the ssl extra", ssl)
    if ssl is not None and not (isinstance(ssl, dict) and set(ssl) <= {"ca"}):
        raise ConfigError(
            f'{conn.origin}: extra \'ssl\' may only name a CA file, as {{"ca": "/path/ca.pem"}}'
        )
    parts = _common_parts(conn)
    parts.update(_extras(conn, extra, {"ssl_mode": "SSL_MODE", "ssl_ca": "SSL_CA", "driver": "DRIVER"}))
    if ssl and ssl.get("ca"):
        parts.setdefault("SSL_CA", str(ssl["ca"]))
    return parts


def target_parts(conn: ConnectionFields) -> dict[str, str]:
    """The warehouse settings the `analytics_warehouse` connection gives."""
    _check_type(conn, WAREHOUSE_CONN_TYPES)
    parts = _common_parts(conn)
    parts.update(_extras(conn, dict(conn.extra), {"sslmode": "SSLMODE", "sslrootcert": "SSLROOTCERT"}))
    return parts


def _check_type(conn: ConnectionFields, allowed: tuple[str, ...]) -> None:
    if conn.conn_type not in allowed:
        raise ConfigError(
            f"{conn.origin}: connection {conn.conn_id} has conn_type {conn.conn_type!r}, expected "
            f"{' or '.join(allowed)}"
        )


def _common_parts(conn: ConnectionFields) -> dict[str, str]:
    parts = {
        "HOST": conn.host,
        "PORT": str(conn.port) if conn.port else None,
        "DATABASE": conn.schema,
        "USER": conn.login,
        "PASSWORD": conn.password,
    }
    return {name: value for name, value in parts.items() if value}


def _extras(conn: ConnectionFields, extra: dict, known: dict[str, str]) -> dict[str, str]:
    unknown = sorted(set(extra) - set(known))
    if unknown:
        raise ConfigError(
            f"{conn.origin}: connection {conn.conn_id} has unknown extra {unknown[0]!r} "
            f"(known: {', '.join(sorted(known))})"
        )
    return {known[name]: str(value) for name, value in extra.items() if value not in (None, "")}


def connection_uri(conn_type: str, parts: Mapping[str, str | None], extras: Mapping[str, str | None]) -> str:
    """An AIRFLOW_CONN_* URI from settings parts (HOST, PORT, DATABASE, USER, PASSWORD) and extras."""
    login = quote(parts.get("USER") or "", safe="")
    password = parts.get("PASSWORD")
    auth = f"{login}:{quote(password, safe='')}@" if password else (f"{login}@" if login else "")
    port = f":{parts['PORT']}" if parts.get("PORT") else ""
    query = urlencode({name: value for name, value in extras.items() if value})
    database = quote(parts.get("DATABASE") or "", safe="")
    return f"{conn_type}://{auth}{parts.get('HOST') or ''}{port}/{database}" + (f"?{query}" if query else "")


def airflow_connection_env(settings: Settings) -> dict[str, str]:
    """AIRFLOW_CONN_* for both connections, from settings read the CLI's way: how a local Airflow gets
    the same definitions as the terminal."""
    source, target = settings.source, settings.target
    return {
        env_key(SOURCE_CONN_ID): connection_uri(
            "mysql",
            _settings_parts(source),
            {"ssl_mode": source.ssl_mode, "ssl_ca": source.ssl_ca, "driver": source.driver},
        ),
        env_key(WAREHOUSE_CONN_ID): connection_uri(
            "postgres",
            _settings_parts(target),
            {"sslmode": target.sslmode, "sslrootcert": target.sslrootcert},
        ),
    }


def _settings_parts(db: MySQLSettings | PostgresSettings) -> dict[str, str | None]:
    return {
        "HOST": db.host,
        "PORT": str(db.port),
        "DATABASE": db.database,
        "USER": db.user,
        "PASSWORD": db.password,
    }
