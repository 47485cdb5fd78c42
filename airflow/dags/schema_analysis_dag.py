"""
### schema_analysis

Re-reads the OpenDental source's structure every Sunday at 02:00 (America/Chicago) and on demand,
and keeps `tables.yml` (what the nightly ETL copies, and how) in step with it.

Steps: **validate_source_connection** (read-only user, fails fast) → **backup_tables_yml** →
**analyse** (a few set-based `information_schema` queries; writes a candidate file) →
**report_changes** (JSON + Markdown change report with INFO / WARNING / CRITICAL; refuses a candidate
that lost more than `max_table_loss` of the tables unless triggered with `force`) →
**validate_and_publish** (schema check, then an atomic rename over `tables.yml`) →
**notify** (always runs; one JSON log line and Slack when `SLACK_WEBHOOK_URL` is set).

Hand-made decisions live in `tables.overrides.yml` and survive every run. What to do on a CRITICAL
change: read the Markdown report named in the notification (removed tables or columns, primary key
changes, incompatible retypes) and check the dbt models that use them before the next nightly run.
All logic is in `etl_pipeline.schema.workflow`; this file only wires the steps.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from etl_pipeline.nightly_scheduling import SCHEMA_DAGRUN_TIMEOUT, SCHEMA_TASK_TIMEOUT

STEP_TASKS = (
    "validate_source_connection",
    "backup_tables_yml",
    "analyse",
    "report_changes",
    "validate_and_publish",
)


@dag(
    dag_id="schema_analysis",
    schedule="0 2 * * 0",
    start_date=pendulum.datetime(2026, 1, 4, tz="America/Chicago"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=SCHEMA_DAGRUN_TIMEOUT,
    # each step's time limit (nightly_scheduling): a source that stops answering fails the step
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "execution_timeout": SCHEMA_TASK_TIMEOUT,
    },
    params={
        "force": Param(
            False, type="boolean", description="Replace tables.yml even if the analysis lost many tables"
        )
    },
    doc_md=__doc__,
    tags=["etl", "schema"],
)
def schema_analysis():
    @task
    def validate_source_connection() -> dict:
        from etl_pipeline.schema.workflow import check_source
        from etl_pipeline.settings import task_settings

        return check_source(task_settings())

    @task
    def backup_tables_yml() -> dict:
        from etl_pipeline.schema.workflow import backup_tables_yml as backup
        from etl_pipeline.settings import task_settings

        settings = task_settings()
        path = backup(settings.tables_yml, settings.backups_dir)
        return {"backup": str(path) if path else None}

    @task
    def analyse() -> dict:
        from etl_pipeline.schema.workflow import write_candidate
        from etl_pipeline.settings import task_settings

        settings = task_settings()
        return write_candidate(settings, settings.tables_yml)

    @task
    def report_changes(analysis: dict) -> dict:
        from etl_pipeline.schema.workflow import report_changes as report
        from etl_pipeline.settings import task_settings

        settings = task_settings()
        force = bool(get_current_context()["params"].get("force"))
        return report(settings, settings.tables_yml, analysis, force=force)

    @task
    def validate_and_publish(analysis: dict) -> dict:
        from pathlib import Path

        from etl_pipeline.schema.workflow import publish_candidate
        from etl_pipeline.settings import task_settings

        return publish_candidate(task_settings().tables_yml, Path(analysis["candidate"]))

    @task(trigger_rule="all_done", retries=0)
    def notify() -> None:
        from etl_pipeline.schema.workflow import notify_run

        ti = get_current_context()["ti"]
        results = {task_id: ti.xcom_pull(task_ids=task_id) for task_id in STEP_TASKS}
        notify_run(results)

    checked = validate_source_connection()
    backed_up = backup_tables_yml()
    analysis = analyse()
    reported = report_changes(analysis)
    published = validate_and_publish(analysis)
    checked >> backed_up >> analysis
    reported >> published >> notify()


schema_analysis()
