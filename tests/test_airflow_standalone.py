"""`python -m etl_pipeline.airflow_local standalone` (Airflow's all-in-one `airflow standalone` on SQLite;
`make airflow` runs the components one by one: tests/test_scheduler_celery.py) brings up a real Airflow
(scheduler, DAG processor, triggerer, API server) on this repository's DAGs; the admin logs in with the generated
password and the API lists both DAGs, no import errors, and the pools the DAGs need; on an API port that is
not 8080, a schema analysis triggered through the REST API runs its tasks through the scheduler."""

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
from schema_support import OPENDENTAL_LIKE, drop_database, execute, scratch_settings

from etl_pipeline.airflow_local import POOLS, airflow_env
from etl_pipeline.schema.tables_config import load_tables_config
from etl_pipeline.settings import PROJECT_ROOT

STARTUP_SECONDS = 240


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _request(url: str, token: str | None = None, body: dict | None = None, method: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(
        urllib.request.Request(url, data=data, headers=headers, method=method), timeout=10
    ) as response:
        return json.loads(response.read() or b"{}")


@pytest.fixture(scope="module")
def scratch_source(settings, tmp_path_factory):
    """An OpenDental-like source database and a config directory of the module's own, for the run."""
    s = scratch_settings(settings, "standalone_src", tmp_path_factory.mktemp("standalone-config"))
    execute(s, *OPENDENTAL_LIKE)
    try:
        yield s
    finally:
        drop_database(s)


@pytest.fixture(scope="module")
def standalone(local_stack, scratch_source, tmp_path_factory):
    home = tmp_path_factory.mktemp("standalone")
    port = _free_port()  # not 8080: the tasks must find the execution API on this port
    s = scratch_source
    env = airflow_env(
        home / "airflow",
        {
            "AIRFLOW__API__PORT": str(port),
            "DBT_DOCS_DIR": str(home / "docs"),
            "ETL_CONFIG_DIR": str(s.config_dir),
            "SOURCE_DATABASE": s.source.database,
            "SOURCE_USER": s.source.user,
            "SOURCE_PASSWORD": s.source.password,
            "SOURCE_PORT": str(s.source.port),
        },
    )
    assert "AIRFLOW__CORE__EXECUTION_API_SERVER_URL" not in os.environ, "the test would prove nothing"
    with open(home / "standalone.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "etl_pipeline.airflow_local", "standalone"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield {
                "base": _wait_healthy(proc, f"http://127.0.0.1:{port}", home / "standalone.log"),
                "home": home / "airflow",
                "settings": s,
            }
        finally:
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=60)
            # a component still shutting down when standalone exited would outlive the test run
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_healthy(proc, base: str, log) -> str:
    deadline = time.monotonic() + STARTUP_SECONDS
    health = {}
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            health = _request(f"{base}/api/v2/monitor/health")
            if all(
                health.get(part, {}).get("status") == "healthy"
                for part in ("metadatabase", "scheduler", "dag_processor", "triggerer")
            ):
                return base
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            pass
        time.sleep(2)
    pytest.fail(
        f"Airflow standalone not healthy after {STARTUP_SECONDS} s (exit {proc.poll()}): {health}; see {log}"
    )


def _login(standalone) -> str:
    passwords = json.loads((standalone["home"] / "simple_auth_manager_passwords.json.generated").read_text())
    return _request(
        f"{standalone['base']}/auth/token", body={"username": "admin", "password": passwords["admin"]}
    )["access_token"]


def test_the_admin_logs_in_with_the_generated_password_and_sees_both_dags(standalone):
    token = _login(standalone)
    deadline = time.monotonic() + 120  # the DAG processor's first pass over the folder
    dag_ids: set[str] = set()
    while time.monotonic() < deadline and not {"etl_pipeline", "schema_analysis"} <= dag_ids:
        dag_ids = {d["dag_id"] for d in _request(f"{standalone['base']}/api/v2/dags", token)["dags"]}
        time.sleep(2)
    assert {"etl_pipeline", "schema_analysis"} <= dag_ids, dag_ids
    assert _request(f"{standalone['base']}/api/v2/importErrors", token)["total_entries"] == 0
    pools = {p["name"] for p in _request(f"{standalone['base']}/api/v2/pools", token)["pools"]}
    assert set(POOLS) <= pools


def test_the_api_refuses_a_wrong_password_and_no_token(standalone):
    with pytest.raises(urllib.error.HTTPError) as wrong:
        _request(
            f"{standalone['base']}/auth/token", body={"username": "admin", "password": "not-the-password"}
        )
    assert wrong.value.code in (401, 403)
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        _request(f"{standalone['base']}/api/v2/dags")
    assert anonymous.value.code in (401, 403)


def test_a_run_triggered_through_the_api_runs_its_tasks_through_the_scheduler(standalone):
    """The scheduler and the LocalExecutor, not `dags test`: the API on a port that is not 8080, the
    schema analysis unpaused and triggered through the REST API, every task run by a task runner that
    reaches the execution API on that port."""
    token, base = _login(standalone), standalone["base"]
    _request(f"{base}/api/v2/dags/schema_analysis", token, {"is_paused": False}, method="PATCH")
    run = _request(f"{base}/api/v2/dags/schema_analysis/dagRuns", token, {"logical_date": None})
    deadline, state = time.monotonic() + 240, run["state"]
    while time.monotonic() < deadline and state not in ("success", "failed"):
        time.sleep(2)
        state = _request(f"{base}/api/v2/dags/schema_analysis/dagRuns/{run['dag_run_id']}", token)["state"]
    tasks = _request(f"{base}/api/v2/dags/schema_analysis/dagRuns/{run['dag_run_id']}/taskInstances", token)
    states = {t["task_id"]: t["state"] for t in tasks["task_instances"]}
    assert state == "success", f"{state}: {states}; logs under {standalone['home'] / 'logs'}"
    assert states and set(states.values()) <= {"success", "skipped"}
    s = standalone["settings"]
    assert load_tables_config(s.tables_yml).tables["patient"].strategy == "incremental"
