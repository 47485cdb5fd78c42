"""How the nightly DAG's tasks are scheduled: pools, queues, retries and priorities.

Read from the environment when the DAG file is parsed, so a deployment (and the tests, which shorten
the retry delays) changes them without editing the DAG. The pools must exist in Airflow:
`etl_pipeline.airflow_local.prepare` creates them locally, docker-compose's airflow-init in a
deployment.
"""

from __future__ import annotations

import os
from datetime import timedelta

from etl_pipeline.schema.tables_config import TIERS


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
