"""Wall time of the Cosmos dbt stage of the nightly DAG against a plain `dbt build` on the same data.

On a scratch stack (.local/scratch-7, its own ports): synthetic source at --scale, analyze-schema, one
`airflow dags test etl_pipeline` (full run); the Cosmos stage is measured from that run's own task
timestamps (first dbt_models task start to last dbt_models task end); then `dbt build` runs on the
same raw data. Goal: ratio Cosmos / dbt build <= 1.5. The DAG runs Cosmos in watcher mode: the stage is
the producer task's single `dbt build` plus one short task per model and test reading its result, and the
breakdown printed shows both. The scratch stack is destroyed at the end.

    .venv/bin/python bench/bench_cosmos_vs_dbt.py [--scale 0.01 [0.05 1.0 ...]]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from etl_pipeline.local.stack import scratch_stack

SCRATCH_ID = 7
RUN_LOG = ROOT / ".local" / "bench-cosmos-run.log"
TASK_LINE = re.compile(r"^(\S+Z) .*\[DAG TEST\] (starting|end task) task_id=(\S+)")


def cosmos_stage_seconds(output: str) -> tuple[float, float, int]:
    """(whole Cosmos stage, its producer task - the one `dbt build`, number of tasks) from the run's log."""
    starts, ends, tasks, producer = [], [], set(), {}
    for line in output.splitlines():
        match = TASK_LINE.match(line)
        if match and match.group(3).startswith("dbt_models."):
            stamp = datetime.fromisoformat(match.group(1))
            (starts if match.group(2) == "starting" else ends).append(stamp)
            tasks.add(match.group(3))
            if match.group(3).endswith(".dbt_producer_watcher"):
                producer[match.group(2)] = stamp
    if not starts or not ends or len(producer) != 2:
        raise SystemExit("no dbt_models tasks (or no producer task) ran: see the run log")
    return (
        (max(ends) - min(starts)).total_seconds(),
        (producer["end task"] - producer["starting"]).total_seconds(),
        len(tasks),
    )


def measure(scale: float) -> tuple[float, float, int, float]:
    """(Cosmos stage, its producer, its number of tasks, plain dbt build) on a fresh scratch stack at `scale`."""
    stack = scratch_stack(SCRATCH_ID)
    stack.destroy()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-cosmos-") as tmp:
            os.environ.update(stack.up())
            os.environ["ETL_ENV_FILE"] = str(stack.env_file)
            os.environ["ETL_CONFIG_DIR"] = str(Path(tmp) / "config")
            os.environ["DBT_DOCS_DIR"] = str(Path(tmp) / "docs")
            from etl_pipeline.airflow_local import airflow_env, dags_test, prepare
            from etl_pipeline.dbt_runner import run_dbt
            from etl_pipeline.settings import load_settings
            from etl_pipeline.synthetic import generate

            settings = load_settings()
            with open(os.devnull, "w") as quiet:
                generate(settings.source_admin, scale, 42, out=quiet)
            subprocess.run(
                [sys.executable, "-m", "etl_pipeline.cli", "analyze-schema"],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            env = airflow_env(Path(tmp) / "airflow")
            prepare(env)
            run = dags_test("etl_pipeline", env)
            output = run.stdout + run.stderr
            RUN_LOG.parent.mkdir(parents=True, exist_ok=True)
            RUN_LOG.write_text(output)  # kept for a look at the tasks' timings
            if run.returncode != 0:
                print(output[-3000:])
                raise SystemExit("the nightly run failed")
            cosmos, producer, tasks = cosmos_stage_seconds(output)
            t0 = time.monotonic()
            run_dbt(["build", "--target-path", str(Path(tmp) / "dbt-target")], settings=settings)
            plain = time.monotonic() - t0
    finally:
        stack.destroy()
    return cosmos, producer, tasks, plain


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale",
        type=float,
        nargs="+",
        default=[0.01],
        help="one or more synthetic scales, each on a fresh stack (e.g. --scale 0.01 0.05 1.0)",
    )
    args = parser.parse_args()
    rows = []
    for scale in args.scale:
        cosmos, producer, tasks, plain = measure(scale)
        print(
            f"scale {scale}: Cosmos dbt stage {cosmos:.1f} s ({tasks} tasks), plain dbt build {plain:.1f} s"
        )
        print(
            f"  of which the producer's one `dbt build` {producer:.1f} s (ratio {producer / plain:.2f} to plain "
            f"dbt), the {tasks - 1} model/test/gate tasks after it {cosmos - producer:.1f} s "
            f"({(cosmos - producer) / max(tasks - 1, 1):.2f} s each, one at a time under `airflow dags test`)",
            flush=True,
        )
        rows.append((scale, cosmos, plain))
    print("scale | Cosmos stage s | plain dbt build s | ratio (goal <= 1.5)")
    for scale, cosmos, plain in rows:
        print(
            f"{scale:>5} | {cosmos:14.1f} | {plain:17.1f} | {cosmos / plain:.2f} "
            f"({'met' if cosmos / plain <= 1.5 else 'NOT met'})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
