"""The dbt docs the Cosmos plugin serves under /cosmos/ need an Airflow login in `airflow standalone` too
(no nginx there): the docs_login plugin (airflow/plugins) refuses every Cosmos docs URL without a valid
JWT, serves them with the bearer token from POST /auth/token or with the UI's `_token` cookie (what the
Cosmos menu's iframe sends), and leaves the rest of the API server alone."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from etl_pipeline.airflow_local import airflow_env
from etl_pipeline.settings import PROJECT_ROOT

STARTUP_SECONDS = 240
MARKER = "docs-login-marker-7f3a"
DOCS = "/cosmos/dbt_dental_models"
# every route of Cosmos' app for the project, a percent-encoded spelling of one, and the app's root
GUARDED = [
    f"{DOCS}/dbt_docs",
    f"{DOCS}/dbt_docs_index.html",
    f"{DOCS}/manifest.json",
    f"{DOCS}/catalog.json",
    f"{DOCS}/%64bt_docs_index.html",
    "/cosmos/",
    "/cosmos/not-a-project/dbt_docs_index.html",
]
WITH_MARKER = [f"{DOCS}/dbt_docs_index.html", f"{DOCS}/manifest.json", f"{DOCS}/catalog.json"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, headers: dict | None = None, body: dict | None = None) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


@pytest.fixture(scope="module")
def airflow(local_stack, tmp_path_factory):
    home = tmp_path_factory.mktemp("docs-login")
    docs = home / "docs"
    docs.mkdir()
    (docs / "index.html").write_text(f"<html><head><title>dbt</title></head><body>{MARKER}</body></html>")
    for name in ("manifest.json", "catalog.json"):
        (docs / name).write_text(json.dumps({"marker": MARKER}))
    port = _free_port()
    env = airflow_env(
        home / "airflow",
        {
            "AIRFLOW__API__PORT": str(port),
            "DBT_DOCS_DIR": str(docs),
        },
    )
    log_path = home / "standalone.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "etl_pipeline.airflow_local", "standalone"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            base = _wait_healthy(proc, f"http://127.0.0.1:{port}", log_path)
            passwords = json.loads(
                (home / "airflow" / "simple_auth_manager_passwords.json.generated").read_text()
            )
            status, text = _get(
                f"{base}/auth/token", body={"username": "admin", "password": passwords["admin"]}
            )
            assert status == 201, text
            yield {"base": base, "token": json.loads(text)["access_token"]}
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=60)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_healthy(proc, base: str, log) -> str:
    deadline = time.monotonic() + STARTUP_SECONDS
    health: dict = {}
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            status, text = _get(f"{base}/api/v2/monitor/health")
            health = json.loads(text) if status == 200 else {}
            if all(
                health.get(part, {}).get("status") == "healthy"
                for part in ("metadatabase", "scheduler", "dag_processor", "triggerer")
            ):
                return base
        time.sleep(2)
    pytest.fail(
        f"Airflow standalone not healthy after {STARTUP_SECONDS} s (exit {proc.poll()}): {health}; see {log}"
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not.a.jwt"},
        {"Cookie": "_token=not.a.jwt"},
        {"Authorization": "Basic YQ=="},
    ],
    ids=["anonymous", "garbage-bearer", "garbage-cookie", "basic-auth"],
)
def test_the_docs_are_refused_without_a_valid_login(airflow, headers):
    for path in GUARDED:
        status, body = _get(airflow["base"] + path, headers)
        assert status in (401, 403), f"{path}: {status} {body[:200]}"
        assert MARKER not in body, path


def test_a_token_from_the_api_login_reads_the_docs(airflow):
    auth = {"Authorization": f"Bearer {airflow['token']}"}
    for path in WITH_MARKER:
        status, body = _get(airflow["base"] + path, auth)
        assert status == 200 and MARKER in body, f"{path}: {status} {body[:200]}"
    status, body = _get(f"{airflow['base']}{DOCS}/dbt_docs", auth)
    assert status == 200 and "dbt_docs_index.html" in body, body[:200]


def test_the_ui_session_cookie_reads_the_docs_as_the_cosmos_iframe_does(airflow):
    cookie = {"Cookie": f"_token={airflow['token']}"}
    for path in WITH_MARKER:
        status, body = _get(airflow["base"] + path, cookie)
        assert status == 200 and MARKER in body, f"{path}: {status} {body[:200]}"
    # an explicit (bad) bearer token wins over the cookie, as on the REST API
    status, body = _get(
        f"{airflow['base']}{DOCS}/dbt_docs_index.html", {**cookie, "Authorization": "Bearer not.a.jwt"}
    )
    assert status in (401, 403) and MARKER not in body


def test_the_rest_of_airflow_is_unaffected(airflow):
    base, auth = airflow["base"], {"Authorization": f"Bearer {airflow['token']}"}
    status, body = _get(f"{base}/api/v2/version")
    assert status == 200 and json.loads(body)["version"].startswith("3."), body
    status, body = _get(f"{base}/")
    assert status == 200 and "<html" in body.lower(), body[:200]
    assert _get(f"{base}/api/v2/dags")[0] in (401, 403)
    assert _get(f"{base}/api/v2/dags", auth)[0] == 200
    status, body = _get(f"{base}/api/v2/plugins", auth)
    plugins = {p["name"]: p for p in json.loads(body)["plugins"]}
    assert {"cosmos", "docs_login"} <= set(plugins), sorted(plugins)
    assert plugins["docs_login"]["fastapi_root_middlewares"], plugins["docs_login"]
    status, body = _get(f"{base}/api/v2/plugins/importErrors", auth)
    assert status == 200 and json.loads(body)["total_entries"] == 0, body
