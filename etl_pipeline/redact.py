"""Keep secrets out of logs, errors and reports.

Every password the settings module reads is registered here; `redact()` replaces them (and the
password part of any connection URL) before a message leaves the process. `install_log_filter()`
puts the same scrubbing on the root logger so third-party messages are covered too. `display_url()`
is how a connection is shown anywhere: SQLAlchemy's rendering of its URL without the password.

Database errors can quote row values: PostgreSQL in a failed cast's message, a COPY's CONTEXT line
and a constraint's DETAIL; MySQL/MariaDB in "Incorrect ... value: '...'" and "Duplicate entry '...'".
`redact_error()` renders such an error as its class, its SQLSTATE or error number and its first
message line with every quoted value masked (a quoted name that follows a word like column,
relation, constraint or key is kept), plus the table, column and COPY line where the server names
them; DETAIL, HINT and CONTEXT are dropped. `etl_pipeline.db` rewrites the errors of target
statements with it, so a logged traceback shows no value either.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

_SECRETS: set[str] = set()
_URL_PASSWORD = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]+):(?P<pw>[^@\s]+)@", re.IGNORECASE
)
_PASSWORD_ASSIGN = re.compile(
    r"(?P<key>password|passwd|pwd)(?P<sep>\s*[=:]\s*)(?P<q>['\"]?)[^'\"\s,;)]+", re.IGNORECASE
)
MASK = "***"


def register_secret(value: str | None) -> None:
    """Remember a secret so that it is masked wherever it shows up."""
    if value and len(value) >= 4:
        _SECRETS.add(value)


def display_url(url: URL) -> str:
    """A connection for people to read: scheme, user, host, port and database. The password, the driver
    and the query (CA paths and TLS modes) are left out, so the text is the same wherever it appears."""
    shown = type(url).create(url.get_backend_name(), url.username, None, url.host, url.port, url.database)
    return shown.render_as_string(hide_password=True)


def redact(text: object) -> str:
    """Return `text` with registered secrets, URL passwords and password=... assignments masked."""
    out = str(text)
    for secret in sorted(_SECRETS, key=len, reverse=True):
        out = out.replace(secret, MASK)
    out = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", out)
    out = _PASSWORD_ASSIGN.sub(lambda m: f"{m['key']}{m['sep']}{m['q']}{MASK}", out)
    return out


class RedactingFilter(logging.Filter):
    """A logging filter that renders the message and scrubs it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_filter(logger: logging.Logger | None = None) -> None:
    """Attach the redacting filter to every handler of `logger` (root by default)."""
    logger = logger or logging.getLogger()
    flt = RedactingFilter()
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(flt)
    for handler in logger.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(flt)


VALUE_MASK = "<value>"
# a quoted string ('...', "..." with doubled quotes inside), and the word before it
_QUOTED = re.compile(r"""(?P<word>\b\w+\s+)?(?P<q>['"])(?P<text>(?:(?!(?P=q)).|(?P=q)(?P=q))*)(?P=q)""")
# words after which a quoted string is a name the server quotes, not a value
_NAME_WORDS = frozenset(
    [
        "column",
        "relation",
        "table",
        "constraint",
        "schema",
        "index",
        "key",
        "type",
        "database",
        "role",
        "user",
        "view",
        "sequence",
        "function",
        "encoding",
        "field",
        "extension",
        "operator",
        "trigger",
        "domain",
    ]
)
_HEX_BYTES = re.compile(r"0x[0-9a-fA-F]{2}(?:\s+0x[0-9a-fA-F]{2})*")
# a COPY's CONTEXT line without its value: `COPY t, line 3, column c: "..."`
_COPY_LINE = re.compile(r"COPY (?P<rel>[^,\s]+), line (?P<line>\d+)(?:, column (?P<col>[^:]+))?")


def mask_values(message: str) -> str:
    """`message` with quoted values (and hex byte dumps) replaced by VALUE_MASK; quoted names kept."""

    def one(match: re.Match[str]) -> str:
        word = (match["word"] or "").strip().lower()
        if word in _NAME_WORDS and _looks_like_name(match["text"]):
            return match[0]
        return f"{match['word'] or ''}{match['q']}{VALUE_MASK}{match['q']}"

    return _HEX_BYTES.sub(VALUE_MASK, _QUOTED.sub(one, message))


def _looks_like_name(text: str) -> bool:
    return bool(re.fullmatch(r"[\w$.`]{1,128}", text))


def redact_error(exc: BaseException) -> str:
    """One line for a log, a message or a notification: no row values, no secrets (see the module)."""
    name = type(exc).__name__
    pgcode = getattr(exc, "pgcode", None)
    diag = getattr(exc, "diag", None)
    if diag is not None:  # psycopg2
        primary = getattr(diag, "message_primary", None) or _first_line(str(exc))
        where = _pg_names(diag)
        code = f" (SQLSTATE {pgcode})" if pgcode else ""
        return redact(f"{name}{code}: {mask_values(primary)}{where}".rstrip(": "))
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    if len(args) >= 2 and isinstance(args[0], int):  # a MySQL/MariaDB driver: (errno, message)
        return redact(f"{name} ({args[0]}): {mask_values(_first_line(str(args[1])))}")
    text = _first_line(str(exc))
    return redact(f"{name}: {mask_values(text)}" if text else name)


def _pg_names(diag: Any) -> str:
    """The schema, table and column the server names, and a COPY's line and column (never its value)."""
    parts = []
    table = ".".join(n for n in (diag.schema_name, diag.table_name) if n)
    if table:
        parts.append(f"table {table}")
    if diag.column_name:
        parts.append(f"column {diag.column_name}")
    if diag.constraint_name:
        parts.append(f"constraint {diag.constraint_name}")
    copy = _COPY_LINE.search(diag.context or "")
    if copy:
        parts.append(
            f"COPY {copy['rel']} line {copy['line']}"
            + (f" column {copy['col'].strip()}" if copy["col"] else "")
        )
    return f" [{', '.join(parts)}]" if parts else ""


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0].strip() if text.strip() else ""
