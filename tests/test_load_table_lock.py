"""One load of a table at a time (`load.table_lock`): a second load of the same table (a CLI run during
the DAG's, a retry beside a zombie attempt) waits for the first to commit, or refuses after its wait
with a message naming the session that holds the table; a holder that died or idles in its transaction
lets go. After two concurrent attempts the kept key summary still equals one computed from raw."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
from test_load_support import admin_exec, drop_everywhere, table_config

from etl_pipeline.db import connect_target
from etl_pipeline.load import key_summary, load_table, source, table_lock, verify_table
from etl_pipeline.load.table_lock import TableBusy


def make(settings, name, rows=5000):
    drop_everywhere(settings, name)
    admin_exec(
        settings,
        f"CREATE TABLE {name} (id bigint AUTO_INCREMENT PRIMARY KEY, v int NOT NULL, "
        "ts timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp()) ENGINE=InnoDB",
        f"INSERT INTO {name} (id, v) SELECT seq, seq FROM seq_1_to_{rows}",
    )
    return table_config(settings, name)


def timed_load(settings, table, run_id, timeline):
    """load_table as the DAG and the CLI call it (it takes the table's lock itself), its end timed."""
    result = load_table(settings, table, run_id)
    timeline.append((run_id, "committed", time.monotonic()))
    return result


def test_a_second_load_of_a_table_waits_for_the_first(settings, monkeypatch):
    t = make(settings, "tl_two")
    load_table(settings, t, "t0")
    admin_exec(
        settings,
        "UPDATE tl_two SET v = -v WHERE id % 7 = 0",
        "DELETE FROM tl_two WHERE id BETWEEN 1000 AND 1010 OR id = 4999",
        "INSERT INTO tl_two (v) SELECT seq FROM seq_1_to_300",
    )
    time.sleep(1.05)
    monkeypatch.setattr(source, "BATCH_ROWS", 200)
    monkeypatch.setattr(
        source, "batch_hook", lambda table, n: time.sleep(0.05) if table == "tl_two" else None
    )
    timeline: list[tuple[str, str, float]] = []
    results = {}

    def attempt(run_id):
        results[run_id] = timed_load(settings, t, run_id, timeline)

    first = threading.Thread(target=attempt, args=("dag",))
    second = threading.Thread(target=attempt, args=("cli",))
    first.start()
    time.sleep(0.3)
    second.start()
    first.join(120)
    second.join(120)
    assert {r: (results[r].status, results[r].strategy) for r in results} == {
        "dag": ("success", "incremental"),
        "cli": ("success", "incremental"),
    }
    events = [(run, what) for run, what, _ in sorted(timeline, key=lambda e: e[2])]
    assert events == [("dag", "committed"), ("cli", "committed")]
    assert (results["dag"].inserted, results["dag"].deleted) == (300, 12)
    # the second read after the first had committed: nothing left to do (read side by side, both merge)
    assert (results["cli"].inserted, results["cli"].updated, results["cli"].deleted) == (0, 0, 0)
    conn = connect_target(settings.target)
    try:
        with conn.cursor() as cur:
            assert key_summary.buckets(cur, "tl_two") == key_summary.recomputed(cur, "raw.tl_two", "id")
    finally:
        conn.close()
    monkeypatch.setattr(source, "batch_hook", None)
    assert verify_table(settings, t, deep=True).ok


def test_a_load_refuses_after_its_wait_and_names_the_holder(settings):
    holder = connect_target(settings.target)
    try:
        table_lock.acquire(holder, "tl_busy")
        with holder.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        other = connect_target(settings.target)
        try:
            started = time.monotonic()
            with pytest.raises(TableBusy) as busy:
                table_lock.acquire(other, "tl_busy", wait_seconds=1)
            assert 1 <= time.monotonic() - started < 3
            message = str(busy.value)
            assert message.startswith("tl_busy: another load of this table is running (PostgreSQL session ")
            assert f"session {pid} (etl_pipeline" in message and f"pg_terminate_backend({pid})" in message
            assert "Waited 1 s (TARGET_TABLE_LOCK_WAIT); nothing was read." in message
            other.rollback()
            table_lock.acquire(other, "tl_other", wait_seconds=0)  # another table is not held
            holder.rollback()  # the first load's transaction ends: the lock with it
            table_lock.acquire(other, "tl_busy", wait_seconds=0)
            assert table_lock.holder(holder, "tl_busy")["pid"] != pid
        finally:
            other.close()
    finally:
        holder.close()


def test_load_table_refuses_a_held_table_and_records_why(settings):
    t = make(settings, "tl_held", rows=50)
    holder = connect_target(settings.target)
    try:
        table_lock.acquire(holder, t.name)
        impatient = dataclasses.replace(
            settings, target=dataclasses.replace(settings.target, table_lock_wait=0.5)
        )
        with pytest.raises(TableBusy):
            load_table(impatient, t, "tl_held_run")
    finally:
        holder.close()
    conn = connect_target(settings.target)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT status, error_class, message FROM etl.load_runs WHERE run_id = 'tl_held_run' AND table_name = %s",
                (t.name,),
            )
            status, error_class, message = cur.fetchone()
            cur.execute("SELECT to_regclass('raw.tl_held')")
            assert cur.fetchone()[0] is None  # nothing was read or written
    finally:
        conn.close()
    assert (status, error_class) == ("failed", "TableBusy")
    assert message.startswith("tl_held: another load of this table is running (PostgreSQL session ")
    assert load_table(settings, t, "tl_held_again").status == "success"  # once the holder has gone


def test_a_dead_or_idle_holder_lets_go(settings):
    quick = dataclasses.replace(settings.target, idle_timeout=1)
    zombie = connect_target(quick)
    table_lock.acquire(zombie, "tl_zombie")  # then idles in its transaction: the server ends it
    waiter = connect_target(settings.target)
    try:
        started = time.monotonic()
        table_lock.acquire(waiter, "tl_zombie", wait_seconds=10)
        assert time.monotonic() - started < 5
        waiter.rollback()
        dead = connect_target(settings.target)
        table_lock.acquire(dead, "tl_zombie")
        dead.close()  # the process holding it died: its session ends (the server notices at once)
        started = time.monotonic()
        table_lock.acquire(waiter, "tl_zombie", wait_seconds=5)
        assert time.monotonic() - started < 1
    finally:
        waiter.close()
        zombie.close()


def test_the_lock_needs_a_transaction(settings):
    conn = connect_target(settings.target, autocommit=True)
    try:
        with pytest.raises(ValueError, match="must not autocommit"):
            table_lock.acquire(conn, "tl_auto")
    finally:
        conn.close()
