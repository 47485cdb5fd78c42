"""Full load of the whole synthetic source (all 36 tables): wall time and the loader's peak RSS.

    .venv/bin/python bench/bench_load_full_source.py [--scale 1.0] [--keep]

Scratch servers (.local/scratch-3); the load runs as `python -m etl_pipeline.cli run --full-refresh`
in a subprocess so its peak RSS can be read with getrusage(RUSAGE_CHILDREN).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

from bench_load_common import ROOT, point_settings_at, reset_target, scratch_stack, synthetic_source


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="leave the scratch servers running")
    args = parser.parse_args()
    stack = scratch_stack()
    point_settings_at(stack.up())
    try:
        settings, gen_s = synthetic_source(args.scale)
        reset_target(settings)
        t0 = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "etl_pipeline.cli",
                "run",
                "--full-refresh",
                "--workers",
                str(args.workers),
            ],
            cwd=ROOT,
            env=os.environ.copy(),
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        rows = sum(
            int(line.split("read")[1].split()[0].replace(",", ""))
            for line in done.stdout.splitlines()
            if " read " in line
        )
        print(
            f"scale {args.scale}: generated in {gen_s:.0f} s; full load of all tables {wall:.1f} s, "
            f"{rows:,} rows ({rows / wall:,.0f} rows/s), peak RSS {peak_mb:.0f} MB (goal <= 300 MB), "
            f"exit {done.returncode}"
        )
        if done.returncode:
            print(done.stdout[-2000:], done.stderr[-2000:], sep="\n")
        return done.returncode
    finally:
        if not args.keep:
            stack.destroy()


if __name__ == "__main__":
    sys.exit(main())
