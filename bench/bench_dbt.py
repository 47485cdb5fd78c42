"""Benchmark: wall time of `dbt build` (every model and test of dbt_dental_models) on a loaded raw layer.

Builds a synthetic OpenDental source at --scale (1.0 = the reference mid-size clinic: ~35k patients,
~820k procedures, ~1.5M paysplits), loads it with the real loader (analyze-schema, run --full-refresh)
into a throwaway local stack of its own, times `dbt build`, and prints the figure with its ratio to a
published implementation of these marts (~52 minutes for a clinic of this size). Goal: under 3 minutes.

    .venv/bin/python bench/bench_dbt.py --scale 1.0
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from etl_pipeline.dbt_runner import run_dbt
from etl_pipeline.local.stack import scratch_stack
from etl_pipeline.settings import load_settings
from etl_pipeline.synthetic import generate
from etl_pipeline.synthetic.ddl import TABLE_NAMES

PEER_SECONDS = 52 * 60  # published implementation of these marts, same clinic size
GOAL_SECONDS = 3 * 60
SCRATCH_ID = 4  # .local/scratch-4


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="synthetic source scale (default 1.0)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", action="store_true", help="leave the bench stack running afterwards")
    args = parser.parse_args()

    stack = scratch_stack(SCRATCH_ID)
    os.environ.update(stack.up())
    os.environ["ETL_ENV_FILE"] = str(stack.env_file)
    try:
        settings = load_settings()
        t0 = time.monotonic()
        with open(os.devnull, "w") as quiet:
            counts = generate(settings.source_admin, args.scale, args.seed, out=quiet)
        print(
            f"source: {sum(counts.values()):,} rows at scale {args.scale} "
            f"({counts['procedurelog']:,} procedures, {counts['paysplit']:,} paysplits) "
            f"in {time.monotonic() - t0:.0f} s",
            flush=True,
        )
        with tempfile.TemporaryDirectory() as config_dir:
            env = dict(os.environ, ETL_CONFIG_DIR=config_dir)
            t0 = time.monotonic()
            for cli_args in (
                ["analyze-schema"],
                ["run", "--full-refresh", "--tables", ",".join(TABLE_NAMES)],
            ):
                subprocess.run(
                    [sys.executable, "-m", "etl_pipeline.cli", *cli_args],
                    cwd=PROJECT_ROOT,
                    env=env,
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
            print(f"raw loaded in {time.monotonic() - t0:.0f} s", flush=True)

        t0 = time.monotonic()
        result = run_dbt(["build"], settings=settings)
        seconds = time.monotonic() - t0
        summary = next(
            (line.split("  ", 1)[-1].strip() for line in result.output.splitlines() if "Done. PASS=" in line),
            "",
        )
        print(f"dbt build: {seconds:.1f} s ({summary})")
        print(f"peer (published implementation, same clinic size): {PEER_SECONDS / 60:.0f} min")
        print(
            f"ratio peer / this: {PEER_SECONDS / seconds:.1f}x faster"
            + ("" if args.scale == 1.0 else f" (NOTE: scale {args.scale}, the peer figure is for 1.0)")
        )
        print(f"goal under {GOAL_SECONDS // 60} min: {'met' if seconds < GOAL_SECONDS else 'MISSED'}")
    finally:
        if not args.keep:
            stack.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
