"""The nightly through the scheduler on Celery workers against `airflow dags test`, side by side on the
same data: a full night and an incremental night each way.

On a scratch stack (.local/scratch-8): a synthetic source at --scale (default 0.2) and analyze-schema.
1. Celery (etl_pipeline.airflow_cluster: scheduler, DAG processor, triggerer, API server, redis-server,
   workers `default,extract` x2 and `dbt`; metadata DB in PostgreSQL): unpausing runs the latest
   scheduled interval, the first load into an empty warehouse (full); one simulated clinic day
   (`synth mutate --days 1`); a triggered incremental run.
2. `airflow dags test` (one process, tasks one after another; SQLite metadata DB): a forced full refresh
   of every table; another simulated day; an incremental run.

Per run, from the metadata database's own task timestamps: wall time (run start to end), task instances
run, per-task overhead (the median duration of the per-model dbt tasks, which only read the build's result:
what starting and finishing a task costs) and, on Celery, the median wait from queued to running; how
many tasks ran at once (the peak, and the mean = summed task time / wall time). Each run must succeed.
The scratch stack is destroyed at the end.

    .venv/bin/python bench/bench_scheduler.py [--scale 0.2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from etl_pipeline.local.stack import scratch_stack

SCRATCH_ID = 8
RUN_SECONDS = 3600
DAG_ID = "etl_pipeline"


@dataclass
class Night:
    mode: str
    kind: str
    wall: float
    tasks: int
    overhead: float  # median seconds of a per-model dbt task
    queued_wait: float | None  # median seconds from queued to running (Celery)
    peak: int
    mean_parallel: float


def night(metadata_url: str, mode: str, kind: str, run_id: str) -> Night:
    """The run's figures, from the task_instance rows Airflow wrote."""
    from sqlalchemy import create_engine, text

    engine = create_engine(metadata_url)
    with engine.connect() as conn:
        state, start, end = conn.execute(
            text("SELECT state, start_date, end_date FROM dag_run WHERE dag_id = :d AND run_id = :r"),
            {"d": DAG_ID, "r": run_id},
        ).one()
        rows = conn.execute(
            text(
                "SELECT task_id, start_date, end_date, queued_dttm FROM task_instance "
                "WHERE dag_id = :d AND run_id = :r AND start_date IS NOT NULL AND end_date IS NOT NULL"
            ),
            {"d": DAG_ID, "r": run_id},
        ).all()
    engine.dispose()
    if state != "success":
        raise SystemExit(f"{mode} {kind} run {run_id} ended {state}")
    stamp = _as_datetime
    spans = [(stamp(r.start_date), stamp(r.end_date)) for r in rows]
    model_tasks = [
        (stamp(r.end_date) - stamp(r.start_date)).total_seconds()
        for r in rows
        if r.task_id.startswith("dbt_models.") and r.task_id.endswith(".run")
    ]
    waits = [
        (stamp(r.start_date) - stamp(r.queued_dttm)).total_seconds()
        for r in rows
        if r.queued_dttm is not None
    ]
    wall = (stamp(end) - stamp(start)).total_seconds()
    busy = sum((e - s).total_seconds() for s, e in spans)
    return Night(
        mode=mode,
        kind=kind,
        wall=wall,
        tasks=len(rows),
        overhead=statistics.median(model_tasks) if model_tasks else float("nan"),
        queued_wait=statistics.median(waits) if waits and mode == "celery" else None,
        peak=_peak(spans),
        mean_parallel=busy / wall if wall else 0.0,
    )


def _as_datetime(value) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _peak(spans: list[tuple[datetime, datetime]]) -> int:
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda ev: (ev[0], ev[1]))
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def _cli(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "etl_pipeline.cli", *args], cwd=ROOT, check=True, capture_output=True
    )


def _latest_run(metadata_url: str, after: set[str], seconds: float = 180) -> str:
    """The run id of the run that appears after `after` (the ones already there)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(metadata_url)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                ids = {
                    r[0]
                    for r in conn.execute(text("SELECT run_id FROM dag_run WHERE dag_id = :d"), {"d": DAG_ID})
                }
            if ids - after:
                return sorted(ids - after)[0]
            time.sleep(2)
    finally:
        engine.dispose()
    raise SystemExit("no new run appeared")


def _run_ids(metadata_url: str) -> set[str]:
    from sqlalchemy import create_engine, text

    engine = create_engine(metadata_url)
    with engine.connect() as conn:
        ids = {
            r[0] for r in conn.execute(text("SELECT run_id FROM dag_run WHERE dag_id = :d"), {"d": DAG_ID})
        }
    engine.dispose()
    return ids


def _wait_done(metadata_url: str, run_id: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(metadata_url)
    deadline = time.monotonic() + RUN_SECONDS
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                state = conn.execute(
                    text("SELECT state FROM dag_run WHERE dag_id = :d AND run_id = :r"),
                    {"d": DAG_ID, "r": run_id},
                ).scalar()
            if state in ("success", "failed"):
                return
            time.sleep(3)
    finally:
        engine.dispose()
    raise SystemExit(f"run {run_id} not finished after {RUN_SECONDS} s")


def celery_nights(stack, tmp: Path) -> list[Night]:
    from etl_pipeline.airflow_cluster import AirflowCluster, cluster_env, free_port
    from etl_pipeline.airflow_local import airflow

    env = cluster_env(
        stack,
        "celery",
        home=tmp / "airflow-celery",
        metadata_database="airflow_bench",
        extra={"AIRFLOW__API__PORT": str(free_port()), "DBT_DOCS_DIR": str(tmp / "docs")},
    )
    url = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    nights = []
    with AirflowCluster(env):
        deadline = time.monotonic() + 180
        while airflow(["dags", "unpause", DAG_ID], env, check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise SystemExit("the DAG processor never registered etl_pipeline")
            time.sleep(5)
        full = _latest_run(url, set())
        _wait_done(url, full)
        nights.append(night(url, "celery", "full (first load)", full))
        print(f"celery full: {nights[-1].wall:.1f} s", flush=True)
        _cli("synth", "mutate", "--days", "1")
        before = _run_ids(url)
        airflow(["dags", "trigger", DAG_ID], env)
        incremental = _latest_run(url, before)
        _wait_done(url, incremental)
        nights.append(night(url, "celery", "incremental", incremental))
        print(f"celery incremental: {nights[-1].wall:.1f} s", flush=True)
    return nights


def dags_test_nights(tmp: Path) -> list[Night]:
    from etl_pipeline.airflow_local import airflow_env, dags_test, prepare

    home = tmp / "airflow-dags-test"
    env = airflow_env(home, {"DBT_DOCS_DIR": str(tmp / "docs")})
    prepare(env)
    url = f"sqlite:///{home}/airflow.db"
    nights = []
    for kind, conf in (("full (forced refresh)", {"force_full_refresh": True}), ("incremental", None)):
        if kind == "incremental":
            _cli("synth", "mutate", "--days", "1")
        before = _run_ids(url)
        proc = dags_test(DAG_ID, env, conf=conf, timeout=RUN_SECONDS)
        if proc.returncode != 0:
            print((proc.stdout + proc.stderr)[-3000:])
            raise SystemExit(f"airflow dags test ({kind}) failed")
        [run_id] = _run_ids(url) - before
        nights.append(night(url, "dags test", kind, run_id))
        print(f"dags test {kind}: {nights[-1].wall:.1f} s", flush=True)
    return nights


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.2, help="synthetic scale (default 0.2)")
    args = parser.parse_args()
    stack = scratch_stack(SCRATCH_ID)
    stack.destroy()
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-scheduler-") as name:
            tmp = Path(name)
            os.environ.update(stack.up())
            os.environ["ETL_ENV_FILE"] = str(stack.env_file)
            os.environ["ETL_CONFIG_DIR"] = str(tmp / "config")
            from etl_pipeline.settings import load_settings
            from etl_pipeline.synthetic import generate

            with open(os.devnull, "w") as quiet:
                generate(load_settings().source_admin, args.scale, 42, out=quiet)
            _cli("analyze-schema")
            nights = celery_nights(stack, tmp) + dags_test_nights(tmp)
    finally:
        stack.destroy()
    print(f"\nscale {args.scale}, {time.monotonic() - started:.0f} s in all")
    print(
        "mode      | night                 | wall s | tasks | per-task overhead s | queued->running s | peak at once | mean at once"
    )
    for n in nights:
        wait = f"{n.queued_wait:.2f}" if n.queued_wait is not None else "-"
        print(
            f"{n.mode:<9} | {n.kind:<21} | {n.wall:6.1f} | {n.tasks:5d} | {n.overhead:19.2f} | {wait:>17} | "
            f"{n.peak:12d} | {n.mean_parallel:12.2f}"
        )
    by = {(n.mode, n.kind.split()[0]): n for n in nights}
    for kind in ("full", "incremental"):
        celery, local = by[("celery", kind)], by[("dags test", kind)]
        print(f"{kind}: Celery / dags test wall time {celery.wall / local.wall:.2f}x")
    print(json.dumps([n.__dict__ for n in nights]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
