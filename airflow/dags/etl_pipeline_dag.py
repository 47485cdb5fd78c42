"""
### etl_pipeline

The nightly copy of the OpenDental source into the analytics PostgreSQL, then the dbt models.
Runs every day at 21:00 America/Chicago (and on demand from the trigger form). NIGHTLY_RUN.md is
the runbook: the same steps, what the notification means, what to do when one fails.

1. **validate**: trigger options (unknown table names are refused by name; a run starting inside the
   practice's business hours is refused where the guard is on, unless `allow_business_hours`), `tables.yml` present,
   valid, generated for this environment and not stale (warns at 30 days, fails at 90); source and
   target reachable; a quick drift check of the live schema against `tables.yml` (reported only: new
   tables are planned and loaded tonight as the schema analysis would classify them, and the weekly
   `schema_analysis` adds them to `tables.yml`; changed ones follow the loader's rules).
   `skip_validation` skips the file and drift checks (never the connection check).
2. **plan**: reads `tables.yml` at run time and lists, per tier, the tables to load (largest first).
3. **extract_large / extract_medium / extract_small / extract_tiny**: one mapped task per table
   (labelled with the table name), all four tiers start together, large first by priority; at most
   `max_workers` large tables load at once. A failing table does not stop the others; each loaded
   table emits its `postgres://.../raw/<table>` Asset event.
4. **verify** (source vs raw parity) → **report** (per table strategy, rows, seconds, status and
   totals in `etl.nightly_runs` and XCom) → **pipeline_success** (a short circuit).
5. **dbt**: `dbt source freshness` → the source tests (raw keys; of tonight's tables
   whose raw changed since their tests last passed) → **dbt_selection** (with `tables`,
   only the models that depend on them) → the Cosmos task group over `dbt_dental_models` in watcher
   mode (one `dbt build`, each model's tests right after it; a task per model and per model's tests
   shows its result and retries that node alone) → `dbt docs generate`, published to `DBT_DOCS_DIR` for
   the Cosmos docs plugin. Skipped when loading was incomplete.
6. **notify**: always runs: severity, counts, failed tables, failed dbt models and tests; a JSON log
   line, Slack and email when configured. The run is marked failed unless everything succeeded.
   When the run itself fails (timed out, killed, a task failed) the DAG's failure callback alerts
   CRITICAL, and a deadline alert does when the run is not finished 5 hours after it was queued
   (02:00 America/Chicago for the 21:00 run; ETL_NIGHTLY_DEADLINE_SECONDS): `etl_pipeline.run_alerts`.

The source and the warehouse are the Airflow connections `opendental_source` and `analytics_warehouse`,
read when a task runs (AIRFLOW_CONN_*, a secrets backend or the metadata database); Cosmos renders the
dbt profile from `analytics_warehouse` (etl_pipeline.cosmos_profile).

This file only wires the steps: each task is one call into the `etl_pipeline` package, and Cosmos'
watcher internals live in `etl_pipeline.cosmos_watcher`. Parsing it reads nothing but `manifest.json`
(built by `make manifest`, never by parsing this file).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import AssetAlias, Param, dag, get_current_context, task, task_group
from cosmos import DbtTaskGroup, ExecutionConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior, TestIndirectSelection

from etl_pipeline import dbt_steps, nightly_checks, nightly_plan, nightly_report, run_alerts
from etl_pipeline.cosmos_profile import warehouse_profile
from etl_pipeline.cosmos_watcher import (
    DBT_TRIGGER_RULE,
    consumers_after_producer,
    dbt_gate,
    failed_dbt_nodes,
    skip_unselected_models,
)
from etl_pipeline.dbt_runner import (
    DBT_MANIFEST,
    DBT_PROJECT_DIR,
    DBT_PROJECT_NAME,
    default_target,
)
from etl_pipeline.nightly_notify import notify_run
from etl_pipeline.nightly_scheduling import (
    CONNECTION_RETRIES,
    CONNECTION_RETRY_DELAY,
    DBT_BUILD_TIMEOUT,
    DBT_POOL,
    DBT_QUEUE,
    DBT_RETRY_DELAY,
    DBT_STEP_TIMEOUT,
    DRIFT_CHECK_TIMEOUT,
    ETL_DAGRUN_TIMEOUT,
    EXTRACT_POOL,
    EXTRACT_PRIORITY,
    EXTRACT_QUEUE,
    EXTRACT_RETRIES,
    EXTRACT_RETRY_DELAY,
    EXTRACT_TIMEOUT,
    MAX_MAPPED_LOADS,
    NIGHTLY_DEADLINE,
    TASK_TIMEOUT,
    VERIFY_TIMEOUT,
)
from etl_pipeline.schema.tables_config import TIERS
from etl_pipeline.settings import task_settings

LOW_WORKERS, HIGH_WORKERS = nightly_checks.MAX_WORKERS
PARAMS = {
    "allow_business_hours": Param(
        False,
        type="boolean",
        description="Run even inside the practice's business hours (BUSINESS_HOURS; refused there by "
        "default in prod)",
    ),
    "force_full_refresh": Param(False, type="boolean", description="Reload every table in full"),
    "max_workers": Param(
        nightly_checks.DEFAULT_MAX_WORKERS,
        type="integer",
        minimum=LOW_WORKERS,
        maximum=HIGH_WORKERS,
        description=f"How many large tables load at once ({LOW_WORKERS}-{HIGH_WORKERS})",
    ),
    "skip_validation": Param(
        False,
        type="boolean",
        description="Skip the tables.yml and drift checks (connections are still checked)",
    ),
    "tables": Param(
        None,
        type=["null", "array"],
        items={"type": "string", "minLength": 1},
        uniqueItems=True,
        description="Only these tables (source names), and only the dbt models that depend on them. "
        "Empty = all enabled tables.",
    ),
}
RAW_TABLES = AssetAlias(nightly_plan.RAW_TABLES_ALIAS)

DBT_GROUP = "dbt_models"
# every dbt task skips unless `pipeline_success` let the run through; with `tables`, the other models skip
DBT_GATE = dbt_gate("pipeline_success", DBT_MANIFEST)
PROJECT_CONFIG = ProjectConfig(
    dbt_project_path=DBT_PROJECT_DIR,
    manifest_path=DBT_MANIFEST,
    project_name=DBT_PROJECT_NAME,
    install_dbt_deps=False,
)
# the dbt profile from the `analytics_warehouse` connection, read when a dbt task runs
PROFILE_CONFIG = warehouse_profile(default_target())
# WATCHER: one producer task runs a single `dbt build` (dbt's own threads, tests right after each model);
# every model/test task reports its node's result and, when retried, re-runs that node alone.
# cautious: a `tables` run builds only the tests whose models are all selected (a relationships test to
# a model of another table waits for a full run).
EXECUTION_CONFIG = ExecutionConfig(
    execution_mode=ExecutionMode.WATCHER,
    invocation_mode=InvocationMode.DBT_RUNNER,
    test_indirect_selection=TestIndirectSelection.CAUTIOUS,
    setup_operator_args={
        # the source tests ran in their own task before the models
        "dbt_cmd_flags": ["--indirect-selection", "cautious", "--exclude", "source:*"],
        # dbt at its own pace in a child process while the producer turns its JSON log into per-node
        # XComs (in-process, dbt's threads would wait on every XCom write)
        "invocation_mode": InvocationMode.SUBPROCESS,
        "execution_timeout": DBT_BUILD_TIMEOUT,  # the whole build; a node's task gets DBT_STEP_TIMEOUT
    },
)
RENDER_CONFIG = RenderConfig(
    load_method=LoadMode.DBT_MANIFEST,
    test_behavior=TestBehavior.AFTER_EACH,
    emit_datasets=False,
    enable_mock_profile=False,
    # the build runs a relationships test once both of its models exist and reports it with each
    # model's tests; a task of its own would see nothing
    should_detach_multiple_parents_tests=False,
)
DBT_OPERATOR_ARGS = {
    "pool": DBT_POOL,
    "queue": DBT_QUEUE,
    "trigger_rule": DBT_TRIGGER_RULE,
    "pre_execute": DBT_GATE,
    "retry_delay": DBT_RETRY_DELAY,
    "execution_timeout": DBT_STEP_TIMEOUT,
}


# --- 1. validate -------------------------------------------------------------------------------------


@task
def check_params(params: dict | None = None, dag_run=None) -> dict:
    return nightly_checks.check_params(dict(params), task_settings(), conf=dag_run.conf)


@task
def check_tables_config(options: dict) -> dict:
    return nightly_checks.check_tables_config(task_settings(), options)


@task(retries=CONNECTION_RETRIES, retry_delay=CONNECTION_RETRY_DELAY)
def check_connections() -> dict:
    return nightly_checks.check_connections(task_settings())


@task(execution_timeout=DRIFT_CHECK_TIMEOUT)
def drift_check(options: dict) -> dict:
    return nightly_checks.drift_check(task_settings(), options)


@task_group
def validate() -> dict:
    options = check_params()
    validation = check_tables_config(options)
    drift = drift_check(options)
    validation >> check_connections() >> drift
    return {"options": options, "validation": validation, "drift": drift}


# --- 2. plan, 3. extract -----------------------------------------------------------------------------


@task
def plan(options: dict) -> dict:
    return nightly_plan.plan_run(task_settings(), options)


@task
def tables(full_plan: dict, tier: str) -> list[dict]:
    return full_plan[tier]


@task(
    pool=EXTRACT_POOL,
    queue=EXTRACT_QUEUE,
    retries=EXTRACT_RETRIES,
    retry_delay=EXTRACT_RETRY_DELAY,
    execution_timeout=EXTRACT_TIMEOUT,
    map_index_template="{{ table_label }}",
    outlets=[RAW_TABLES],
    max_active_tis_per_dagrun=MAX_MAPPED_LOADS,
)
def load(item: dict) -> dict:
    return nightly_plan.load_planned_table(item, get_current_context())


@task_group
def extract(full_plan: dict, tier: str) -> None:
    load.override(priority_weight=EXTRACT_PRIORITY[tier]).expand(item=tables(full_plan, tier))


# --- 4. verify, report, the gate ----------------------------------------------------------------------


@task(trigger_rule="all_done", execution_timeout=VERIFY_TIMEOUT)
def verify(run_id: str | None = None) -> dict:
    return nightly_report.verify_run(task_settings(), run_id)


@task(trigger_rule="all_done")
def report(full_plan: dict | None, parity: dict | None, run_id: str | None = None) -> dict:
    return nightly_report.build_report(task_settings(), run_id, full_plan, parity)


@task.short_circuit(ignore_downstream_trigger_rules=False)
def pipeline_success(run_report: dict | None) -> bool:
    return nightly_report.pipeline_success(run_report)


# --- 5. dbt ------------------------------------------------------------------------------------------


@task(pool=DBT_POOL, queue=DBT_QUEUE, execution_timeout=DBT_STEP_TIMEOUT)
def source_freshness() -> dict:
    return dbt_steps.source_freshness(task_settings())


@task(pool=DBT_POOL, queue=DBT_QUEUE, execution_timeout=DBT_STEP_TIMEOUT)
def source_tests(run_report: dict) -> dict:
    """The raw sources' tests of tonight's tables whose raw changed since their tests last passed."""
    return dbt_steps.nightly_source_tests(task_settings(), [t["table"] for t in run_report["tables"]])


@task(pool=DBT_POOL, queue=DBT_QUEUE)
def dbt_selection(params: dict | None = None, dag=None) -> list[str] | None:
    """With `tables`: the models that depend on them; the other models' tasks are skipped here."""
    return skip_unselected_models(dag.task_group_dict[DBT_GROUP], params["tables"], DBT_MANIFEST)


@task(
    pool=DBT_POOL,
    queue=DBT_QUEUE,
    trigger_rule="all_done",
    pre_execute=DBT_GATE,
    execution_timeout=DBT_STEP_TIMEOUT,
)
def docs_generate(ti=None) -> dict:
    """After every dbt task: the docs when every model and test succeeded (a retry that healed one counts)."""
    return dbt_steps.generate_docs(task_settings(), failed_nodes=failed_dbt_nodes(ti, DBT_GROUP))


# --- 6. notify ---------------------------------------------------------------------------------------


@task(trigger_rule="all_done", retries=0)
def notify(
    validation: dict | None,
    drift: dict | None,
    run_report: dict | None,
    freshness: dict | None,
    docs: dict | None,
    run_id: str | None = None,
    ti=None,
) -> str:
    return notify_run(
        run_id=run_id,
        validation=validation,
        drift=drift,
        report=run_report,
        freshness=freshness,
        docs=docs,
        dbt_failures=failed_dbt_nodes(ti, DBT_GROUP),
    )


@dag(
    dag_id="etl_pipeline",
    schedule="0 21 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="America/Chicago"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=ETL_DAGRUN_TIMEOUT,
    # the nights `notify` never reports: a run that fails (timed out, killed) or is not done by morning
    on_failure_callback=run_alerts.run_failed,
    deadline=run_alerts.not_finished_alert(NIGHTLY_DEADLINE),  # None under `dags test` (run_alerts)
    # every task's time limit unless it names its own (nightly_scheduling)
    default_args={"retries": 0, "execution_timeout": TASK_TIMEOUT},
    params=PARAMS,
    doc_md=__doc__,
    tags=["etl", "nightly"],
)
def etl_pipeline():
    checked = validate()
    planned = plan(checked["options"])
    checked["drift"] >> planned
    extracted = [extract.override(group_id=f"extract_{tier}")(planned, tier) for tier in TIERS]
    parity = verify()
    run_report = report(planned, parity)
    gate = pipeline_success(run_report)
    freshness = source_freshness()
    raw_checked = source_tests(run_report)
    selection = dbt_selection()
    dbt_models = DbtTaskGroup(
        group_id=DBT_GROUP,
        project_config=PROJECT_CONFIG,
        profile_config=PROFILE_CONFIG,
        execution_config=EXECUTION_CONFIG,
        render_config=RENDER_CONFIG,
        operator_args=DBT_OPERATOR_ARGS,
    )
    docs = docs_generate()
    extracted >> parity >> run_report >> gate >> freshness >> raw_checked >> selection >> dbt_models >> docs
    consumers_after_producer(dbt_models)
    outcome = notify(checked["validation"], checked["drift"], run_report, freshness, docs)
    dbt_models >> outcome  # all_done: after every dbt task has finished, whatever its state


etl_pipeline()
