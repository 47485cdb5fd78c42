"""Tell people what happened: one structured log line always, a Slack message when configured.

    notify("Schema analysis", "WARNING", {"tables": 36, "changes": 3}, ["WARNING column_retyped ..."])

Every call logs exactly one JSON line (logger `etl_pipeline.notify`) so log search and alerting can
key on it. When `SLACK_WEBHOOK_URL` is set (environment or `.env`), the same content is POSTed to
that Slack incoming webhook with plain urllib; when `SMTP_HOST` and `NOTIFY_EMAIL_TO` are set, it is
also mailed with smtplib (SMTP_PORT default 587, STARTTLS unless SMTP_STARTTLS=false, SMTP_USER /
SMTP_PASSWORD when the server wants a login, NOTIFY_EMAIL_FROM default etl@<host>). SMTP_SSL=true
speaks TLS from the first byte instead (implicit TLS, SMTP_PORT default 465). Either way the server's
certificate and host name are verified before the login: against the PEM CA bundle at SMTP_SSL_CA
when set, the system trust store otherwise; a certificate that is not trusted means no mail, and one
warning naming host:port. SMTP_STARTTLS=false (and no SMTP_SSL) is plain SMTP, for a local relay only.
A failing webhook or mail server is logged, never raised, so a notification problem cannot fail the job
it reports on. Callers pass counts, table and column names and severities only: never row values.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import ssl
import urllib.error
import urllib.request
from email.message import EmailMessage

from etl_pipeline.redact import redact, register_secret

log = logging.getLogger(__name__)
SEVERITIES = ("INFO", "WARNING", "CRITICAL")
_ICON = {"INFO": ":white_check_mark:", "WARNING": ":warning:", "CRITICAL": ":rotating_light:"}
MAX_DETAIL_LINES = 20


def notify(
    title: str,
    severity: str,
    summary: dict,
    details: list[str] | None = None,
    *,
    webhook_url: str | None = None,
    timeout: float = 10.0,
) -> bool:
    """Log one JSON line and post to Slack if configured. Returns True when Slack accepted the post."""
    severity = severity.upper()
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
    details = [redact(str(d)) for d in (details or [])]
    record = {
        "event": "etl_notification",
        "title": title,
        "severity": severity,
        "summary": summary,
        "details": details[:MAX_DETAIL_LINES],
        "details_total": len(details),
    }
    line = redact(json.dumps(record, sort_keys=True, default=str))
    log.log({"INFO": logging.INFO, "WARNING": logging.WARNING, "CRITICAL": logging.CRITICAL}[severity], line)

    text = _slack_text(title, severity, summary, details)
    _send_email(title, severity, text, timeout)
    url = webhook_url or _setting("SLACK_WEBHOOK_URL")
    if not url:
        return False
    register_secret(url)  # the webhook path is the credential
    return _post_slack(url, text, timeout)


def _setting(key: str) -> str | None:
    value = os.environ.get(key)
    if value:
        return value
    try:
        from etl_pipeline.settings import env_file_path, read_env_file

        return read_env_file(env_file_path()).get(key) or None
    except Exception:
        return None


def _flag(key: str, default: bool) -> bool:
    value = _setting(key)
    return default if value is None else value.strip().lower() not in ("0", "false", "no", "off")


def _send_email(title: str, severity: str, text: str, timeout: float) -> bool:
    """Mail the notification when SMTP_HOST and NOTIFY_EMAIL_TO are configured; True when sent."""
    host, to = _setting("SMTP_HOST"), _setting("NOTIFY_EMAIL_TO")
    if not host or not to:
        return False
    implicit_tls = _flag("SMTP_SSL", False)
    starttls = not implicit_tls and _flag("SMTP_STARTTLS", True)
    port = int(_setting("SMTP_PORT") or (465 if implicit_tls else 587))
    user, password = _setting("SMTP_USER"), _setting("SMTP_PASSWORD")
    register_secret(password)
    message = EmailMessage()
    message["Subject"] = f"[{severity}] {title}"
    message["From"] = _setting("NOTIFY_EMAIL_FROM") or f"etl@{host}"
    message["To"] = to
    message.set_content(text)
    # Only host, port, the CA setting and the reason are ever logged: no user, password or body.
    ca_file = _setting("SMTP_SSL_CA")
    trust = f"SMTP_SSL_CA={ca_file}" if ca_file else "system trust store; set SMTP_SSL_CA to a CA bundle"
    context: ssl.SSLContext | None = None
    if implicit_tls or starttls:
        try:
            # CERT_REQUIRED and check_hostname: without a context smtplib accepts any certificate.
            context = ssl.create_default_context(cafile=ca_file)
        except (OSError, ValueError) as exc:
            log.warning(
                "SMTP alert not sent: SMTP_SSL_CA %s is not a readable PEM CA bundle (%s)",
                ca_file,
                redact(exc),
            )
            return False
    try:
        smtp = (
            smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
            if implicit_tls
            else smtplib.SMTP(host, port, timeout=timeout)
        )
        with smtp as server:
            if starttls:
                server.starttls(context=context)
            if user:
                server.login(user, password or "")
            server.send_message(message)
    except ssl.SSLCertVerificationError as exc:  # before OSError: it is one
        reason = redact(exc.verify_message or exc.reason or "verification failed")
        log.warning(
            "SMTP alert not sent: certificate of %s:%s not trusted (%s; %s)", host, port, reason, trust
        )
        return False
    except (smtplib.SMTPException, OSError) as exc:
        log.warning("email notification failed: %s:%s: %s", host, port, redact(str(exc)))
        return False
    return True


def _slack_text(title: str, severity: str, summary: dict, details: list[str]) -> str:
    facts = ", ".join(f"{k}: {v}" for k, v in summary.items() if not isinstance(v, (dict, list)))
    lines = [f"{_ICON[severity]} *{title}*: {severity}", facts]
    lines += [f"• {d}" for d in details[:MAX_DETAIL_LINES]]
    if len(details) > MAX_DETAIL_LINES:
        lines.append(f"… and {len(details) - MAX_DETAIL_LINES} more")
    return "\n".join(line for line in lines if line)


def _post_slack(url: str, text: str, timeout: float) -> bool:
    request = urllib.request.Request(
        url,
        data=json.dumps({"text": text}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            ok = 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError) as exc:
        log.warning("slack notification failed: %s", redact(str(getattr(exc, "reason", exc))))
        return False
    if not ok:
        log.warning("slack notification failed: HTTP %s", response.status)
    return ok
