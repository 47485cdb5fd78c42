"""append_only tables without losses: a key an InnoDB transaction commits after a higher key was read is
loaded (by the key lookback, or beyond it by the key check), and keys purged at the source (audit-log
archiving deletes the oldest rows) are marked deleted in raw. Rows read, inserted, updated, deleted and
the saved cursor are asserted exactly after every load."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from test_load_support import admin_exec, drop_everywhere, pg_rows, table_config

from etl_pipeline.db import connect_source, connect_target
from etl_pipeline.load import key_summary, load_table, verify_table
from etl_pipeline.load import table as table_module
from etl_pipeline.load.incremental import IncrementalCounts, load_incremental


def make(settings, name, rows, engine="InnoDB", **fields):
    drop_everywhere(settings, name)
    admin_exec(
        settings,
        f"CREATE TABLE {name} (id bigint AUTO_INCREMENT PRIMARY KEY, v int NOT NULL, note varchar(20)) ENGINE={engine}",
        f"INSERT INTO {name} (id, v, note) SELECT seq, seq, CONCAT('n', seq) FROM seq_1_to_{rows}",
    )
    table = table_config(settings, name, strategy="append_only", cursor="id", detect_deletes=False)
    return dataclasses.replace(table, **fields)


def load(settings, table, run_id):
    """(rows read, inserted, updated, deleted, saved cursor) of an append_only load."""
    r = load_table(settings, table, run_id)
    assert r.strategy in ("append_only", "full")
    saved = pg_rows(settings, "SELECT cursor_value FROM etl.load_state WHERE table_name = %s", (table.name,))
    return r.rows_read, r.inserted, r.updated, r.deleted, saved[0][0]


def deleted_ids(settings, name):
    return [
        r[0]
        for r in pg_rows(settings, f"SELECT id FROM raw.{name} WHERE _deleted_at IS NOT NULL ORDER BY id")
    ]


def assert_exact(settings, table):
    """raw equals the source, and the kept key summary equals one computed from raw now."""
    assert verify_table(settings, table, deep=True).ok
    conn = connect_target(settings.target)
    try:
        with conn.cursor() as cur:
            assert key_summary.buckets(cur, table.name) == key_summary.recomputed(
                cur, f"raw.{table.name}", "id"
            )
    finally:
        conn.close()


@pytest.fixture
def held_insert(settings):
    """`start(table)`: insert a row in a transaction left open (its key allocated, not visible);
    `commit()` ends it. The connection is closed at the end either way."""
    conns = []

    class Held:
        def start(self, table):
            conn = connect_source(settings.source_admin)
            conns.append(conn)
            cur = conn.cursor()
            cur.execute("START TRANSACTION")
            cur.execute(f"INSERT INTO {table} (v, note) VALUES (-1, 'late')")
            cur.execute("SELECT LAST_INSERT_ID()")
            return int(cur.fetchone()[0])

        def commit(self):
            conns[-1].commit()

    yield Held()
    for conn in conns:
        conn.close()


@pytest.mark.parametrize("lookback_keys", [1000, 0])
def test_a_key_committed_after_a_higher_one_was_read_is_loaded(settings, held_insert, caplog, lookback_keys):
    """lookback_keys 1000: the window re-reads key 11; 0: the key check finds it (bucket counts differ)."""
    name = f"ao_late_{lookback_keys}"
    t = make(settings, name, 10, lookback_keys=lookback_keys)
    assert load(settings, t, "l0") == (10, 10, 0, 0, "10")

    assert held_insert.start(name) == 11  # key 11 allocated, its transaction open
    admin_exec(settings, f"INSERT INTO {name} (v, note) VALUES (12, 'n12')")  # key 12 committed
    re_read = 10 if lookback_keys else 0
    assert load(settings, t, "l1") == (re_read + 1, 1, 0, 0, "12")  # 12 read, 11 not visible yet
    assert pg_rows(settings, f"SELECT count(*) FROM raw.{name} WHERE id = 11") == [(0,)]

    held_insert.commit()  # 11 becomes visible below the saved key 12
    with caplog.at_level(logging.INFO, logger="etl_pipeline.load.incremental"):
        assert load(settings, t, "l2") == (12 if lookback_keys else 0, 1, 0, 0, "12")
    assert f"{name}: 1 row(s) below the saved key read late" in caplog.text
    assert pg_rows(settings, f"SELECT v, note, _deleted_at FROM raw.{name} WHERE id = 11") == [
        (-1, "late", None)
    ]
    assert load(settings, t, "l3") == (
        12 if lookback_keys else 0,
        0,
        0,
        0,
        "12",
    )  # nothing new, nothing rewritten
    assert_exact(settings, t)


@pytest.mark.parametrize("engine", ["InnoDB", "MyISAM"])
def test_purged_oldest_keys_are_marked_deleted(settings, engine):
    name = f"ao_purge_{engine.lower()}"
    t = make(settings, name, 3000, engine=engine, lookback_keys=100)
    assert load(settings, t, "p0") == (3000, 3000, 0, 0, "3000")
    admin_exec(
        settings,
        f"DELETE FROM {name} WHERE id <= 1200",  # archiving: the oldest rows go
        f"INSERT INTO {name} (v, note) SELECT seq, 'new' FROM seq_1_to_5",
    )
    assert load(settings, t, "p1") == (105, 5, 0, 1200, "3005")
    assert deleted_ids(settings, name) == list(range(1, 1201))
    assert load(settings, t, "p2") == (100, 0, 0, 0, "3005")  # purged keys are not marked again
    # a second archiving run, and rows gone in the middle (outside the window): found by the key buckets
    admin_exec(settings, f"DELETE FROM {name} WHERE id <= 1500 OR id BETWEEN 2000 AND 2009")
    assert load(settings, t, "p3") == (100, 0, 0, 310, "3005")
    assert deleted_ids(settings, name) == [*range(1, 1501), *range(2000, 2010)]
    assert_exact(settings, t)


def test_late_rows_are_counted_in_the_load_counts(settings, held_insert, monkeypatch):
    """TableLoadResult has no field for them yet: the counts the incremental load returns carry them."""
    seen: list[IncrementalCounts] = []

    def keeping(*args, **kwargs):
        counts = load_incremental(*args, **kwargs)
        seen.append(counts)
        return counts

    t = make(settings, "ao_count", 5)
    load(settings, t, "c0")
    held_insert.start("ao_count")
    admin_exec(settings, "INSERT INTO ao_count (v) VALUES (7)")
    load(settings, t, "c1")
    held_insert.commit()
    monkeypatch.setattr(table_module, "load_incremental", keeping)
    load(settings, t, "c2")
    assert [(c.rows_read, c.inserted, c.late_rows) for c in seen] == [(7, 1, 1)]
