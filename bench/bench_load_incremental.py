"""Incremental nightly after one simulated day, as a share of the full load time (goal <= 5%).

    .venv/bin/python bench/bench_load_incremental.py [--scale 1.0] [--keep]

Scratch servers (.local/scratch-3), synthetic source at --scale, full load of all tables, then
`mutate --days 1` and the incremental load of all tables; both loads through `etl_pipeline.load.run`.
"""

from __future__ import annotations

import argparse
import io
import sys
import time

from bench_load_common import point_settings_at, reset_target, scratch_stack, synthetic_source


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="leave the scratch servers running")
    args = parser.parse_args()
    stack = scratch_stack()
    point_settings_at(stack.up())
    try:
        from etl_pipeline.load import run
        from etl_pipeline.synthetic import mutate

        settings, _ = synthetic_source(args.scale)
        reset_target(settings)
        t0 = time.perf_counter()
        full = run(settings, max_workers=args.workers, run_id="bench-full")
        full_s = time.perf_counter() - t0
        changes = mutate(settings.source_admin, days=1, seed=7, quiet=True, out=io.StringIO())
        time.sleep(1.1)
        t0 = time.perf_counter()
        incr = run(settings, max_workers=args.workers, run_id="bench-incr")
        incr_s = time.perf_counter() - t0
        failed = [r.table for r in full + incr if r.status != "success"]
        changed = sum(c["inserted"] + c["updated"] + c["deleted"] for c in changes.values())
        print(f"scale {args.scale}: full load {full_s:.1f} s ({sum(r.rows_read for r in full):,} rows), "
              f"incremental after 1 day {incr_s:.1f} s ({changed:,} rows changed at the source, "
              f"{sum(r.rows_read for r in incr):,} read)")
        print(f"incremental / full = {100 * incr_s / full_s:.1f}% (goal <= 5%)"
              + (f"; FAILED tables: {failed}" if failed else ""))
        return 1 if failed else 0
    finally:
        if not args.keep:
            stack.destroy()


if __name__ == "__main__":
    sys.exit(main())
