"""The nightly `etl_pipeline` DAG end to end with `airflow dags test` on the test stack.

A small synthetic source (E2E_SCALE, default 0.01), analysed into tables.yml, then: the demo's path, a
first night of every table and model in full, then an incremental one after a simulated day and a
simulated OpenDental upgrade while the clinic keeps writing (`synth live`: new tables loaded, added
columns filled on every row, rows written after their table's load counted in flight, dbt green, INFO),
and a catch-up load with the writer stopped (deep parity on every table); a manual
run of a few tables with a forced full refresh (raw loaded, only their marts built, report stored, docs
published, Slack told INFO); a run where a listed table has vanished from the source (the other tables
load, dbt is skipped before it starts, Slack is told, the run fails); bad conf refused through the CLI;
a model failing in the night's build that heals on its own retry; the source tests naming a broken key.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from airflow_support import SlackStandIn, SmtpStandIn, airflow_home, dags_test
from security_support import (
    assert_no_leaks,
    collect_files,
    find_leaks,
    patient_needles,
    stack_secrets,
    state_tables_text,
)

from etl_pipeline.db import connect_source, connect_target
from etl_pipeline.dbt_runner import DBT_PROJECT_DIR
from etl_pipeline.settings import PROJECT_ROOT
from etl_pipeline.synthetic import generate, mutate
from etl_pipeline.synthetic.live import convert_to_innodb, writing_in_background
from etl_pipeline.synthetic.upgrade import upgrade

pytestmark = pytest.mark.e2e  # `make test-e2e`: about nine minutes, beside `make test`'s budget

SCALE = float(os.environ.get("E2E_SCALE", "0.01"))


def pg(settings, sql, params=None):
    conn = connect_target(settings.target)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall() if cur.description else []
        conn.commit()
        return rows
    finally:
        conn.close()


def mysql_admin(settings, sql):
    conn = connect_source(settings.source_admin)
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return cur.fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def slack():
    with SlackStandIn() as stand_in:
        yield stand_in


@pytest.fixture(scope="module")
def smtp():
    with SmtpStandIn("etl-mailer", "e2e-mail-password-4417") as stand_in:
        yield stand_in


@pytest.fixture(scope="module")
def nightly(settings, tmp_path_factory, slack, smtp):
    """Synthetic source + tables.yml + a migrated Airflow home; returns the Airflow environment."""
    base = tmp_path_factory.mktemp("nightly")
    extra = {
        "SLACK_WEBHOOK_URL": slack.url,
        "DBT_DOCS_DIR": str(base / "docs"),
        **smtp.env,
        "NOTIFY_EMAIL_TO": "on-call@clinic.example",
        "ETL_EXTRACT_RETRY_DELAY_SECONDS": "1",
        "ETL_DBT_RETRY_DELAY_SECONDS": "1",
    }
    # Airflow's metadata DB migrates in its own process while the source is built and analysed
    with ThreadPoolExecutor(max_workers=1) as pool:
        migrated = pool.submit(airflow_home, base / "airflow", extra)
        with open(os.devnull, "w") as quiet:
            generate(settings.source_admin, SCALE, 5, out=quiet)
        _cli("analyze-schema")
        env = migrated.result()
    (base / "airflow" / "run-output").mkdir()
    return env


@pytest.fixture(scope="module")
def first_night(nightly, slack):
    """The first nightly run, every table in full and every model: the warehouse the other runs start
    from (dbt's on-run-start wants every raw table). Returns (exit code, output)."""
    return _run(nightly, "first_night", {"force_full_refresh": True}, slack)


def _cli(*args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "etl_pipeline.cli", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"cli {' '.join(args)}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"


def _run(env, name: str, conf=None, slack=None):
    """One `airflow dags test`; its output is kept as run-output/<name>.log (post-mortem, leak grep)."""
    if slack is not None:
        slack.messages.clear()
    proc = dags_test("etl_pipeline", env, conf=conf, timeout=900)
    output = proc.stdout + proc.stderr
    (Path(env["AIRFLOW_HOME"]) / "run-output" / f"{name}.log").write_text(output)
    return proc.returncode, output


def _latest_report(settings):
    return pg(
        settings,
        "SELECT run_id, status, totals, tables FROM etl.nightly_runs ORDER BY finished_at DESC LIMIT 1",
    )[0]


def test_full_then_incremental_run(settings, nightly, first_night, slack):
    """The demo's path: every table and every model, then one day of activity and an incremental run."""
    code, output = first_night
    assert code == 0, output[-4000:]
    _run_id, status, totals, tables = _latest_report(settings)
    assert status == "success" and totals["failed"] == 0 and totals["tables"] >= 30
    assert {t["status"] for t in tables} == {"success"} and all(t["parity_ok"] for t in tables)
    (source_patients,) = mysql_admin(settings, "SELECT COUNT(*) FROM patient")[0]
    assert pg(settings, "SELECT COUNT(*) FROM raw.patient WHERE _deleted_at IS NULL")[0][0] == source_patients
    assert pg(settings, "SELECT to_regclass('marts.fct_ar_aging') IS NOT NULL")[0][0]
    # the next day: the clinic's work, and an OpenDental upgrade before the night (added, widened,
    # renamed and dropped columns, two new tables), with the dbt staging views on raw in place
    mutate(settings.source_admin, 1, 3, quiet=True)
    upgrade(settings.source_admin, seed=5)
    # and the front desk keeps working through the night: inserts, updates, deletes, InnoDB
    # transactions held open so keys commit out of order
    convert_to_innodb(settings.source_admin, ["paysplit", "payment", "securitylog"])
    with writing_in_background(settings.source_admin, rate=5, seed=3, max_seconds=600) as writing:
        code, output = _run(nightly, "incremental", None, slack)
    assert code == 0, output[-4000:]
    assert writing.report is not None and writing.report.operations > 100 and writing.report.held_transactions
    _run_id, status, totals, tables = _latest_report(settings)
    assert status == "success" and {t["strategy"] for t in tables} & {"incremental", "append_only"}
    # rows written after their table's load are tomorrow's: counted, and the night stays INFO with dbt run
    assert totals["in_flight"] > 0 and totals["failed"] == 0
    assert '"severity": "INFO"' in output and '"dbt": "success"' in output
    assert sorted(t["table"] for t in tables if t.get("new")) == ["apptreminderrule", "erxlog"]
    night_texts = "\n".join(slack.texts())
    assert "new table: erxlog" in night_texts and f"rows in flight: {totals['in_flight']}" in night_texts
    assert "dbt_models.stg_opendental__procedurelog.run" in output and "state=success" in output
    # the next load, with the writer stopped (the nightly's load step from the terminal, no dbt),
    # catches up: raw equals the source in full
    time.sleep(2)  # a later night: a window ends a second before the source clock, past the last write
    _cli("run")
    assert (
        pg(settings, "SELECT COUNT(*) FROM raw.patient WHERE _deleted_at IS NULL")[0][0]
        == mysql_admin(settings, "SELECT COUNT(*) FROM patient")[0][0]
    )
    # every live row, untouched for years or not, holds the added columns' values
    assert pg(
        settings,
        "SELECT count(*) FROM raw.patient WHERE _deleted_at IS NULL AND preferredpronoun IS DISTINCT FROM 0",
    ) == [(0,)]
    assert pg(
        settings,
        "SELECT count(*) FROM raw.paysplit WHERE _deleted_at IS NULL AND isinterestsplit IS DISTINCT FROM 0",
    ) == [(0,)]
    assert pg(
        settings,
        "SELECT count(*) FROM raw.definition WHERE _deleted_at IS NULL AND itemextra IS DISTINCT FROM ''",
    ) == [(0,)]
    # raw equals the source in full on every table
    listed = _deep_verify()
    assert {"patient", "procedurelog", "appointment"} <= set(listed)
    assert _deep_verify("--tables", "erxlog,apptreminderrule") == ["apptreminderrule", "erxlog"]


def _deep_verify(*args: str) -> list[str]:
    """`verify --deep` from the terminal: the tables checked (it fails naming any that differ)."""
    proc = subprocess.run(
        [sys.executable, "-m", "etl_pipeline.cli", "verify", "--deep", "--json", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    results = json.loads(proc.stdout)
    differing = [r for r in results if not r["ok"]]  # counts and names only
    assert proc.returncode == 0 and differing == [], (
        json.dumps(differing, indent=1)[-6000:] + proc.stderr[-2000:]
    )
    return sorted(r["table"] for r in results)


# tables whose dbt models read no other raw table's models: a run of just these builds its marts from scratch
SELF_CONTAINED = ["clinic", "operatory", "provider"]


def test_manual_run_of_some_tables_loads_them_and_builds_their_marts(
    settings, nightly, first_night, slack, smtp
):
    pg(settings, "DROP TABLE IF EXISTS marts.dim_provider")  # built again by this run alone
    code, output = _run(nightly, "manual_run", {"tables": SELF_CONTAINED, "force_full_refresh": True}, slack)
    assert code == 0, output[-4000:]
    assert "state=success" in output
    _run_id, status, totals, tables = _latest_report(settings)
    assert status == "success" and totals["failed"] == 0
    assert sorted((t["table"], t["strategy"], t["status"], t["parity_ok"]) for t in tables) == [
        (name, "full", "success", True) for name in SELF_CONTAINED
    ]
    (source_rows,) = mysql_admin(settings, "SELECT COUNT(*) FROM provider")[0]
    assert pg(settings, "SELECT COUNT(*) FROM raw.provider")[0][0] == source_rows > 0
    assert pg(settings, "SELECT COUNT(*) FROM marts.dim_provider")[0][0] == source_rows
    # only the models downstream of these tables ran: the others' tasks were skipped before they started
    [skipped] = [line for line in output.splitlines() if "do not depend on the tables of this run" in line]
    assert "stg_opendental__procedurelog" in skipped and "stg_opendental__provider" not in skipped
    assert "starting task_id=dbt_models.stg_opendental__procedurelog.run" not in output
    assert os.path.exists(os.path.join(nightly["DBT_DOCS_DIR"], "index.html"))
    assert any(":white_check_mark:" in text and "Nightly ETL" in text for text in slack.texts())
    assert any(subject.startswith("[INFO]") and "Nightly ETL" in subject for subject in smtp.subjects())


def test_a_vanished_table_fails_alone_dbt_is_skipped_and_slack_is_told(settings, nightly, slack, smtp):
    mysql_admin(settings, "RENAME TABLE recall TO recall_hidden")
    try:
        code, output = _run(nightly, "vanished_table", {"tables": ["clinic", "provider", "recall"]}, slack)
    finally:
        mysql_admin(settings, "RENAME TABLE recall_hidden TO recall")
    assert code != 0
    _run_id, _status, _totals, tables = _latest_report(settings)
    by_table = {t["table"]: t["status"] for t in tables}
    assert by_table == {"clinic": "success", "provider": "success", "recall": "failed"}
    assert '"dbt": "skipped"' in output
    # the closed gate skipped the group before any dbt task started (Cosmos' empty done-marker runs: none_failed)
    assert re.findall(r"starting task_id=(dbt_models\.\S+)", output) == [
        "dbt_models.dbt_producer_watcher_done"
    ]
    [text] = [t for t in slack.texts() if "Nightly ETL" in t]
    assert "WARNING" in text and "table failed: recall" in text
    mail = smtp.messages[-1]
    assert mail["Subject"].startswith("[WARNING]") and "table failed: recall" in mail.get_content()


@pytest.mark.parametrize(
    "conf, message",
    [
        ({"max_workers": 99}, "max_workers"),  # refused by the params (the others: test_etl_dag)
        # refused by the validate step, which Airflow hands the conf's keys unread
        ({"force_full_refesh": True}, "did you mean 'force_full_refresh'"),
    ],
)
def test_bad_conf_is_refused_through_the_cli(nightly, conf, message):
    code, output = _run(nightly, "bad_conf_" + re.sub(r"\W+", "_", message), conf)
    assert code != 0
    assert message in output


def test_a_model_failing_in_the_build_heals_on_its_own_retry(settings, nightly, first_night):
    """Watcher mode's per-model retry. A session holds a lock on marts.dim_provider, so in the night's
    one `dbt build` the model cannot swap its new table in (lock_timeout 3 s) and fails; once its task
    waits for its retry the lock goes, and the retry re-runs just that model. The night ends INFO,
    with the docs published."""
    import sqlite3
    import threading

    locker = connect_target(settings.target)
    locker.cursor().execute(
        "CREATE SCHEMA IF NOT EXISTS marts; CREATE TABLE IF NOT EXISTS marts.dim_provider (provider_id int)"
    )
    locker.commit()
    locker.cursor().execute("LOCK TABLE marts.dim_provider IN ACCESS EXCLUSIVE MODE")
    first_try_failed = threading.Event()

    def release_the_lock_once_the_task_waits_for_its_retry():
        metadata = Path(nightly["AIRFLOW_HOME"]) / "airflow.db"
        deadline = time.monotonic() + 600
        try:
            while time.monotonic() < deadline:
                with sqlite3.connect(metadata, timeout=30) as db:
                    if db.execute(
                        "SELECT 1 FROM task_instance WHERE task_id = 'dbt_models.dim_provider.run' "
                        "AND state = 'up_for_retry'"
                    ).fetchone():
                        first_try_failed.set()
                        return
                time.sleep(0.2)
        finally:
            locker.rollback()

    watcher = threading.Thread(target=release_the_lock_once_the_task_waits_for_its_retry, daemon=True)
    watcher.start()
    try:
        code, output = _run(
            dict(nightly, PGOPTIONS="-c lock_timeout=3000"), "model_retry", {"tables": ["provider"]}
        )
    finally:
        watcher.join(timeout=60)
        locker.close()
    assert first_try_failed.is_set(), "dim_provider did not fail in the build: the test proves nothing"
    assert "Retry attempt #1" in output and "model.dbt_dental_models.dim_provider" in output
    assert code == 0, output[-4000:]
    assert '"severity": "INFO"' in output and '"dbt": "success"' in output
    assert (
        pg(settings, "SELECT COUNT(*) FROM marts.dim_provider")[0][0]
        == mysql_admin(settings, "SELECT COUNT(*) FROM provider")[0][0]
        > 0
    )


def test_the_source_tests_name_a_broken_raw_key(settings, nightly, first_night):
    """The nightly's `source_tests` step (run before the models, which wait for it): a raw table whose key
    is no longer unique fails it, naming the test. (The loader and `verify` keep raw keys unique, so
    the table is broken by hand here.)"""
    from etl_pipeline.dbt_runner import DbtError
    from etl_pipeline.dbt_steps import source_tests

    conn = connect_target(settings.target)
    try:
        cur = conn.cursor()
        cur.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'raw.provider'::regclass AND contype = 'p'"
        )
        (pk,) = cur.fetchone()
        cur.execute(f'ALTER TABLE raw.provider DROP CONSTRAINT "{pk}"')
        cur.execute("INSERT INTO raw.provider SELECT * FROM raw.provider LIMIT 1")
        conn.commit()
        with pytest.raises(DbtError, match="source_unique_opendental_provider_provnum"):
            source_tests(settings, ["provider"])
        assert source_tests(settings, ["clinic"])["passed"] >= 2  # only the run's tables are tested
    finally:
        conn.rollback()
        conn.close()
        _cli("run", "--tables", "provider", "--full-refresh")


# --- leak grep over everything the Airflow runs above produced (kept last: it runs after them) ---


@pytest.fixture(autouse=True)
def _keep_each_runs_output(request):
    """The Slack and mail stand-ins hold only the latest run's messages: keep each test's for the leak grep
    (`_run` keeps each run's output)."""
    yield
    if "nightly" not in request.fixturenames:
        return
    kept = Path(request.getfixturevalue("nightly")["AIRFLOW_HOME"]) / "run-output"
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    if "slack" in request.fixturenames:
        (kept / f"{name}.slack.json").write_text(json.dumps(request.getfixturevalue("slack").messages))
    if "smtp" in request.fixturenames:  # the mail stand-in, where the module has one
        mails = [m.as_string() for m in request.getfixturevalue("smtp").messages]
        (kept / f"{name}.mail.txt").write_text("\n\n".join(mails))


def test_the_airflow_runs_leaked_no_secret_and_no_patient_data(
    local_stack, settings, nightly, slack, tmp_path
):
    home = Path(nightly["AIRFLOW_HOME"])
    # `dags test` prints every task's log into the run's output, kept per run by `_run`
    failure_log = home / "run-output" / "vanished_table.log"
    assert failure_log.exists(), "the vanished-table run left no output (run the whole module)"
    failure_text = failure_log.read_text(errors="replace")
    # the failure path really logged, or the grep below would prove nothing
    assert _failed_run_with_recall(settings) in failure_text
    assert "recall: load failed (SourceTableMissing)" in failure_text
    files = [p for p in home.rglob("*") if p.is_file()]  # task + dag processor logs, runs' output, airflow.db
    files += collect_files(
        Path(nightly["DBT_DOCS_DIR"]), DBT_PROJECT_DIR / "logs" / "dbt.log"
    )  # dbt's own log
    assert len(list((home / "run-output").glob("*.log"))) >= 5 and any(p.suffix == ".json" for p in files)
    texts = {f"slack message {i}": json.dumps(m) for i, m in enumerate(slack.messages)}
    texts.update(state_tables_text(settings))
    assert "etl.nightly_runs" in texts and "etl.load_runs" in texts
    # every password of the stack and of the notifiers' stand-ins, and real patient values
    notifier_secrets = {k: v for k, v in nightly.items() if k in ("SMTP_PASSWORD", "SLACK_WEBHOOK_URL")}
    needles = stack_secrets(local_stack, notifier_secrets) + patient_needles(settings)

    assert_no_leaks(needles, texts, files)

    # negative control: the same grep finds a password and a patient value planted in a copy of that task log
    planted = tmp_path / "planted.log"
    secret, patient = needles[0], next(n for n in needles if n.kind == "patient.SSN")
    planted.write_text(failure_text + f"\nconnect(password={secret.value}) {patient.value}\n")
    assert set(find_leaks(needles, paths=[planted])) == {
        f"{planted}: {secret.kind}",
        f"{planted}: {patient.kind}",
    }


def _failed_run_with_recall(settings) -> str:
    rows = pg(
        settings,
        "SELECT run_id FROM etl.nightly_runs WHERE tables @> %s::jsonb ORDER BY finished_at DESC",
        (json.dumps([{"table": "recall", "status": "failed"}]),),
    )
    assert rows, "the vanished-table run left no report (run the whole module)"
    return rows[0][0]
