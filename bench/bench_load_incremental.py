"""Incremental nightly after one simulated day, as a share of the full load time (goal <= 5%).

    .venv/bin/python bench/bench_load_incremental.py [--scale 1.0] [--workers 2] [--keep]

Scratch servers (.local/scratch-3), synthetic source at --scale, full load of all tables, then
`mutate --days 1` and the incremental load of all tables; both loads through `etl_pipeline.load.run`.
Prints the full time, the incremental time, their share and its ratio to the 5% goal, the changed
rows, per-phase seconds of the incremental run (summed over tables and worker threads) and the
slowest tables.
"""

from __future__ import annotations

import argparse
import io
import sys
import threading
import time
from collections import defaultdict

from bench_load_common import point_settings_at, reset_target, scratch_stack, synthetic_source

GOAL = 0.05
PHASES = defaultdict(float)
_lock = threading.Lock()


def _timed(module, name: str, phase: str) -> None:
    """Wrap module.name so its seconds add up in PHASES[phase] (a measurement hook; no behaviour change)."""
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            with _lock:
                PHASES[phase] += time.perf_counter() - t0
    setattr(module, name, wrapper)


def instrument() -> None:
    from etl_pipeline.load import engine, incremental, source, state

    _timed(engine, "connect_target", "connect target")
    _timed(state, "ensure_state_tables", "state DDL")
    _timed(engine, "live_columns", "live columns")
    for name in ("_upper_bound",):
        if hasattr(engine, name):
            _timed(engine, name, f"engine.{name}")
    _timed(engine, "load_incremental", "incremental (all)")
    _timed(incremental, "merge", "  merge")
    _timed(incremental, "mark_deletes", "  deletes (all)")
    for name in ("_differing_key_ranges", "_source_buckets", "_raw_buckets"):
        if hasattr(incremental, name):
            _timed(incremental, name, f"  deletes: {name}")
    _timed(engine, "load_full", "full (all)")
    del source


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
        instrument()
        t0 = time.perf_counter()
        incr = run(settings, max_workers=args.workers, run_id="bench-incr")
        incr_s = time.perf_counter() - t0
        failed = [r.table for r in full + incr if r.status != "success"]
        changed = sum(c["inserted"] + c["updated"] + c["deleted"] for c in changes.values())
        share = incr_s / full_s
        print(f"scale {args.scale}: full load {full_s:.1f} s ({sum(r.rows_read for r in full):,} rows), "
              f"incremental after 1 day {incr_s:.1f} s ({changed:,} rows changed at the source, "
              f"{sum(r.rows_read for r in incr):,} read)")
        print(f"incremental / full = {100 * share:.1f}% (goal <= {100 * GOAL:.0f}%: "
              f"{share / GOAL:.2f}x the goal)" + (f"; FAILED tables: {failed}" if failed else ""))
        print("incremental phases (seconds summed over tables and workers):")
        for phase, seconds in PHASES.items():
            print(f"  {phase:<34} {seconds:7.2f}")
        skipped = [r.table for r in incr if r.rows_read == 0 and r.deleted == 0]
        print(f"{len(skipped)} of {len(incr)} tables had nothing to do (unchanged or empty window)")
        slow = sorted(incr, key=lambda r: -r.seconds)[:6]
        print("slowest tables: " + ", ".join(f"{r.table} {r.seconds:.2f}s ({r.strategy}, "
                                             f"{r.rows_read} read)" for r in slow))
        return 1 if failed else 0
    finally:
        if not args.keep:
            stack.destroy()


if __name__ == "__main__":
    sys.exit(main())
