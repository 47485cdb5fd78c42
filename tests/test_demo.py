"""`make demo` resets only a local warehouse: anywhere else it stops before dropping anything."""

from __future__ import annotations

import pytest

from etl_pipeline.db import connect_target
from etl_pipeline.demo import fresh_warehouse
from etl_pipeline.errors import EtlError


def test_the_demo_refuses_to_reset_a_warehouse_that_is_not_local(settings, monkeypatch):
    conn = connect_target(settings.target)
    with conn.cursor() as cur:
        cur.execute("CREATE SCHEMA IF NOT EXISTS raw")
    conn.commit()
    monkeypatch.setenv("ETL_ENVIRONMENT", "prod")
    with pytest.raises(EtlError, match="ETL_ENVIRONMENT=prod"):
        fresh_warehouse()
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'raw'")
        assert cur.fetchone()[0] == 1
    conn.close()
