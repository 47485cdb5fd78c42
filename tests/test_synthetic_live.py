"""The live writer: what its report counts is what the tables show, held InnoDB transactions make keys
commit out of order (seen by a reader polling meanwhile), the plan is a function of the seed, the run
stops on time or when asked, and its clock never writes stamps older than the source's."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from etl_pipeline.db import connect_source
from etl_pipeline.errors import ConfigError, EtlError
from etl_pipeline.synthetic import generate
from etl_pipeline.synthetic.build import admin_settings
from etl_pipeline.synthetic.ddl import TABLE_NAMES
from etl_pipeline.synthetic.integrity import broken_money_rules, dangling_foreign_keys
from etl_pipeline.synthetic.live import (
    BUSY_TABLES,
    WRITTEN_TABLES,
    convert_to_innodb,
    plan_live,
    run_live,
)
from etl_pipeline.synthetic.schema_data import TABLES
from etl_pipeline.synthetic.simulate import cursor_column

SCALE = 0.01
DB = "opendental_live"
INNODB = ("appointment", "paysplit", "payment", "claimproc")  # the rest stays MyISAM, as generated
RATE, SECONDS, HOLD = 50, 4, 2.0


@pytest.fixture(scope="module")
def admin(settings):
    return admin_settings(settings)


@pytest.fixture(scope="module")
def source(admin):
    cfg = replace(admin, database=DB)
    generate(cfg, SCALE, seed=11)
    assert convert_to_innodb(cfg, INNODB) == list(INNODB)
    assert convert_to_innodb(cfg, INNODB) == []  # already InnoDB: nothing to do
    yield cfg
    conn = connect_source(admin)
    conn.cursor().execute(f"DROP DATABASE IF EXISTS {DB}")
    conn.close()


@pytest.fixture()
def cur(admin):
    conn = connect_source(admin)
    conn.autocommit(True)
    cursor = conn.cursor()
    yield cursor
    conn.close()


def snapshot(cur, tables):
    """{table: {pk: cursor value}} (securitylog has no cursor column: None)."""
    snap = {}
    for table in tables:
        column = cursor_column(table)
        cur.execute(
            f"SELECT `{TABLES[table]['pk']}`, {f'`{column}`' if column else 'NULL'} FROM `{DB}`.`{table}`"
        )
        snap[table] = dict(cur.fetchall())
    return snap


def changes_between(before, after):
    counts = {}
    for table in before:
        old, new = before[table], after[table]
        counts[table] = {
            "inserted": len(new.keys() - old.keys()),
            "updated": sum(1 for pk in old.keys() & new.keys() if old[pk] != new[pk]),
            "deleted": len(old.keys() - new.keys()),
        }
    return counts


def checksums(cur, tables):
    cur.execute("CHECKSUM TABLE " + ", ".join(f"`{DB}`.`{t}`" for t in tables))
    return dict(cur.fetchall())


class KeyWatcher(threading.Thread):
    """Polls the committed keys of `table` above `floor` from a connection of its own, recording the poll
    at which each key was first seen."""

    def __init__(self, cfg, table, floor):
        super().__init__(daemon=True)
        self.cfg, self.table, self.floor = cfg, table, floor
        self.first_seen: dict[int, int] = {}
        self.done = threading.Event()

    def run(self):
        conn = connect_source(self.cfg)
        conn.autocommit(True)
        cur = conn.cursor()
        pk = TABLES[self.table]["pk"]
        polls = 0
        while not self.done.is_set():
            polls += 1
            cur.execute(f"SELECT `{pk}` FROM `{self.table}` WHERE `{pk}` > %s", (self.floor,))
            for (key,) in cur.fetchall():
                self.first_seen.setdefault(key, polls)
            time.sleep(0.02)
        conn.close()

    def late_keys(self):
        """Keys that became visible after a higher key of the table already was."""
        seen = self.first_seen
        return sorted(k for k in seen if any(h > k and seen[h] < seen[k] for h in seen))


def test_counts_match_the_tables_and_held_transactions_commit_out_of_order(source, cur):
    plan = plan_live(source, RATE, SECONDS, seed=3)
    assert plan_live(source, RATE, SECONDS, seed=3).digest == plan.digest
    assert plan_live(source, RATE, SECONDS, seed=4).digest != plan.digest
    untouched = [t for t in TABLE_NAMES if t not in WRITTEN_TABLES]
    before, other_tables = snapshot(cur, WRITTEN_TABLES), checksums(cur, untouched)
    watchers = [KeyWatcher(source, t, max(before[t])) for t in ("appointment", "paysplit")]
    for w in watchers:
        w.start()
    report = run_live(source, RATE, SECONDS, seed=3, hold_seconds=HOLD)
    for w in watchers:
        w.done.set()
        w.join()
    after = snapshot(cur, WRITTEN_TABLES)

    assert report.plan_digest == plan.digest
    assert report.operations == report.planned_operations == plan.operations == RATE * SECONDS
    assert (report.skipped_transactions, report.stopped_early) == (0, False)
    assert report.counts == changes_between(before, after)
    assert checksums(cur, untouched) == other_tables
    counts = report.counts
    assert all(counts[t]["inserted"] > 0 for t in WRITTEN_TABLES)
    assert counts["securitylog"]["updated"] == counts["securitylog"]["deleted"] == 0
    for table in ("appointment", "procedurelog", "paysplit", "claimproc", "payment"):
        assert counts[table]["updated"] > 0, table
    for table in ("appointment", "paysplit", "claimproc", "commlog"):
        assert counts[table]["deleted"] > 0, table

    assert report.engines == {t: "InnoDB" if t in INNODB else "MyISAM" for t in WRITTEN_TABLES}
    assert report.held_transactions > 0
    assert set(report.out_of_order_tables) <= set(INNODB) and report.out_of_order_tables
    assert all(report.out_of_order[t] == 0 for t in WRITTEN_TABLES if t not in INNODB)
    # what a reader saw: a key lower than one already committed became visible later
    late = {w.table: w.late_keys() for w in watchers}
    assert late["appointment"] or late["paysplit"], late
    assert SECONDS - 0.5 < report.elapsed_seconds < SECONDS + HOLD + 2.0

    assert dangling_foreign_keys(cur, DB) == {}
    assert broken_money_rules(cur, DB) == {}
    assert report.to_dict()["out_of_order_tables"] == report.out_of_order_tables


def test_a_myisam_only_transaction_is_never_held(source):
    plan = plan_live(source, RATE, 2, seed=8)
    myisam_held = [t for t in plan.txns if t.hold and not {s.table for s in t.statements} & set(INNODB)]
    assert myisam_held  # the plan asks for some, the writer commits them at once
    report = run_live(source, RATE, 2, seed=8, hold_seconds=HOLD)
    innodb_held = [t for t in plan.txns if t.hold and {s.table for s in t.statements} & set(INNODB)]
    assert report.plan_digest == plan.digest
    assert report.held_transactions == len(innodb_held)


def test_stop_event_ends_the_run_early_and_the_counts_still_hold(source, cur):
    before = snapshot(cur, WRITTEN_TABLES)
    stop = threading.Event()
    timer = threading.Timer(0.8, stop.set)
    timer.start()
    report = run_live(source, RATE, 30, seed=5, hold_seconds=HOLD, stop=stop)
    timer.join()
    assert report.stopped_early and report.skipped_transactions > 0
    assert report.elapsed_seconds < 1.5  # asked to stop 0.8 s after the call; 30 s were planned
    assert 0 < report.operations < report.planned_operations
    assert report.counts == changes_between(before, snapshot(cur, WRITTEN_TABLES))


@pytest.mark.parametrize(
    "rate, seconds, hold",
    [
        (0, 1, 1),
        (-5, 1, 1),
        (1e6, 1, 1),
        ("fast", 1, 1),
        (10, 0, 1),
        (10, 1e5, 1),
        (500, 3600, 1),
        (10, 1, -1),
    ],
)
def test_bad_arguments_are_refused(source, rate, seconds, hold):
    with pytest.raises(ConfigError):
        run_live(source, rate, seconds, hold_seconds=hold)


def test_missing_source_and_unknown_tables_are_refused(admin, source, cur):
    with pytest.raises(ConfigError, match="not one of the 36"):
        convert_to_innodb(source, ["appointment", "nosuchtable"])
    cur.execute("CREATE DATABASE IF NOT EXISTS opendental_live_empty")
    try:
        with pytest.raises(EtlError, match="synth --scale"):
            run_live(replace(admin, database="opendental_live_empty"), 10, 1)
    finally:
        cur.execute("DROP DATABASE opendental_live_empty")


def test_clock_moves_ahead_when_the_source_is_in_the_future(source, cur):
    cur.execute(f"SELECT MAX(CommlogNum) FROM {DB}.commlog")
    top = cur.fetchone()[0]
    cur.execute(f"UPDATE {DB}.commlog SET DateTStamp = NOW() + INTERVAL 3 DAY WHERE CommlogNum = %s", (top,))
    cur.execute(f"SELECT DateTStamp FROM {DB}.commlog WHERE CommlogNum = %s", (top,))
    ahead = cur.fetchone()[0]
    floors = {t: max(snapshot(cur, [t])[t]) for t in ("appointment", "securitylog")}
    report = run_live(source, 40, 1, seed=6, hold_seconds=0)
    assert report.clock_offset_seconds > 3 * 86400 - 60
    cur.execute(f"SELECT MIN(DateTStamp) FROM {DB}.appointment WHERE AptNum > %s", (floors["appointment"],))
    assert cur.fetchone()[0] >= ahead
    cur.execute(
        f"SELECT MIN(LogDateTime) FROM {DB}.securitylog WHERE SecurityLogNum > %s", (floors["securitylog"],)
    )
    assert cur.fetchone()[0] >= ahead
    assert set(BUSY_TABLES) <= set(report.counts)
