"""The schema_analysis DAG: imports cleanly without connecting anywhere, and runs end to end."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from schema_support import OPENDENTAL_LIKE, drop_database, execute, scratch_settings

from etl_pipeline.errors import EtlError
from etl_pipeline.schema.tables_config import load_tables_config
from etl_pipeline.schema.workflow import notify_run
from etl_pipeline.settings import PROJECT_ROOT

DAGS = PROJECT_ROOT / "airflow" / "dags"
AIRFLOW = PROJECT_ROOT / ".venv" / "bin" / "airflow"


def _airflow_env(home: Path) -> dict:
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    }


def test_dag_imports_with_its_schedule_and_limits(tmp_path, monkeypatch):
    for key, value in _airflow_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    # point the source at a closed port: importing the DAG must not connect anywhere
    monkeypatch.setenv("SOURCE_PORT", "1")
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / "schema_analysis_dag.py"))
    assert bag.import_errors == {}
    dag = bag.dags["schema_analysis"]
    assert dag.timetable.expression == "0 2 * * 0"
    assert str(dag.timetable.timezone.name) == "America/Chicago"
    assert dag.start_date.tzinfo is not None
    assert (dag.max_active_runs, dag.catchup, dag.dagrun_timeout.total_seconds()) == (1, False, 1800)
    assert dag.default_args["retries"] == 2
    assert dag.doc_md and "schema_analysis" in dag.doc_md
    assert [t.task_id for t in dag.tasks] == [
        "validate_source_connection",
        "backup_tables_yml",
        "analyse",
        "report_changes",
        "validate_and_publish",
        "notify",
    ]
    assert dag.get_task("notify").trigger_rule == "all_done"
    assert dag.get_task("analyse").upstream_task_ids == {"backup_tables_yml"}
    assert dag.get_task("validate_and_publish").upstream_task_ids == {"analyse", "report_changes"}


def test_notify_run_reports_a_failed_step_and_fails_the_run(caplog):
    results = {
        "validate_source_connection": {"tables": 3},
        "backup_tables_yml": {"backup": None},
        "analyse": None,
        "report_changes": None,
        "validate_and_publish": None,
    }
    with pytest.raises(EtlError, match="failed at step analyse"):
        notify_run(results)
    line = next(r.getMessage() for r in caplog.records if "etl_notification" in r.getMessage())
    record = json.loads(line)
    assert record["severity"] == "CRITICAL" and record["summary"]["failed_step"] == "analyse"


def test_airflow_dags_test_runs_the_analysis(settings, tmp_path):
    s = scratch_settings(settings, "schema_t_dag", tmp_path / "config")
    execute(s, *OPENDENTAL_LIKE)
    home = tmp_path / "airflow"
    home.mkdir()
    env = {
        **_airflow_env(home),
        "ETL_CONFIG_DIR": str(s.config_dir),
        "SOURCE_DATABASE": s.source.database,
        "SOURCE_USER": s.source.user,
        "SOURCE_PASSWORD": s.source.password,
        "SOURCE_PORT": str(s.source.port),
    }
    try:
        migrate = subprocess.run(
            check=False,
            args=[str(AIRFLOW), "db", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert migrate.returncode == 0, migrate.stderr[-2000:]
        run = subprocess.run(
            check=False,
            args=[str(AIRFLOW), "dags", "test", "schema_analysis"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=PROJECT_ROOT,
        )
        output = run.stdout + run.stderr
        assert run.returncode == 0, output[-3000:]
        assert "state=success" in output
        assert '"event": "etl_notification"' in output and '"severity": "INFO"' in output
        config = load_tables_config(s.tables_yml)
        assert config.tables["patient"].strategy == "incremental"
        assert len(list(s.reports_dir.glob("schema_changes_*.md"))) == 1
    finally:
        drop_database(s)


@pytest.mark.slow
def test_failed_run_notifies_critical_and_fails(tmp_path):
    """Unreachable source: the check fails (after its 2 retries), notify still runs, says CRITICAL, run fails."""
    home = tmp_path / "airflow"
    home.mkdir()
    config = tmp_path / "config"
    config.mkdir()
    env = {
        **_airflow_env(home),
        "ETL_CONFIG_DIR": str(config),
        "SOURCE_PORT": "1",
        "SOURCE_USER": "etl_reader",
        "SOURCE_PASSWORD": "x",
        "ETL_ENV_FILE": str(tmp_path / "none.env"),
    }
    migrate = subprocess.run(
        check=False,
        args=[str(AIRFLOW), "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    run = subprocess.run(
        check=False,
        args=[str(AIRFLOW), "dags", "test", "schema_analysis"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=PROJECT_ROOT,
    )
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert '"severity": "CRITICAL"' in output and '"failed_step": "validate_source_connection"' in output
    assert "state=failed" in output
    assert not (config / "tables.yml").exists()
