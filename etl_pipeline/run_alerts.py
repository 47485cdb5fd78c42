"""Alerts for the nights the final `notify` task never tells about.

The nightly DAG's last task sends the run's summary. It never runs when the DAG run times out, is
marked failed by hand or by the scheduler (a worker lost), or hangs until morning. So the DAG also has:

    on_failure_callback=run_failed     # the run ended failed for another reason than a failed task
    deadline=not_finished_alert(...)   # still not finished NIGHTLY_DEADLINE after it was queued

Both go out through `etl_pipeline.notify` (log line, Slack, mail) as CRITICAL, with identifiers only:
the DAG, the run id, its state and Airflow's reason. `run_failed` runs in the DAG processor (Airflow 3
runs DAG callbacks there), `deadline_missed` in the triggerer, as Airflow's deadline callbacks do.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from etl_pipeline.notify import notify

log = logging.getLogger(__name__)
RUN_FAILED_TITLE = "Nightly ETL run failed"
NOTIFIED_REASON = "task_failure"  # Airflow's reason when the run ended because a task failed
DEADLINE_TITLE = "Nightly ETL not finished by its deadline"


def run_failed(context: dict[str, Any]) -> None:
    """DAG-level on_failure_callback. A run that failed because a task failed ("task_failure") reached
    `notify` (trigger rule all_done), which said why; any other reason (timed_out) means it did not."""
    dag_run = context.get("dag_run")
    run_id = getattr(dag_run, "run_id", None) or "unknown"
    reason = str(context.get("reason") or "failed")
    if reason == NOTIFIED_REASON:
        log.info("run %s failed (%s): the notify task reported it", run_id, reason)
        return
    notify(
        RUN_FAILED_TITLE,
        "CRITICAL",
        {"dag": getattr(dag_run, "dag_id", None), "run_id": run_id, "reason": reason},
        [f"run {run_id} ended failed ({reason}): the night's data is not complete; see the run in Airflow"],
    )


async def deadline_missed(context: dict[str, Any] | None = None, **_: Any) -> None:
    """A DeadlineAlert's callback (awaited by the triggerer): the run is still not finished."""
    dag_run = (context or {}).get("dag_run") or {}
    deadline = (context or {}).get("deadline") or {}
    run_id = dag_run.get("dag_run_id") or dag_run.get("run_id") or "unknown"
    summary = {
        "dag": dag_run.get("dag_id"),
        "run_id": run_id,
        "state": dag_run.get("state"),
        "deadline": str(deadline.get("deadline_time")),
    }
    details = [f"run {run_id} is still {summary['state']} at its deadline: the marts are not refreshed"]
    # notify speaks blocking HTTP and SMTP: off the triggerer's event loop
    await asyncio.to_thread(notify, DEADLINE_TITLE, "CRITICAL", summary, details)


def not_finished_alert(after_queued: timedelta):
    """The DeadlineAlert: not finished `after_queued` after the run was queued. None for a zero
    interval: `airflow dags test` sets ETL_NIGHTLY_DEADLINE_SECONDS=0 because Airflow 3.3's
    `dag.test()` fails on a DAG with a deadline (it looks the alert up as a database id), and a
    deadline is the scheduler's business anyway."""
    if after_queued <= timedelta(0):
        return None
    from airflow.sdk.definitions.deadline import AsyncCallback, DeadlineAlert, DeadlineReference

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=after_queued,
        callback=AsyncCallback(deadline_missed),
        name="nightly not finished",
    )
