"""Fault injection (`make test-faults`): the source server killed mid-extraction, the analytics server crashed
mid-COPY, the loader SIGKILLed at a random point, a statement failing mid-merge, an Airflow task try killed
and retried. After each: nothing half-written is visible, state is never ahead of the data, and the next
plain run converges to exact parity (`verify --deep` clean, delete marks right, 0 rows lost).

Days of clinic work (`synth mutate`) come before every fault, so the incremental paths (merge, delete marks)
are the ones interrupted and the ones that must catch up.
"""

from __future__ import annotations

import json
import os
import random
import time

import pytest

from etl_pipeline.settings import load_settings
from faults.fault_support import (
    TASK_MAIN,
    cli,
    converge,
    crash_postgres,
    kill_mariadb,
    leftovers,
    pg,
    raw_snapshot,
    start_loader,
    state_ahead_of_data,
)

pytestmark = pytest.mark.faults

SCALE = os.environ.get("FAULT_SCALE", "0.03")
SEED = int(os.environ.get("FAULT_SEED", "20261122"))


@pytest.fixture(scope="module")
def world(local_stack, tmp_path_factory):
    """The synthetic source at a small scale, analysed and loaded once; the largest table is the slow one."""
    config_dir = tmp_path_factory.mktemp("faults-config")
    saved = os.environ["ETL_CONFIG_DIR"]
    os.environ["ETL_CONFIG_DIR"] = str(config_dir)
    try:
        for args in (("synth", "--scale", SCALE, "--seed", "11"), ("analyze-schema",), ("run", "--full-refresh")):
            done = cli(*args)
            assert done.returncode == 0, f"{args}: {done.stdout[-1500:]}{done.stderr[-1500:]}"
        settings = load_settings()
        big = pg(settings, "SELECT table_name, target_name FROM etl.load_state ORDER BY raw_rows DESC LIMIT 1")[0]
        yield {"settings": settings, "stack": local_stack, "big": big[0], "big_target": big[1],
               "tmp": tmp_path_factory.mktemp("faults"), "days": iter(range(1, 1000))}
    finally:
        os.environ["ETL_CONFIG_DIR"] = saved


def mutate(world, days: int = 1) -> None:
    done = cli("synth", "mutate", "--days", str(days), "--seed", str(next(world["days"])))
    assert done.returncode == 0, done.stderr[-1500:]


def test_source_server_killed_mid_extraction(world):
    s, big = world["settings"], world["big"]
    mutate(world)
    before = raw_snapshot(s, world["big_target"])
    loader = start_loader(world["tmp"], big, "run", "--tables", big, "--full-refresh")
    loader.wait_mid_copy()
    kill_mariadb(world["stack"])
    output = loader.finish()
    world["stack"].up()                       # same data directory: InnoDB crash recovery
    assert loader.proc.returncode != 0, output
    assert raw_snapshot(s, world["big_target"]) == before     # the old table and state, untouched
    converge(s, "1 source killed mid-extraction", f"SIGKILL mariadbd in {big} COPY, restart")


def test_analytics_server_crashed_mid_copy(world):
    s, big = world["settings"], world["big"]
    mutate(world)
    before = raw_snapshot(s, world["big_target"])
    loader = start_loader(world["tmp"], big, "run", "--tables", big, "--full-refresh")
    loader.wait_mid_copy()
    crash_postgres(world["stack"])
    output = loader.finish()
    world["stack"].up()                       # WAL recovery
    assert loader.proc.returncode != 0, output
    assert raw_snapshot(s, world["big_target"]) == before
    converge(s, "2 analytics crashed mid-COPY", f"pg_ctl stop -m immediate in {big} COPY")


@pytest.mark.parametrize("trial", range(2))
def test_loader_sigkilled_at_a_random_point(world, trial):
    s = world["settings"]
    mutate(world, days=2)
    rng = random.Random(SEED + trial)
    args = ("run", "--full-refresh") if trial else ("run",)
    # every table slowed a little so that a random instant falls inside the run, not after it
    loader = start_loader(world["tmp"], "*", *args, batch_rows=50, at_batch=1, pause=0.03)
    delay = rng.uniform(1.0, 3.0)
    time.sleep(delay)
    assert loader.proc.poll() is None, f"the run ended before the kill at {delay:.1f} s: {loader.finish()}"
    loader.kill()
    loader.finish()
    what = "full refresh" if trial else "incremental"
    converge(s, f"3 loader SIGKILL ({what})", f"SIGKILL of `{' '.join(args)}` at {delay:.1f} s")


def test_statement_failing_mid_merge(world):
    s = world["settings"]
    mutate(world, days=2)
    target = "procedurelog"
    before = raw_snapshot(s, target)
    pg(s, "CREATE SEQUENCE IF NOT EXISTS public.fault_rows")
    pg(s, "SELECT setval('public.fault_rows', 1, false)")
    pg(s, """CREATE OR REPLACE FUNCTION public.fault_mid_merge() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF nextval('public.fault_rows') > 5 THEN RAISE EXCEPTION 'forced fault mid-merge'; END IF;
               RETURN NEW;
             END $$""")
    pg(s, f'CREATE TRIGGER fault_mid_merge BEFORE INSERT OR UPDATE ON raw."{target}" '
          "FOR EACH ROW EXECUTE FUNCTION public.fault_mid_merge()")
    try:
        failed = cli("run")
    finally:
        pg(s, f'DROP TRIGGER IF EXISTS fault_mid_merge ON raw."{target}"')
        pg(s, "DROP FUNCTION public.fault_mid_merge(); DROP SEQUENCE public.fault_rows")
    assert failed.returncode == 1 and f"{target:<24} FAILED" in failed.stdout, failed.stdout[-2000:]
    assert raw_snapshot(s, target) == before, "the failed merge left part of its rows behind"
    converge(s, "4 statement fails mid-merge", f"trigger raises at row 6 of raw.{target} merge")


def test_airflow_task_try_killed_then_retried(world):
    """What Airflow does with `retries=2`: the DAG's load task (nightly.extract_table) for one table, its try
    killed mid-COPY (a worker lost), then the retry: the same item and the same run_id, run again."""
    s, big = world["settings"], world["big"]
    mutate(world, days=4)
    item = json.dumps({"table": big, "tier": "large", "full_refresh": False, "slots": 2})
    run_id = f"scheduled__faults_{SEED}"
    before = raw_snapshot(s, world["big_target"])
    first = start_loader(world["tmp"], big, item, run_id, main=TASK_MAIN, batch_rows=5, at_batch=2)
    first.wait_mid_copy()
    first.kill()
    first.finish()
    assert raw_snapshot(s, world["big_target"]) == before
    assert not leftovers(s) and not state_ahead_of_data(s)
    retry = start_loader(world["tmp"], big, item, run_id, main=TASK_MAIN, batch_rows=5000, at_batch=10**9)
    out = retry.finish()
    assert retry.proc.returncode == 0, out
    assert json.loads(out.strip().splitlines()[0])["status"] == "success"
    converge(s, "5 Airflow task try killed, retried", f"{big} task try SIGKILLed mid-COPY; retry")


def test_the_checks_see_what_they_guard(world):
    """The convergence checks are not blind: a leftover swap table and a state cursor from the future are seen."""
    s, target = world["settings"], world["big_target"]
    assert not leftovers(s) and not state_ahead_of_data(s)
    (cursor,) = pg(s, "SELECT cursor_value FROM etl.load_state WHERE target_name = %s", (target,))[0]
    pg(s, f'CREATE TABLE raw."{target}__new" (id int)')
    future = str(int(cursor) + 10**9) if cursor.isdigit() else "2999-01-01 00:00:00"
    pg(s, "UPDATE etl.load_state SET cursor_value = %s WHERE target_name = %s", (future, target))
    try:
        assert leftovers(s) == [f"{target}__new"]
        assert [a.split()[0] for a in state_ahead_of_data(s)] == [world["big"]]
    finally:
        pg(s, f'DROP TABLE raw."{target}__new"')
        pg(s, "UPDATE etl.load_state SET cursor_value = %s WHERE target_name = %s", (cursor, target))
