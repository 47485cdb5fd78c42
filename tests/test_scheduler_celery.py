"""The nightly through Airflow as it is deployed: scheduler, DAG processor, triggerer, API server and
three Celery workers (two on `default,extract`, one on `dbt`) on a redis-server broker, the metadata
database in PostgreSQL (etl_pipeline.airflow_cluster). Not `airflow dags test`: every task is queued by
the scheduler, run by a Celery worker and reports to the execution API.

In order, each run after the one before: unpausing creates the scheduled run of the latest interval and
it succeeds; a run triggered through the REST API with tables and a forced full refresh loads just those
tables and builds only their models; bad conf through the API is refused before anything loads, naming
the field; the tasks read the source and the warehouse from Airflow connections kept in the metadata
database (no other credentials reach them) and no log shows a password; the UI, logged in in headless
Chromium, shows the triggered run's grid, its tables' map labels and its dbt tasks' states (screenshots
kept in .local/test-artifacts/airflow-ui/); a worker killed with SIGKILL in the middle of an extract: the task's retry runs on the other
worker and `verify --deep` is clean after the run.

The `scheduler` suite (`make test-scheduler`, run by .ci/run): about 8 minutes, left out of `make test`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from airflow_support import SlackStandIn

from etl_pipeline.airflow_cluster import AirflowCluster, cluster_env, free_port
from etl_pipeline.connections import SOURCE_CONN_ID, WAREHOUSE_CONN_ID
from etl_pipeline.db import connect_source, connect_target
from etl_pipeline.settings import PROJECT_ROOT
from etl_pipeline.synthetic import generate

pytestmark = pytest.mark.scheduler

SCALE = 0.01
RUN_SECONDS = 900
# the killed worker's task stops heartbeating; the scheduler fails it after this (deployments: 300 s)
HEARTBEAT_TIMEOUT_SECONDS = 30
SELF_CONTAINED = ["clinic", "operatory", "provider"]  # their models read no other raw table's models
LOCKED_TABLE = "paysplit"
CREDENTIAL_KEYS = ("AIRFLOW_CONN_", "SOURCE_", "TARGET_")
UI_ARTIFACTS = PROJECT_ROOT / ".local" / "test-artifacts" / "airflow-ui"


# ------------------------------------------------------------------------------------------ helpers


class Api:
    """The REST API as the admin (a token from the password the API server generated)."""

    def __init__(self, cluster: AirflowCluster) -> None:
        self.base = cluster.api_url
        passwords = json.loads((cluster.home / "simple_auth_manager_passwords.json.generated").read_text())
        self.token = self.call(
            "POST", "/auth/token", {"username": "admin", "password": passwords["admin"]}, auth=False
        )["access_token"]

    def call(self, method: str, path: str, body: dict | None = None, auth: bool = True) -> dict:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"{}")

    def wait_for_run(self, run_id: str, seconds: float = RUN_SECONDS) -> str:
        deadline, state = time.monotonic() + seconds, "queued"
        while time.monotonic() < deadline:
            state = self.call("GET", f"/api/v2/dags/etl_pipeline/dagRuns/{run_id}")["state"]
            if state in ("success", "failed"):
                return state
            time.sleep(3)
        pytest.fail(f"run {run_id} still {state} after {seconds} s")

    def task_instances(self, run_id: str) -> list[dict]:
        """Every task instance of the run, mapped ones included (the API pages by 100)."""
        found: list[dict] = []
        while True:
            path = f"/api/v2/dags/etl_pipeline/dagRuns/{run_id}/taskInstances?limit=100&offset={len(found)}"
            page = self.call("GET", path)
            found += page["task_instances"]
            if not page["task_instances"] or len(found) >= page["total_entries"]:
                return found

    def add_connections(self, settings) -> None:
        """opendental_source and analytics_warehouse into the metadata database, as the UI adds them."""
        for conn_id, conn_type, db, extra in (
            (SOURCE_CONN_ID, "mysql", settings.source, {"driver": settings.source.driver}),
            (WAREHOUSE_CONN_ID, "postgres", settings.target, {}),
        ):
            body = {
                "connection_id": conn_id,
                "conn_type": conn_type,
                "host": db.host,
                "port": db.port,
                "schema": db.database,
                "login": db.user,
                "password": db.password,
                "extra": json.dumps(extra),
            }
            self.call("POST", "/api/v2/connections", body)

    def trigger(self, conf: dict) -> dict:
        return self.call("POST", "/api/v2/dags/etl_pipeline/dagRuns", {"logical_date": None, "conf": conf})


class HeadlessUi:
    """The Airflow UI in headless Chromium (Debian's chromium and chromium-driver, through Selenium)."""

    def __init__(self, base: str, artifacts: Path) -> None:
        self.base, self.artifacts = base, artifacts

    def __enter__(self) -> HeadlessUi:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service

        options = Options()
        options.binary_location = "/usr/bin/chromium"
        for argument in (
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--window-size=1600,1200",
        ):
            options.add_argument(argument)
        self.driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        self.artifacts.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.driver.quit()

    def log_in(self, user: str, password: str) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        self.driver.get(self.base + "/")
        self._wait(lambda d: d.find_elements(By.NAME, "password"), "the login form")
        self.driver.find_element(By.NAME, "username").send_keys(user)
        self.driver.find_element(By.NAME, "password").send_keys(password, Keys.ENTER)
        self._wait(lambda d: "/auth/login" not in d.current_url, "the redirect after logging in")

    def page(self, path: str, ready_text: str, screenshot: str) -> str:
        """The page's visible text once `ready_text` shows; the screenshot is kept as <screenshot>.png."""
        from selenium.webdriver.common.by import By

        self.driver.get(self.base + path)
        self._wait(
            lambda d: ready_text in d.find_element(By.TAG_NAME, "body").text, f"{ready_text!r} on {path}"
        )
        time.sleep(1)  # the rest of the page's queries
        self.driver.save_screenshot(str(self.artifacts / f"{screenshot}.png"))
        return "\n" + self.driver.find_element(By.TAG_NAME, "body").text + "\n"

    def _wait(self, condition, what: str, seconds: float = 60) -> None:
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            WebDriverWait(self.driver, seconds).until(condition)
        except TimeoutException:
            self.driver.save_screenshot(str(self.artifacts / "timed-out.png"))
            pytest.fail(f"the UI never showed {what} ({seconds} s; see {self.artifacts}/timed-out.png)")


def pg(settings, sql: str, params=None) -> list[tuple]:
    conn = connect_target(settings.target)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "etl_pipeline.cli", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def _states(task_instances: list[dict]) -> dict[str, list[str]]:
    by_task: dict[str, list[str]] = {}
    for ti in task_instances:
        by_task.setdefault(ti["task_id"], []).append(ti["state"])
    return by_task


def _extract_tis(task_instances: list[dict]) -> list[dict]:
    return [ti for ti in task_instances if ti["task_id"].startswith("extract_") and ti["map_index"] >= 0]


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _component_running(pid: int, cluster: AirflowCluster) -> str | None:
    """The cluster component whose process tree holds `pid` (the task runner is a grandchild of its
    Celery worker, in a process group of its own)."""
    leaders = {proc.pid: name for name, proc in cluster.processes.items()}
    current: int | None = pid
    while current and current > 1:
        if current in leaders:
            return leaders[current]
        current = _parent(current)
    return None


def _run_report(settings, run_id: str):
    rows = pg(settings, "SELECT status, tables FROM etl.nightly_runs WHERE run_id = %s", (run_id,))
    return rows[0] if rows else None


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def slack():
    with SlackStandIn() as stand_in:
        yield stand_in


@pytest.fixture(scope="module")
def cluster(local_stack, settings, tmp_path_factory, slack):
    base = tmp_path_factory.mktemp("celery")
    with open(os.devnull, "w") as quiet:
        generate(settings.source_admin, SCALE, 7, out=quiet)
    analysed = _cli("analyze-schema")
    assert analysed.returncode == 0, analysed.stdout[-2000:] + analysed.stderr[-2000:]
    env = cluster_env(
        local_stack,
        "celery",
        home=base / "airflow",
        metadata_database="airflow_scheduler_tests",
        extra={
            "AIRFLOW__API__PORT": str(free_port()),  # not 8080: the workers must follow the port
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_SECONDS),
            "DBT_DOCS_DIR": str(base / "docs"),
            "SLACK_WEBHOOK_URL": slack.url,
            "ETL_EXTRACT_RETRY_DELAY_SECONDS": "1",
            "ETL_DBT_RETRY_DELAY_SECONDS": "1",
        },
    )
    # the source and the warehouse exist only as connections in the metadata database (added through
    # the API below): no AIRFLOW_CONN_*, SOURCE_* or TARGET_* variable and no .env reach a component
    no_credentials = base / "no-credentials.env"
    no_credentials.write_text("")
    env = {key: value for key, value in env.items() if not key.startswith(CREDENTIAL_KEYS)}
    env["ETL_ENV_FILE"] = str(no_credentials)
    with AirflowCluster(env) as running:
        yield running


@pytest.fixture(scope="module")
def api(cluster, settings) -> Api:
    api = Api(cluster)
    deadline = time.monotonic() + 120  # the DAG processor's first pass over the folder
    while time.monotonic() < deadline:
        if "etl_pipeline" in {d["dag_id"] for d in api.call("GET", "/api/v2/dags")["dags"]}:
            api.add_connections(settings)
            return api
        time.sleep(2)
    pytest.fail("etl_pipeline never appeared in the API")


# ------------------------------------------------------------------------------------------ tests


def test_a_unpausing_creates_the_scheduled_run_of_the_latest_interval_and_it_succeeds(api, settings):
    api.call("PATCH", "/api/v2/dags/etl_pipeline", {"is_paused": False})
    deadline, runs = time.monotonic() + 120, []
    while time.monotonic() < deadline and not runs:
        runs = api.call("GET", "/api/v2/dags/etl_pipeline/dagRuns")["dag_runs"]
        time.sleep(2)
    [run] = runs
    assert run["run_type"] == "scheduled"
    # the latest complete interval of "0 21 * * *" America/Chicago ends at the last 21:00 there
    assert run["data_interval_end"].endswith(("02:00:00Z", "03:00:00Z"))  # 21:00 CDT / CST in UTC
    state = api.wait_for_run(run["dag_run_id"])
    states = _states(api.task_instances(run["dag_run_id"]))
    assert state == "success", states
    status, tables = _run_report(settings, run["dag_run_id"])
    assert status == "success" and tables and all(t["parity_ok"] for t in tables)
    assert {t["status"] for t in tables} == {"success"}


def test_a2_the_tasks_read_the_connections_and_no_log_shows_a_password(api, cluster, settings):
    runs = api.call("GET", "/api/v2/dags/etl_pipeline/dagRuns")["dag_runs"]
    assert runs and runs[0]["state"] == "success"
    run_dir = cluster.home / "logs" / "dag_id=etl_pipeline" / f"run_id={runs[0]['dag_run_id']}"
    check_log = "".join(
        p.read_text() for p in run_dir.glob("task_id=validate.check_connections/attempt=*.log")
    )
    assert "defined by Airflow connection opendental_source" in check_log
    assert "defined by Airflow connection analytics_warehouse" in check_log
    logs = [p for p in cluster.home.rglob("*.log") if p.is_file()]
    assert len(logs) > 20  # every task's log and every component's
    for secret in (settings.source.password, settings.target.password):
        assert len(secret) >= 8
        shown = [str(p.relative_to(cluster.home)) for p in logs if secret in p.read_text(errors="replace")]
        assert shown == []


def test_b_a_run_triggered_through_the_api_loads_just_its_tables_and_builds_their_models(api, settings):
    pg(settings, "DROP TABLE IF EXISTS marts.dim_provider")  # built again by this run alone
    run = api.trigger({"tables": SELF_CONTAINED, "force_full_refresh": True})
    state = api.wait_for_run(run["dag_run_id"])
    tis = api.task_instances(run["dag_run_id"])
    assert state == "success", _states(tis)
    status, tables = _run_report(settings, run["dag_run_id"])
    assert sorted((t["table"], t["strategy"], t["status"]) for t in tables) == [
        (name, "full", "success") for name in SELF_CONTAINED
    ]
    loaded = sorted(ti["rendered_map_index"] for ti in _extract_tis(tis) if ti["state"] == "success")
    assert loaded == SELF_CONTAINED
    dbt = {ti["task_id"]: ti["state"] for ti in tis if ti["task_id"].startswith("dbt_models.")}
    assert dbt["dbt_models.stg_opendental__provider.run"] == "success"
    assert dbt["dbt_models.stg_opendental__procedurelog.run"] == "skipped"
    (count,) = pg(settings, "SELECT COUNT(*) FROM marts.dim_provider")[0]
    (source_rows,) = pg(settings, "SELECT COUNT(*) FROM raw.provider WHERE _deleted_at IS NULL")[0]
    assert count == source_rows > 0


def test_b2_the_ui_logged_in_shows_the_runs_grid_table_labels_and_dbt_states(api, cluster):
    """Issue 2e: headless Chromium logs in through the login form and reads the run of test b; the
    screenshots stay in .local/test-artifacts/airflow-ui/."""
    [run] = [r for r in api.call("GET", "/api/v2/dags/etl_pipeline/dagRuns")["dag_runs"] if r["conf"]]
    tis = api.task_instances(run["dag_run_id"])
    [load_task] = {ti["task_id"] for ti in _extract_tis(tis)}  # the tier the three tables are in
    dbt = [ti["state"] for ti in tis if ti["task_id"].startswith("dbt_models.")]
    passwords = json.loads((cluster.home / "simple_auth_manager_passwords.json.generated").read_text())
    run_path = f"/dags/etl_pipeline/runs/{run['dag_run_id']}"
    with HeadlessUi(cluster.api_url, UI_ARTIFACTS) as ui:
        ui.log_in("admin", passwords["admin"])
        grid = ui.page(run_path, "Task Instances", "run")
        for group in ("validate", "extract_tiny", "dbt_models", "notify"):
            assert f"\n{group}\n" in grid
        mapped = ui.page(f"{run_path}/tasks/{load_task}/mapped", "3 Task Instances", "mapped-loads")
        for table in SELF_CONTAINED:
            assert f"\n{table}\nSuccess\n" in mapped, table
        models = ui.page(f"{run_path}/tasks/group/dbt_models", "Total Skipped", "dbt-models")
        assert f"Total Success\n{dbt.count('success')}\n" in models
        assert f"Total Skipped\n{dbt.count('skipped')}\n" in models
        assert "dbt_models.stg_opendental__provider.run\nSuccess\n" in models
    assert dbt.count("success") > 0 and dbt.count("skipped") > 0
    for name in ("run", "mapped-loads", "dbt-models"):
        assert (UI_ARTIFACTS / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "conf, field",
    [
        ({"tables": ["patient", "no_such_table"]}, "no_such_table"),
        ({"force_full_refesh": True}, "force_full_refesh"),
        ({"max_workers": "eight"}, "max_workers"),
    ],
)
def test_c_bad_conf_through_the_api_is_refused_before_anything_loads(api, cluster, settings, conf, field):
    try:
        run = api.trigger(conf)
    except urllib.error.HTTPError as refused:  # refused by the DAG's params when the run is created
        assert refused.code in (400, 422)
        assert field in refused.read().decode()
        return
    assert api.wait_for_run(run["dag_run_id"], 300) == "failed"
    tis = api.task_instances(run["dag_run_id"])
    assert not [ti for ti in _extract_tis(tis) if ti["state"] not in (None, "upstream_failed", "skipped")]
    failed = [ti["task_id"] for ti in tis if ti["state"] == "failed"]
    assert [t for t in failed if t.startswith("validate.")], failed
    log_dir = cluster.home / "logs" / "dag_id=etl_pipeline" / f"run_id={run['dag_run_id']}"
    log = "".join(p.read_text() for t in failed for p in log_dir.glob(f"task_id={t}/attempt=*.log"))
    assert field in log
    assert (
        _run_report(settings, run["dag_run_id"]) is None or _run_report(settings, run["dag_run_id"])[1] == []
    )


def test_d_a_worker_killed_mid_extract_leaves_the_retry_to_the_other_worker(api, cluster, settings):
    """The extract blocks on a source table held under LOCK TABLES ... WRITE, so its worker is killed
    while the task is running; the lock goes once the worker is dead."""
    holder = connect_source(settings.source_admin)
    try:
        holder.cursor().execute(f"LOCK TABLES {LOCKED_TABLE} WRITE")
        run = api.trigger({"tables": [LOCKED_TABLE], "force_full_refresh": True})
        running = _wait_for_running_extract(api, run["dag_run_id"])
        victim = _component_running(running["pid"], cluster)
        assert victim in ("worker-1", "worker-2"), (victim, running["pid"])
        cluster.kill_worker(victim)
    finally:
        holder.close()  # the lock with it
    state = api.wait_for_run(run["dag_run_id"])
    tis = api.task_instances(run["dag_run_id"])
    [extract] = _extract_tis(tis)
    assert state == "success", _states(tis)
    assert extract["try_number"] == 2 and extract["state"] == "success"
    # the dead worker's process group is gone: the second try ran on the surviving `extract` worker
    assert victim not in cluster.processes
    deep = _cli("verify", "--deep", "--json", "--tables", LOCKED_TABLE)
    results = json.loads(deep.stdout)
    assert deep.returncode == 0 and [r["table"] for r in results if r["ok"]] == [LOCKED_TABLE], deep.stdout


def _wait_for_running_extract(api: Api, run_id: str) -> dict:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        running = [ti for ti in _extract_tis(api.task_instances(run_id)) if ti["state"] == "running"]
        if running and running[0].get("pid"):
            time.sleep(3)  # into the read that the lock holds
            return running[0]
        time.sleep(1)
    pytest.fail(f"no extract of {LOCKED_TABLE} running in {run_id}: {_states(api.task_instances(run_id))}")


def test_f_a_run_stuck_past_its_deadline_and_its_timeout_alerts_twice(api, cluster, settings, slack):
    """The final `notify` never runs for a run that times out: the deadline alert (triggerer) and the
    DAG's failure callback (DAG processor) tell instead. The DAG processor re-parses the DAG with a
    20 s deadline and a 90 s run timeout; the run hangs on a locked source table."""
    cluster.restart(
        "dag-processor", {"ETL_NIGHTLY_DEADLINE_SECONDS": "20", "ETL_DAGRUN_TIMEOUT_SECONDS": "90"}
    )
    deadline = time.monotonic() + 120
    while api.call("GET", "/api/v2/dags/etl_pipeline/details")["dag_run_timeout"] != "PT1M30S":
        assert time.monotonic() < deadline, "the DAG processor never re-parsed the DAG"
        time.sleep(2)
    slack.messages.clear()
    holder = connect_source(settings.source_admin)
    try:
        holder.cursor().execute(f"LOCK TABLES {LOCKED_TABLE} WRITE")
        run = api.trigger({"tables": [LOCKED_TABLE]})
        state = api.wait_for_run(run["dag_run_id"], 300)
        alerts_by = time.monotonic() + 120  # the failure callback runs after the run is marked failed
        while time.monotonic() < alerts_by and len(_critical(slack)) < 2:  # both alerts
            time.sleep(2)
    finally:
        holder.close()
    assert state == "failed"
    texts = _critical(slack)
    # the deadline alert, sent by the triggerer for a run still unfinished 20 s after it was queued
    # (observed: for the run queued behind this one, not always for this one: see the closing note)
    assert [t for t in texts if "not finished by its deadline" in t], texts
    assert [t for t in texts if "run failed" in t and run["dag_run_id"] in t and "timed_out" in t], texts
    assert not [t for t in slack.texts() if "Nightly ETL" in t and ":white_check_mark:" in t]


def _critical(slack: SlackStandIn) -> list[str]:
    return [t for t in slack.texts() if ":rotating_light:" in t]
