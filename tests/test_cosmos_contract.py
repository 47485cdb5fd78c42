"""What `etl_pipeline.cosmos_watcher` relies on in the pinned Cosmos, on the real DbtTaskGroup.

The group is the real DAG file's, through Airflow's DagBag, rendered from the project's manifest.json
(no database, no dbt run). Each test pins one thing the module reads or writes, so a Cosmos upgrade that changes it
fails here, not in a night's run: the producer's class and task id, the consumers' classes and task
ids (which failed-node detection parses), the `model_unique_id` they carry, the producer's `select`
reaching its `dbt build` command, and the trigger rules after the wiring.
"""

from __future__ import annotations

import json

import pytest
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk.exceptions import AirflowSkipException, DownstreamTasksSkipped
from airflow_support import parse_dag
from cosmos.constants import PRODUCER_WATCHER_DONE_TASK_ID, PRODUCER_WATCHER_TASK_ID
from cosmos.dbt.graph import DbtNode
from cosmos.operators.watcher import (
    DbtConsumerWatcherSensor,
    DbtProducerWatcherOperator,
    DbtRunWatcherOperator,
    DbtTestWatcherOperator,
)

from etl_pipeline import cosmos_watcher
from etl_pipeline.dbt_runner import DBT_MANIFEST
from etl_pipeline.dbt_steps import dbt_models_for

GROUP = "dbt_models"


@pytest.fixture(scope="module")
def manifest() -> dict:
    assert DBT_MANIFEST.is_file(), f"{DBT_MANIFEST} is missing: run `make manifest`"
    return json.loads(DBT_MANIFEST.read_text())


@pytest.fixture(scope="module")
def dag(tmp_path_factory):
    """The real DAG file through Airflow's DagBag (nothing connects, dbt does not run)."""
    return parse_dag("etl_pipeline", tmp_path_factory.mktemp("airflow"))


@pytest.fixture(scope="module")
def tasks(dag) -> dict:
    """The dbt group's tasks by id, as rendered by Cosmos and wired by `consumers_after_producer`."""
    return {t.task_id: t for t in dag.task_group_dict[GROUP]}


def _consumers(tasks: dict) -> list:
    return [t for t in tasks.values() if isinstance(t, DbtConsumerWatcherSensor)]


def test_one_producer_under_cosmos_task_id_and_a_run_and_test_task_per_model(tasks, manifest):
    models = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    [producer] = [t for t in tasks.values() if isinstance(t, DbtProducerWatcherOperator)]
    assert producer.task_id == f"{GROUP}.{PRODUCER_WATCHER_TASK_ID}"
    assert cosmos_watcher.PRODUCER_TASK_IDS == ("dbt_producer_watcher", "dbt_producer_watcher_done")
    assert type(tasks[f"{GROUP}.{PRODUCER_WATCHER_DONE_TASK_ID}"]) is EmptyOperator
    others = set(tasks) - {producer.task_id, f"{GROUP}.{PRODUCER_WATCHER_DONE_TASK_ID}"}
    # nothing else in the group but consumers: the wiring, the gate and the docs step see them all
    assert {type(tasks[i]) for i in others} == {DbtRunWatcherOperator, DbtTestWatcherOperator}
    assert {t.task_id for t in _consumers(tasks)} == others
    assert {f"{GROUP}.{m}.run" for m in models} == {i for i in others if i.endswith(".run")}
    assert {f"{GROUP}.{m}.test" for m in models} == {i for i in others if i.endswith(".test")}


def test_each_consumer_carries_its_models_unique_id_and_is_named_after_it(tasks, manifest):
    for task in _consumers(tasks):
        model = cosmos_watcher.model_of_task(task)
        suffix = "test" if isinstance(task, DbtTestWatcherOperator) else "run"
        assert task.model_unique_id in manifest["nodes"] and task.model_unique_id.startswith("model.")
        assert task.task_id == f"{GROUP}.{model}.{suffix}"
        # the name a retry selects (`dbt run/test --select <name>`) is the name the gate compares
        assert DbtNode.get_resource_name_from_unique_id(task.model_unique_id) == model
    assert cosmos_watcher.model_of_task(tasks[f"{GROUP}.{PRODUCER_WATCHER_TASK_ID}"]) is None


def test_failed_node_detection_parses_the_groups_real_task_ids(tasks):
    states = dict.fromkeys(tasks, "failed")
    assert cosmos_watcher.failed_nodes(states, GROUP) == sorted(
        t.task_id.removeprefix(f"{GROUP}.") for t in _consumers(tasks)
    )
    healed = dict.fromkeys(tasks, "success") | {f"{GROUP}.{PRODUCER_WATCHER_TASK_ID}": "failed"}
    assert cosmos_watcher.failed_nodes(healed, GROUP) == []


def test_the_producers_select_reaches_its_dbt_build_command(tasks):
    producer = tasks[f"{GROUP}.{PRODUCER_WATCHER_TASK_ID}"]
    assert producer.base_cmd == ["build"] and producer.select is None
    assert "--select" not in producer.add_global_flags()
    selected = dbt_models_for(["provider"])
    cosmos_watcher.apply_selection(producer, selected)
    try:
        flags = producer.add_global_flags()
        assert flags[flags.index("--select") + 1] == " ".join(sorted(selected))
        assert "dim_provider" in flags[flags.index("--select") + 1].split()
    finally:
        producer.select = None
    assert producer.invocation_mode.value == "subprocess"
    assert producer.dbt_cmd_flags == ["--indirect-selection", "cautious", "--exclude", "source:*"]


def test_the_selection_skips_the_consumers_of_other_models_only(tasks):
    selected = dbt_models_for(["provider"])
    cosmos_watcher.apply_selection(tasks[f"{GROUP}.dim_provider.run"], selected)
    cosmos_watcher.apply_selection(tasks[f"{GROUP}.dim_provider.test"], selected)
    with pytest.raises(AirflowSkipException, match="model stg_opendental__procedurelog does not depend"):
        cosmos_watcher.apply_selection(tasks[f"{GROUP}.stg_opendental__procedurelog.run"], selected)
    with pytest.raises(AirflowSkipException, match="no dbt model depends"):
        cosmos_watcher.apply_selection(tasks[f"{GROUP}.{PRODUCER_WATCHER_TASK_ID}"], set())
    cosmos_watcher.apply_selection(tasks[f"{GROUP}.stg_opendental__procedurelog.run"], None)  # a full run


def test_the_selection_skips_every_task_of_the_other_models_before_they_start(tasks):
    group = [tasks[task_id] for task_id in sorted(tasks)]
    selected = dbt_models_for(["provider"])
    with pytest.raises(DownstreamTasksSkipped) as skipped:
        cosmos_watcher.skip_unselected_models(group, ["provider"], DBT_MANIFEST)
    expected = sorted(t.task_id for t in _consumers(tasks) if cosmos_watcher.model_of_task(t) not in selected)
    assert skipped.value.tasks == expected and f"{GROUP}.stg_opendental__procedurelog.run" in expected
    assert (
        f"{GROUP}.dim_provider.run" not in expected and f"{GROUP}.{PRODUCER_WATCHER_TASK_ID}" not in expected
    )
    assert cosmos_watcher.skip_unselected_models(group, None, DBT_MANIFEST) is None


def test_operator_args_reach_every_dbt_task(tasks):
    """The gate, the pool and the trigger rule are passed through Cosmos' operator_args."""
    dbt_tasks = [t for t in tasks.values() if not isinstance(t, EmptyOperator)]
    assert {t._pre_execute_hook.__qualname__ for t in dbt_tasks} == {"dbt_gate.<locals>.gate"}
    assert {t.pool for t in dbt_tasks} == {"dbt_pool"}
    producer = tasks[f"{GROUP}.{PRODUCER_WATCHER_TASK_ID}"]
    assert (
        producer.trigger_rule == cosmos_watcher.DBT_TRIGGER_RULE and producer.retry_delay.total_seconds() > 0
    )


def test_the_wiring_puts_every_consumer_after_the_producer(tasks):
    producer_id = f"{GROUP}.{PRODUCER_WATCHER_TASK_ID}"
    consumers = _consumers(tasks)
    consumer_ids = {t.task_id for t in consumers}
    roots = [t for t in consumers if not t.upstream_task_ids & consumer_ids]
    # within the group a root consumer waits for the build alone (before the group: the source tests)
    assert roots and all(t.upstream_task_ids & set(tasks) == {producer_id} for t in roots)
    assert all(t.trigger_rule == cosmos_watcher.CONSUMER_TRIGGER_RULE for t in roots)
    assert all(t.trigger_rule == cosmos_watcher.DBT_TRIGGER_RULE for t in consumers if t not in roots)
    # every model's tests wait for its run task (Cosmos' AFTER_EACH), the done marker for the build
    runs = [t for t in consumers if isinstance(t, DbtRunWatcherOperator)]
    assert all(tasks[t.task_id[: -len("run")] + "test"].upstream_task_ids == {t.task_id} for t in runs)
    assert producer_id in tasks[f"{GROUP}.{PRODUCER_WATCHER_DONE_TASK_ID}"].upstream_task_ids


def test_the_producer_reports_relationships_tests_with_each_models_tests(tasks):
    per_model = tasks[f"{GROUP}.{PRODUCER_WATCHER_TASK_ID}"].tests_per_model
    assert any(
        "relationships_fct_claim_patient_id" in test
        for test in per_model["model.dbt_dental_models.fct_claim"]
    )
    assert not [task_id for task_id in tasks if "relationships" in task_id]
