"""Everything the nightly DAG relies on in Cosmos' watcher mode beyond its public configuration.

Watcher mode renders one producer task (`dbt_producer_watcher`, one `dbt build` of the whole
selection) and, per model, a `<model>.run` and a `<model>.test` consumer task that reports that
node's result from the producer's XComs and, when retried, re-runs that node alone. This module is
the one place that knows the shapes involved; tests/test_cosmos_contract.py pins each of them
against the installed Cosmos, so an upgrade that moves one fails a test rather than a night.

    skip_unselected_models(group, ...)  with `tables`: the other models' tasks skipped before they start
    dbt_gate(gate_task_id, manifest)    pre_execute hook of every dbt task: the load gate, `tables`
    apply_selection(task, selected)     the producer's `select`, or a skip for an unselected model
    consumers_after_producer(group)     each consumer reads its result once the build has finished
    failed_dbt_nodes(ti, group_id)      the model/test tasks of this run that ended failed
    model_of_task(task)                 the dbt model a consumer task stands for
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from airflow.sdk.exceptions import AirflowSkipException, DownstreamTasksSkipped
from cosmos.constants import PRODUCER_WATCHER_DONE_TASK_ID, PRODUCER_WATCHER_TASK_ID
from cosmos.dbt.graph import DbtNode
from cosmos.operators.watcher import DbtConsumerWatcherSensor, DbtProducerWatcherOperator

from etl_pipeline.dbt_steps import dbt_models_for

log = logging.getLogger(__name__)

# the producer's own tasks in the group; neither stands for a dbt node
PRODUCER_TASK_IDS = (PRODUCER_WATCHER_TASK_ID, PRODUCER_WATCHER_DONE_TASK_ID)
# a root consumer after the producer: the other models still report when one failed the build
CONSUMER_TRIGGER_RULE = "all_done_min_one_success"
# every other dbt task: runs below a model skipped by the selection (one upstream succeeded), and
# skips with the whole group, without starting, when the load gate closed
DBT_TRIGGER_RULE = "none_failed_min_one_success"


def model_of_task(task: object) -> str | None:
    """The dbt model a consumer (`<model>.run` or `<model>.test`) task stands for; None for any other
    task. The name is the one Cosmos selects when it retries the node alone."""
    if not isinstance(task, DbtConsumerWatcherSensor) or not task.model_unique_id:
        return None
    return DbtNode.get_resource_name_from_unique_id(task.model_unique_id)


def skip_unselected_models(
    group: Iterable[Any], tables: list[str] | None, manifest: Path
) -> list[str] | None:
    """The task before the group: with `tables`, the names of the models (and tests) that depend on
    them; the run/test tasks of every other model are skipped at once (DownstreamTasksSkipped), so
    Airflow never starts them only for the gate to skip them. None (a full run) skips nothing."""
    selected = dbt_models_for(tables, manifest)
    if selected is None:
        return None
    unselected = {
        t.task_id: model for t in group if (model := model_of_task(t)) is not None and model not in selected
    }
    if unselected:
        models = sorted(set(unselected.values()))
        log.info(
            "skipping the tasks of %d dbt model(s) that do not depend on the tables of this run: %s",
            len(models),
            ", ".join(models),
        )
        raise DownstreamTasksSkipped(tasks=sorted(unselected))
    return sorted(selected)


def dbt_gate(gate_task_id: str, manifest: Path) -> Callable[[Any], None]:
    """The pre_execute hook of every dbt task: skip unless loading succeeded (the `gate_task_id` short
    circuit returned True), then `apply_selection` of the models that depend on the conf's `tables`.

    With DBT_TRIGGER_RULE a closed gate skips the group before any of it starts; the hook is the check
    for the tasks that start anyway: the docs (all_done), a task cleared by hand, and the producer,
    whose `select` can only be set in its own process."""

    def gate(context: Any) -> None:
        if not context["ti"].xcom_pull(task_ids=gate_task_id):
            raise AirflowSkipException("loading was not complete: dbt does not run")
        apply_selection(context["task"], dbt_models_for(context["params"].get("tables"), manifest))

    return gate


def apply_selection(task: object, selected: set[str] | None) -> None:
    """Narrow one dbt task to the selected models and tests (None = everything).

    The producer's `select` becomes the selection, so the one `dbt build` covers just those models
    and their tests; a consumer of a model outside it skips (any other task is left alone)."""
    if selected is None:
        return
    if isinstance(task, DbtProducerWatcherOperator):
        if not selected:
            raise AirflowSkipException("no dbt model depends on the tables of this run")
        task.select = " ".join(sorted(selected))
        return
    model = model_of_task(task)
    if model is not None and model not in selected:
        raise AirflowSkipException(f"model {model} does not depend on the tables of this run")


def consumers_after_producer(group: Iterable[Any]) -> None:
    """The model/test tasks read their results once the producer's `dbt build` has finished.

    Cosmos leaves them beside the producer, polling while it builds; `airflow dags test` runs one task
    at a time, so a poll started first would wait forever. After the producer, each one reads its
    result at once. A failed model fails the producer's build, and the other models must still report
    success (and the failed one retry on its own): all done, with the source tests passed."""
    tasks = list(group)
    producer = next(t for t in tasks if isinstance(t, DbtProducerWatcherOperator))
    consumers = [t for t in tasks if isinstance(t, DbtConsumerWatcherSensor)]
    consumer_ids = {t.task_id for t in consumers}
    for consumer in consumers:
        if not consumer.upstream_task_ids & consumer_ids:
            producer >> consumer
            consumer.trigger_rule = CONSUMER_TRIGGER_RULE


def failed_nodes(task_states: dict[str, str | None], group_id: str) -> list[str]:
    """The dbt models/tests whose task ended failed, from {task_id: state} of the dbt task group.

    The producer's own state is left out: a node that failed in its `dbt build` fails its own task,
    and a task that then succeeded on retry has healed it."""
    prefix = f"{group_id}."
    return sorted(
        task_id.removeprefix(prefix)
        for task_id, state in task_states.items()
        if state in ("failed", "upstream_failed") and task_id.removeprefix(prefix) not in PRODUCER_TASK_IDS
    )


def failed_dbt_nodes(ti: Any, group_id: str) -> list[str]:
    """`failed_nodes` of this task instance's run, read from Airflow's task states."""
    states = ti.get_task_states(dag_id=ti.dag_id, task_group_id=group_id, run_ids=[ti.run_id])
    return failed_nodes(states.get(ti.run_id, {}), group_id)
