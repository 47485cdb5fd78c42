"""How the DAGs' tasks are scheduled: pools, queues, retries, priorities and time limits.

Read from the environment when the DAG file is parsed, so a deployment (and the tests, which shorten
the retry delays) changes them without editing the DAG. The pools must exist in Airflow:
`etl_pipeline.airflow_local.prepare` creates them locally, docker-compose's airflow-init in a
deployment.
"""

from __future__ import annotations

import os
from datetime import timedelta

from etl_pipeline.schema.constants import TIERS  # the leaf module: the schema DAG imports this one too


def _seconds(key: str, default: float) -> timedelta:
    return timedelta(seconds=float(os.environ.get(key, default)))


EXTRACT_POOL = os.environ.get("ETL_EXTRACT_POOL", "extract_pool")
DBT_POOL = os.environ.get("ETL_DBT_POOL", "dbt_pool")
EXTRACT_QUEUE = "extract"
DBT_QUEUE = "dbt"

# extraction retries: a dropped connection, a lock timeout
EXTRACT_RETRIES = int(os.environ.get("ETL_EXTRACT_RETRIES", "2"))
EXTRACT_RETRY_DELAY = _seconds("ETL_EXTRACT_RETRY_DELAY_SECONDS", 120)
# a dbt model task's retries come from meta.cosmos.operator_kwargs in dbt_project.yml; the delay from here
DBT_RETRY_DELAY = _seconds("ETL_DBT_RETRY_DELAY_SECONDS", 60)
CONNECTION_RETRIES = 2
CONNECTION_RETRY_DELAY = timedelta(seconds=30)

# the large tables start first: they take longest
EXTRACT_PRIORITY = {tier: 100 if tier == "large" else 10 for tier in TIERS}
# mapped loads at once per tier and run; the large tier's real cap is `max_workers` (nightly_plan.large_slot)
MAX_MAPPED_LOADS = 16

# execution_timeout of every task: a hung connection fails its task (and its retry starts) long before
# the DAG run's own limit. A task not named here gets TASK_TIMEOUT.
ETL_DAGRUN_TIMEOUT = _seconds("ETL_DAGRUN_TIMEOUT_SECONDS", 6 * 3600)
# the deadline alert: not finished this long after it was queued (21:00 + 5 h = 02:00 America/Chicago)
NIGHTLY_DEADLINE = _seconds("ETL_NIGHTLY_DEADLINE_SECONDS", 5 * 3600)
TASK_TIMEOUT = timedelta(minutes=10)  # params, plan, gates, report, notify: seconds of work
DRIFT_CHECK_TIMEOUT = timedelta(minutes=15)  # one schema analysis of the source
EXTRACT_TIMEOUT = timedelta(hours=2)  # one table's load; a full refresh of the largest table included
VERIFY_TIMEOUT = timedelta(hours=1)  # counts and key sets of every loaded table, both ends
DBT_STEP_TIMEOUT = timedelta(minutes=30)  # freshness, source tests, docs; a model or test task (a retry
# re-runs that node alone)
DBT_BUILD_TIMEOUT = timedelta(hours=3)  # the producer's one `dbt build` of every model and test

SCHEMA_DAGRUN_TIMEOUT = timedelta(minutes=30)
SCHEMA_TASK_TIMEOUT = timedelta(minutes=10)  # each step of schema_analysis; the analysis takes seconds
