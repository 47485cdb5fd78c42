"""Running the real DAGs with `airflow dags test` in a throwaway AIRFLOW_HOME (SQLite metadata DB),
and a local HTTP endpoint standing in for Slack. Imported by the DAG and end-to-end tests."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

from etl_pipeline.airflow_local import airflow, airflow_env, dags_test, prepare

__all__ = ["SlackStandIn", "airflow", "airflow_home", "dags_test"]


def airflow_home(home: Path, extra: dict | None = None) -> dict:
    """A migrated Airflow home with the project's pools; returns the environment to run it with."""
    env = airflow_env(home, extra)
    prepare(env)
    return env


class SlackStandIn:
    """Collects the JSON bodies POSTed to http://127.0.0.1:<port>/hook (a Slack incoming webhook)."""

    def __init__(self) -> None:
        messages = self.messages = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                messages.append(json.loads(body or b"{}"))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def texts(self) -> list[str]:
        return [m.get("text", "") for m in self.messages]
