"""Crash safety: SIGKILL the loader (`python -m etl_pipeline.cli run`) at random points of a full and an
incremental load; the next run converges to exact parity, no table is half-replaced, state never runs
ahead of the data."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import yaml
from test_load_support import admin_exec, drop_everywhere, pg_rows, table_config

from etl_pipeline.load import verify_table
from etl_pipeline.schema.tables_config import table_to_dict
from etl_pipeline.settings import PROJECT_ROOT

ROWS = 150_000


def _cli(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "etl_pipeline.cli", *args],
        cwd=PROJECT_ROOT,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _raw_state(settings):
    """(raw row count, cursor in state) — both must only ever move together."""
    rows = pg_rows(settings, "SELECT count(*) FROM raw.crashy") if _exists(settings) else [(None,)]
    state = (
        pg_rows(settings, "SELECT cursor_value FROM etl.load_state WHERE table_name = 'crashy'")
        if _state_exists(settings)
        else []
    )
    return rows[0][0], (state[0][0] if state else None)


def _exists(settings):
    return pg_rows(settings, "SELECT to_regclass('raw.crashy') IS NOT NULL")[0][0]


def _state_exists(settings):
    return pg_rows(settings, "SELECT to_regclass('etl.load_state') IS NOT NULL")[0][0]


def test_sigkill_during_full_and_incremental_loads_converges(settings):
    drop_everywhere(settings, "crashy")
    admin_exec(
        settings,
        """CREATE TABLE crashy (
        id bigint PRIMARY KEY, v int, note text,
        ts timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(), KEY (ts))""",
        f"INSERT INTO crashy (id, v, note) SELECT seq, seq, REPEAT('x', seq % 50) FROM seq_1_to_{ROWS}",
    )
    table = table_config(settings, "crashy")
    settings.tables_yml.write_text(yaml.safe_dump({"tables": {"crashy": table_to_dict(table)}}))
    rng = random.Random(7)

    # full loads killed part-way: raw never holds a partial table
    for _ in range(3):
        proc = _cli("run", "--tables", "crashy", "--full-refresh")
        time.sleep(rng.uniform(0.3, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        count, cursor = _raw_state(settings)
        assert count in (None, ROWS), count  # old table or complete new one, nothing between
        assert (count is None) == (cursor is None)  # state never ahead of data
    assert _cli("run", "--tables", "crashy").wait() == 0
    assert verify_table(settings, table, deep=True).ok

    # incremental loads killed part-way
    for trial in range(3):
        admin_exec(
            settings,
            f"UPDATE crashy SET v = v + 1 WHERE id % 4 = {trial}",
            f"DELETE FROM crashy WHERE id % 997 = {trial}",
            f"INSERT INTO crashy (id, v) SELECT {ROWS} + {trial} * 100 + seq, seq FROM seq_1_to_50",
        )
        before = pg_rows(settings, "SELECT cursor_value FROM etl.load_state WHERE table_name = 'crashy'")
        proc = _cli("run", "--tables", "crashy")
        time.sleep(rng.uniform(0.2, 1.5))
        proc.send_signal(signal.SIGKILL)
        killed = proc.wait() == -signal.SIGKILL
        after = pg_rows(settings, "SELECT cursor_value FROM etl.load_state WHERE table_name = 'crashy'")
        if killed:
            assert after == before or verify_table(settings, table).ok
    time.sleep(1.1)
    assert _cli("run", "--tables", "crashy").wait() == 0
    assert verify_table(settings, table, deep=True).ok
    assert pg_rows(
        settings, "SELECT count(*) FROM pg_tables WHERE schemaname = 'raw' AND tablename LIKE 'crashy\\_\\_%'"
    ) == [(0,)]
