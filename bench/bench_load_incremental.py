"""Incremental nightly after one simulated day, as a share of the full load time (goal <= 5%).

    .venv/bin/python bench/bench_load_incremental.py [--scale 1.0] [--workers 2] [--keep] [--verify]
    .venv/bin/python bench/bench_load_incremental.py --reuse   # another day on a kept stack, no ratio

Scratch servers (.local/scratch-3), synthetic source at --scale, full load of all tables, then
`mutate --days 1` and the incremental load of all tables, twice (--nights); all loads through
`etl_pipeline.load.run`. The first night after a full load also re-reads the full load's lookback
window (the rows of the source's last hour), the second is a usual night.
Prints the full time, the incremental time, their share and its ratio to the 5% goal, the changed
rows, per-phase seconds of the incremental run (summed over tables and worker threads) and the
slowest tables with their phases.
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
PHASES: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))  # table -> phase -> seconds
_lock = threading.Lock()
_current = threading.local()


def _timed(module, name: str, phase: str) -> None:
    """Wrap module.name so its seconds add up in PHASES[table][phase] (a measurement hook only)."""
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            with _lock:
                PHASES[getattr(_current, "table", "?")][phase] += time.perf_counter() - t0

    setattr(module, name, wrapper)


def _track_table(parallel) -> None:
    original = parallel.load_table

    def wrapper(settings, table, *args, **kwargs):
        _current.table = table.name
        t0 = time.perf_counter()
        try:
            return original(settings, table, *args, **kwargs)
        finally:
            with _lock:
                PHASES[table.name]["total"] += time.perf_counter() - t0

    parallel.load_table = wrapper


# (module, function, phase): the steps of a nightly table load, in the order they run.
STEPS = [
    ("table", "connect_target", "connect target"),
    ("state", "ensure_state_tables", "state DDL check"),
    ("table", "live_columns", "source columns"),
    ("state", "read_state", "state read"),
    ("unchanged", "read_mark", "source mark (skip check)"),
    ("table", "source_clock_bound", "source clock"),
    ("table", "_upper_bound", "upper bound (key MAX)"),
    ("raw", "apply_drift", "drift"),
    ("incremental", "stage_window", "window read (source scan + COPY)"),
    ("key_summary", "ensure", "key summary check"),
    ("incremental", "_note_revived", "key summary: revived keys"),
    ("incremental", "merge", "merge"),
    ("key_summary", "apply_delta", "key summary: apply deltas"),
    ("incremental", "nothing_vanished", "delete check (counts)"),
    ("incremental", "_differing_key_ranges", "delete buckets (fallback)"),
    ("incremental", "mark_deletes", "deletes (all)"),
    ("table", "load_full", "full refresh (strategy full)"),
    ("state", "record_success", "state + history rows"),
]
NESTED = {"key summary: apply deltas"}  # also called inside "deletes (all)": not added twice below


def instrument() -> None:
    from etl_pipeline.load import incremental, key_summary, parallel, raw, state, table, unchanged

    modules = {
        "table": table,
        "incremental": incremental,
        "state": state,
        "raw": raw,
        "unchanged": unchanged,
        "key_summary": key_summary,
    }
    for module, name, phase in STEPS:
        if hasattr(modules[module], name):
            _timed(modules[module], name, phase)
    missing = [f"{module}.{name}" for module, name, _ in STEPS if not hasattr(modules[module], name)]
    if missing:  # a renamed step would silently drop out of the table below
        raise SystemExit(f"bench_load_incremental: the loader has no {', '.join(missing)}: update STEPS")
    _track_table(parallel)


def print_phases(results) -> None:
    phases = [phase for _, _, phase in STEPS] + ["total"]
    totals = {p: sum(PHASES[t].get(p, 0.0) for t in PHASES) for p in phases}
    print("incremental phases (seconds summed over tables; 'total' is the sum of per-table loads):")
    for phase in phases:
        if totals[phase]:
            print(f"  {phase:<36} {totals[phase]:7.2f}")
    inner = {"delete check (counts)", "delete buckets (fallback)", "total"} | NESTED
    attributed = sum(v for p, v in totals.items() if p not in inner)
    print(f"  {'(other: commits, temp tables, ...)':<36} {totals['total'] - attributed:7.2f}")
    print("per table (slowest 8): total | window read | merge | deletes | rows read")
    for r in sorted(results, key=lambda r: -PHASES[r.table].get("total", 0.0))[:8]:
        p = PHASES[r.table]
        print(
            f"  {r.table:<16} {p.get('total', 0):6.2f} | {p.get('window read (source scan + COPY)', 0):6.2f} | "
            f"{p.get('merge', 0):5.2f} | {p.get('deletes (all)', 0):5.2f} | {r.rows_read:>7,} "
            f"(ins {r.inserted}, upd {r.updated}, del {r.deleted})"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7, help="seed of the first simulated day")
    parser.add_argument(
        "--nights",
        type=int,
        default=2,
        help="simulated days, each followed by a timed nightly (default 2: the first night "
        "after the full load re-reads its lookback window; the second is a usual one)",
    )
    parser.add_argument("--keep", action="store_true", help="leave the scratch servers running")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="iterate on a kept stack: no synth, no full load; simulate days and time the "
        "incremental loads only (no ratio)",
    )
    parser.add_argument(
        "--verify", action="store_true", help="afterwards, check source vs raw parity (not timed)"
    )
    args = parser.parse_args()
    stack = scratch_stack()
    point_settings_at(stack.up())
    try:
        from etl_pipeline.load import run

        if args.reuse:
            settings = analysed_source()
            full, full_s = [], None
        else:
            settings, _ = synthetic_source(args.scale)
            reset_target(settings)
            t0 = time.perf_counter()
            full = run(settings, max_workers=args.workers, run_id="bench-full")
            full_s = time.perf_counter() - t0
            print(
                f"scale {args.scale}: full load {full_s:.1f} s ({sum(r.rows_read for r in full):,} rows, "
                f"{args.workers} workers)"
            )
        failed = [r.table for r in full if r.status != "success"]
        instrument()
        for night in range(1, max(1, args.nights) + 1):
            failed += one_night(settings, args, night, full_s)
        bad = verify_all(settings) if args.verify else []
        return 1 if failed or bad else 0
    finally:
        if not args.keep:
            stack.destroy()


def one_night(settings, args, night: int, full_s) -> list[str]:
    """Simulate one day, time the nightly load of all tables, print its figures; returns failed tables."""
    from etl_pipeline.load import run
    from etl_pipeline.synthetic import mutate

    changes = mutate(settings.source_admin, days=1, seed=args.seed + night - 1, quiet=True, out=io.StringIO())
    time.sleep(1.1)
    PHASES.clear()
    t0 = time.perf_counter()
    incr = run(settings, max_workers=args.workers, run_id=f"bench-incr-{args.seed}-{night}")
    incr_s = time.perf_counter() - t0
    changed = sum(c["inserted"] + c["updated"] + c["deleted"] for c in changes.values())
    deleted = sum(c["deleted"] for c in changes.values())
    print(
        f"\nnight {night}: incremental after 1 simulated day {incr_s:.2f} s ({changed:,} rows changed at the "
        f"source, {deleted:,} of them deleted; {sum(r.rows_read for r in incr):,} rows read, "
        f"{sum(r.deleted for r in incr):,} marked deleted)"
    )
    if full_s is not None:
        share = incr_s / full_s
        print(
            f"night {night}: incremental / full = {100 * share:.1f}% (goal <= {100 * GOAL:.0f}%: "
            f"{share / GOAL:.2f}x the goal)"
        )
    failed = [r.table for r in incr if r.status != "success"]
    if failed:
        print(f"FAILED tables: {failed}")
    print_phases(incr)
    skipped = [r.table for r in incr if r.rows_read == 0 and r.deleted == 0]
    print(f"{len(skipped)} of {len(incr)} tables had nothing to do (unchanged or empty window)")
    return failed


def analysed_source():
    from etl_pipeline.schema.analyze import analyze_source, render_tables_yml
    from etl_pipeline.settings import load_settings

    settings = load_settings()
    settings.tables_yml.write_text(render_tables_yml(analyze_source(settings)))
    return settings


def verify_all(settings) -> list[str]:
    from etl_pipeline.load import select_tables, verify_table

    t0 = time.perf_counter()
    bad = [t.name for t in select_tables(settings) if not verify_table(settings, t).ok]
    print(
        f"parity (live counts and key sets, {time.perf_counter() - t0:.0f} s): "
        + (f"DIFFERS for {bad}" if bad else "source and raw equal for every table")
    )
    return bad


if __name__ == "__main__":
    sys.exit(main())
