"""Fault injection (`make test-faults`): the source server killed mid-extraction, the analytics server crashed
mid-COPY, the loader SIGKILLed at a random point, a statement failing mid-merge (a forced error, the target's
statement timeout), an Airflow task try killed and retried. After each: nothing half-written is visible, state
is never ahead of the data, and the next plain run converges to exact parity (`verify --deep` clean, delete
marks right, 0 rows lost).

Days of clinic work (`synth mutate`) come before every fault, so the incremental paths (merge, delete marks)
are the ones interrupted and the ones that must catch up.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import time
from contextlib import contextmanager

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
        for args in (
            ("synth", "--scale", SCALE, "--seed", "11"),
            ("analyze-schema",),
            ("run", "--full-refresh"),
        ):
            done = cli(*args)
            assert done.returncode == 0, f"{args}: {done.stdout[-1500:]}{done.stderr[-1500:]}"
        settings = load_settings()
        big = pg(
            settings, "SELECT table_name, target_name FROM etl.load_state ORDER BY raw_rows DESC LIMIT 1"
        )[0]
        yield {
            "settings": settings,
            "stack": local_stack,
            "big": big[0],
            "big_target": big[1],
            "tmp": tmp_path_factory.mktemp("faults"),
            "days": iter(range(1, 1000)),
        }
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
    world["stack"].up()  # same data directory: InnoDB crash recovery
    assert loader.proc.returncode != 0, output
    assert raw_snapshot(s, world["big_target"]) == before  # the old table and state, untouched
    converge(s, "1 source killed mid-extraction", f"SIGKILL mariadbd in {big} COPY, restart")


def test_analytics_server_crashed_mid_copy(world):
    s, big = world["settings"], world["big"]
    mutate(world)
    before = raw_snapshot(s, world["big_target"])
    loader = start_loader(world["tmp"], big, "run", "--tables", big, "--full-refresh")
    loader.wait_mid_copy()
    crash_postgres(world["stack"])
    output = loader.finish()
    world["stack"].up()  # WAL recovery
    assert loader.proc.returncode != 0, output
    assert raw_snapshot(s, world["big_target"]) == before
    converge(s, "2 analytics crashed mid-COPY", f"pg_ctl stop -m immediate in {big} COPY")


@pytest.mark.parametrize("trial", range(2))
def test_loader_sigkilled_at_a_random_point(world, trial):
    s = world["settings"]
    mutate(world, days=2)
    rng = random.Random(SEED + trial)
    args = ("run", "--full-refresh") if trial else ("run",)
    # every table slowed (small batches, a pause each) so that a random instant after the first batch
    # falls inside the run, not after it, whatever the machine's load
    loader = start_loader(world["tmp"], "*", *args, batch_rows=10, at_batch=1, pause=0.05)
    loader.wait_mid_copy()
    delay = rng.uniform(0.0, 1.5)
    time.sleep(delay)
    assert loader.proc.poll() is None, f"the run ended before the kill: {loader.finish()}"
    loader.kill()
    loader.finish()
    what = "full refresh" if trial else "incremental"
    converge(s, f"3 loader SIGKILL ({what})", f"SIGKILL of `{' '.join(args)}` {delay:.1f} s into the copy")


@contextmanager
def trigger_after_row(s, target: str, name: str, action: str, after: int = 5):
    """A trigger on raw.<target> that does `action` (plpgsql) for every merged row after the first `after`;
    yields a function returning how many rows the merge reached. Dropped again on the way out."""
    pg(s, "CREATE SEQUENCE IF NOT EXISTS public.fault_rows")
    pg(s, "SELECT setval('public.fault_rows', 1, false)")
    pg(
        s,
        f"""CREATE OR REPLACE FUNCTION public.{name}() RETURNS trigger LANGUAGE plpgsql AS $$
              BEGIN
                IF nextval('public.fault_rows') > {after} THEN {action}; END IF;
                RETURN NEW;
              END $$""",
    )
    pg(
        s,
        f'CREATE TRIGGER {name} BEFORE INSERT OR UPDATE ON raw."{target}" FOR EACH ROW EXECUTE FUNCTION public.{name}()',
    )
    try:
        yield lambda: pg(s, "SELECT last_value FROM public.fault_rows")[0][0]
    finally:
        # a session still inside the trigger (its client gone) would hold raw.<target> for every later test
        pg(
            s,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND datname = current_database() AND state = 'active'",
        )
        pg(s, f'DROP TRIGGER IF EXISTS {name} ON raw."{target}"')
        pg(s, f"DROP FUNCTION public.{name}(); DROP SEQUENCE public.fault_rows")


def test_statement_failing_mid_merge(world):
    s = world["settings"]
    mutate(world, days=2)
    target = "procedurelog"
    before = raw_snapshot(s, target)
    with trigger_after_row(s, target, "fault_mid_merge", "RAISE EXCEPTION 'forced fault mid-merge'"):
        failed = cli("run")
    assert failed.returncode == 1 and f"{target:<24} FAILED" in failed.stdout, failed.stdout[-2000:]
    assert raw_snapshot(s, target) == before, "the failed merge left part of its rows behind"
    converge(s, "4 statement fails mid-merge", f"trigger raises at row 6 of raw.{target} merge")


def test_statement_timeout_fires_mid_merge(world):
    """The target's own statement timeout (`statement_timeout`, set for the loader's sessions from
    TARGET_STATEMENT_TIMEOUT) cancels the merge statement: a trigger on the merged table sleeps once
    5 rows are written. The server's own setting stays as it was: only the loader's sessions set it."""
    s = world["settings"]
    mutate(world, days=2)
    target = "procedurelog"
    before = raw_snapshot(s, target)
    with trigger_after_row(s, target, "fault_slow_merge", "PERFORM pg_sleep(120)") as rows_reached:
        timed_out = cli("run", env={"TARGET_STATEMENT_TIMEOUT": "4"})
        merged_rows = rows_reached()
    out = timed_out.stdout
    assert timed_out.returncode == 1 and f"{target:<24} FAILED (QueryCanceled)" in out, out[-2000:]
    assert "1 of " in out and f"tables failed: {target}" in out, out[-2000:]  # only the slowed table
    assert merged_rows > 5, "the trigger never reached its sleep: the merge was not interrupted"
    assert raw_snapshot(s, target) == before, "the cancelled merge left part of its rows behind"
    assert pg(s, "SELECT source FROM pg_settings WHERE name = 'statement_timeout'")[0][0] == "client"
    assert pg(s, "SELECT boot_val FROM pg_settings WHERE name = 'statement_timeout'")[0][0] == "0"
    converge(s, "4b statement timeout mid-merge", "TARGET_STATEMENT_TIMEOUT=4, sleep at row 6")


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


def test_airflow_dags_test_retries_an_extract_try_that_lost_its_connection(world, tmp_path):
    """The real DAG under `airflow dags test`: the securitylog extract try loses its PostgreSQL session mid-COPY
    (terminated from outside, as when a worker's connection drops); Airflow retries the task (retries=2) and
    the run ends green with parity. `dags test` runs every task inside one process, so a SIGKILL would end
    the whole run rather than one try: the dropped session is the per-try fault here."""
    from airflow_support import airflow_home

    from etl_pipeline.airflow_local import DAGS_TEST_ENV, airflow_bin
    from etl_pipeline.settings import PROJECT_ROOT
    from faults.fault_support import SLOW_READER

    s, big = world["settings"], world["big"]
    mutate(world)
    site = tmp_path / "site"
    site.mkdir()
    # the slow, observable reader inside the Airflow process (only there, not in dbt's)
    (site / "sitecustomize.py").write_text(
        "import sys, os\nif 'airflow' in os.path.basename(sys.argv[0]):\n"
        + "".join(f"    {line}\n" for line in SLOW_READER.strip().splitlines())
    )
    marker = tmp_path / "mid-copy"
    env = airflow_home(
        tmp_path / "airflow", {"ETL_EXTRACT_RETRY_DELAY_SECONDS": "1", "DBT_DOCS_DIR": str(tmp_path / "docs")}
    )
    env.update(
        DAGS_TEST_ENV,
        PYTHONPATH=f"{site}:{PROJECT_ROOT}",
        FAULT_MARKER=str(marker),
        FAULT_TABLE=big,
        FAULT_AT_BATCH="3",
        FAULT_PAUSE="0.05",
        FAULT_BATCH_ROWS="2000",
    )
    conf = {"tables": [big], "force_full_refresh": True}
    proc = subprocess.Popen(
        [airflow_bin(), "dags", "test", "etl_pipeline", "--conf", json.dumps(conf)],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not marker.exists():
        assert proc.poll() is None, f"the DAG run ended before the fault: {proc.stdout.read()[-3000:]}"
        assert time.monotonic() < deadline, "the extract never reached the slow table"
        time.sleep(0.05)
    killed = pg(
        s,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
        "AND query ILIKE %s",
        (f"COPY%{world['big_target']}%",),
    )[0][0]
    output, _ = proc.communicate(timeout=900)
    assert killed >= 1, "no COPY session to terminate"
    assert proc.returncode == 0, output[-4000:]
    assert re.search(r"up_for_retry", output, re.IGNORECASE), output[-4000:]
    converge(s, "5b Airflow dags test, try retried", f"{big} extract session terminated mid-COPY; retry")
