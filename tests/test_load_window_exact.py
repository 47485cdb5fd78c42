"""Exact windows on data stamped in the past, as Airbyte's standard source tests do: after every load the
rows read, inserted and updated and the saved cursor are asserted exactly. The source clock is pinned
(`SET timestamp` in every source session) so the upper bound is a known second, never "now".

What these pin down: the lower end is closed at the saved cursor (rows tied at it, and rows committed
into its second after a load read it, are read again), the upper end is closed at the source clock
minus one second (rows of the current second and later are left to the next load), and the saved
cursor is the newest value read, never the bound and never past it. Each test fails on an exclusive
lower bound, a missing upper bound or a cursor that jumps ahead. And the hour a DATETIME cursor's clock
repeats when it falls back (America/Chicago) is read with any lookback (see `load.window`)."""

from __future__ import annotations

import os
import subprocess

import pytest
from test_load_support import admin_exec, drop_everywhere, pg_rows, table_config

from etl_pipeline.load import load_table, verify_table
from etl_pipeline.settings import read_env_file


def make(settings, name, rows, cursor_type="datetime NOT NULL", lookback=0):
    drop_everywhere(settings, name)
    admin_exec(
        settings, f"CREATE TABLE {name} (id int PRIMARY KEY, v int NOT NULL, ts {cursor_type}) ENGINE=InnoDB"
    )
    insert(settings, name, rows)
    return table_config(settings, name, lookback=lookback)


def insert(settings, name, rows):
    """rows: {id: stamp} (a stamp None: the column's default, the pinned clock)."""
    for key, stamp in rows.items():
        if stamp is None:
            admin_exec(settings, f"INSERT INTO {name} (id, v) VALUES ({key}, {key})")
        else:
            admin_exec(settings, f"INSERT INTO {name} (id, v, ts) VALUES ({key}, {key}, '{stamp}')")


def load(settings, table, run_id):
    """(strategy, rows read, inserted, updated, saved cursor) of one load."""
    r = load_table(settings, table, run_id)
    saved = pg_rows(settings, "SELECT cursor_value FROM etl.load_state WHERE table_name = %s", (table.name,))
    return r.strategy, r.rows_read, r.inserted, r.updated, saved[0][0]


def raw_ids(settings, name):
    return [r[0] for r in pg_rows(settings, f"SELECT id FROM raw.{name} ORDER BY id")]


def test_ties_at_the_cursor_the_upper_bound_and_reruns_with_lookback_zero(settings, source_clock):
    source_clock("2020-01-01 08:50:01")  # the upper bound: 08:50:00
    t = make(
        settings, "wx_ties", {1: "2020-01-01 08:00:00", 2: "2020-01-01 08:50:00", 3: "2020-01-01 08:50:00"}
    )
    assert load(settings, t, "x1") == ("full", 3, 3, 0, "2020-01-01 08:50:00")

    # a row committed late into the saved second, one at the next bound, two beyond it
    insert(settings, "wx_ties", {4: "2020-01-01 08:50:00", 5: "2020-01-01 09:30:00"})
    insert(settings, "wx_ties", {6: "2020-01-01 09:30:01", 7: "2020-01-01 09:45:00"})
    source_clock("2020-01-01 09:30:01")  # upper bound 09:30:00
    # [08:50:00, 09:30:00]: the tied rows 2, 3 again, the late tie 4, and 5 at the bound; not 6 or 7
    assert load(settings, t, "x2") == ("incremental", 4, 2, 0, "2020-01-01 09:30:00")
    assert raw_ids(settings, "wx_ties") == [1, 2, 3, 4, 5]

    # the same clock again: only the row at the saved cursor is read, and nothing changes
    assert load(settings, t, "x3") == ("incremental", 1, 0, 0, "2020-01-01 09:30:00")

    # a second tie at the saved cursor arrives late; the clock moves on past 6 and 7
    insert(settings, "wx_ties", {8: "2020-01-01 09:30:00"})
    source_clock("2020-01-01 10:00:01")
    # [09:30:00, 10:00:00]: 5 and the late 8 at the saved second, 6 and 7; the cursor is the newest read
    assert load(settings, t, "x4") == ("incremental", 4, 3, 0, "2020-01-01 09:45:00")

    # a row stamped between the newest read and the bound, committed after that load (an application
    # clock behind the database's): the cursor stayed at the newest value read, so it is read now
    insert(settings, "wx_ties", {9: "2020-01-01 09:50:00"})
    assert load(settings, t, "x5") == ("incremental", 2, 1, 0, "2020-01-01 09:50:00")
    assert raw_ids(settings, "wx_ties") == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert verify_table(settings, t, deep=True).ok


def test_an_update_in_the_bound_second_is_left_to_the_next_load(settings, source_clock):
    """A TIMESTAMP ... ON UPDATE cursor stamped by the (pinned) server clock itself."""
    source_clock("2020-01-01 08:00:00")
    stamped = "timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp()"
    t = make(settings, "wx_upd", dict.fromkeys(range(1, 6)), cursor_type=stamped)
    # a full load has no upper end, but its saved cursor is capped at the bound taken before it
    assert load(settings, t, "u1") == ("full", 5, 5, 0, "2020-01-01 07:59:59")
    source_clock("2020-01-01 08:00:05")
    assert load(settings, t, "u2") == ("incremental", 5, 0, 0, "2020-01-01 08:00:00")

    admin_exec(settings, "UPDATE wx_upd SET v = -v WHERE id = 2")  # stamped 08:00:05
    # in the same second: the bound is 08:00:04, so row 2 is not read (nor the cursor moved past it)
    assert load(settings, t, "u3") == ("incremental", 4, 0, 0, "2020-01-01 08:00:00")
    source_clock("2020-01-01 08:00:06")
    assert load(settings, t, "u4") == ("incremental", 5, 0, 1, "2020-01-01 08:00:05")
    assert pg_rows(settings, "SELECT v FROM raw.wx_upd WHERE id = 2") == [(-2,)]
    assert verify_table(settings, t, deep=True).ok


@pytest.fixture
def chicago(settings, local_stack):
    """The source server's own time zone set to America/Chicago (its zone tables loaded for it)."""
    zone = subprocess.run(
        ["mariadb-tzinfo-to-sql", "/usr/share/zoneinfo/America/Chicago", "America/Chicago"],
        capture_output=True,
        check=True,
    ).stdout
    admin = settings.source_admin
    env = {**os.environ, "MYSQL_PWD": read_env_file(local_stack.env_file)["SOURCE_ADMIN_PASSWORD"]}
    subprocess.run(
        ["mariadb", "-h", admin.host, "-P", str(admin.port), "-u", admin.user, "mysql"],
        input=zone,
        env=env,
        check=True,
        capture_output=True,
    )
    admin_exec(settings, "SET GLOBAL time_zone = 'America/Chicago'")
    try:
        yield
    finally:
        admin_exec(settings, "SET GLOBAL time_zone = '+00:00'")


def test_the_repeated_hour_of_a_fall_back_is_read_with_a_lookback_below_an_hour(
    settings, source_clock, chicago
):
    """DATETIME cursors hold the server's wall time: in America/Chicago 2026-11-01 01:00-02:00 happens
    twice (CDT, UTC-5, then CST, UTC-6). With a 15-minute lookback, a row written at 01:10 CST after a
    load at 01:45 CDT saved 01:40 lies below the naive window (01:25 on). The loader guarantees it is
    read: while the zone's offset is smaller than at the saved cursor, the window reaches back further
    by the difference. The saved cursor never moves back."""
    source_clock("2026-11-01 06:45:00")  # 01:45 CDT
    t = make(settings, "wx_dst", {1: "2026-11-01 00:50:00", 2: "2026-11-01 01:40:00"}, lookback=15)
    assert load(settings, t, "d1") == ("full", 2, 2, 0, "2026-11-01 01:40:00")

    source_clock("2026-11-01 07:20:00")  # 01:20 CST: the clocks went back an hour at 02:00 CDT
    insert(settings, "wx_dst", {3: "2026-11-01 01:10:00"})
    # [01:40 - 15 min - 60 min, 01:19:59]: rows 1 and 3 (row 2, at 01:40, is ahead of the wall clock now)
    assert load(settings, t, "d2") == ("incremental", 2, 1, 0, "2026-11-01 01:40:00")

    source_clock("2026-11-01 07:50:00")  # 01:50 CST
    insert(settings, "wx_dst", {4: "2026-11-01 01:45:00"})
    assert load(settings, t, "d3") == ("incremental", 4, 1, 0, "2026-11-01 01:45:00")

    source_clock("2026-11-01 15:00:00")  # 09:00 CST; the saved cursor is still within the day's change
    insert(settings, "wx_dst", {5: "2026-11-01 08:30:00"})
    assert load(settings, t, "d4") == ("incremental", 5, 1, 0, "2026-11-01 08:30:00")

    source_clock("2026-11-01 18:00:00")  # 12:00 CST: the saved cursor is past the change, the lookback alone
    assert load(settings, t, "d5") == ("incremental", 1, 0, 0, "2026-11-01 08:30:00")
    assert raw_ids(settings, "wx_dst") == [1, 2, 3, 4, 5]
    assert verify_table(settings, t, deep=True).ok
