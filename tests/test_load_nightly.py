"""The cheap nightly: the cursor taken from the rows read in the one window scan, unchanged-table
skips, and the raw-side key-bucket summary kept in step with raw."""

from __future__ import annotations

import time

from test_load_support import admin_exec, drop_everywhere, pg_rows, table_config

from etl_pipeline.load import load_table, verify_table

DDL = """CREATE TABLE {name} (
  id bigint(20) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  v int(11) NOT NULL DEFAULT 0,
  ts datetime NOT NULL
) ENGINE={engine} DEFAULT CHARSET=utf8mb3"""


def make(settings, name, engine="InnoDB", rows=50):
    drop_everywhere(settings, name)
    admin_exec(settings, DDL.format(name=name, engine=engine),
               f"INSERT INTO {name} (v, ts) SELECT seq, '2020-01-01 08:00:00' + INTERVAL seq MINUTE "
               f"FROM seq_1_to_{rows}")
    return table_config(settings, name)


def state_cursor(settings, name):
    return pg_rows(settings, "SELECT cursor_value FROM etl.load_state WHERE table_name = %s", (name,))[0][0]


def assert_parity(settings, table):
    parity = verify_table(settings, table, deep=True)
    assert parity.ok, parity


def test_cursor_is_the_newest_row_read_on_a_simulated_clock(settings):
    t = make(settings, "nt_clock")
    load_table(settings, t, "c1")
    assert state_cursor(settings, "nt_clock") == "2020-01-01 08:50:00"
    # an application clock far behind the real one: the cursor follows the data, not NOW()
    admin_exec(settings, "INSERT INTO nt_clock (v, ts) VALUES (1000, '2020-01-01 09:30:00')",
               "UPDATE nt_clock SET v = -1, ts = '2020-01-01 08:20:00' WHERE id = 3")  # inside the lookback
    second = load_table(settings, t, "c2")
    assert (second.strategy, second.inserted, second.updated) == ("incremental", 1, 1)
    assert state_cursor(settings, "nt_clock") == "2020-01-01 09:30:00"
    # the newest row deleted: the cursor does not move back (and the delete is seen)
    admin_exec(settings, "DELETE FROM nt_clock WHERE v = 1000")
    third = load_table(settings, t, "c3")
    assert third.deleted == 1 and state_cursor(settings, "nt_clock") == "2020-01-01 09:30:00"
    # a row stamped in the future is not read and does not carry the cursor past the source clock
    admin_exec(settings, "INSERT INTO nt_clock (v, ts) VALUES (7, NOW() + INTERVAL 1 DAY)")
    fourth = load_table(settings, t, "c4")
    assert fourth.inserted == 0 and state_cursor(settings, "nt_clock") == "2020-01-01 09:30:00"
    admin_exec(settings, "UPDATE nt_clock SET ts = NOW() - INTERVAL 5 SECOND WHERE v = 7")
    fifth = load_table(settings, t, "c5")
    assert fifth.inserted == 1 and state_cursor(settings, "nt_clock") > "2020-01-02"
    assert_parity(settings, t)


def test_rows_of_the_current_second_are_read_next_time(settings):
    t = make(settings, "nt_now", rows=3)
    load_table(settings, t, "n1")
    admin_exec(settings, "INSERT INTO nt_now (v, ts) VALUES (9, NOW())")
    first = load_table(settings, t, "n2")  # same second: beyond the bound NOW() - 1 s
    time.sleep(1.05)
    second = load_table(settings, t, "n3")
    assert first.inserted + second.inserted == 1
    assert_parity(settings, t)
