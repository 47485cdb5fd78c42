"""
### etl_pipeline

The nightly copy of the OpenDental source into the analytics PostgreSQL, then the dbt models.
Runs every day at 21:00 America/Chicago (and on demand from the trigger form).

1. **validate**: trigger options (unknown table names are refused by name), `tables.yml` present,
   valid, generated for this environment and not stale (warns at 30 days, fails at 90); source and
   target reachable; a quick drift check of the live schema against `tables.yml` (reported only: new
   tables wait for the next `schema_analysis`, changed ones follow the loader's rules).
   `skip_validation` skips the file and drift checks (never the connection check).
2. **plan**: reads `tables.yml` at run time and lists, per tier, the tables to load (largest first).
3. **extract_large / extract_medium / extract_small / extract_tiny**: one mapped task per table
   (labelled with the table name), all four tiers start together, large first by priority; at most
   `max_workers` large tables load at once. A failing table does not stop the others; each loaded
   table emits its `postgres://.../raw/<table>` Asset event.
4. **verify** (source vs raw parity) → **report** (per table strategy, rows, seconds, status and
   totals in `etl.nightly_runs` and XCom) → **pipeline_success** (a short circuit).
5. **dbt**: `dbt source freshness` → the source tests (raw keys) → the Cosmos task group over
   `dbt_dental_models` in watcher mode (one `dbt build`, each model's tests right after it; a task per
   model and per model's tests shows its result and retries that node alone; with `tables`, only the
   models that depend on them) → `dbt docs generate`, published to `DBT_DOCS_DIR` for the Cosmos docs
   plugin. Skipped when loading was incomplete.
6. **notify**: always runs: severity, counts, failed tables; a JSON log line, Slack and email when
   configured. The run is marked failed unless everything succeeded.

All logic is in `etl_pipeline.nightly`; this file only wires the steps and reads nothing at parse time
but `manifest.json` (built by `make manifest`, never by parsing this file).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import AssetAlias, Param, dag, get_current_context, task, task_group
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior, TestIndirectSelection
from cosmos.operators._watcher.base import BaseConsumerSensor
from cosmos.operators.watcher import DbtProducerWatcherOperator

PROJECT_ROOT = Path(os.environ.get("ETL_HOME") or Path(__file__).resolve().parents[2])
DBT_PROJECT = PROJECT_ROOT / "dbt_dental_models"
MANIFEST = DBT_PROJECT / "target" / "manifest.json"
TIERS = ("large", "medium", "small", "tiny")
RAW_TABLES = AssetAlias("raw_tables")
EXTRACT_POOL = os.environ.get("ETL_EXTRACT_POOL", "extract_pool")
DBT_POOL = os.environ.get("ETL_DBT_POOL", "dbt_pool")
# extraction retries (a dropped connection, a lock timeout); the tests shorten the delay
EXTRACT_RETRIES = int(os.environ.get("ETL_EXTRACT_RETRIES", "2"))
EXTRACT_RETRY_DELAY = timedelta(seconds=float(os.environ.get("ETL_EXTRACT_RETRY_DELAY_SECONDS", "120")))
DBT_RETRY_DELAY = timedelta(seconds=float(os.environ.get("ETL_DBT_RETRY_DELAY_SECONDS", "60")))
DBT_TARGET = os.environ.get("DBT_TARGET") or (
    "prod" if os.environ.get("ETL_ENVIRONMENT") == "prod" else "local"
)

PARAMS = {
    "force_full_refresh": Param(False, type="boolean", description="Reload every table in full"),
    "max_workers": Param(
        5, type="integer", minimum=1, maximum=16, description="How many large tables load at once (1-16)"
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


def _settings():
    from etl_pipeline.settings import load_settings

    return load_settings()


def _dbt_gate(context) -> None:
    """pre_execute hook of every dbt task: skip unless loading succeeded (the `pipeline_success` gate),
    and, with `tables` in the conf, skip the models that do not depend on those tables.

    The dbt tasks use trigger rule none_failed so that a model skipped by the selection does not skip
    the selected models below it; the gate is therefore checked here rather than by skip propagation."""
    from airflow.sdk.exceptions import AirflowSkipException

    from etl_pipeline.nightly import dbt_models_for, model_of_task

    if not context["ti"].xcom_pull(task_ids="pipeline_success"):
        raise AirflowSkipException("loading was not complete: dbt does not run")
    selected = dbt_models_for(context["params"].get("tables"), MANIFEST)
    if selected is None:
        return
    task = context["task"]
    if isinstance(task, DbtProducerWatcherOperator):
        if not selected:
            raise AirflowSkipException("no dbt model depends on the tables of this run")
        task.select = " ".join(sorted(selected))  # the one `dbt build` covers just these models and tests
        return
    model = model_of_task(task)
    if model is not None and model not in selected:
        raise AirflowSkipException(f"model {model} does not depend on the tables of this run")  # or test


def _consumers_after_producer(group) -> None:
    """The model/test tasks read their results once the producer's `dbt build` has finished.

    Cosmos leaves them beside the producer in a task group, polling while it builds; `airflow dags test`
    runs one task at a time, so a poll started first would wait forever. After the producer, each one
    reads its result at once. A failed model fails the producer's build, and the other models must still
    report success (and the failed one retry on its own): all done, with the source tests passed."""
    producer = next(t for t in group if isinstance(t, DbtProducerWatcherOperator))
    consumers = [t for t in group if isinstance(t, BaseConsumerSensor)]
    for consumer in consumers:
        if not consumer.upstream_task_ids & {t.task_id for t in consumers}:
            producer >> consumer
            consumer.trigger_rule = "all_done_min_one_success"


@dag(
    dag_id="etl_pipeline",
    schedule="0 21 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="America/Chicago"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=6),
    default_args={"retries": 0},
    params=PARAMS,
    doc_md=__doc__,
    tags=["etl", "nightly"],
)
def etl_pipeline():
    @task_group(group_id="validate")
    def validate():
        @task
        def check_params() -> dict:
            from etl_pipeline.nightly import check_params as check

            return check(dict(get_current_context()["params"]), _settings())

        @task
        def check_tables_config(options: dict) -> dict:
            from etl_pipeline.nightly import check_tables_config as check

            return {"skipped": True, "warnings": []} if options["skip_validation"] else check(_settings())

        @task(retries=2, retry_delay=timedelta(seconds=30))
        def check_connections() -> dict:
            from etl_pipeline.nightly import check_connections as check

            return check(_settings())

        @task
        def drift_check(options: dict) -> dict:
            from etl_pipeline.nightly import drift_check as check

            return {"drift": False, "skipped": True} if options["skip_validation"] else check(_settings())

        options = check_params()
        config = check_tables_config(options)
        reachable = check_connections()
        drift = drift_check(options)
        config >> reachable >> drift
        return options, drift

    @task
    def plan(options: dict) -> dict:
        from etl_pipeline.nightly import plan_run

        return plan_run(_settings(), options)

    def tier_group(tier: str, planned):
        @task_group(group_id=f"extract_{tier}")
        def extract():
            @task
            def tables(full_plan: dict, tier: str = tier) -> list[dict]:
                return full_plan[tier]

            @task(
                pool=EXTRACT_POOL,
                queue="extract",
                retries=EXTRACT_RETRIES,
                retry_delay=EXTRACT_RETRY_DELAY,
                map_index_template="{{ table_label }}",
                outlets=[RAW_TABLES],
                priority_weight=100 if tier == "large" else 10,
                max_active_tis_per_dagrun=16,
            )
            def load(item: dict) -> dict:
                from airflow.sdk import Asset

                from etl_pipeline.nightly import asset_uri, extract_table

                context = get_current_context()
                context["table_label"] = item["table"]
                settings = _settings()
                result = extract_table(settings, item, context["run_id"])
                context["outlet_events"][RAW_TABLES].add(
                    Asset(asset_uri(settings, result["target_name"] or item["table"].lower())),
                    extra={
                        "table": item["table"],
                        "strategy": result["strategy"],
                        "rows_read": result["rows_read"],
                    },
                )
                return result

            load.expand(item=tables(planned))

        return extract()

    @task(trigger_rule="all_done")
    def verify() -> dict:
        from etl_pipeline.nightly import verify_tables
        from etl_pipeline.quality.report import run_report

        settings = _settings()
        loaded = [
            r["table_name"]
            for r in run_report(settings, get_current_context()["run_id"])
            if r["status"] == "success"
        ]
        return verify_tables(settings, loaded)

    @task(trigger_rule="all_done")
    def report() -> dict:
        from etl_pipeline.errors import EtlError
        from etl_pipeline.nightly import build_report

        context = get_current_context()
        planned = context["ti"].xcom_pull(task_ids="plan")
        if planned is None:
            raise EtlError("no plan: validation or planning failed, nothing was loaded")
        return build_report(
            _settings(), context["run_id"], planned, context["ti"].xcom_pull(task_ids="verify")
        )

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def pipeline_success() -> bool:
        from etl_pipeline.nightly import pipeline_success as ok

        return ok(get_current_context()["ti"].xcom_pull(task_ids="report"))

    @task(pool=DBT_POOL, queue="dbt")
    def source_freshness() -> dict:
        from etl_pipeline.nightly import source_freshness as freshness

        return freshness(_settings())

    @task(pool=DBT_POOL, queue="dbt")
    def source_tests() -> dict:
        from etl_pipeline.nightly import source_tests as tests

        return tests(_settings(), get_current_context()["params"].get("tables"))

    dbt_models = DbtTaskGroup(
        group_id="dbt_models",
        project_config=ProjectConfig(
            dbt_project_path=DBT_PROJECT,
            manifest_path=MANIFEST,
            project_name="dbt_dental_models",
            install_dbt_deps=False,
        ),
        profile_config=ProfileConfig(
            profile_name="dbt_dental_models",
            target_name=DBT_TARGET,
            profiles_yml_filepath=DBT_PROJECT / "profiles.yml",
        ),
        # WATCHER: one producer task runs a single `dbt build` (dbt's own threads, tests right after each
        # model); every model/test task reports its node's result and, when retried, re-runs that node alone.
        # cautious: a `tables` run builds only the tests whose models are all selected (a relationships
        # test to a model of another table waits for a full run)
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER,
            invocation_mode=InvocationMode.DBT_RUNNER,
            test_indirect_selection=TestIndirectSelection.CAUTIOUS,
            # the source tests ran in their own task before the models.
            # SUBPROCESS: dbt runs at its own pace in a child process while this
            # task turns its JSON log into per-node XComs (in-process, dbt's
            # threads waited on every XCom write: the build took 3x longer)
            setup_operator_args={
                "dbt_cmd_flags": ["--indirect-selection", "cautious", "--exclude", "source:*"],
                "invocation_mode": InvocationMode.SUBPROCESS,
            },
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.AFTER_EACH,
            emit_datasets=False,
            enable_mock_profile=False,
            # the build runs a relationships test once both of its models exist and
            # reports it with each model's tests; a task of its own would see nothing
            should_detach_multiple_parents_tests=False,
        ),
        operator_args={
            "pool": DBT_POOL,
            "queue": "dbt",
            "trigger_rule": "none_failed",
            "pre_execute": _dbt_gate,
            "retry_delay": DBT_RETRY_DELAY,
        },
    )

    @task(pool=DBT_POOL, queue="dbt", trigger_rule="all_done", pre_execute=_dbt_gate)
    def docs_generate() -> dict:
        """After every dbt task: the docs when every model and test succeeded (a retry that healed one counts)."""
        from etl_pipeline.dbt_runner import DbtError
        from etl_pipeline.nightly import failed_dbt_nodes, generate_docs

        context = get_current_context()
        ti, run_id = context["ti"], context["run_id"]
        states = ti.get_task_states(dag_id=ti.dag_id, task_group_id="dbt_models", run_ids=[run_id])
        failed = failed_dbt_nodes(states.get(run_id, {}))
        if failed:
            raise DbtError(f"{len(failed)} dbt task(s) failed: {', '.join(failed[:10])}")
        return generate_docs(_settings())

    @task(trigger_rule="all_done", retries=0)
    def notify() -> str:
        from etl_pipeline.nightly import notify_run

        context = get_current_context()
        ti = context["ti"]
        run_report = ti.xcom_pull(task_ids="report")
        gate = ti.xcom_pull(task_ids="pipeline_success")
        dbt_state = "success" if ti.xcom_pull(task_ids="docs_generate") else "failed" if gate else "skipped"
        return notify_run(
            {
                "run_id": context["run_id"],
                "params": ti.xcom_pull(task_ids="validate.check_params"),
                "validation": ti.xcom_pull(task_ids="validate.check_tables_config"),
                "drift": ti.xcom_pull(task_ids="validate.drift_check"),
                "report": run_report,
                "dbt": dbt_state,
                "freshness": ti.xcom_pull(task_ids="source_freshness"),
            }
        )

    options, drift = validate()
    planned = plan(options)
    drift >> planned
    extracted = [tier_group(tier, planned) for tier in TIERS]
    parity = verify()
    run_report = report()
    gate = pipeline_success()
    freshness = source_freshness()
    raw_checked = source_tests()
    docs = docs_generate()
    extracted >> parity >> run_report >> gate >> freshness >> raw_checked >> dbt_models >> docs
    _consumers_after_producer(dbt_models)
    [dbt_models, docs] >> notify()  # all_done: after every dbt task has finished, whatever its state


etl_pipeline()
