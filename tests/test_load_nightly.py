"""The cheap nightly: the cursor taken from the rows read in the one window scan, unchanged-table
skips, and the raw-side key-bucket summary kept in step with raw."""

from __future__ import annotations

import contextlib
import time

from test_load_support import admin_exec, drop_everywhere, pg_rows, source_rows, table_config

from etl_pipeline.load import load_table, verify_table

DDL = """CREATE TABLE {name} (
  id bigint(20) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  v int(11) NOT NULL DEFAULT 0,
  ts datetime NOT NULL
) ENGINE={engine} DEFAULT CHARSET=utf8mb3"""


def make(settings, name, engine="InnoDB", rows=50):
    drop_everywhere(settings, name)
    admin_exec(
        settings,
        DDL.format(name=name, engine=engine),
        f"INSERT INTO {name} (v, ts) SELECT seq, '2020-01-01 08:00:00' + INTERVAL seq MINUTE "
        f"FROM seq_1_to_{rows}",
    )
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
    admin_exec(
        settings,
        "INSERT INTO nt_clock (v, ts) VALUES (1000, '2020-01-01 09:30:00')",
        "UPDATE nt_clock SET v = -1, ts = '2020-01-01 08:20:00' WHERE id = 3",
    )  # inside the lookback
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


def test_a_full_load_takes_its_cursor_from_the_rows_it_read_capped_by_the_source_clock(settings):
    t = make(settings, "nt_full", rows=120)  # one row per minute from 08:01 to 10:00
    first = load_table(settings, t, "f1", full_refresh=True)
    assert first.strategy == "full" and state_cursor(settings, "nt_full") == "2020-01-01 10:00:00"
    # a row stamped ahead of the source clock is loaded, but the cursor stops at the clock: the row is
    # read again by the next window instead of hiding every row stamped before it
    admin_exec(settings, "INSERT INTO nt_full (v, ts) VALUES (7, NOW() + INTERVAL 1 DAY)")
    second = load_table(settings, t, "f2", full_refresh=True)
    [(clock,)] = source_rows(settings, "SELECT DATE_FORMAT(NOW(), '%Y-%m-%d %H:%i:%s')")
    assert second.inserted == 121
    assert "2020-01-02" < state_cursor(settings, "nt_full") <= clock
    admin_exec(settings, "INSERT INTO nt_full (v, ts) VALUES (8, NOW() - INTERVAL 10 SECOND)")
    third = load_table(settings, t, "f3")
    assert third.strategy == "incremental" and third.inserted == 1
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


def test_unchanged_myisam_table_is_skipped_and_every_change_is_seen(settings):
    t = make(settings, "nt_skip", engine="MyISAM")
    load_table(settings, t, "k0")
    time.sleep(2.1)  # the skip needs the last write SAFETY_SECONDS before the last load's read
    again = load_table(settings, t, "k1")
    assert again.rows_read > 0  # the write lay too close to the first load: read (lookback) again
    time.sleep(2.1)
    skipped = load_table(settings, t, "k2")
    assert (skipped.status, skipped.strategy, skipped.rows_read, skipped.reason) == (
        "success",
        "incremental",
        0,
        "unchanged",
    )
    changes = [
        "UPDATE nt_skip SET v = v + 1 WHERE id = 5",  # value only, old cursor
        "DELETE FROM nt_skip WHERE id = 6",
        "INSERT INTO nt_skip (v, ts) VALUES (99, '2020-01-01 09:00:00')",
    ]
    for number, change in enumerate(changes):
        admin_exec(settings, change)  # written right after the check of the previous load
        result = load_table(settings, t, f"k{3 + number}")
        assert result.rows_read > 0 or result.deleted == 1, change
        assert_parity(settings, t)
    # a change in the same second as the load's check: never skipped, so never missed
    for number in range(3):
        load_table(settings, t, f"s{number}")
        admin_exec(settings, f"UPDATE nt_skip SET v = {1000 + number} WHERE id = 7")
    load_table(settings, t, "s9")
    assert pg_rows(settings, "SELECT v FROM raw.nt_skip WHERE id = 7") == [(1002,)]
    assert_parity(settings, t)


def test_unchanged_full_strategy_table_is_skipped_unless_forced(settings):
    t = make(settings, "nt_full", engine="MyISAM")
    full = table_config(settings, "nt_full", strategy="full", cursor=None, detect_deletes=False)
    nopk = table_config(settings, "nt_full", pk=(), strategy="full", cursor=None, detect_deletes=False)
    assert t.name == full.name
    load_table(settings, full, "f0")
    time.sleep(2.1)  # the skip needs the last write SAFETY_SECONDS before the last load's read
    assert load_table(settings, full, "f1").rows_read == 50  # written too close to f0's read: reloaded
    time.sleep(2.1)
    skipped = load_table(settings, full, "f2")
    assert (skipped.status, skipped.strategy, skipped.rows_read) == ("success", "full", 0)
    assert load_table(settings, nopk, "f3").rows_read == 0
    assert load_table(settings, full, "f4", full_refresh=True).rows_read == 50
    admin_exec(settings, "DELETE FROM nt_full WHERE id = 9")
    changed = load_table(settings, full, "f5")
    assert (changed.rows_read, changed.deleted) == (49, 1)
    assert_parity(settings, full)


def test_innodb_tables_are_never_skipped(settings):
    t = make(settings, "nt_innodb")
    load_table(settings, t, "i0")
    time.sleep(2.1)
    load_table(settings, t, "i1")
    time.sleep(2.1)
    assert load_table(settings, t, "i2").rows_read > 0


def summary_matches_raw(settings, name):
    from etl_pipeline.db import connect_target
    from etl_pipeline.load import key_summary

    conn = connect_target(settings.target)
    try:
        with conn.cursor() as cur:
            kept = key_summary.buckets(cur, name)
            fresh = key_summary.recomputed(cur, f'raw."{name}"', "id")
    finally:
        conn.close()
    assert kept == fresh
    return kept


def test_kept_key_summary_equals_a_recomputed_one(settings, monkeypatch):
    from etl_pipeline.load import incremental, key_summary

    t = make(settings, "nt_sum", rows=30000)  # several buckets of BUCKET_KEYS keys
    load_table(settings, t, "m0")
    assert len(summary_matches_raw(settings, "nt_sum")) == 30000 // key_summary.BUCKET_KEYS + 1
    steps = [
        [
            "INSERT INTO nt_sum (v, ts) SELECT seq, '2020-02-02' FROM seq_1_to_100",
            "UPDATE nt_sum SET v = -v, ts = '2020-02-02' WHERE id % 1000 = 0",
        ],
        ["DELETE FROM nt_sum WHERE id BETWEEN 100 AND 120 OR id = 20000"],
        [
            "INSERT INTO nt_sum (id, v, ts) VALUES (110, 110, '2020-01-01 09:50')",  # restored as it was
            "INSERT INTO nt_sum (id, v, ts) VALUES (115, 1, '2020-02-03')",  # restored inside the window
            "DELETE FROM nt_sum WHERE id BETWEEN 29990 AND 32800",
        ],
    ]
    for number, statements in enumerate(steps, start=1):
        admin_exec(settings, *statements)
        result = load_table(settings, t, f"m{number}")
        assert result.strategy == "incremental"
        summary_matches_raw(settings, "nt_sum")
        assert_parity(settings, t)
    # a crash after the merge and before the reconciliation: data and summary roll back together
    admin_exec(
        settings,
        "INSERT INTO nt_sum (v, ts) SELECT seq, '2020-02-04' FROM seq_1_to_10",
        "DELETE FROM nt_sum WHERE id BETWEEN 5000 AND 5005",
    )
    before = summary_matches_raw(settings, "nt_sum")

    def boom(*args, **kwargs):
        raise RuntimeError("crash")

    monkeypatch.setattr(incremental, "_differing_key_ranges", boom)
    with contextlib.suppress(RuntimeError):
        load_table(settings, t, "crash")
    assert summary_matches_raw(settings, "nt_sum") == before
    monkeypatch.undo()
    load_table(settings, t, "m8")
    after = summary_matches_raw(settings, "nt_sum")
    assert after != before
    assert_parity(settings, t)
    # a full refresh recomputes it; the next nightly keeps it in step again
    admin_exec(settings, "DELETE FROM nt_sum WHERE id BETWEEN 7000 AND 7010")
    assert load_table(settings, t, "f1", full_refresh=True).deleted == 11
    summary_matches_raw(settings, "nt_sum")
    admin_exec(
        settings,
        "INSERT INTO nt_sum (id, v, ts) SELECT 7005, 7005, '2020-01-01 08:00:00' + INTERVAL 7005 MINUTE",
    )  # restored as it was
    load_table(settings, t, "m9")
    assert pg_rows(
        settings, "SELECT count(*) FROM raw.nt_sum WHERE _deleted_at IS NOT NULL AND id = 7005"
    ) == [(0,)]
    summary_matches_raw(settings, "nt_sum")
    assert_parity(settings, t)


def test_a_summary_kept_at_another_width_is_rebuilt_from_raw(settings):
    t = make(settings, "nt_lost", rows=100)
    load_table(settings, t, "l0")
    pg_rows(settings, "UPDATE etl.key_summaries SET bucket_keys = 8192 WHERE table_name = 'nt_lost'")
    pg_rows(settings, "UPDATE etl.key_buckets SET n = n + 5 WHERE table_name = 'nt_lost'")
    admin_exec(settings, "DELETE FROM nt_lost WHERE id = 3")
    assert load_table(settings, t, "l1").deleted == 1
    summary_matches_raw(settings, "nt_lost")
    assert_parity(settings, t)


def test_a_recreated_source_table_gets_a_full_refresh(settings):
    t = make(settings, "nt_restore", rows=200)
    load_table(settings, t, "r0")
    admin_exec(settings, "UPDATE nt_restore SET v = -v, ts = '2020-03-01' WHERE id <= 20")
    time.sleep(1.1)  # CREATE_TIME has whole seconds
    assert load_table(settings, t, "r1").strategy == "incremental"
    # restored from last night's backup: old values with old cursor values
    admin_exec(
        settings,
        "DROP TABLE nt_restore",
        DDL.format(name="nt_restore", engine="InnoDB"),
        "INSERT INTO nt_restore (v, ts) SELECT seq, '2020-01-01 08:00:00' + INTERVAL seq MINUTE "
        "FROM seq_1_to_200",
    )
    restored = load_table(settings, t, "r2")
    assert (restored.strategy, restored.reason) == ("full", "source_recreated")
    assert_parity(settings, t)
    assert load_table(settings, t, "r3").strategy == "incremental"


def test_record_nightly_run_creates_its_table_and_replaces_a_rerun(settings):
    from etl_pipeline.db import connect_target
    from etl_pipeline.load.state import record_nightly_run

    pg_rows(settings, "DROP TABLE IF EXISTS etl.nightly_runs")
    conn = connect_target(settings.target)
    try:
        record_nightly_run(
            conn, "n1", "failed", {"tables": 1, "failed": 1}, [{"table": "a", "status": "failed"}]
        )
        record_nightly_run(
            conn, "n1", "success", {"tables": 1, "failed": 0}, [{"table": "a", "status": "success"}]
        )
        record_nightly_run(conn, "n2", "success", {"tables": 0}, [])
    finally:
        conn.close()
    rows = pg_rows(settings, "SELECT run_id, status, totals, tables FROM etl.nightly_runs ORDER BY run_id")
    assert rows == [
        ("n1", "success", {"tables": 1, "failed": 0}, [{"table": "a", "status": "success"}]),
        ("n2", "success", {"tables": 0}, []),
    ]


def test_an_older_load_runs_table_gets_the_reason_column(settings):
    from etl_pipeline.db import connect_target
    from etl_pipeline.load.state import ensure_state_tables

    def ensure() -> None:
        conn = connect_target(settings.target)
        try:
            ensure_state_tables(conn)
        finally:
            conn.close()

    ensure()  # whatever ran before: the state tables as they are now
    pg_rows(settings, "ALTER TABLE etl.load_runs DROP COLUMN IF EXISTS reason")  # as an older version made it
    ensure()
    t = make(settings, "nt_reason", rows=5)
    load_table(settings, t, "o1")
    assert pg_rows(settings, "SELECT reason FROM etl.load_runs WHERE run_id = 'o1'") == [("first_load",)]
