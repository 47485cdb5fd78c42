"""etl_pipeline.notify: one JSON log line always; a Slack webhook POST when configured."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from etl_pipeline.notify import notify


@pytest.fixture
def webhook():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(
                {"path": self.path, "type": self.headers["Content-Type"], "body": json.loads(body)}
            )
            self.send_response(500 if self.path.endswith("/broken") else 200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", received
    server.shutdown()
    server.server_close()


def _records(caplog):
    return [
        json.loads(r.getMessage())
        for r in caplog.records
        if r.name == "etl_pipeline.notify" and r.getMessage().startswith("{")
    ]


def test_always_one_structured_log_line(caplog, monkeypatch):
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    monkeypatch.setenv("ETL_ENV_FILE", "/nonexistent.env")
    assert notify("Schema analysis", "warning", {"tables": 36}, ["WARNING cursor_changed userod"]) is False
    (record,) = _records(caplog)
    assert record == {
        "event": "etl_notification",
        "title": "Schema analysis",
        "severity": "WARNING",
        "summary": {"tables": 36},
        "details": ["WARNING cursor_changed userod"],
        "details_total": 1,
    }


def test_posts_to_slack_when_configured(webhook, caplog, monkeypatch):
    url, received = webhook
    monkeypatch.setenv("SLACK_WEBHOOK_URL", url + "/services/T000/B000/secretpart")
    details = [f"INFO column_added t{i}.c" for i in range(25)]
    assert notify("Schema analysis", "CRITICAL", {"tables": 35, "critical": 1}, details) is True
    (post,) = received
    assert post["path"] == "/services/T000/B000/secretpart" and post["type"] == "application/json"
    text = post["body"]["text"]
    assert text.startswith(":rotating_light: *Schema analysis*: CRITICAL")
    assert "tables: 35" in text and "… and 5 more" in text
    assert len(_records(caplog)) == 1


def test_failing_webhook_is_logged_not_raised(webhook, caplog):
    url, _ = webhook
    assert notify("x", "INFO", {}, [], webhook_url=url + "/broken") is False
    assert notify("x", "INFO", {}, [], webhook_url="http://127.0.0.1:1/closed") is False
    assert "slack notification failed" in caplog.text
    assert "127.0.0.1:1/closed" not in caplog.text


def test_bad_severity_is_refused():
    with pytest.raises(ValueError, match="severity"):
        notify("x", "PANIC", {}, [])
