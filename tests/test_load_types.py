"""Every kind in the type mapping survives the trip through the loader, nasty values included, with
either source driver (the round trip runs once per driver; SOURCE_DRIVER picks the one of the rest)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
from test_load_support import admin_exec, drop_everywhere, pg_rows, source_rows, table_config

from etl_pipeline.db import AVAILABLE_DRIVERS, connect_source
from etl_pipeline.load import load_table, verify_table
from etl_pipeline.settings import SOURCE_DRIVERS

DRIVERS = [
    pytest.param(d, marks=pytest.mark.skipif(d not in AVAILABLE_DRIVERS, reason=f"{d} not installed"))
    for d in SOURCE_DRIVERS
]

DDL = """
CREATE TABLE nasty (
  id bigint(20) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  ti tinyint(4), tu tinyint(3) unsigned, si smallint(6), su smallint(5) unsigned,
  mi mediumint(9), ii int(11), iu int(10) unsigned, bi bigint(20), bu bigint(20) unsigned,
  de decimal(20,6), fl float, db double,
  b1 bit(1), b9 bit(9), yr year,
  d date, dtm datetime, dt6 datetime(6), ts timestamp NULL DEFAULT NULL, tm time, tm3 time(3),
  c char(3), vc varchar(255) COLLATE utf8mb3_bin, tx text, lt longtext,
  bn binary(4), vb varbinary(64), bl blob,
  en enum('a','b c','x\\\\y'), st set('r','g','b'),
  js json
) ENGINE=MyISAM DEFAULT CHARSET=utf8mb4
"""

ROWS = [
    # extremes
    (
        "INSERT INTO nasty VALUES (1, -128, 255, -32768, 65535, -8388608, -2147483648, 4294967295, "
        "-9223372036854775808, 18446744073709551615, -99999999999999.999999, -3.40282e38, -1.7976931348623157e308, "
        "b'1', b'000000101', 1901, '1000-01-01', '1000-01-01 00:00:00', '9999-12-31 23:59:59.999999', "
        "'1970-01-01 00:00:01', '-838:59:59', '838:59:59.999', 'abc', 'tab\\there\\nnl\\\\bs\\rcr', "
        "'emoji \U0001f9b7 \u00e9', REPEAT('long text ', 200000), x'00000000', x'00ff80fe', x'00c328ff0a0d09', "
        "'x\\\\y', '', '{\"k\": [1, \"\\\\u00e9\"]}')"
    ),
    # zero dates, empty strings, negative small time
    (
        "INSERT INTO nasty VALUES (2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b'0', b'0', 0, '0000-00-00', "
        "'0000-00-00 00:00:00', '2024-02-29 12:00:00.000001', NULL, '-00:00:01', '100:00:00', '', '', '', '', "
        "x'', x'', x'', 'b c', 'r,g,b', '[]')"
    ),
    # NULL everywhere
    "INSERT INTO nasty (id) VALUES (3)",
    # control characters and NUL inside text (NUL is dropped: PostgreSQL text cannot hold it)
    (
        "INSERT INTO nasty (id, vc, tx, bl, st, d) VALUES (4, CONCAT('a', CHAR(1), 'b', CHAR(0), 'c'), "
        "CONCAT('\\\\N', CHAR(9), '\\\\', CHAR(10)), CONCAT(x'00', x'5c4e', x'09'), 'g', '2020-00-15')"
    ),
]


@pytest.fixture(scope="module")
def nasty(settings):
    drop_everywhere(settings, "nasty")
    admin_exec(settings, DDL, *ROWS)
    return table_config(settings, "nasty", strategy="full", cursor=None)


def _raw(settings, column):
    return dict(pg_rows(settings, f"SELECT id, {column} FROM raw.nasty ORDER BY id"))


def _with_driver(settings, driver):
    return dataclasses.replace(settings, source=dataclasses.replace(settings.source, driver=driver))


@pytest.mark.parametrize("driver", DRIVERS)
def test_every_type_round_trips(settings, nasty, driver):
    pg_rows(settings, "DROP TABLE IF EXISTS raw.nasty CASCADE")  # each driver's load starts from nothing
    result = load_table(_with_driver(settings, driver), nasty, run_id=f"types-{driver}", full_refresh=True)
    assert result.status == "success" and result.rows_read == 4
    src = {
        r[0]: r
        for r in source_rows(
            settings,
            "SELECT id, bu, bi, de, db, tm, tm3, vc, tx, lt, vb, bl, en, js, dt6 FROM nasty ORDER BY id",
        )
    }
    assert _raw(settings, "bu")[1] == Decimal(18446744073709551615)
    assert _raw(settings, "bi")[1] == -9223372036854775808
    assert _raw(settings, "de")[1] == Decimal("-99999999999999.999999")
    assert _raw(settings, "db")[1] == -1.7976931348623157e308
    assert _raw(settings, "fl")[1] == pytest.approx(-3.40282e38, rel=1e-6)
    assert _raw(settings, "b1") == {1: True, 2: False, 3: None, 4: None}
    assert _raw(settings, "b9")[1] == "000000101"
    assert _raw(settings, "tm")[1] == -dt.timedelta(hours=838, minutes=59, seconds=59)
    assert _raw(settings, "tm")[2] == -dt.timedelta(seconds=1)
    assert _raw(settings, "tm3")[1] == dt.timedelta(hours=838, minutes=59, seconds=59, milliseconds=999)
    assert _raw(settings, "d") == {1: dt.date(1000, 1, 1), 2: None, 3: None, 4: None}
    assert _raw(settings, "dtm")[2] is None
    assert _raw(settings, "dt6")[1] == dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
    assert _raw(settings, "ts")[1] == dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=dt.UTC)
    assert _raw(settings, "vc")[1] == src[1][7] and "\t" in src[1][7] and "\\" in src[1][7]
    assert _raw(settings, "vc")[4] == "a\x01bc"  # NUL removed, other control chars kept
    assert _raw(settings, "tx")[1] == src[1][8] and "\U0001f9b7" in src[1][8]
    assert _raw(settings, "tx")[4] == "\\N\t\\\n"  # a literal \N is not NULL
    assert _raw(settings, "lt")[1] == src[1][9] and len(src[1][9]) == 2_000_000
    assert bytes(_raw(settings, "vb")[1]) == src[1][10] == b"\x00\xff\x80\xfe"
    assert bytes(_raw(settings, "bl")[1]) == src[1][11]
    assert bytes(_raw(settings, "bl")[4]) == b"\x00\\N\t"
    assert bytes(_raw(settings, "bl")[2]) == b""
    assert _raw(settings, "en") == {1: "x\\y", 2: "b c", 3: None, 4: None}
    assert _raw(settings, "st") == {1: [], 2: ["r", "g", "b"], 3: None, 4: ["g"]}
    assert _raw(settings, "js")[1] == {"k": [1, "\u00e9"]} and _raw(settings, "js")[2] == []
    assert _raw(settings, "c") == {1: "abc", 2: "", 3: None, 4: None}


@pytest.mark.skipif(len(AVAILABLE_DRIVERS) < 2, reason="needs both source drivers")
def test_both_drivers_read_the_same_values(settings, nasty):
    """What the code reads from the source besides the rendered lines (bounds, keys, catalogue values)
    comes back as the same Python values from either driver; zero dates as None from both."""
    read = {}
    for driver in AVAILABLE_DRIVERS:
        conn = connect_source(dataclasses.replace(settings.source_admin, driver=driver))
        cur = conn.cursor()
        cur.execute("SELECT * FROM nasty ORDER BY id")
        read[driver] = cur.fetchall()
        conn.close()
    assert list(read["pymysql"]) == list(read["mysqlclient"])
    zero_date, zero_datetime = read["pymysql"][1][16:18]  # '0000-00-00', '0000-00-00 00:00:00'
    assert zero_date is None and zero_datetime is None


def test_nasty_table_verifies_deep(settings, nasty):
    load_table(settings, nasty, run_id="types-2")
    parity = verify_table(settings, nasty, deep=True)
    assert parity.ok, parity
    admin_exec(settings, "UPDATE nasty SET tx = 'changed' WHERE id = 2")
    parity = verify_table(settings, nasty, deep=True)
    assert not parity.ok and parity.content_mismatches == 2


def test_text_only_and_text_free_tables_round_trip(settings):
    """The line joins the columns that need no escaping and the escaped ones in two parts: a table with
    only one kind loads too, NULLs and escapes included."""
    drop_everywhere(settings, "only_text", "no_text")
    admin_exec(
        settings,
        "CREATE TABLE only_text (k varchar(20) NOT NULL PRIMARY KEY, a text, b varchar(5)) "
        "ENGINE=MyISAM DEFAULT CHARSET=utf8mb3",
        "INSERT INTO only_text VALUES ('x\\ty', NULL, 'a\\\\b'), ('z', '', NULL), ('\\\\N', 'q\\nr', '')",
        "CREATE TABLE no_text (id int NOT NULL PRIMARY KEY, d date, f double) ENGINE=MyISAM",
        "INSERT INTO no_text VALUES (1, '2024-01-02', 1.5), (2, NULL, NULL)",
    )
    only_text = table_config(settings, "only_text", pk=("k",), strategy="full", cursor=None)
    no_text = table_config(settings, "no_text", strategy="full", cursor=None)
    for table in (only_text, no_text):
        assert load_table(settings, table, run_id="kinds").status == "success"
        assert verify_table(settings, table, deep=True).ok
    assert pg_rows(settings, "SELECT k, a, b FROM raw.only_text ORDER BY k") == [
        ("\\N", "q\nr", ""),
        ("x\ty", None, "a\\b"),
        ("z", "", None),
    ]
    assert pg_rows(settings, "SELECT id, d, f FROM raw.no_text ORDER BY id") == [
        (1, dt.date(2024, 1, 2), 1.5),
        (2, None, None),
    ]


def test_dates_postgresql_has_not_become_null(settings):
    """Zero dates, a zero month or day, and year 0 (MariaDB stores them, PostgreSQL has no such dates)."""
    drop_everywhere(settings, "odd_dates")
    admin_exec(
        settings,
        "CREATE TABLE odd_dates (id int NOT NULL PRIMARY KEY, d date, dt datetime) ENGINE=MyISAM",
        "INSERT INTO odd_dates VALUES (1, '0000-00-00', '0000-00-00 00:00:00'), "
        "(2, '2020-00-15', '2020-05-00 10:00:00'), (3, '0000-01-01', '0000-12-31 23:59:59'), "
        "(4, '0001-01-01', '0001-01-01 00:00:00'), (5, NULL, NULL)",
    )
    table = table_config(settings, "odd_dates", strategy="full", cursor=None)
    assert load_table(settings, table, run_id="dates").status == "success"
    assert pg_rows(settings, "SELECT id, d, dt FROM raw.odd_dates ORDER BY id") == [
        (1, None, None),
        (2, None, None),
        (3, None, None),
        (4, dt.date(1, 1, 1), dt.datetime(1, 1, 1)),
        (5, None, None),
    ]
