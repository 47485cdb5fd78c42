"""Tell people what happened: one structured log line always, a Slack message when configured.

    notify("Schema analysis", "WARNING", {"tables": 36, "changes": 3}, ["WARNING column_retyped ..."])

Every call logs exactly one JSON line (logger `etl_pipeline.notify`) so log search and alerting can
key on it. When `SLACK_WEBHOOK_URL` is set (environment or `.env`), the same content is POSTed to
that Slack incoming webhook with plain urllib; a failing webhook is logged, never raised, so a
notification problem cannot fail the job it reports on. Callers pass counts, table and column names
and severities only: never row values.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request

from etl_pipeline.redact import redact, register_secret

log = logging.getLogger(__name__)
SEVERITIES = ("INFO", "WARNING", "CRITICAL")
_ICON = {"INFO": ":white_check_mark:", "WARNING": ":warning:", "CRITICAL": ":rotating_light:"}
MAX_DETAIL_LINES = 20


def notify(title: str, severity: str, summary: dict, details: list[str] | None = None,
           *, webhook_url: str | None = None, timeout: float = 10.0) -> bool:
    """Log one JSON line and post to Slack if configured. Returns True when Slack accepted the post."""
    severity = severity.upper()
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
    details = [redact(str(d)) for d in (details or [])]
    record = {"event": "etl_notification", "title": title, "severity": severity,
              "summary": summary, "details": details[:MAX_DETAIL_LINES],
              "details_total": len(details)}
    line = redact(json.dumps(record, sort_keys=True, default=str))
    log.log({"INFO": logging.INFO, "WARNING": logging.WARNING, "CRITICAL": logging.CRITICAL}[severity], line)

    url = webhook_url or _webhook_from_env()
    if not url:
        return False
    register_secret(url)  # the webhook path is the credential
    return _post_slack(url, _slack_text(title, severity, summary, details), timeout)


def _webhook_from_env() -> str | None:
    url = os.environ.get("SLACK_WEBHOOK_URL")
    if url:
        return url
    try:
        from etl_pipeline.settings import env_file_path, read_env_file
        return read_env_file(env_file_path()).get("SLACK_WEBHOOK_URL") or None
    except Exception:  # noqa: BLE001 - a broken .env must not stop a notification
        return None


def _slack_text(title: str, severity: str, summary: dict, details: list[str]) -> str:
    facts = ", ".join(f"{k}: {v}" for k, v in summary.items() if not isinstance(v, (dict, list)))
    lines = [f"{_ICON[severity]} *{title}*: {severity}", facts]
    lines += [f"• {d}" for d in details[:MAX_DETAIL_LINES]]
    if len(details) > MAX_DETAIL_LINES:
        lines.append(f"… and {len(details) - MAX_DETAIL_LINES} more")
    return "\n".join(line for line in lines if line)


def _post_slack(url: str, text: str, timeout: float) -> bool:
    request = urllib.request.Request(url, data=json.dumps({"text": text}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            ok = 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError) as exc:
        log.warning("slack notification failed: %s", redact(str(getattr(exc, "reason", exc))))
        return False
    if not ok:
        log.warning("slack notification failed: HTTP %s", response.status)
    return ok
