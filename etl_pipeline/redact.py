"""Keep secrets out of logs, errors and reports.

Every password the settings module reads is registered here; `redact()` replaces them (and the
password part of any connection URL) before a message leaves the process. `install_log_filter()`
puts the same scrubbing on the root logger so third-party messages are covered too. `display_url()`
is how a connection is shown anywhere: SQLAlchemy's rendering of its URL without the password.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

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
