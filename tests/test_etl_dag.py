"""The etl_pipeline DAG file: imports cleanly, connects to nothing, runs no dbt; its shape and params."""

from __future__ import annotations

import subprocess
import time
from datetime import timedelta

import pytest
from airflow_support import parse_dag

from etl_pipeline import nightly_scheduling as sched


@pytest.fixture(scope="module")
def dag(tmp_path_factory):
    """The real file through Airflow's DagBag, with both databases on closed ports and subprocess
    recorded: parsing must neither connect nor run dbt."""
    mp = pytest.MonkeyPatch()
    spawned = []
    real_popen_init = subprocess.Popen.__init__

    def record(self, args, *a, **kw):
        spawned.append(args)
        return real_popen_init(self, args, *a, **kw)

    mp.setattr(subprocess.Popen, "__init__", record)
    started = time.monotonic()
    try:
        parsed = parse_dag(
            "etl_pipeline", tmp_path_factory.mktemp("airflow"), {"SOURCE_PORT": "1", "TARGET_PORT": "1"}
        )
    finally:
        mp.undo()
    seconds = time.monotonic() - started
    # (platform.architecture() runs `file` on the interpreter: that one is harmless)
    assert not [a for a in spawned if "dbt" in str(a)], f"parsing the DAG ran dbt: {spawned}"
    assert seconds < 30, f"parsing took {seconds:.1f} s: something is connecting or running dbt"
    return parsed


def test_schedule_timezone_and_limits(dag):
    assert dag.timetable.expression == "0 21 * * *"
    assert dag.timetable.timezone.name == "America/Chicago"
    assert dag.start_date.tzinfo is not None
    assert (dag.catchup, dag.max_active_runs) == (False, 1)
    assert "etl_pipeline" in dag.doc_md and "notify" in dag.doc_md


def test_params_render_as_a_form_with_their_limits(dag):
    params = dag.params
    assert params["force_full_refresh"] is False and params["skip_validation"] is False
    assert params["allow_business_hours"] is False
    assert params.get_param("allow_business_hours").schema["type"] == "boolean"
    assert params["max_workers"] == 5 and params["tables"] is None
    schema = params.get_param("max_workers").schema
    assert (schema["type"], schema["minimum"], schema["maximum"]) == ("integer", 1, 16)
    assert params.get_param("tables").schema["type"] == ["null", "array"]


@pytest.mark.parametrize(
    "conf, message",
    [
        ({"max_workers": 0}, "max_workers"),
        ({"max_workers": 17}, "max_workers"),
        ({"max_workers": "five"}, "max_workers"),
        ({"tables": "patient"}, "tables"),
        ({"force_full_refresh": "yes"}, "force_full_refresh"),
        ({"allow_business_hours": "yes"}, "allow_business_hours"),
    ],
)
def test_bad_conf_is_rejected_by_the_params(dag, conf, message):
    from airflow.sdk.definitions.param import ParamsDict

    params = ParamsDict(dag.params)
    with pytest.raises(Exception, match=message):
        for key, value in conf.items():
            params[key] = value
        params.validate()


def test_the_dag_params_are_the_options_the_check_knows(dag):
    from etl_pipeline.nightly_checks import PARAM_NAMES

    assert sorted(dag.params) == sorted(PARAM_NAMES)


def test_good_conf_validates(dag):
    from airflow.sdk.definitions.param import ParamsDict

    params = ParamsDict(dag.params)
    params["tables"] = ["patient"]
    params["max_workers"] = 16
    assert params.validate()["tables"] == ["patient"]


def test_task_groups_and_order(dag):
    groups = set(dag.task_group.children)
    assert {
        "validate",
        "plan",
        "extract_large",
        "extract_medium",
        "extract_small",
        "extract_tiny",
        "verify",
        "report",
        "pipeline_success",
        "source_freshness",
        "source_tests",
        "dbt_selection",
        "dbt_models",
        "docs_generate",
        "notify",
    } <= groups
    for tier in ("large", "medium", "small", "tiny"):
        load = dag.get_task(f"extract_{tier}.load")
        assert load.retries == 2 and load.retry_delay.total_seconds() > 0
        assert load.pool == "extract_pool" and load.queue == "extract"
        assert load.map_index_template == "{{ table_label }}"
        # every tier starts right after planning: the large tables are not left for last
        assert dag.get_task(f"extract_{tier}.tables").upstream_task_ids == {"plan"}
    assert (
        dag.get_task("extract_large.load").priority_weight > dag.get_task("extract_tiny.load").priority_weight
    )
    assert dag.get_task("verify").trigger_rule == "all_done"
    assert dag.get_task("verify").upstream_task_ids == {
        f"extract_{t}.load" for t in ("large", "medium", "small", "tiny")
    }


def test_dbt_is_gated_and_notification_always_runs(dag):
    gate = dag.get_task("pipeline_success")
    assert type(gate).__name__ == "_ShortCircuitDecoratedOperator"
    assert gate.ignore_downstream_trigger_rules is False
    assert gate.downstream_task_ids == {"source_freshness"}
    dbt_tasks = [t for t in dag.tasks if t.task_id.startswith("dbt_models.")]
    assert len(dbt_tasks) >= 40
    assert {t.pool for t in dbt_tasks if type(t).__name__ != "EmptyOperator"} == {"dbt_pool"}
    # per-model retries from meta.cosmos.operator_kwargs (dbt_project.yml)
    assert {t.retries for t in dbt_tasks if t.task_id.endswith(".run")} == {2}
    assert all(t._pre_execute_hook is not None for t in dbt_tasks if type(t).__name__ != "EmptyOperator")
    # watcher mode: one producer runs `dbt build`; the model/test tasks read their results after it
    producer = dag.get_task("dbt_models.dbt_producer_watcher")
    assert dag.get_task("source_tests").upstream_task_ids == {"source_freshness", "report"}
    assert dag.get_task("dbt_selection").upstream_task_ids == {"source_tests"}
    # a closed gate skips the whole group by propagation, before any of it starts
    assert producer.upstream_task_ids == {"dbt_selection"}
    assert producer.trigger_rule == "none_failed_min_one_success"
    assert "source:*" in producer.dbt_cmd_flags[producer.dbt_cmd_flags.index("--exclude") + 1]
    assert producer.retries == 0  # a second `dbt build` is never started: the model tasks retry alone
    # dbt in a child process: its threads never wait for this task's XCom writes
    assert producer.invocation_mode.value == "subprocess"
    consumers = [t for t in dbt_tasks if t.task_id.endswith((".run", ".test"))]
    roots = [t for t in consumers if producer.task_id in t.upstream_task_ids]
    assert roots and all(t.trigger_rule == "all_done_min_one_success" for t in roots)
    assert all(t.trigger_rule == "none_failed_min_one_success" for t in consumers if t not in roots)
    assert all(t in roots or t.upstream_task_ids & {c.task_id for c in consumers} for t in consumers)
    runs = [t for t in dbt_tasks if t.task_id.endswith(".run")]
    assert all(dag.get_task(t.task_id[:-4] + ".test").upstream_task_ids == {t.task_id} for t in runs)
    # no task of its own for a relationships test: the producer reports it with each of its models' tests
    assert not [t for t in dbt_tasks if "relationships" in t.task_id]
    producer_tests = dag.get_task("dbt_models.dbt_producer_watcher").tests_per_model
    assert any(
        "relationships_fct_claim_patient_id" in test
        for test in producer_tests["model.dbt_dental_models.fct_claim"]
    )
    notify = dag.get_task("notify")
    assert notify.trigger_rule == "all_done" and notify.retries == 0
    assert "docs_generate" in notify.upstream_task_ids
    # the docs wait for every dbt task and look at the model/test tasks' own states (healed retries count)
    assert dag.get_task("docs_generate").trigger_rule == "all_done"
    assert all(
        t.task_id in notify.upstream_task_ids
        for t in dbt_tasks
        if not t.downstream_task_ids - {"docs_generate", "notify"}
    )
    assert "notify" in {t.task_id for t in gate.get_flat_relatives(upstream=False)}  # reached, but all_done


def test_raw_tables_are_announced_as_assets(dag):
    load = dag.get_task("extract_small.load")
    assert [type(o).__name__ for o in load.outlets] == ["AssetAlias"]


# --- time limits: every task, the Cosmos-rendered dbt tasks included ----------------------------------


@pytest.fixture(scope="module")
def schema_dag(tmp_path_factory):
    return parse_dag("schema_analysis", tmp_path_factory.mktemp("airflow"), {"SOURCE_PORT": "1"})


def _limits(dag) -> dict:
    return {task.task_id: task.execution_timeout for task in dag.tasks}


@pytest.mark.parametrize("which", ["etl_pipeline", "schema_analysis"])
def test_every_task_has_a_timeout_below_the_dag_runs(dag, schema_dag, which):
    """A hung connection fails its task (and lets its retry start), not the whole run."""
    parsed = {"etl_pipeline": dag, "schema_analysis": schema_dag}[which]
    limits = _limits(parsed)
    assert len(limits) >= 6
    missing = sorted(task_id for task_id, limit in limits.items() if limit is None)
    assert not missing, f"{which}: tasks without execution_timeout: {missing}"
    too_long = {t: limit for t, limit in limits.items() if not timedelta(0) < limit < parsed.dagrun_timeout}
    assert not too_long, f"{which}: not below dagrun_timeout {parsed.dagrun_timeout}: {too_long}"


def test_each_kind_of_task_has_its_own_time_limit(dag, schema_dag):
    limits = _limits(dag)
    assert dag.dagrun_timeout == sched.ETL_DAGRUN_TIMEOUT
    assert schema_dag.dagrun_timeout == sched.SCHEMA_DAGRUN_TIMEOUT
    dbt_tasks = {t: limit for t, limit in limits.items() if t.startswith("dbt_models.")}
    producer = "dbt_models.dbt_producer_watcher"
    # Cosmos rendered a task per model and per model's tests, each with operator_args' limit, and the
    # producer has setup_operator_args' (the whole build)
    assert len(dbt_tasks) > 20 and dbt_tasks.pop(producer) == sched.DBT_BUILD_TIMEOUT
    models = {t: limit for t, limit in dbt_tasks.items() if t.endswith((".run", ".test"))}
    assert len(models) > 20 and set(models.values()) == {sched.DBT_STEP_TIMEOUT}
    for tier in ("large", "medium", "small", "tiny"):
        assert limits[f"extract_{tier}.load"] == sched.EXTRACT_TIMEOUT
        assert limits[f"extract_{tier}.tables"] == sched.TASK_TIMEOUT
    assert limits["validate.check_params"] == limits["notify"] == sched.TASK_TIMEOUT
    assert limits["validate.drift_check"] == sched.DRIFT_CHECK_TIMEOUT
    assert limits["verify"] == sched.VERIFY_TIMEOUT
    assert limits["source_freshness"] == limits["docs_generate"] == sched.DBT_STEP_TIMEOUT
    # checks take minutes at most, a table's load and the build hours
    assert sched.TASK_TIMEOUT <= timedelta(minutes=15) <= sched.EXTRACT_TIMEOUT
    assert timedelta(hours=1) <= sched.DBT_BUILD_TIMEOUT
