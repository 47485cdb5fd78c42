"""The source restored from a backup (tables dropped and re-created with an older snapshot): every row
carries a cursor value older than the loader's state, so a time-cursor incremental load cannot see that
rows went back in time. The next run still converges to parity: the loader sees the table's CREATE_TIME
change and reloads it in full (found by this suite as a strict xfail, fixed in 0cd0943)."""

from __future__ import annotations

import time

import pytest
from test_load_support import admin_exec, drop_everywhere, table_config

from etl_pipeline.load import load_table, verify_table

pytestmark = pytest.mark.faults

DDL = """CREATE TABLE restored (id bigint PRIMARY KEY, v int,
  ts timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(), KEY (ts))"""


def test_source_restored_from_backup_converges(settings):
    drop_everywhere(settings, "restored")
    admin_exec(
        settings,
        DDL,
        "INSERT INTO restored (id, v, ts) "
        "SELECT seq, seq, '2026-01-01' + INTERVAL seq MINUTE FROM seq_1_to_500",
    )
    table = table_config(settings, "restored")
    load_table(settings, table, "restore-0")
    time.sleep(1.1)
    admin_exec(settings, "UPDATE restored SET v = v + 1000 WHERE id <= 100")  # work after the backup
    time.sleep(1.1)
    load_table(settings, table, "restore-1")
    assert verify_table(settings, table, deep=True).ok
    # the restore: last night's snapshot, the same rows with their old values and old timestamps
    admin_exec(
        settings,
        "DROP TABLE restored",
        DDL,
        "INSERT INTO restored (id, v, ts) "
        "SELECT seq, seq, '2026-01-01' + INTERVAL seq MINUTE FROM seq_1_to_500",
    )
    time.sleep(1.1)
    load_table(settings, table, "restore-2")
    assert verify_table(settings, table, deep=True).ok
