"""The nightly's cheap delete check (counts and a look-up of raw's deleted keys) and when it hands over
to the key-bucket reconciliation; and raw tables that lack the loader's own columns."""

from __future__ import annotations

import logging

import pytest
from test_load_support import admin_exec, drop_everywhere, pg_rows, table_config

from etl_pipeline.load import incremental, load_table, verify_table

DDL = """CREATE TABLE {name} (
  id bigint(20) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  v int(11) NOT NULL DEFAULT 0,
  ts datetime NOT NULL
) ENGINE=MyISAM DEFAULT CHARSET=utf8mb3"""


def make(settings, name, rows=50, step="MINUTE"):
    drop_everywhere(settings, name)
    admin_exec(
        settings,
        DDL.format(name=name),
        f"INSERT INTO {name} (v, ts) SELECT seq, '2020-01-01 08:00:00' + INTERVAL seq {step} "
        f"FROM seq_1_to_{rows}",
    )
    return table_config(settings, name)


def assert_parity(settings, table):
    parity = verify_table(settings, table, deep=True)
    assert parity.ok, parity


def deleted_ids(settings, name):
    return [
        r[0]
        for r in pg_rows(settings, f"SELECT id FROM raw.{name} WHERE _deleted_at IS NOT NULL ORDER BY id")
    ]


@pytest.fixture
def bucket_calls(monkeypatch):
    """How often the nightly fell back to the key-bucket reconciliation."""
    calls = []
    original = incremental._differing_key_ranges

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(incremental, "_differing_key_ranges", counting)
    return calls


def test_without_deletes_the_bucket_reconciliation_is_skipped(settings, bucket_calls):
    t = make(settings, "dc_skip")
    load_table(settings, t, "s0")
    admin_exec(
        settings,
        "UPDATE dc_skip SET v = -v, ts = '2020-01-02' WHERE id IN (3, 30)",
        "INSERT INTO dc_skip (v, ts) VALUES (51, '2020-01-02')",
    )
    result = load_table(settings, t, "s1")
    assert (result.strategy, result.inserted, result.updated, result.deleted) == ("incremental", 1, 2, 0)
    assert bucket_calls == []
    admin_exec(settings, "DELETE FROM dc_skip WHERE id = 7")
    assert load_table(settings, t, "s2").deleted == 1
    assert bucket_calls == [1]
    assert deleted_ids(settings, "dc_skip") == [7]
    assert_parity(settings, t)


def test_a_restored_key_and_a_delete_in_the_same_night_are_both_seen(settings, bucket_calls):
    t = make(settings, "dc_restore", step="HOUR")  # key 10 lies far before the window
    load_table(settings, t, "r0")
    admin_exec(settings, "DELETE FROM dc_restore WHERE id = 10")
    assert load_table(settings, t, "r1").deleted == 1
    # equal counts: one key back with its old cursor value (outside every window), one key gone
    admin_exec(
        settings,
        "INSERT INTO dc_restore (id, v, ts) VALUES (10, 10, '2020-01-01 18:00:00')",
        "DELETE FROM dc_restore WHERE id = 20",
    )
    assert load_table(settings, t, "r2").deleted == 1
    assert deleted_ids(settings, "dc_restore") == [20]
    assert_parity(settings, t)


def test_a_key_below_the_high_water_mark_not_read_yet_defers_a_delete_to_a_later_run(settings):
    t = make(settings, "dc_unread")
    admin_exec(settings, "INSERT INTO dc_unread (id, v, ts) VALUES (100, 100, '2020-01-01 09:00:00')")
    load_table(settings, t, "u0")
    # a key in a gap below the largest key, stamped ahead of the source clock (not read this run),
    # beside a delete: the counts are equal, so this run cannot see the delete yet
    admin_exec(
        settings,
        "INSERT INTO dc_unread (id, v, ts) VALUES (60, 60, NOW() + INTERVAL 1 DAY)",
        "DELETE FROM dc_unread WHERE id = 20",
    )
    first = load_table(settings, t, "u1")
    assert (first.inserted, first.deleted) == (0, 0)
    # once that row is read, the vanished key shows in the counts and is marked
    admin_exec(settings, "UPDATE dc_unread SET ts = NOW() - INTERVAL 5 SECOND WHERE id = 60")
    second = load_table(settings, t, "u2")
    assert (second.inserted, second.deleted) == (1, 1)
    assert deleted_ids(settings, "dc_unread") == [20]
    assert_parity(settings, t)


def test_the_deleted_keys_index_follows_a_full_refresh(settings):
    t = make(settings, "dc_index")
    load_table(settings, t, "i0")
    index = "SELECT indexdef FROM pg_indexes WHERE schemaname = 'raw' AND indexname = 'dc_index__deleted'"
    assert "WHERE (_deleted_at IS NOT NULL)" in pg_rows(settings, index)[0][0]
    admin_exec(settings, "DELETE FROM dc_index WHERE id = 4")
    assert load_table(settings, t, "i1", full_refresh=True).deleted == 1
    assert len(pg_rows(settings, index)) == 1
    # a raw table made before the index existed gets it when the check first needs it
    pg_rows(settings, 'DROP INDEX raw."dc_index__deleted"')
    admin_exec(settings, "UPDATE dc_index SET v = 0, ts = '2020-01-03' WHERE id = 5")
    assert load_table(settings, t, "i2").updated == 1
    assert len(pg_rows(settings, index)) == 1
    assert_parity(settings, t)


@pytest.mark.parametrize("dropped", [("_loaded_at",), ("_loaded_at", "_deleted_at")])
def test_a_raw_table_without_the_loader_columns_is_repaired_by_a_full_refresh(settings, caplog, dropped):
    t = make(settings, "dc_meta")
    load_table(settings, t, "m0")
    admin_exec(settings, "DELETE FROM dc_meta WHERE id = 2")
    assert load_table(settings, t, "m1").deleted == 1
    pg_rows(settings, "ALTER TABLE raw.dc_meta " + ", ".join(f"DROP COLUMN {c}" for c in dropped))
    admin_exec(settings, "UPDATE dc_meta SET v = -1, ts = '2020-01-03' WHERE id = 3")
    with caplog.at_level(logging.WARNING, logger="etl_pipeline.load"):
        result = load_table(settings, t, "m2")
    assert result.status == "success" and result.strategy == "full"
    assert any("dc_meta" in r.getMessage() and "_loaded_at" in r.getMessage() for r in caplog.records)
    live_without_load_time = (
        "SELECT count(*) FROM raw.dc_meta WHERE _loaded_at IS NULL AND _deleted_at IS NULL"
    )
    assert pg_rows(settings, live_without_load_time) == [(0,)]
    assert deleted_ids(settings, "dc_meta") == [2]  # the vanished row is still kept, marked deleted
    assert load_table(settings, t, "m3").strategy == "incremental"
    assert_parity(settings, t)


def test_with_more_deleted_keys_than_the_probe_takes_buckets_compare_sums(settings, monkeypatch):
    monkeypatch.setattr(incremental, "RESTORED_PROBE_MAX", 1)
    monkeypatch.setattr(incremental, "PROBE_ROWS_PER_KEY", 10**9)
    t = make(settings, "dc_many", step="HOUR")
    load_table(settings, t, "p0")
    admin_exec(settings, "DELETE FROM dc_many WHERE id IN (10, 11)")
    assert load_table(settings, t, "p1").deleted == 2
    admin_exec(
        settings,
        "INSERT INTO dc_many (id, v, ts) VALUES (10, 10, '2020-01-01 18:00:00')",
        "DELETE FROM dc_many WHERE id = 20",
    )
    assert load_table(settings, t, "p2").deleted == 1
    assert deleted_ids(settings, "dc_many") == [11, 20]
    assert_parity(settings, t)


def test_the_bucket_counts_are_read_from_the_top_buckets_down_as_far_as_a_delete_lies(settings, monkeypatch):
    """Deletes are mostly of recent rows: the source's key index is read for the top buckets first and
    further down only when the counts below them still differ."""
    t = make(settings, "dc_top", rows=200_000, step="SECOND")  # 196 buckets of 1,024 keys
    load_table(settings, t, "t0")
    reads = []  # the lowest key of each range of the source's key index that was counted by bucket
    original = incremental._bucket_counts_from_the_top

    def spying(cur, scur, ctx, high):
        execute = scur.execute

        def noting(sql, params=None):
            if "GROUP BY" in sql:
                reads.append(params[0])
            return execute(sql, params)

        scur.execute = noting
        return original(cur, scur, ctx, high)

    monkeypatch.setattr(incremental, "_bucket_counts_from_the_top", spying)

    admin_exec(settings, "DELETE FROM dc_top WHERE id IN (199000, 199999)")  # in the top 1/64
    assert load_table(settings, t, "t1").deleted == 2
    assert len(reads) == 1 and reads[0] > 190_000
    reads.clear()
    admin_exec(settings, "DELETE FROM dc_top WHERE id IN (5, 198000)")  # one far down
    assert load_table(settings, t, "t2").deleted == 2
    assert len(reads) == 3 and reads[-1] < 0  # 1/64, 1/8, all
    assert deleted_ids(settings, "dc_top") == [5, 198000, 199000, 199999]
    assert_parity(settings, t)
