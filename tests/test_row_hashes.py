"""The deep check's per-bucket row hashes (`quality.row_hashes`): raw's rows rebuilt as the source's COPY
lines, column by column and nasty values included, on both engines; only the buckets that differ are
streamed; a changed value, a row raw lacks and a write after the load are still found and judged as
before; a failing hash falls back to streaming every row."""

from __future__ import annotations

import pytest
from test_load_support import admin_exec, drop_everywhere, parity_counts, pg_rows, source_rows, table_config

from etl_pipeline.db import connect_source, connect_target
from etl_pipeline.load import load_table
from etl_pipeline.load.source import live_columns
from etl_pipeline.load.sql_render import line_expression
from etl_pipeline.quality import load_parity, rotation, row_hashes
from etl_pipeline.quality.load_parity import verify_loaded

# test_load_types' nasty values (without json: jsonb normalises its text, so such tables are not hashed)
DDL = """
CREATE TABLE {name} (
  id bigint(20) NOT NULL PRIMARY KEY,
  ti tinyint(4), tu tinyint(3) unsigned, si smallint(6), su smallint(5) unsigned,
  mi mediumint(9), ii int(11), iu int(10) unsigned, bi bigint(20), bu bigint(20) unsigned,
  de decimal(20,6), fl float, db double,
  b1 bit(1), b9 bit(9), yr year,
  d date, dtm datetime, dt3 datetime(3), dt6 datetime(6), ts timestamp NULL DEFAULT NULL,
  ts2 timestamp(2) NULL DEFAULT NULL, tm time, tm3 time(3),
  c char(3), vc varchar(255) COLLATE utf8mb3_bin, tx text, l1 varchar(20) CHARACTER SET latin1,
  bn binary(4), vb varbinary(64), bl blob,
  en enum('a','b c','x\\\\y'), st set('r','g','b"'),
  ts_cursor datetime NOT NULL
) ENGINE={engine} DEFAULT CHARSET=utf8mb4
"""
ROWS = [
    "INSERT INTO {name} VALUES (1, -128, 255, -32768, 65535, -8388608, -2147483648, 4294967295, "
    "-9223372036854775808, 18446744073709551615, -99999999999999.999999, 12.5, 1234.56, "
    "b'1', b'000000101', 1901, '1000-01-01', '1000-01-01 00:00:00', '2024-02-29 12:00:00.100', "
    "'9999-12-31 23:59:59.999999', '1970-01-01 00:00:01', '2030-06-01 10:11:12.50', '-838:59:59', "
    "'838:59:59.999', 'abc', 'tab\\there\\nnl\\\\bs\\rcr', 'emoji \U0001f9b7 \u00e9 \"q\"', 'caf\u00e9', "
    "x'00000000', x'00ff80fe', x'00c328ff0a0d09', 'x\\\\y', 'r,b\"', '2020-01-01 08:00:00')",
    "INSERT INTO {name} VALUES (2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.1, -7, b'0', b'0', 0, '0000-00-00', "
    "'0000-00-00 00:00:00', '2024-02-29 12:00:00.000', '2024-02-29 12:00:00.000001', NULL, NULL, "
    "'-00:00:01', '100:00:00', '', '', '', '', x'', x'', x'', 'b c', 'r,g', '2020-01-01 08:00:00')",
    "INSERT INTO {name} (id, ts_cursor) VALUES (3, '2020-01-01 08:00:00')",
    "INSERT INTO {name} (id, vc, tx, bl, st, d, ts_cursor) VALUES (4, CONCAT('a', CHAR(1), 'b', CHAR(0), 'c'), "
    "CONCAT('\\\\N', CHAR(9), '\\\\', CHAR(10)), CONCAT(x'00', x'5c4e', x'09'), 'g', '2020-00-15', "
    "'2020-01-01 08:00:00')",
]
ENGINES = ["InnoDB", "MyISAM"]


def _nasty(settings, name: str, engine: str):
    drop_everywhere(settings, name)
    admin_exec(settings, DDL.format(name=name, engine=engine), *(r.format(name=name) for r in ROWS))
    table = table_config(settings, name, strategy="full", cursor=None)
    assert load_table(settings, table, f"{name}-1").status == "success"
    src = connect_source(settings.source)
    try:
        return table, live_columns(src, name)
    finally:
        src.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_raw_rows_are_rebuilt_as_the_source_lines_column_by_column(settings, engine):
    name = f"rh_nasty_{engine.lower()}"
    table, live = _nasty(settings, name, engine)
    for column in live:
        theirs = dict(
            source_rows(settings, f"SELECT id, {line_expression([column])} FROM {name} ORDER BY id")
        )
        mine = dict(
            pg_rows(settings, f"SELECT id, {row_hashes.raw_line_expression([column])} FROM raw.{name}")
        )
        assert {k: bytes(v).decode() for k, v in theirs.items()} == mine, column.name
    hashed = _hashes(settings, name, live, [(1, 4)])
    assert hashed == ([], 4)


def test_a_value_changed_in_raw_is_the_only_bucket_that_differs(settings):
    """Keys 1-3000 (buckets 0, 1, 2); a value changed in raw in bucket 1, a row deleted in raw in bucket 2."""
    name = "rh_buckets"
    drop_everywhere(settings, name)
    admin_exec(
        settings,
        f"CREATE TABLE {name} (id int PRIMARY KEY, v varchar(20), amount double) ENGINE=InnoDB",
        f"INSERT INTO {name} SELECT seq, CONCAT('v', seq), seq / 4 FROM seq_1_to_3000",
    )
    table = table_config(settings, name, strategy="full", cursor=None)
    load_table(settings, table, f"{name}-1")
    src = connect_source(settings.source)
    live = live_columns(src, name)
    src.close()
    assert _hashes(settings, name, live, [(1, 3000)]) == ([], 3000)
    pg_rows(settings, f"UPDATE raw.{name} SET v = 'changed' WHERE id = 1500")
    pg_rows(settings, f"DELETE FROM raw.{name} WHERE id = 2500")
    # bucket 1 holds keys 1024-2047, bucket 2 keys 2048-3000 here; the range starts inside bucket 0
    assert _hashes(settings, name, live, [(10, 3000)]) == ([(1024, 3000)], 1014)
    # several ranges: a bucket is hashed over its parts in all of them, so both parts of bucket 1
    # come back (1024-1200 holds no change itself); 2600-2700 misses the deleted key: equal
    ranges = [(10, 1200), (1400, 1600), (2600, 2700)]
    assert _hashes(settings, name, live, ranges) == ([(1024, 1200), (1400, 1600)], 1014 + 101)


def _hashes(settings, name, live, ranges):
    pg = connect_target(settings.target)
    try:
        with pg.cursor() as cur:
            key = next(c for c in live if c.name == "id")
            return row_hashes.differing_ranges(
                settings.source, name, key, live, cur, f"raw.{name}", ranges, keys_per_statement=500
            )
    finally:
        pg.close()


def _incremental(settings, source_clock, name: str, engine: str, rows: int = 3000):
    """`rows` keys stamped 08:00, a full load at 08:30, and an incremental night at 09:30 reading
    nothing new (its window starts at the saved cursor 08:00: all rows)."""
    drop_everywhere(settings, name)
    admin_exec(
        settings,
        f"CREATE TABLE {name} (id int PRIMARY KEY, v int NOT NULL, note text, ts datetime NOT NULL) "
        f"ENGINE={engine}",
        f"INSERT INTO {name} SELECT seq, seq, CONCAT('n\\t', seq), '2020-01-01 08:00:00' "
        f"FROM seq_1_to_{rows}",
    )
    table = table_config(settings, name, lookback=0)
    source_clock("2020-01-01 08:30:00")
    assert load_table(settings, table, f"{name}-1").strategy == "full"
    admin_exec(settings, f"UPDATE {name} SET ts = '2020-01-01 09:00:00' WHERE id = 1")
    source_clock("2020-01-01 09:30:00")
    night = load_table(settings, table, f"{name}-2")
    assert (night.strategy, night.rows_read) == ("incremental", 3000)  # window [08:00, ...]
    source_clock("2020-01-01 10:00:00")
    night = load_table(settings, table, f"{name}-3")
    assert (night.strategy, night.rows_read) == ("incremental", 1)  # window [09:00, ...]: id 1
    return table


def _due_day(name: str, low: int, high: int) -> int:
    days = [d for d in range(738_000, 738_000 + rotation.PERIOD) if rotation.key_ranges(name, d, low, high)]
    assert len(days) == 1
    return days[0]


def _judged(result):
    return (*parity_counts(result), result.deep_hashed_rows)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_deep_range_of_an_equal_table_streams_no_row(settings, source_clock, engine):
    name = f"rh_equal_{engine.lower()}"
    t = _incremental(settings, source_clock, name, engine)
    day = _due_day(name, 1, 3000)
    # every row of the range hashed equal (the window's one row is read by the content check too)
    assert _judged(verify_loaded(settings, t, day=day)) == (True, 0, 0, 0, 0, 3000, 3000)
    result = verify_loaded(settings, t, day=day + 1)  # not due: the window's row alone
    assert _judged(result) == (True, 0, 0, 0, 0, 1, 0) and not result.deep


@pytest.mark.parametrize("engine", ENGINES)
def test_a_change_in_a_deep_range_is_found_and_writes_after_the_load_stay_in_flight(
    settings, source_clock, engine
):
    name = f"rh_change_{engine.lower()}"
    t = _incremental(settings, source_clock, name, engine)
    day = _due_day(name, 1, 3000)
    pg_rows(settings, f"UPDATE raw.{name} SET note = 'x' WHERE id = 1500")  # bucket 1, outside the window
    pg_rows(settings, f"UPDATE raw.{name} SET _deleted_at = now() WHERE id = 2100")  # bucket 2
    admin_exec(settings, f"UPDATE {name} SET v = -1, ts = '2020-01-01 11:00:00' WHERE id = 20")  # bucket 0
    # buckets 0 (in flight), 1 and 2 differ: streamed; the rest of the range is hashed equal: none here
    result = verify_loaded(settings, t, day=day)
    assert _judged(result)[:5] == (False, 1, 0, 1, 1)
    assert result.deep_hashed_rows == 0 and result.content_checked_rows == 2999
    # one change: only its bucket is streamed
    name = f"rh_large_{engine.lower()}"
    t = _incremental(settings, source_clock, name, engine, rows=3000)
    pg_rows(settings, f"UPDATE raw.{name} SET v = 0 WHERE id = 2100")  # bucket 2: keys 2048-3000
    result = verify_loaded(settings, t, day=_due_day(name, 1, 3000))
    assert _judged(result) == (False, 0, 0, 1, 0, 3000, 2047)


def test_a_failing_hash_falls_back_to_streaming_every_row(settings, source_clock, monkeypatch, caplog):
    name = "rh_fallback"
    t = _incremental(settings, source_clock, name, "InnoDB")
    pg_rows(settings, f"UPDATE raw.{name} SET v = 0 WHERE id = 1500")
    monkeypatch.setattr(row_hashes, "raw_line_expression", lambda columns: "no_such_function()")
    caplog.set_level("WARNING", logger=load_parity.__name__)
    result = verify_loaded(settings, t, day=_due_day(name, 1, 3000))
    assert _judged(result) == (False, 0, 0, 1, 0, 3000, 0)
    assert f"{name}: the deep check's row hashes failed" in caplog.text
