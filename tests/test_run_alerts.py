"""The alerts for nights the final `notify` task never reports (etl_pipeline.run_alerts): the DAG's
failure callback and its deadline alert are wired into the parsed DAG, and each sends a CRITICAL
message with identifiers only. Through the scheduler: tests/test_scheduler_celery.py."""

from __future__ import annotations

import asyncio
import types
from datetime import timedelta

import pytest
from airflow_support import SlackStandIn, parse_dag

from etl_pipeline import run_alerts


@pytest.fixture(scope="module")
def dag(tmp_path_factory):
    return parse_dag(
        "etl_pipeline",
        tmp_path_factory.mktemp("airflow"),
        {"SOURCE_PORT": "1", "TARGET_PORT": "1"},
    )


@pytest.fixture
def slack(monkeypatch):
    with SlackStandIn() as stand_in:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", stand_in.url)
        monkeypatch.delenv("SMTP_HOST", raising=False)
        yield stand_in


def test_the_dag_alerts_on_failure_and_on_a_missed_deadline(dag):
    from airflow.sdk.definitions.deadline import DeadlineReference

    callbacks = dag.on_failure_callback
    assert run_alerts.run_failed in (callbacks if isinstance(callbacks, list) else [callbacks])
    [deadline] = dag.deadline if isinstance(dag.deadline, list) else [dag.deadline]
    assert deadline.reference == DeadlineReference.DAGRUN_QUEUED_AT
    # 21:00 America/Chicago + 5 h: 02:00 (ETL_NIGHTLY_DEADLINE_SECONDS changes it)
    assert deadline.interval == timedelta(hours=5)
    assert deadline.callback.path == "etl_pipeline.run_alerts.deadline_missed"


def test_no_deadline_under_dags_test():
    """`airflow dags test` (airflow_local.dags_test) parses with a zero deadline: Airflow 3.3's
    dag.test() fails on a DAG with a DeadlineAlert."""
    assert run_alerts.not_finished_alert(timedelta(0)) is None
    assert run_alerts.not_finished_alert(timedelta(seconds=1)) is not None


def test_a_failed_run_alerts_critical_with_its_run_id_and_reason(slack):
    dag_run = types.SimpleNamespace(dag_id="etl_pipeline", run_id="scheduled__2026-12-03T03:00:00+00:00")
    run_alerts.run_failed({"dag_run": dag_run, "reason": "timed_out"})
    [text] = slack.texts()
    assert ":rotating_light:" in text and run_alerts.RUN_FAILED_TITLE in text
    assert "scheduled__2026-12-03T03:00:00+00:00" in text and "timed_out" in text


def test_a_run_failed_by_a_task_is_left_to_the_notify_task(slack):
    dag_run = types.SimpleNamespace(dag_id="etl_pipeline", run_id="manual__y")
    run_alerts.run_failed({"dag_run": dag_run, "reason": "task_failure"})
    assert slack.texts() == []


def test_a_missed_deadline_alerts_critical_from_the_triggerers_context(slack):
    """The context the scheduler hands a deadline callback: the DAG run as the REST API shows it."""
    context = {
        "dag_run": {"dag_id": "etl_pipeline", "dag_run_id": "manual__x", "state": "running", "conf": {}},
        "deadline": {"id": "d1", "deadline_time": "2026-12-03T08:00:00+00:00"},
    }
    asyncio.run(run_alerts.deadline_missed(context=context))
    [text] = slack.texts()
    assert ":rotating_light:" in text and run_alerts.DEADLINE_TITLE in text
    assert "manual__x" in text and "still running" in text and "2026-12-03T08:00:00" in text
