"""Benchmark: build the synthetic OpenDental source at scale 1.0 (~9.5M rows) and compare with the
5-minute target on this machine.

    .venv/bin/python bench/bench_synth.py [--scale 1.0] [--seed 42] [--stack-id 1] [--keep]

Runs on a scratch LocalStack (.local/scratch-<id>, MariaDB port 24306+10*id), started if needed and
destroyed afterwards unless --keep. Prints seconds, total rows, rows/s and target_seconds / actual
(> 1.0 means faster than the target).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from etl_pipeline.local.stack import scratch_stack
from etl_pipeline.settings import MySQLSettings, read_env_file
from etl_pipeline.synthetic import generate

TARGET_SECONDS = 300.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--stack-id", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="leave the scratch stack running")
    args = parser.parse_args()

    stack = scratch_stack(args.stack_id)
    stack.up()
    env = read_env_file(stack.env_file)
    admin = MySQLSettings(
        host="127.0.0.1",
        port=stack.mariadb_port,
        database="opendental",
        user=env["SOURCE_ADMIN_USER"],
        password=env["SOURCE_ADMIN_PASSWORD"],
    )
    try:
        log = io.StringIO()
        started = time.monotonic()
        counts = generate(admin, args.scale, args.seed, out=log)
        seconds = time.monotonic() - started
    finally:
        if not args.keep:
            stack.destroy()
    print(log.getvalue().split("\n\n")[0])
    total = sum(counts.values())
    target = TARGET_SECONDS * args.scale
    print(f"scale {args.scale}: {seconds:.1f} s, {total:,} rows, {total / seconds:,.0f} rows/s")
    print(
        f"target {target:.0f} s -> ratio target/actual = {target / seconds:.2f}"
        f" ({'faster' if seconds <= target else 'SLOWER'} than target)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
