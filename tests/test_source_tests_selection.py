"""Which tables the nightly's source tests cover (`dbt_steps.tables_to_test`): those whose raw changed
since their tests last passed, from the loads' own history in `etl.load_runs`. Rows stamped in the past,
the source clock pinned, lookback 0, so each load reads a known window."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from test_load_support import admin_exec, drop_everywhere, table_config

from etl_pipeline.dbt_steps import record_passed, tables_to_test
from etl_pipeline.load import load_table


def _table(settings, source_clock, name):
    drop_everywhere(settings, name)
    admin_exec(
        settings,
        f"CREATE TABLE {name} (id int PRIMARY KEY, v int NOT NULL, ts datetime NOT NULL) ENGINE=InnoDB",
        *(f"INSERT INTO {name} VALUES ({i}, {i}, '2020-01-01 08:00:00')" for i in range(1, 6)),
    )
    table = table_config(settings, name, lookback=0)
    source_clock("2020-01-01 08:30:00")
    assert load_table(settings, table, f"{name}-1").strategy == "full"
    return table


def _passed_now(settings, tables):
    time.sleep(0.01)  # the test run starts after the loads finished
    record_passed(settings, tables, datetime.now(UTC))


def test_only_tables_whose_raw_changed_since_their_tests_passed_are_tested(settings, source_clock):
    quiet, busy = _table(settings, source_clock, "st_quiet"), _table(settings, source_clock, "st_busy")
    names = ["st_busy", "st_quiet"]
    assert tables_to_test(settings, names) == names  # never tested
    _passed_now(settings, names)
    assert tables_to_test(settings, names) == []

    # a night that reads both windows again but changes only st_busy's raw
    admin_exec(settings, "UPDATE st_busy SET v = -1, ts = '2020-01-01 09:00:00' WHERE id = 2")
    source_clock("2020-01-01 09:30:00")
    assert load_table(settings, busy, "st-2").updated == 1
    night = load_table(settings, quiet, "st-2")
    assert night.status == "success" and (night.inserted, night.updated, night.deleted) == (0, 0, 0)
    assert tables_to_test(settings, names) == ["st_busy"]

    # tonight's tests fail: nothing is recorded, so st_busy is due again on a night it does not change
    source_clock("2020-01-01 10:30:00")
    assert load_table(settings, busy, "st-3").updated == 0
    assert tables_to_test(settings, names) == ["st_busy"]
    _passed_now(settings, ["st_busy"])
    assert tables_to_test(settings, names) == []

    # a delete at the source marked in raw, and a full reload, each make a table due
    admin_exec(settings, "DELETE FROM st_quiet WHERE id = 5")
    source_clock("2020-01-01 11:30:00")
    assert load_table(settings, quiet, "st-4").deleted == 1
    assert load_table(settings, busy, "st-4", full_refresh=True).strategy == "full"
    assert tables_to_test(settings, names) == names
