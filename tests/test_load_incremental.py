"""Full then incremental loads of hand-made tables: merges, deletes, same-second bursts, concurrent
updates during extraction, no rewrite of unchanged rows, dependent views, append-only, schema drift."""

from __future__ import annotations

import dataclasses
import time

from test_load_support import admin_exec, drop_everywhere, pg_rows, table_config

from etl_pipeline.load import load_table, source, verify_table

DDL = """CREATE TABLE {name} (
  id bigint(20) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  v int(11) NOT NULL DEFAULT 0,
  note varchar(100) DEFAULT '',
  ts timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
  KEY ts (ts)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb3"""


def make(settings, name, rows=100):
    drop_everywhere(settings, name)
    admin_exec(
        settings,
        DDL.format(name=name),
        f"INSERT INTO {name} (v, note) SELECT seq, CONCAT('n', seq) FROM seq_1_to_{rows}",
    )
    return table_config(settings, name)


def next_second():
    """A load reads up to the previous second of the source clock; let the current one pass."""
    time.sleep(1.05)


def assert_parity(settings, table):
    parity = verify_table(settings, table, deep=True)
    assert parity.ok, parity


def saved_cursor(settings, name):
    return pg_rows(settings, "SELECT cursor_value FROM etl.load_state WHERE table_name = %s", (name,))[0][0]


def test_full_then_incremental_with_updates_inserts_deletes(settings):
    t = make(settings, "inc_basic")
    first = load_table(settings, t, "r1")
    assert (first.strategy, first.inserted) == ("full", 100)
    admin_exec(
        settings,
        "UPDATE inc_basic SET v = v + 1000 WHERE id <= 10",
        "INSERT INTO inc_basic (v) SELECT seq FROM seq_1_to_5",
        "DELETE FROM inc_basic WHERE id BETWEEN 50 AND 52",
    )
    next_second()
    second = load_table(settings, t, "r2")
    assert second.strategy == "incremental"
    assert (second.inserted, second.updated, second.deleted) == (5, 10, 3)
    assert_parity(settings, t)
    marked = pg_rows(settings, "SELECT id FROM raw.inc_basic WHERE _deleted_at IS NOT NULL ORDER BY id")
    assert [r[0] for r in marked] == [50, 51, 52]
    # a deleted row that comes back clears its mark
    admin_exec(settings, "INSERT INTO inc_basic (id, v) VALUES (51, 7)")
    next_second()
    third = load_table(settings, t, "r3")
    assert third.updated == 1
    assert_parity(settings, t)
    assert pg_rows(settings, "SELECT _deleted_at, v FROM raw.inc_basic WHERE id = 51") == [(None, 7)]
    runs = pg_rows(
        settings,
        "SELECT run_id, status, inserted, updated, deleted, reason FROM etl.load_runs "
        "WHERE table_name = 'inc_basic' ORDER BY started_at",
    )
    assert runs == [
        ("r1", "success", 100, 0, 0, "first_load"),
        ("r2", "success", 5, 10, 3, "saved_cursor"),
        ("r3", "success", 0, 1, 0, "saved_cursor"),
    ]
    assert (first.to_dict()["reason"], third.to_dict()["reason"]) == ("first_load", "saved_cursor")


def test_unchanged_rows_are_not_rewritten(settings):
    t = make(settings, "inc_same")
    load_table(settings, t, "s1")
    before = pg_rows(settings, "SELECT id, xmin::text, _loaded_at FROM raw.inc_same ORDER BY id")
    admin_exec(settings, "UPDATE inc_same SET v = v WHERE id <= 50")  # no value changes
    next_second()
    again = load_table(settings, t, "s2")  # the lookback window re-reads every row
    assert again.rows_read == 100 and (again.inserted, again.updated) == (0, 0)
    assert pg_rows(settings, "SELECT id, xmin::text, _loaded_at FROM raw.inc_same ORDER BY id") == before


def test_same_second_burst_loses_nothing(settings):
    t = make(settings, "inc_burst", rows=10)
    load_table(settings, t, "b0")
    for round_no in range(4):
        # writes in the same second as the load, before and after it reads
        admin_exec(
            settings,
            "INSERT INTO inc_burst (v) SELECT seq FROM seq_1_to_20",
            f"UPDATE inc_burst SET v = v + 1 WHERE id % 3 = {round_no % 3}",
        )
        load_table(settings, t, f"b{round_no + 1}")
        admin_exec(
            settings,
            "INSERT INTO inc_burst (v) SELECT seq FROM seq_1_to_7",
            f"DELETE FROM inc_burst WHERE id % 11 = {round_no}",
        )
    next_second()
    load_table(settings, t, "b-final")
    assert_parity(settings, t)


def test_rows_changed_during_extraction_are_not_lost(settings, monkeypatch):
    t = make(settings, "inc_concurrent", rows=3000)
    load_table(settings, t, "c0")
    admin_exec(settings, "UPDATE inc_concurrent SET v = -v")  # everything in the next window
    next_second()
    monkeypatch.setattr(source, "BATCH_ROWS", 200)
    seen = []

    def hook(table, batch_no):
        if table == "inc_concurrent" and batch_no == 2 and not seen:
            seen.append(batch_no)
            admin_exec(
                settings,
                "UPDATE inc_concurrent SET v = 1 WHERE id IN (1, 2999)",
                "INSERT INTO inc_concurrent (v) VALUES (42)",
                "DELETE FROM inc_concurrent WHERE id = 1500",
            )

    monkeypatch.setattr(source, "batch_hook", hook)
    load_table(settings, t, "c1")
    assert seen == [2]
    monkeypatch.setattr(source, "batch_hook", None)
    next_second()
    load_table(settings, t, "c2")
    assert_parity(settings, t)


def test_bulk_update_of_every_row(settings):
    t = make(settings, "inc_bulk", rows=20000)
    load_table(settings, t, "k0")
    admin_exec(settings, "UPDATE inc_bulk SET v = v * 2, note = 'aged'")
    next_second()
    result = load_table(settings, t, "k1")
    assert result.updated == 20000
    assert_parity(settings, t)


def test_full_refresh_keeps_dependent_views_and_history(settings):
    t = make(settings, "inc_viewed", rows=50)
    load_table(settings, t, "v0")
    pg_rows(settings, "CREATE VIEW public.inc_viewed_v AS SELECT id, v FROM raw.inc_viewed")
    admin_exec(settings, "DELETE FROM inc_viewed WHERE id = 7", "ALTER TABLE inc_viewed ADD COLUMN extra int")
    result = load_table(settings, t, "v1", full_refresh=True)
    assert (result.strategy, result.reason, result.deleted) == ("full", "forced", 1)
    assert pg_rows(settings, "SELECT count(*) FROM public.inc_viewed_v") == [(50,)]
    assert pg_rows(settings, "SELECT _deleted_at IS NOT NULL FROM raw.inc_viewed WHERE id = 7") == [(True,)]
    assert_parity(settings, t)
    pg_rows(settings, "DROP VIEW public.inc_viewed_v")
    # and without views the table is swapped by renames; the primary key keeps its name
    load_table(settings, t, "v2", full_refresh=True)
    assert pg_rows(
        settings, "SELECT conname FROM pg_constraint WHERE conrelid = 'raw.inc_viewed'::regclass"
    ) == [("inc_viewed_pkey",)]
    assert_parity(settings, t)


def test_append_only_reads_beyond_last_key(settings):
    drop_everywhere(settings, "inc_append")
    admin_exec(
        settings,
        "CREATE TABLE inc_append (id bigint PRIMARY KEY, v int)",
        "INSERT INTO inc_append SELECT seq, seq FROM seq_1_to_100",
    )
    t = table_config(settings, "inc_append", strategy="append_only", cursor="id", detect_deletes=False)
    load_table(settings, t, "a0")
    admin_exec(settings, "INSERT INTO inc_append SELECT seq, seq FROM seq_101_to_130")
    result = load_table(settings, t, "a1")
    # the window re-reads the last lookback_keys (1000) keys below the saved one: all 100, unchanged
    assert (result.strategy, result.rows_read, result.inserted, result.updated) == ("append_only", 130, 30, 0)
    assert saved_cursor(settings, "inc_append") == "130"
    narrow = dataclasses.replace(t, lookback_keys=10)
    admin_exec(settings, "INSERT INTO inc_append SELECT seq, seq FROM seq_131_to_140")
    result = load_table(settings, narrow, "a2")
    assert (result.rows_read, result.inserted, result.updated) == (20, 10, 0)  # keys 121-140
    assert saved_cursor(settings, "inc_append") == "140"
    assert_parity(settings, t)


def test_schema_drift_at_load_time(settings, caplog):
    t = make(settings, "inc_drift", rows=20)
    load_table(settings, t, "d0")
    next_second()  # MyISAM's ALTER rebuilds the table: a new CREATE_TIME must still read as drift, not a restore
    admin_exec(
        settings,
        "ALTER TABLE inc_drift ADD COLUMN added varchar(10) DEFAULT 'x'",
        "ALTER TABLE inc_drift MODIFY v bigint NOT NULL DEFAULT 0",
        "UPDATE inc_drift SET v = 9000000000 WHERE id = 1",
    )
    next_second()
    result = load_table(settings, t, "d1")
    assert result.strategy == "incremental"
    types = dict(
        pg_rows(
            settings,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'raw' AND table_name = 'inc_drift'",
        )
    )
    assert types["v"] == "bigint" and types["added"] == "text"
    assert_parity(settings, t)
    admin_exec(settings, "ALTER TABLE inc_drift DROP COLUMN note")
    load_table(settings, t, "d2")
    assert "note" in dict(
        pg_rows(
            settings,
            "SELECT column_name, 1 FROM information_schema.columns "
            "WHERE table_schema = 'raw' AND table_name = 'inc_drift'",
        )
    )
    assert "no longer exists at the source" in caplog.text
    assert column_comments(settings, "inc_drift") == {"note": VANISHED}  # what dbt's staging check reads
    admin_exec(settings, "ALTER TABLE inc_drift MODIFY added int")  # text -> integer: incompatible
    result = load_table(settings, t, "d3")
    assert (result.strategy, result.reason) == ("full", "incompatible_type_change")
    assert "column added changed from text to integer (not a widening)" in caplog.text
    assert pg_rows(settings, "SELECT note FROM raw.inc_drift WHERE id = 1") == [("n1",)]
    assert column_comments(settings, "inc_drift") == {"note": VANISHED}  # the rebuilt table keeps the mark
    assert_parity(settings, t)
    admin_exec(settings, "ALTER TABLE inc_drift ADD COLUMN note varchar(20)")  # back at the source
    next_second()
    load_table(settings, t, "d4")
    assert column_comments(settings, "inc_drift") == {}


VANISHED = "vanished at the source (renamed or dropped by an upgrade): old values kept, no new ones"


def column_comments(settings, table: str) -> dict[str, str]:
    return dict(
        pg_rows(
            settings,
            "SELECT a.attname, d.description FROM pg_attribute a JOIN pg_description d "
            "ON d.objoid = a.attrelid AND d.objsubid = a.attnum WHERE a.attrelid = %s::regclass",
            (f"raw.{table}",),
        )
    )


def test_table_without_primary_key_is_always_full(settings):
    drop_everywhere(settings, "inc_nopk")
    admin_exec(
        settings,
        "CREATE TABLE inc_nopk (a int, b text)",
        "INSERT INTO inc_nopk VALUES (1, 'x'), (1, 'x'), (2, NULL)",
    )
    t = table_config(settings, "inc_nopk", pk=(), cursor=None, detect_deletes=False)
    first = load_table(settings, t, "n0")
    assert (first.strategy, first.reason) == ("full", "no_primary_key")
    admin_exec(settings, "DELETE FROM inc_nopk WHERE a = 2")
    assert load_table(settings, t, "n1").strategy == "full"
    assert_parity(settings, t)


def test_delete_reconciliation_across_key_buckets(settings):
    t = make(settings, "inc_buckets", rows=30000)
    load_table(settings, t, "k0")
    admin_exec(settings, "DELETE FROM inc_buckets WHERE id IN (9000, 25000)")
    next_second()
    assert load_table(settings, t, "k1").deleted == 2
    # a delete beside an insert of the same second (not read yet) in the same key bucket
    admin_exec(
        settings, "DELETE FROM inc_buckets WHERE id = 30000", "INSERT INTO inc_buckets (id) VALUES (30001)"
    )
    assert load_table(settings, t, "k2").deleted == 1
    next_second()
    load_table(settings, t, "k3")
    assert_parity(settings, t)
    marked = pg_rows(settings, "SELECT id FROM raw.inc_buckets WHERE _deleted_at IS NOT NULL ORDER BY id")
    assert [r[0] for r in marked] == [9000, 25000, 30000]
