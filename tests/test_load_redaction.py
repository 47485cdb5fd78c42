"""No row values in a failed load's errors: a load that PostgreSQL refuses on a row's value (here a
CHECK constraint someone put on raw, whose DETAIL quotes the failing row) fails with messages, logs,
its etl.load_runs row and a printed traceback that never contain the value."""

from __future__ import annotations

import logging
import time
import traceback

import psycopg2
import pytest
from test_load_support import admin_exec, drop_everywhere, pg_rows, table_config

from etl_pipeline.load import failure, load_table

SECRET = "PATIENT-SECRET-123"


def test_a_refused_row_value_appears_in_no_log_message_or_state_row(settings, caplog):
    drop_everywhere(settings, "red_load")
    admin_exec(
        settings,
        "CREATE TABLE red_load (id int PRIMARY KEY, note varchar(40), "
        "ts timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp()) ENGINE=InnoDB",
        "INSERT INTO red_load (id, note) VALUES (1, 'fine'), (2, 'also fine')",
    )
    t = table_config(settings, "red_load")
    load_table(settings, t, "r0")
    pg_rows(settings, "ALTER TABLE raw.red_load ADD CONSTRAINT no_patients CHECK (note NOT LIKE 'PATIENT-%')")
    admin_exec(settings, f"UPDATE red_load SET note = '{SECRET}' WHERE id = 2")
    time.sleep(1.05)
    with caplog.at_level(logging.DEBUG), pytest.raises(psycopg2.errors.CheckViolation) as failed:
        load_table(settings, t, "r1")
    printed = "".join(traceback.format_exception(failed.value))
    message = failure.message_of(failed.value)
    runs = pg_rows(
        settings, "SELECT r::text FROM etl.load_runs r WHERE run_id = 'r1' AND table_name = 'red_load'"
    )
    states = pg_rows(settings, "SELECT s::text FROM etl.load_state s WHERE table_name = 'red_load'")
    assert len(runs) == 1 and "failed" in runs[0][0] and "CheckViolation" in runs[0][0]
    for text in (printed, message, caplog.text, runs[0][0], states[0][0], repr(failed.value)):
        assert SECRET not in text
    assert 'violates check constraint "no_patients"' in printed  # names stay
    assert failed.value.diag.constraint_name == "no_patients"
