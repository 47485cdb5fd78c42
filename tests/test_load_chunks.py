"""Short source locks: a MyISAM table is read in key-range chunks (a statement each, the table lock
released between them), an InnoDB table in one consistent snapshot; the clinic's writes during a load
wait well under a second on either, and raw equals the source once the writes stop.

The read is slowed on purpose (the reader sleeps after each batch it hands on): a streaming read of a
MyISAM table would hold its lock through those pauses, a chunked one holds it only while a chunk is
fetched. The writes are B's write probe (an UPDATE by key and an INSERT, alternating, each timed)."""

from __future__ import annotations

import dataclasses
import inspect
import time
from datetime import UTC, datetime

import pytest
from test_load_support import admin_exec, drop_everywhere, pg_rows, table_config

from etl_pipeline.db import connect_source
from etl_pipeline.errors import ConfigError
from etl_pipeline.load import full, load_table, read_plan, source, verify_table
from etl_pipeline.load.context import LoadContext
from etl_pipeline.load.source import KeyChunks, live_columns, next_width
from etl_pipeline.settings import load_settings
from etl_pipeline.synthetic.write_probe import WriteProbe

ROWS = 20_000
NOTE = 1000  # bytes a row: the read is far more than the socket buffers hold (the server cannot run ahead)
PAUSE = 0.06  # seconds the slowed reader sleeps a batch: 40 batches, a read of 2.4 s at least


def make(settings, name, engine, chunk_rows=1000):
    drop_everywhere(settings, name)
    admin_exec(
        settings,
        f"""CREATE TABLE {name} (id bigint AUTO_INCREMENT PRIMARY KEY, v int NOT NULL, note varchar({NOTE}),
            ts timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp()) ENGINE={engine}""",
        f"INSERT INTO {name} (id, v, note) SELECT seq, seq, REPEAT('x', {NOTE}) FROM seq_1_to_{ROWS}",
    )
    return dataclasses.replace(table_config(settings, name), chunk_rows=chunk_rows)


def next_second():
    time.sleep(1.05)


@pytest.fixture
def slow_reader(monkeypatch):
    """`slow(table, pause)`: the reader of `table` pauses `pause` (60 ms) after each batch of 500 rows it hands on."""

    def slow(table, pause=PAUSE):
        monkeypatch.setattr(source, "BATCH_ROWS", 500)
        monkeypatch.setattr(source, "batch_hook", lambda t, n: time.sleep(pause) if t == table else None)

    return slow


def probed_load(settings, table, run_id, **kwargs):
    """Load `table` while a write probe writes to it; (result, probe report)."""
    probe = WriteProbe(settings.source_admin, table.name, interval_seconds=0.05, max_seconds=120).start()
    try:
        result = load_table(settings, table, run_id, **kwargs)
    finally:
        report = probe.stop()
    return result, report


@pytest.mark.parametrize("engine", ["MyISAM", "InnoDB"])
def test_writes_during_an_incremental_read_wait_well_under_a_second(settings, slow_reader, engine):
    t = make(settings, f"ch_inc_{engine.lower()}", engine)
    load_table(settings, t, "i0")
    admin_exec(settings, f"UPDATE {t.name} SET v = -v")  # every row in the next window
    next_second()
    slow_reader(t.name)
    started = time.monotonic()
    result, report = probed_load(settings, t, "i1")
    assert time.monotonic() - started > 40 * PAUSE  # the read lasted long enough to be written to
    # a row the probe updated before the reader reached it is stamped past the bound: the next load's;
    # a row it inserted before the load took its bound (a slow machine) is in tonight's window
    assert (
        result.strategy == "incremental"
        and ROWS - report.updates <= result.rows_read - result.inserted <= ROWS
    )
    assert result.inserted <= report.inserts and result.updated + result.inserted == result.rows_read
    assert report.count >= 20 and report.errors == {} and report.interrupted == 0
    assert report.max < 1.0, report
    assert report.over_1s == 0
    next_second()
    source.batch_hook = None
    load_table(settings, t, "i2")  # the probe's writes, after the load's upper bound
    parity = verify_table(settings, t, deep=True)
    assert parity.ok, parity


def test_a_streaming_read_would_have_held_the_writes(settings, slow_reader, monkeypatch):
    """The same load with chunking off (one statement): a write waits for most of the read. Shows the
    test above measures the lock it means to."""
    from etl_pipeline.load import read_plan

    monkeypatch.setattr(read_plan, "TABLE_LOCKING_ENGINES", frozenset())
    t = make(settings, "ch_stream", "MyISAM")
    load_table(settings, t, "s0")
    admin_exec(settings, f"UPDATE {t.name} SET v = -v")
    next_second()
    slow_reader(t.name, pause=2 * PAUSE)  # a read of 4.8 s at least: a write held past the 1 s goal
    _, report = probed_load(settings, t, "s1")
    assert report.max > 1.0, report


@pytest.mark.skipif(
    "window_stream" not in inspect.getsource(full),
    reason="the full refresh reads through read_plan.window_stream once full.py calls it (helper F)",
)
def test_a_full_refresh_in_chunks_marks_deleted_only_what_the_source_lost(settings, slow_reader, monkeypatch):
    t = make(settings, "ch_full", "MyISAM", chunk_rows=2000)
    load_table(settings, t, "f0")
    slow_reader(t.name)
    written = []

    def write_behind_the_reader(table, batch_no):
        time.sleep(PAUSE)
        if table == t.name and batch_no == 10 and not written:  # about 5000 rows read
            written.append(batch_no)
            admin_exec(
                settings,
                f"DELETE FROM {t.name} WHERE id IN (10, 20)",  # in a chunk already read
                f"DELETE FROM {t.name} WHERE id IN (15000, 15001)",  # in one still to come
                f"UPDATE {t.name} SET v = 0 WHERE id IN (30, 16000)",  # one of each
                f"UPDATE {t.name} SET id = {ROWS + 500} WHERE id = 17000",  # a key moved above MAX(key)
            )

    monkeypatch.setattr(source, "batch_hook", write_behind_the_reader)
    result = load_table(settings, t, "f1", full_refresh=True)
    assert written and result.strategy == "full"
    marked = [r[0] for r in pg_rows(settings, f"SELECT id FROM raw.{t.name} WHERE _deleted_at IS NOT NULL")]
    # a row not read is one the source no longer had then, or one it has under a new key
    assert sorted(marked) == [15000, 15001, 17000]
    monkeypatch.setattr(source, "batch_hook", None)
    next_second()
    load_table(settings, t, "f2")
    parity = verify_table(settings, t, deep=True)
    assert parity.ok, parity


def test_the_next_chunk_is_sized_by_the_last_ones_rows_and_time():
    assert next_width(1000, 1000, 0.1, 1000, 0.25) == 1000  # on target
    assert next_width(1000, 100, 0.01, 1000, 0.25) == 8000  # sparse keys: wider, at most 8 times
    assert next_width(1000, 0, 0.001, 1000, 0.25) == 8000  # an empty range
    assert next_width(1000, 1000, 1.0, 1000, 0.25) == 250  # slow rows: narrower by time
    assert next_width(1000, 9000, 0.1, 1000, 0.25) == 125  # dense: at most 8 times narrower
    assert next_width(1, 10, 5.0, 1000, 0.25) == 1  # never below one key
    chunks = KeyChunks("SELECT ...", (), 1, 10, 5, 0.25, 3)
    assert (chunks.low, chunks.high, chunks.width) == (1, 10, 3)


def read_all(settings, table):
    """Every row of `table` through `read_plan.window_stream`; the stream, read to its end."""
    conn = connect_source(settings.source)
    live = live_columns(conn, table.name)
    conn.close()
    ctx = LoadContext(settings, table, None, datetime.now(UTC), pk_live=[c for c in live if c.name == "id"])
    stream = read_plan.window_stream(ctx, live, "", ())
    try:
        while stream.read():
            pass
        stream.check()
    finally:
        stream.close()
    return stream


def test_source_chunk_rows_0_reads_a_myisam_table_in_one_statement(settings, monkeypatch):
    t = make(settings, "ch_off", "MyISAM", chunk_rows=1000)  # the override too: 0 turns chunking off
    chunked = read_all(settings, t)
    monkeypatch.setenv("SOURCE_CHUNK_ROWS", "0")
    unchunked = read_all(load_settings(), t)
    assert (chunked.rows, unchunked.rows) == (ROWS, ROWS)
    assert chunked.chunks > 1 and unchunked.chunks == 1
    assert unchunked.slowest_chunk == 0.0  # no KeyChunks part was read
    for bad in ("-1", "lots", "1.5"):
        monkeypatch.setenv("SOURCE_CHUNK_ROWS", bad)
        with pytest.raises(ConfigError, match=f"SOURCE_CHUNK_ROWS='{bad}'"):
            load_settings()
