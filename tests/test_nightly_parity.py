"""The nightly parity judged against what each table's load saw (`quality.load_parity`), its content check
of the rows read tonight, the rotating deep check (`quality.rotation`), and what the report and the
notification say of them. Rows are stamped in the past and the source clock is pinned, so every bound is
a known second; lookback 0, so the next window starts exactly at the saved cursor."""

from __future__ import annotations

import json
import threading
import time

import pytest
from test_load_support import admin_exec, drop_everywhere, pg_rows, table_config
from test_load_support import parity_counts as _counts

from etl_pipeline import nightly_notify, nightly_report
from etl_pipeline.load import load_table, verify_table
from etl_pipeline.quality import rotation
from etl_pipeline.quality.load_parity import verify_loaded

MARKER = 7654321  # the corrupted value: it must appear in no result, report or notification


def _loaded_table(settings, source_clock, name, detect_deletes=True):
    """Ten rows, ids 1-5 stamped at 08:00 and 6-10 at 09:00; a full load at 08:30 (rows 1-5), then the
    incremental night at 09:30 reads [08:00, 09:29:59]: its window_lower is 08:00, saved cursor 09:00."""
    drop_everywhere(settings, name)
    admin_exec(
        settings,
        f"CREATE TABLE {name} (id int PRIMARY KEY, v int NOT NULL, ts datetime NOT NULL) ENGINE=InnoDB",
    )
    admin_exec(
        settings, *(f"INSERT INTO {name} VALUES ({i}, {i}, '2020-01-01 08:00:00')" for i in range(1, 6))
    )
    table = table_config(settings, name, lookback=0, detect_deletes=detect_deletes)
    source_clock("2020-01-01 08:30:00")
    assert load_table(settings, table, f"{name}-1").strategy == "full"
    admin_exec(
        settings, *(f"INSERT INTO {name} VALUES ({i}, {i}, '2020-01-01 09:00:00')" for i in range(6, 11))
    )
    source_clock("2020-01-01 09:30:00")
    night = load_table(settings, table, f"{name}-2")
    assert (night.strategy, night.rows_read, night.inserted) == ("incremental", 10, 5)
    return table


def test_writes_after_the_load_are_in_flight_and_the_night_stays_ok(settings, source_clock):
    t = _loaded_table(settings, source_clock, "np_flight")
    assert _counts(verify_loaded(settings, t)) == (True, 0, 0, 0, 0, 10)
    # after the load: an old row updated with a new stamp, a new key, a key deleted
    admin_exec(
        settings,
        "UPDATE np_flight SET v = -1, ts = '2020-01-01 09:40:00' WHERE id = 2",
        "INSERT INTO np_flight VALUES (11, 11, '2020-01-01 09:41:00')",
        "DELETE FROM np_flight WHERE id = 7",
    )
    assert not verify_table(settings, t).ok  # the exact check (`verify`) sees three differences
    judged = verify_loaded(settings, t)
    # the content check compares the eight rows of tonight's window that nobody wrote since
    assert _counts(judged) == (True, 0, 0, 0, 3, 8)

    # the report and the notification: INFO with the rows in flight, the deep check and a new table
    plan = {"small": [{"table": "np_flight", "new": True}]}
    report = nightly_report.build_report(settings, "np_flight-2", plan, {"np_flight": judged.to_dict()})
    row = report["tables"][0]
    assert {k: row[k] for k in ("parity_ok", "in_flight", "content_checked_rows", "deep", "new")} == {
        "parity_ok": True,
        "in_flight": 3,
        "content_checked_rows": 8,
        "deep": False,
        "new": True,
    }
    assert report["status"] == "success"
    assert (report["totals"]["in_flight"], report["totals"]["deep_tables"]) == (3, [])
    stored = pg_rows(settings, "SELECT totals, tables FROM etl.nightly_runs WHERE run_id = 'np_flight-2'")
    assert stored[0][0]["in_flight"] == 3 and stored[0][1][0]["in_flight"] == 3
    severity, _, details = nightly_notify.summarise({"validation": {}, "report": report, "dbt": "success"})
    assert severity == "INFO"
    assert "new table: np_flight" in details and "deep check: none tonight" in details
    assert any(line.startswith("rows in flight: 3") for line in details)

    # the next night reads them all: nothing in flight, raw equal to the source
    source_clock("2020-01-01 10:00:00")
    load_table(settings, t, "np_flight-3")
    assert _counts(verify_loaded(settings, t)) == (True, 0, 0, 0, 0, 6)
    assert verify_table(settings, t, deep=True).ok


def test_a_delete_the_next_load_does_not_mark_fails_the_next_night(settings, source_clock):
    """Without delete detection raw keeps a key the source deleted: excused the night it happened (the
    source was written after the load), a mismatch once a later load has run and it is still there."""
    t = _loaded_table(settings, source_clock, "np_gone", detect_deletes=False)
    admin_exec(settings, "DELETE FROM np_gone WHERE id = 3")
    assert _counts(verify_loaded(settings, t)) == (True, 0, 0, 0, 1, 9)
    assert _counts(verify_loaded(settings, t)) == (True, 0, 0, 0, 1, 9)  # the same load: still excused
    source_clock("2020-01-01 10:00:00")
    load_table(settings, t, "np_gone-3")
    assert _counts(verify_loaded(settings, t))[:5] == (False, 0, 1, 0, 0)


def test_a_corrupted_raw_value_in_tonights_window_fails_the_content_check(settings, source_clock):
    t = _loaded_table(settings, source_clock, "np_bad")
    # id 2 is stamped 08:00: read tonight, below the saved cursor (09:00), which the next window starts at
    pg_rows(settings, f"UPDATE raw.np_bad SET v = {MARKER} WHERE id = 2")
    result = verify_loaded(settings, t)
    assert _counts(result) == (False, 0, 0, 1, 0, 10)
    assert verify_table(settings, t).ok  # keys and counts alone do not see it

    report = nightly_report.build_report(
        settings, "np_bad-2", {"small": [{"table": "np_bad"}]}, {"np_bad": result.to_dict()}
    )
    assert report["parity_failed_tables"] == ["np_bad"] and report["status"] == "failed"
    assert (report["tables"][0]["parity_ok"], report["tables"][0]["parity_mismatches"]) == (False, 1)
    severity, _, details = nightly_notify.summarise({"validation": {}, "report": report, "dbt": "skipped"})
    assert severity == "WARNING" and "parity mismatch: np_bad" in details
    assert str(MARKER) not in json.dumps([result.to_dict(), report, details], default=str)


def test_a_corruption_outside_the_window_is_found_on_the_night_the_table_is_due(settings, source_clock):
    t = _loaded_table(settings, source_clock, "np_old")
    pg_rows(settings, f"UPDATE raw.np_old SET v = {MARKER} WHERE id = 1")  # stamped 08:00, read last night
    # the incremental night read from 08:00 on, so this one is inside tonight's window ...
    assert _counts(verify_loaded(settings, t))[:4] == (False, 0, 0, 1)
    # ... and one night later, with nothing new, the window [09:00, ...] no longer holds it
    source_clock("2020-01-01 10:00:00")
    load_table(settings, t, "np_old-3")
    assert _counts(verify_loaded(settings, t)) == (True, 0, 0, 0, 0, 5)
    weights = {"np_old": 10, "patient": 30_000, "procedurelog": 2_000_000, "definition": 500, "recall": 8}
    days = range(738_000, 738_000 + rotation.PERIOD)
    due = [day for day in days if "np_old" in rotation.deep_tonight(weights, day)]
    assert len(due) == 1
    for day in days:
        result = verify_loaded(settings, t, deep=day in due)
        assert (result.deep, result.ok, result.content_mismatches) == (
            (True, False, 1) if day in due else (False, True, 0)
        )
        assert result.content_checked_rows == (10 if day in due else 5)


def test_the_rotation_covers_every_table_within_seven_nights():
    weights = {f"t{i:02d}": (i * 7919) % 3_000_000 for i in range(40)} | {"empty": 0, "tiny": 1}
    nights = rotation.nights(weights)
    assert len(nights) == rotation.PERIOD
    assert sorted(n for night in nights for n in night) == sorted(weights)  # each table on exactly one night
    for start in (0, 1, 738_000, 738_005):
        seen = set()
        for day in range(start, start + rotation.PERIOD):
            seen.update(rotation.deep_tonight(weights, day))
        assert seen == set(weights)
    # deterministic, whatever order the tables come in, and balanced by weight
    assert rotation.nights(dict(reversed(list(weights.items())))) == nights
    loads = [sum(weights[n] for n in night) for night in nights]
    assert max(loads) - min(loads) <= max(weights.values())
    assert rotation.deep_tonight({}, 5) == []
    with pytest.raises(ValueError, match="at least one night"):
        rotation.nights(weights, period=0)


@pytest.mark.slow
def test_a_verify_during_live_writes_is_ok_and_the_next_night_is_clean(settings):
    """The synthetic source written by `synth live` while the nightly verify runs: in flight, not mismatched;
    once the writer stops, one more load and `verify --deep` are clean."""
    from test_load_live import _fresh_source

    from etl_pipeline.load import run
    from etl_pipeline.load.engine import select_tables
    from etl_pipeline.synthetic.live import run_live

    _fresh_source(settings, 0.01, seed=41)
    assert all(r.status == "success" for r in run(settings, run_id="npl-0"))
    time.sleep(1.05)
    assert all(r.status == "success" for r in run(settings, run_id="npl-1"))
    reports = []
    writer = threading.Thread(
        target=lambda: reports.append(run_live(settings.source_admin, 40, 6, seed=9, hold_seconds=1)),
        daemon=True,
    )
    writer.start()
    verdicts = nightly_report.verify_run(settings, "npl-1")
    writer.join()
    assert reports and reports[0].to_dict()
    bad = {name: r for name, r in verdicts.items() if not r["ok"]}
    assert bad == {}
    assert sum(r["in_flight"] for r in verdicts.values()) > 0
    time.sleep(1.05)
    assert all(r.status == "success" for r in run(settings, run_id="npl-2"))
    assert [t.name for t in select_tables(settings) if not verify_table(settings, t, deep=True).ok] == []


def test_keys_changed_in_raw_behind_the_loader_are_found_on_the_night_their_buckets_are_due(
    settings, source_clock, caplog
):
    """A single integer key is compared by key buckets (count, sum, xor): the source's summary against
    the loader's kept one, which agree with raw after the loads. A raw row deleted and a key added
    straight in raw are not in the kept summary, so the next load's delete check, which trusts it, sees
    nothing, and neither does the verify on a night whose deep ranges leave their buckets out: it reads
    raw's side from the kept summary. On the night their block is due the verify sums raw itself over
    those buckets, finds them apart from the kept summary, compares their keys and counts both."""
    from etl_pipeline.db import connect_source, connect_target
    from etl_pipeline.load import key_summary

    t = _loaded_table(settings, source_clock, "np_bk")
    src, pg = connect_source(settings.source), connect_target(settings.target)
    try:
        scur, cur = src.cursor(), pg.cursor()
        source, span = key_summary.source_buckets(scur, "np_bk", "id")
        assert source == key_summary.kept(cur, "np_bk") == key_summary.recomputed(cur, "raw.np_bk", "id")
        assert (source, span) == ({0: (10, 55, 1 ^ 2 ^ 3 ^ 4 ^ 5 ^ 6 ^ 7 ^ 8 ^ 9 ^ 10)}, (1, 10))
        pg.rollback()
        pg_rows(settings, "DELETE FROM raw.np_bk WHERE id = 4")
        pg_rows(
            settings,
            "INSERT INTO raw.np_bk (id, v, ts, _loaded_at) VALUES (5000, 1, '2020-01-01 08:00:00', now())",
        )
        days = range(738_000, 738_000 + rotation.PERIOD)
        [due] = [day for day in days if rotation.key_ranges("np_bk", day, 1, 5000)]
        other = next(day for day in days if day != due)
        caplog.set_level("WARNING", logger="etl_pipeline.quality.load_parity")
        blind = verify_loaded(settings, t, day=other, src=src, pg=pg)
        assert (blind.ok, blind.raw_live_rows) == (True, 10)  # the kept summary's count, not raw's 10 - 1 + 1
        assert "kept key summary differs" not in caplog.text
        # the missing key is a mismatch at once; a key raw has in excess could be a delete at the source
        # since the load (InnoDB keeps no write mark): excused until a later load leaves it
        # (tonight's deep range holds the source's ten keys: their content is compared)
        assert _counts(verify_loaded(settings, t, day=due, src=src, pg=pg)) == (False, 1, 0, 0, 1, 10)
        assert "np_bk: the kept key summary differs from raw in 2 buckets" in caplog.text
        source_clock("2020-01-01 10:00:00")
        load_table(settings, t, "np_bk-3")
        # the same connections again, as the nightly's verify uses one of each for every table
        judged = verify_loaded(settings, t, day=due, src=src, pg=pg)
        assert _counts(judged) == (False, 1, 1, 0, 0, 10)
        assert (judged.source_rows, judged.raw_live_rows) == (10, 10)
    finally:
        src.close()
        pg.close()


def test_a_table_with_an_integer_key_is_deep_checked_by_key_range_once_a_week(settings, source_clock):
    """The key-range rotation: a corruption outside tonight's window is found on the one night of the seven
    whose key ranges hold it, with the content of those ranges checked beside the window's rows."""
    t = _loaded_table(settings, source_clock, "np_slice")
    source_clock("2020-01-01 10:00:00")
    load_table(settings, t, "np_slice-3")  # tonight's window: ids 6-10 (stamped 09:00)
    pg_rows(settings, f"UPDATE raw.np_slice SET v = {MARKER} WHERE id = 1")
    days = range(738_000, 738_000 + rotation.PERIOD)
    due = [day for day in days if rotation.key_ranges("np_slice", day, 1, 10)]
    assert len(due) == 1
    for day in days:
        result = verify_loaded(settings, t, day=day)
        assert (result.deep, result.ok, result.content_mismatches, result.content_checked_rows) == (
            (True, False, 1, 10) if day in due else (False, True, 0, 5)
        )


def test_the_key_ranges_cover_every_key_once_in_seven_nights():
    B = rotation.BLOCK_KEYS
    days = range(738_000, 738_000 + rotation.PERIOD)
    for name, low, high in (
        ("procedurelog", 1, 40 * B + 17),
        ("definition", 1, 300),
        ("neg", -3 * B - 5, 2 * B),
    ):
        nights = [rotation.key_ranges(name, day, low, high) for day in days]
        keys = sorted(k for ranges in nights for lo, hi in ranges for k in (lo, hi))
        assert keys[0] == low and keys[-1] == high
        spans = sorted(r for ranges in nights for r in ranges)
        # the nights' ranges tile [low, high]: no key on two nights, none on no night
        assert all(a[1] + 1 == b[0] for a, b in zip(spans, spans[1:], strict=False))
        sizes = [sum(hi - lo + 1 for lo, hi in ranges) for ranges in nights]
        if high - low > 14 * B:  # a large table: each night about a seventh of it
            assert max(sizes) - min(sizes) <= B
    # more ranges than one statement should carry: the nearest are joined, every due key still in one
    high = (rotation.MAX_RANGES + 10) * rotation.PERIOD * B
    joined = rotation.key_ranges("huge", 5, 0, high)
    assert len(joined) == rotation.MAX_RANGES
    plain = rotation.key_ranges("huge", 5, 0, high, max_ranges=10**9)
    assert all(any(a <= lo and hi <= b for a, b in joined) for lo, hi in plain)
