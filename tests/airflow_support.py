"""Running the real DAGs with `airflow dags test` in a throwaway AIRFLOW_HOME (SQLite metadata DB),
and local endpoints standing in for Slack (HTTP) and the mail server (SMTP). Imported by the DAG and
end-to-end tests."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

import pytest

from etl_pipeline.airflow_local import DAGS_FOLDER, airflow, airflow_env, dags_test, prepare

__all__ = ["SlackStandIn", "SmtpStandIn", "airflow", "airflow_home", "dags_test", "parse_dag"]


def airflow_home(home: Path, extra: dict | None = None) -> dict:
    """A migrated Airflow home with the project's pools; returns the environment to run it with."""
    env = airflow_env(home, extra)
    prepare(env)
    return env


def parse_dag(dag_id: str, home: Path, extra: dict | None = None):
    """The DAG file `<dag_id>_dag.py` through Airflow's DagBag in this process, with the environment an
    Airflow component gets (`extra` on top); refuses an import error. Returns the DAG.

    PATH is left as it is: Cosmos reads the dbt executable from it once when imported and again when
    it renders, and the two must agree (a test module may have imported Cosmos already)."""
    mp = pytest.MonkeyPatch()
    try:
        for key, value in airflow_env(home, extra).items():
            if key != "PATH":
                mp.setenv(key, value)
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(DAGS_FOLDER / f"{dag_id}_dag.py"))
    finally:
        mp.undo()
    assert bag.import_errors == {}
    return bag.dags[dag_id]


class _LoopbackServer:
    """A server of the standard library on 127.0.0.1 served from a daemon thread while in a `with`."""

    server: socketserver.BaseServer

    def __enter__(self) -> Self:
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class SlackStandIn(_LoopbackServer):
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

    def texts(self) -> list[str]:
        return [m.get("text", "") for m in self.messages]


class SmtpStandIn(_LoopbackServer):
    """A mail server on 127.0.0.1 speaking enough SMTP for smtplib (EHLO, AUTH PLAIN, MAIL, RCPT, DATA,
    QUIT), without TLS. It refuses a login with another password than `password` (535) and keeps each
    accepted message (an email.message.EmailMessage) in `messages`, the logged-in user in `logins`."""

    def __init__(self, user: str, password: str) -> None:
        messages, logins = self.messages, self.logins = [], []

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, text: str) -> None:
                self.wfile.write(text.encode() + b"\r\n")

            def handle(self) -> None:
                self.reply("220 stand-in ESMTP")
                while line := self.rfile.readline():
                    verb, _, rest = line.decode().strip().partition(" ")
                    verb = verb.upper()
                    if verb == "EHLO":
                        self.reply("250-stand-in")
                        self.reply("250 AUTH PLAIN")
                    elif verb == "AUTH":
                        _, given_user, given_password = base64.b64decode(rest.split()[1]).decode().split("\0")
                        if (given_user, given_password) != (user, password):
                            self.reply("535 authentication failed")
                            continue
                        logins.append(given_user)
                        self.reply("235 ok")
                    elif verb == "DATA":
                        self.reply("354 go on")
                        body = b""
                        while (data := self.rfile.readline()) not in (b".\r\n", b""):
                            body += data[1:] if data.startswith(b"..") else data
                        messages.append(email.message_from_bytes(body, policy=email.policy.default))
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:  # HELO, MAIL, RCPT, RSET, NOOP
                        self.reply("250 ok")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.env = {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.server.server_address[1]),
            "SMTP_STARTTLS": "false",
            "SMTP_USER": user,
            "SMTP_PASSWORD": password,
        }

    def subjects(self) -> list[str]:
        return [m["Subject"] for m in self.messages]
