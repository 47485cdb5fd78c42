"""The write probe (etl_pipeline.synthetic.write_probe) against the test stack's MariaDB.

Its counts must be exact (every write it reports is a row changed or inserted at the source), and the
lock waits it measures must be the real ones: a MyISAM table held by `LOCK TABLES ... READ` or by a long
SELECT makes a write wait over a second, the same SELECT on InnoDB (a snapshot read) makes none wait.
The timings are generous; they are not a benchmark.
"""

from __future__ import annotations

import io
import threading
import time

import pytest

from etl_pipeline.db import connect_source
from etl_pipeline.errors import ConfigError
from etl_pipeline.synthetic import generate
from etl_pipeline.synthetic.build import admin_settings
from etl_pipeline.synthetic.write_probe import BUCKETS, WriteProbe

TABLE = "procedurelog"
HOLD_SECONDS = 1.5


@pytest.fixture(scope="module")
def admin(settings):
    cfg = admin_settings(settings)
    generate(cfg, 0.01, seed=11, out=io.StringIO())
    return cfg


@pytest.fixture
def engine(admin, request):
    """procedurelog with the engine the test asks for; MyISAM again afterwards (as generated)."""
    _alter_engine(admin, request.param)
    try:
        yield request.param
    finally:
        _alter_engine(admin, "MyISAM")


def _alter_engine(admin, engine: str) -> None:
    conn = connect_source(admin)
    cur = conn.cursor()
    cur.execute(f"ALTER TABLE {TABLE} ENGINE = {engine}")
    conn.close()


def _scalar(admin, sql: str):
    conn = connect_source(admin)
    cur = conn.cursor()
    cur.execute(sql)
    (value,) = cur.fetchone()
    conn.close()
    return value


def test_counts_are_the_rows_it_wrote(admin):
    before = _scalar(admin, f"SELECT COUNT(*) FROM {TABLE}")
    probe = WriteProbe(admin, TABLE, interval_seconds=0.005, seed=3, max_writes=41)
    with probe:
        assert probe.wait(timeout=60), "the probe did not stop at max_writes"
    report = probe.report()

    assert (report.count, report.updates, report.inserts) == (41, 21, 20)
    assert (report.rows_updated, report.rows_inserted) == (21, 20)
    assert report.errors == {} and report.interrupted == 0
    assert _scalar(admin, f"SELECT COUNT(*) FROM {TABLE}") == before + 20
    # each UPDATE wrote its own marker into its own row (the column the probe picked: ClaimNote)
    assert _scalar(admin, f"SELECT COUNT(*) FROM {TABLE} WHERE ClaimNote LIKE '{probe.marker}%'") == 21
    assert sum(report.histogram.values()) == 41
    assert list(report.histogram) == [name for name, _ in BUCKETS]
    assert 0 < report.p50 <= report.p90 <= report.p99 <= report.max
    assert report.max == max(s.seconds for s in probe.samples)
    assert report.over_1s == sum(s.seconds > 1 for s in probe.samples)
    doc = report.to_dict()
    assert (doc["count"], doc["over_1s"], doc["histogram"]) == (41, report.over_1s, report.histogram)


def test_stops_on_time_and_on_stop(admin):
    timed = WriteProbe(admin, TABLE, interval_seconds=0.1, max_seconds=0.5)
    with timed:
        assert timed.wait(timeout=30), "the probe did not stop at max_seconds"
    assert 1 <= timed.report().count <= 6

    stopped = WriteProbe(admin, TABLE, interval_seconds=0.01)
    with stopped:
        assert stopped.wait_for_writes(5)
    report = stopped.report()
    assert not stopped.running
    assert report.count == report.updates + report.inserts == report.rows_updated + report.rows_inserted
    assert stopped.report() == report  # nothing written after stop()


def test_bad_table_and_column_are_named(admin):
    with pytest.raises(ConfigError, match="'nosuchtable' does not exist"):
        WriteProbe(admin, "nosuchtable").start()
    with pytest.raises(ConfigError, match="procedurelog.ProcFee is not a text column"):
        WriteProbe(admin, TABLE, column="ProcFee").start()


@pytest.mark.parametrize("engine", ["MyISAM"], indirect=True)
def test_myisam_read_lock_makes_a_write_wait(admin, engine):
    holder = connect_source(admin)
    cur = holder.cursor()
    with WriteProbe(admin, TABLE, interval_seconds=0.05) as probe:
        assert probe.wait_for_writes(3)
        cur.execute(f"LOCK TABLES {TABLE} READ")
        locked = time.monotonic()
        time.sleep(HOLD_SECONDS)
        cur.execute("UNLOCK TABLES")
        unlocked = time.monotonic()
        assert probe.wait_for_writes(probe.writes_done + 3)
    holder.close()
    report = probe.report()

    blocked = [s for s in probe.samples if locked <= s.started <= unlocked and s.seconds > 1]
    assert len(blocked) == 1  # the probe writes one at a time: one write waited for the lock
    assert report.over_1s >= 1 and report.errors == {}


@pytest.mark.parametrize(("engine", "blocked"), [("MyISAM", True), ("InnoDB", False)], indirect=["engine"])
def test_long_select_in_a_transaction(admin, engine, blocked):
    """A SELECT of HOLD_SECONDS in an open snapshot transaction: MyISAM writes wait for it, InnoDB's do not."""
    reader = connect_source(admin)
    cur = reader.cursor()
    window: list[float] = []

    def long_select() -> None:
        cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        window.append(time.monotonic())
        cur.execute(f"SELECT ProcNum, SLEEP({HOLD_SECONDS / 5}) FROM {TABLE} ORDER BY ProcNum LIMIT 5")
        cur.fetchall()
        window.append(time.monotonic())
        reader.commit()

    with WriteProbe(admin, TABLE, interval_seconds=0.05) as probe:
        assert probe.wait_for_writes(3)
        select = threading.Thread(target=long_select)
        select.start()
        select.join(30)
        assert probe.wait_for_writes(probe.writes_done + 3)
    reader.close()
    report = probe.report()

    start, end = window
    assert end - start >= HOLD_SECONDS * 0.9
    during = [s for s in probe.samples if start <= s.started <= end]
    if blocked:
        assert report.over_1s >= 1 and any(s.seconds > 1 for s in during)
    else:
        assert report.over_1s == 0
        assert len(during) >= 5  # the probe kept writing while the snapshot read ran
    assert report.errors == {}


@pytest.mark.parametrize("engine", ["MyISAM"], indirect=True)
def test_stop_kills_a_write_still_waiting(admin, engine):
    holder = connect_source(admin)
    cur = holder.cursor()
    probe = WriteProbe(admin, TABLE, interval_seconds=0.05).start()
    try:
        assert probe.wait_for_writes(2)
        cur.execute(f"LOCK TABLES {TABLE} READ")
        done = probe.writes_done
        time.sleep(0.5)  # the next write is now waiting for the lock
        report = probe.stop(timeout=0.5)
    finally:
        probe.stop()
        holder.close()  # releases the lock

    assert not probe.running
    assert report.count == done and report.interrupted == 1
    assert 0.9 <= report.interrupted_seconds < 30
    assert report.errors == {}


def test_table_clock_follows_the_data_not_the_wall_clock(admin):
    """The synthetic source's data is stamped years before today: clock="table" keeps the probe's stamps
    on its clock (one second past the newest DateTStamp, advancing in real time)."""
    newest = _scalar(admin, f"SELECT UNIX_TIMESTAMP(MAX(DateTStamp)) FROM {TABLE}")
    probe = WriteProbe(admin, TABLE, interval_seconds=0.01, max_writes=10, clock="table")
    with probe:
        assert probe.wait(timeout=60)
    stamps = _scalar(
        admin,
        f"SELECT CONCAT(MIN(UNIX_TIMESTAMP(DateTStamp)), ' ', MAX(UNIX_TIMESTAMP(DateTStamp)), ' ', COUNT(*)) "
        f"FROM {TABLE} WHERE UNIX_TIMESTAMP(DateTStamp) > {int(newest)}",
    )
    low, high, rows = (float(v) for v in stamps.split())
    assert rows == 10  # 5 updated rows and 5 inserted ones, nothing else is past the old newest value
    assert newest + 1 <= low <= high <= newest + 1 + probe.report().seconds + 1
