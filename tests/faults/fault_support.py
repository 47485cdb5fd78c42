"""Helpers of the fault-injection suite (no tests here): a loader subprocess with a slow, observable reader,
server faults on the test stack, and the convergence check every scenario ends with.

The loader runs as `python -m etl_pipeline.cli ...` in a child process whose reader is slowed through the
loader's own test hook (`etl_pipeline.load.source.batch_hook`): once the chosen table reaches a batch, the
hook touches a marker file and sleeps a little per batch, so a fault injected when the marker appears lands
mid-COPY every time instead of by luck (FAULT_TABLE "*" slows every table).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from etl_pipeline.db import connect_target
from etl_pipeline.local.stack import LocalStack, find_postgres
from etl_pipeline.settings import PROJECT_ROOT

# scenario -> outcome rows, printed by tests/faults/conftest.py at the end of the session
RESULTS: list[dict] = []

SLOW_READER = """
import os, sys, time, pathlib
from etl_pipeline.load import source
source.BATCH_ROWS = int(os.environ["FAULT_BATCH_ROWS"])
_marker, _table = pathlib.Path(os.environ["FAULT_MARKER"]), os.environ["FAULT_TABLE"]
_at, _pause = int(os.environ["FAULT_AT_BATCH"]), float(os.environ["FAULT_PAUSE"])
def _hook(table, batch_no):
    if _table in (table, "*") and batch_no >= _at:
        _marker.touch()
        time.sleep(_pause)
source.batch_hook = _hook
"""
CLI_MAIN = "from etl_pipeline.cli import main\nsys.exit(main(sys.argv[1:]))\n"
# what an Airflow try of the DAG's `load` task runs (nightly_plan.load_planned_table -> extract_table)
TASK_MAIN = """
import json
from etl_pipeline.nightly_plan import extract_table
from etl_pipeline.settings import load_settings
item, run_id = json.loads(sys.argv[1]), sys.argv[2]
print(json.dumps(extract_table(load_settings(), item, run_id), default=str))
"""


@dataclass
class SlowLoader:
    """A loader child process; `wait_mid_copy()` returns once the slow table is being copied."""

    proc: subprocess.Popen
    marker: Path
    out: list[str] = field(default_factory=list)

    def wait_mid_copy(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not self.marker.exists():
            if self.proc.poll() is not None:
                raise AssertionError(f"the loader finished before the fault could land: {self.finish()}")
            if time.monotonic() > deadline:
                raise AssertionError("the loader never reached the slow table")
            time.sleep(0.05)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)

    def finish(self, timeout: float = 180) -> str:
        out, err = self.proc.communicate(timeout=timeout)
        self.out.append((out or "") + (err or ""))
        return self.out[-1][-2000:]


def start_loader(
    tmp: Path,
    table: str,
    *args: str,
    main: str = CLI_MAIN,
    batch_rows: int = 500,
    at_batch: int = 3,
    pause: float = 0.05,
) -> SlowLoader:
    marker = tmp / f"mid-copy-{time.monotonic_ns()}"
    env = dict(
        os.environ,
        FAULT_MARKER=str(marker),
        FAULT_TABLE=table,
        FAULT_AT_BATCH=str(at_batch),
        FAULT_PAUSE=str(pause),
        FAULT_BATCH_ROWS=str(batch_rows),
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_READER + main, *args],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return SlowLoader(proc, marker)


def cli(*args: str, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """The CLI as a child process; `env` adds variables for this child only."""
    return subprocess.run(
        [sys.executable, "-m", "etl_pipeline.cli", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def pg(settings, sql: str, params=None):
    conn = connect_target(settings.target)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall() if cur.description else None
        conn.commit()
        return rows
    finally:
        conn.close()


# ------------------------------------------------------------------------------------------ server faults


def kill_mariadb(stack: LocalStack) -> None:
    """SIGKILL mariadbd (no shutdown, InnoDB recovers on the next start)."""
    pid = int(stack.paths.mariadb_pid.read_text().strip())
    os.kill(pid, signal.SIGKILL)
    _wait_gone(pid)


def crash_postgres(stack: LocalStack) -> None:
    """`pg_ctl stop -m immediate`: every backend dies at once, WAL recovery on the next start."""
    binaries = find_postgres()
    subprocess.run(
        stack._pg_run_as()
        + [binaries["pg_ctl"], "stop", "-m", "immediate", "-w", "-D", str(stack.paths.postgres_data)],
        check=True,
        capture_output=True,
    )


def _wait_gone(pid: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} did not die")


# ------------------------------------------------------------------------------------------- the checks


def leftovers(settings) -> list[str]:
    """Half-written things visible in raw: swap tables of an interrupted full load."""
    return [
        r[0]
        for r in pg(
            settings,
            "SELECT tablename FROM pg_tables WHERE schemaname = 'raw' "
            "AND (tablename LIKE '%%\\_\\_new' OR tablename LIKE '%%\\_\\_old')",
        )
    ]


def state_ahead_of_data(settings) -> list[str]:
    """Tables whose time cursor in etl.load_state is newer than the newest cursor value in raw."""
    ahead = []
    rows = pg(
        settings,
        "SELECT table_name, target_name, cursor_column, cursor_value FROM etl.load_state "
        "WHERE cursor_column IS NOT NULL AND cursor_value IS NOT NULL AND last_success_at IS NOT NULL",
    )
    for table, target, column, value in rows:
        exists = pg(settings, "SELECT to_regclass(%s) IS NOT NULL", (f'raw."{target}"',))[0][0]
        if not exists:
            ahead.append(f"{table} (state without a raw table)")
            continue
        col = column.lower()
        (pg_type,) = pg(
            settings,
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attname = %s",
            (f'raw."{target}"', col),
        )[0]
        # compare in the column's own type (a text comparison would put '9' after '10')
        (newest,) = pg(
            settings,
            f'SELECT max("{col}") >= CAST(%s AS {pg_type}) OR max("{col}") IS NULL FROM raw."{target}"',
            (value,),
        )[0]
        if not newest:
            ahead.append(f"{table} (state {value})")
    return ahead


def raw_snapshot(settings, target: str):
    """(rows, newest _loaded_at) of a raw table, and its state cursor: must not move when a load fails."""
    rows = pg(settings, f'SELECT count(*), max(_loaded_at) FROM raw."{target}"')[0]
    state = pg(settings, "SELECT cursor_value FROM etl.load_state WHERE target_name = %s", (target,))
    return rows, state


def converge(settings, scenario: str, fault: str) -> dict:
    """The end of every scenario: nothing half-written, state not ahead, one plain run, deep parity."""
    left, ahead = leftovers(settings), state_ahead_of_data(settings)
    run = cli("run")
    verify = cli("verify", "--deep", "--json")
    results = json.loads(verify.stdout) if verify.stdout.strip().startswith("[") else []
    lost = sum(r["missing_in_raw"] for r in results)
    bad = [r["table"] for r in results if not r["ok"]]
    outcome = {
        "scenario": scenario,
        "fault": fault,
        "leftovers": left,
        "state_ahead": ahead,
        "next_run_exit": run.returncode,
        "tables_checked": len(results),
        "mismatched": bad,
        "rows_lost": lost if results else None,
        "outcome": "converged"
        if (not left and not ahead and run.returncode == 0 and results and not bad)
        else "FAILED",
    }
    RESULTS.append(outcome)
    assert not left, f"half-written tables visible in raw: {left}"
    assert not ahead, f"state ahead of data: {ahead}"
    assert run.returncode == 0, f"the next run failed:\n{run.stdout[-2000:]}{run.stderr[-2000:]}"
    assert results, f"verify --deep printed no JSON:\n{verify.stdout[-1000:]}{verify.stderr[-1000:]}"
    assert lost == 0, f"{lost} rows lost"
    assert not bad, f"parity mismatches after the next run: {[r for r in results if not r['ok']]}"
    return outcome
