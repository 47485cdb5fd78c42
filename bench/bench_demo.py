"""Wall time of `make demo` at its default scale (SCALE=0.05): stack, synthetic source, analysis, the
full and the incremental nightly runs through Airflow, the summary.

    .venv/bin/python bench/bench_demo.py                 # make demo, default scale
    .venv/bin/python bench/bench_demo.py --scale 1.0     # the full + incremental nightly at scale 1.0 (long)

Prints the wall time, each run's time from the demo's own summary, and the ratio to the goal
(default 600 s for the demo; pass --goal for another).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale", type=float, default=None, help="SCALE for make demo (default: the Makefile's)"
    )
    parser.add_argument("--goal", type=float, default=600.0, help="seconds the demo should take at most")
    args = parser.parse_args()
    env = dict(os.environ)
    command = ["make", "demo"] + ([f"SCALE={args.scale}"] if args.scale is not None else [])
    t0 = time.monotonic()
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - t0
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        print(output[-3000:])
        print(f"make demo failed after {wall:.0f} s")
        return 1
    for line in output.splitlines():
        if re.search(r"(full|incremental) run wall time|^\s+run ", line):
            print(line.strip())
    print(
        f"{' '.join(command)}: {wall:.0f} s wall; ratio to the {args.goal:.0f} s goal: {wall / args.goal:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
