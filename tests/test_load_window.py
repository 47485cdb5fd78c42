"""The read window and the saved cursor: exact ends, ties, lookback arithmetic on past data (no
"now" anywhere), and the rules the saved cursor moves by. The last test runs the rendered WHERE on
MariaDB against rows stamped exactly at and beside each end."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from test_load_support import admin_exec, drop_everywhere, offline_table

from etl_pipeline.db import connect_source
from etl_pipeline.errors import ConfigError
from etl_pipeline.load.window import (
    Cursor,
    Window,
    after_full,
    after_incremental,
    cursor_of,
    full_window,
    incremental_window,
)

TS = Cursor("t", "ts", "timestamp")
DT = Cursor("t", "dt", "datetime")
KEY = Cursor("t", "id", "key")
DAY = Cursor("t", "d", "date")
T0 = datetime(2020, 1, 1, 8, 50)


def cursor_for(columns, **fields):
    table, live = offline_table("t", columns, **fields)
    return cursor_of(table, {c.name.lower(): c for c in live})


# --- the window ------------------------------------------------------------------------------------


def test_a_time_window_is_closed_at_the_saved_cursor_less_the_lookback_and_at_the_clock_bound():
    window = incremental_window(TS, "2020-01-01 08:50:00", datetime(2020, 1, 1, 9, 30), lookback_minutes=60)
    assert window == Window(
        "ts",
        "timestamp",
        lower=datetime(2020, 1, 1, 7, 50),
        lower_end="closed",
        upper=datetime(2020, 1, 1, 9, 30),
        upper_end="closed",
        lookback=timedelta(minutes=60),
    )
    assert window.where() == (
        "`ts` >= %s AND `ts` <= %s",
        (datetime(2020, 1, 1, 7, 50), datetime(2020, 1, 1, 9, 30)),
    )
    assert window.contains(datetime(2020, 1, 1, 7, 50))  # exactly at the lower bound
    assert not window.contains(datetime(2020, 1, 1, 7, 49, 59))
    assert window.contains(T0)  # tied at the saved cursor: read again
    assert window.contains(datetime(2020, 1, 1, 9, 30))  # exactly at the upper bound
    assert not window.contains(datetime(2020, 1, 1, 9, 30, 0, 1))


def test_lookback_zero_starts_the_window_at_the_saved_cursor_itself():
    window = incremental_window(DT, "2020-01-01 08:50:00", datetime(2020, 1, 1, 9), lookback_minutes=0)
    assert (window.lower, window.lower_end, window.lookback) == (T0, "closed", timedelta(0))
    assert window.contains(T0) and not window.contains(T0 - timedelta(microseconds=1))


def test_lookback_arithmetic_crosses_midnight_and_keeps_fractions_of_a_second():
    window = incremental_window(DT, "2020-03-01 00:20:00.250", datetime(2020, 3, 1, 1), lookback_minutes=45)
    assert window.lower == datetime(2020, 2, 29, 23, 35, 0, 250000)  # a leap day, on data in the past


def test_a_key_window_is_open_at_the_saved_key_and_closed_at_the_max_key():
    window = incremental_window(KEY, "100", 150, lookback_minutes=60)
    assert window == Window("id", "key", lower=100, lower_end="open", upper=150, upper_end="closed")
    assert window.where() == ("`id` > %s AND `id` <= %s", (100, 150))
    assert [k for k in (99, 100, 101, 150, 151) if window.contains(k)] == [101, 150]


def test_an_empty_source_reads_nothing_and_a_full_load_reads_everything():
    empty = incremental_window(DAY, "2020-01-02 00:00:00", None, lookback_minutes=60)
    assert empty.where() == ("1 = 0", ()) and not empty.contains(T0)
    assert full_window(TS, datetime(2020, 1, 1, 9)).where() == ("", ())
    assert full_window(None, None).where() == ("", ())
    assert full_window(KEY, 150).where() == ("`id` <= %s", (150,))


def test_open_ends_exclude_their_bound():
    window = Window(
        "ts", "datetime", lower=T0, lower_end="open", upper=T0 + timedelta(hours=1), upper_end="open"
    )
    assert window.where() == ("`ts` > %s AND `ts` < %s", (T0, T0 + timedelta(hours=1)))
    assert not window.contains(T0) and not window.contains(T0 + timedelta(hours=1))
    assert window.contains(T0 + timedelta(seconds=1))


# --- the saved cursor ------------------------------------------------------------------------------


def test_a_time_cursor_becomes_the_newest_value_read_and_never_moves_back():
    bound = datetime(2020, 1, 1, 10)
    assert (
        after_incremental(TS, "2020-01-01 09:30:00", b"2020-01-01 09:45:10", bound) == "2020-01-01 09:45:10"
    )
    # the newest row deleted: what was read is older than the saved cursor
    assert (
        after_incremental(TS, "2020-01-01 09:30:00", b"2020-01-01 09:00:00", bound) == "2020-01-01 09:30:00"
    )
    assert after_incremental(TS, "2020-01-01 09:30:00", None, bound) == "2020-01-01 09:30:00"  # nothing read
    # tied at the saved cursor: the saved text stays as it was
    assert (
        after_incremental(TS, "2020-01-01 09:30:00", b"2020-01-01 09:30:00", bound) == "2020-01-01 09:30:00"
    )
    assert after_incremental(DT, "2020-01-01 09:30:00.500", b"2020-01-01 09:30:00.250", bound) == (
        "2020-01-01 09:30:00.500"
    )


def test_a_time_cursor_never_passes_the_upper_bound_it_was_read_with():
    bound = datetime(2020, 1, 1, 10)
    assert (
        after_incremental(TS, "2020-01-01 09:30:00", b"2020-01-01 10:00:00", bound) == "2020-01-01 10:00:00"
    )
    assert (
        after_incremental(TS, "2020-01-01 09:30:00", b"2020-01-01 10:00:01", bound) == "2020-01-01 10:00:00"
    )


def test_key_and_date_cursors_are_the_upper_bound_taken_before_the_read():
    assert after_incremental(KEY, "100", None, 150) == "150"
    assert after_incremental(KEY, "100", None, 90) == "90"  # the newest keys deleted: reused keys are read
    assert after_incremental(DAY, "2020-01-01 00:00:00", None, datetime(2020, 1, 2)) == "2020-01-02 00:00:00"
    assert after_incremental(DAY, "2020-01-01 00:00:00", None, None) is None  # the table emptied


def test_a_full_load_saves_the_newest_value_read_capped_by_the_clock_bound():
    bound = datetime(2020, 1, 1, 12)
    assert after_full(TS, b"2020-01-01 11:59:59", bound) == "2020-01-01 11:59:59"
    assert after_full(TS, b"2020-01-01 12:00:00", bound) == "2020-01-01 12:00:00"
    assert (
        after_full(TS, b"2020-01-02 08:00:00", bound) == "2020-01-01 12:00:00"
    )  # stamped ahead of the clock
    assert after_full(TS, None, bound) is None  # an empty table: no cursor yet
    assert after_full(KEY, None, 150) == "150"
    assert after_full(None, None, None) is None


def test_a_saved_cursor_of_another_kind_does_not_parse():
    assert TS.value("2020-01-01 08:50:00") == T0 and KEY.value("42") == 42
    with pytest.raises(ValueError):
        TS.value("42")
    with pytest.raises(ValueError):
        KEY.value("2020-01-01 08:50:00")


# --- which cursor a table has ----------------------------------------------------------------------


def test_the_cursor_kind_follows_the_strategy_and_the_column_type():
    assert cursor_for({"id": "bigint(20)", "ts": "timestamp"}) == Cursor("t", "ts", "timestamp")
    assert cursor_for({"id": "bigint(20)", "ts": "datetime(3)"}) == Cursor("t", "ts", "datetime")
    assert cursor_for({"id": "bigint(20)", "ts": "date"}) == Cursor("t", "ts", "date")
    assert cursor_for({"id": "int(11)", "v": "int"}, strategy="append_only", cursor="id") == Cursor(
        "t", "id", "key"
    )
    assert cursor_for({"id": "int(11)"}, strategy="full", cursor=None) is None


def test_a_cursor_no_window_can_be_bounded_by_is_a_configuration_error():
    with pytest.raises(ConfigError, match=r"t: cursor column 'ts' not found at the source"):
        cursor_for({"id": "int"})
    with pytest.raises(ConfigError, match=r"t: cursor column 'v' is of kind integer"):
        cursor_for({"id": "int", "v": "int"}, cursor="v")
    # a full table reads everything anyway: it just keeps no cursor
    assert cursor_for({"id": "int"}, strategy="full") is None
    assert cursor_for({"id": "int", "v": "int"}, strategy="full", cursor="v") is None


# --- the rendered condition on the server ---------------------------------------------------------


def test_the_rendered_where_reads_exactly_the_rows_contains_says(settings):
    drop_everywhere(settings, "win_ends")
    stamps = [
        "2020-01-01 07:49:59",
        "2020-01-01 07:50:00",  # the lower bound: saved 08:50 less 60 minutes
        "2020-01-01 08:50:00",  # the saved cursor
        "2020-01-01 08:50:00",  # a tie
        "2020-01-01 09:30:00",  # the upper bound
        "2020-01-01 09:30:01",
    ]
    admin_exec(
        settings,
        "CREATE TABLE win_ends (id int PRIMARY KEY, ts datetime NOT NULL)",
        "INSERT INTO win_ends VALUES " + ", ".join(f"({i}, '{s}')" for i, s in enumerate(stamps, start=1)),
    )
    windows = {
        "time": incremental_window(
            Cursor("win_ends", "ts", "datetime"), "2020-01-01 08:50:00", datetime(2020, 1, 1, 9, 30), 60
        ),
        "key": incremental_window(Cursor("win_ends", "id", "key"), "2", 5, 60),
    }
    values = {"time": [datetime.fromisoformat(s) for s in stamps], "key": list(range(1, 7))}
    expected = {"time": [2, 3, 4, 5], "key": [3, 4, 5]}
    conn = connect_source(settings.source)
    try:
        for name, window in windows.items():
            where, params = window.where()
            cur = conn.cursor()
            cur.execute(f"SELECT id FROM win_ends WHERE {where} ORDER BY id", params)
            assert [row[0] for row in cur.fetchall()] == expected[name]
            assert [i for i, v in enumerate(values[name], start=1) if window.contains(v)] == expected[name]
    finally:
        conn.close()
