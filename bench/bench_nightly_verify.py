"""The nightly verify's cost beside the night's load: key parity + content check + tonight's deep share.

    .venv/bin/python bench/bench_nightly_verify.py [--scale 1.0] [--workers 2] [--scratch-id 15] [--keep]

Scratch servers (.local/scratch-<id>), the synthetic source at --scale, a full load of every table,
then two simulated days (`synth mutate --days 1`), each followed by the incremental load of every
table (the first night after a full load also re-reads its lookback window; the second is a usual
night, and the one timed). After the second night's load, the nightly verify of every table it loaded
(`nightly_report.verify_tables`: judged key parity and the content check of the rows read tonight),
then the full deep check of every table once, from which each of the 7 rotation nights' verify time
follows (`quality.rotation`). Prints the load seconds, tonight's verify seconds split into its parts,
the share of the night (verify / (load + verify); goal < 10%) and the heaviest rotation night's.
"""

from __future__ import annotations

import argparse
import io
import sys
import time

from bench_load_common import point_settings_at, reset_target, synthetic_source

from etl_pipeline.local.stack import scratch_stack

GOAL = 0.10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7, help="seed of the first simulated day")
    parser.add_argument("--scratch-id", type=int, default=15, help="scratch stack .local/scratch-<id>")
    parser.add_argument("--keep", action="store_true", help="leave the scratch servers running")
    args = parser.parse_args()
    stack = scratch_stack(args.scratch_id)
    point_settings_at(stack.up())
    try:
        return _bench(args)
    finally:
        if not args.keep:
            stack.destroy()


def _bench(args: argparse.Namespace) -> int:
    from etl_pipeline.load import run
    from etl_pipeline.nightly_report import verify_tables
    from etl_pipeline.quality import rotation
    from etl_pipeline.quality.load_parity import verify_loaded
    from etl_pipeline.synthetic import mutate
    from etl_pipeline.tables_yml import tables_config

    settings, _ = synthetic_source(args.scale)
    reset_target(settings)
    t0 = time.perf_counter()
    full = run(settings, max_workers=args.workers, run_id="bench-verify-full")
    print(
        f"scale {args.scale}: full load {time.perf_counter() - t0:.1f} s ({sum(r.rows_read for r in full):,} rows)"
    )
    night = []
    load_s = 0.0
    for day in (1, 2):
        changes = mutate(
            settings.source_admin, days=1, seed=args.seed + day - 1, quiet=True, out=io.StringIO()
        )
        time.sleep(1.1)
        t0 = time.perf_counter()
        night = run(settings, max_workers=args.workers, run_id=f"bench-verify-{day}")
        load_s = time.perf_counter() - t0
    changed = sum(c["inserted"] + c["updated"] + c["deleted"] for c in changes.values())
    failed = [r.table for r in night if r.status != "success"]
    loaded = [r.table for r in night if r.status == "success"]
    print(
        f"night: incremental load {load_s:.2f} s ({len(loaded)} tables, {changed:,} rows changed at the source, "
        f"{sum(r.rows_read for r in night):,} read, {args.workers} workers)"
    )

    t0 = time.perf_counter()
    judged = verify_tables(settings, loaded)
    verify_s = time.perf_counter() - t0
    bad = sorted(name for name, r in judged.items() if not r["ok"])
    checked = sum(r.get("content_checked_rows", 0) for r in judged.values())
    print(
        f"verify (judged key parity + content check, every loaded table, one process): {verify_s:.2f} s; "
        f"{checked:,} rows' content compared, {sum(r.get('in_flight', 0) for r in judged.values())} in flight, "
        + (f"MISMATCH: {bad}" if bad else "no mismatch")
    )

    deep_s: dict[str, float] = {}
    t0 = time.perf_counter()
    for name in loaded:
        result = verify_loaded(settings, tables_config(settings).tables[name], deep=True)
        deep_s[name] = result.seconds
        if not result.ok:
            bad.append(name)
    print(f"deep check of every table once: {time.perf_counter() - t0:.1f} s")

    config = tables_config(settings)
    weights = {t.name: t.estimated_rows for t in config.enabled_tables()}
    tonight = rotation.day_number()
    per_night = []
    for offset in range(rotation.PERIOD):
        due = [n for n in rotation.deep_tonight(weights, tonight + offset) if n in deep_s]
        extra = sum(deep_s[n] - float(judged[n]["seconds"]) for n in due)
        per_night.append((verify_s + max(extra, 0.0), due))
    total_s, due = per_night[0]
    print(f"tonight's deep tables: {', '.join(due) or 'none'}")
    print(
        f"tonight's verify: {total_s:.2f} s = key parity + content {verify_s:.2f} s "
        f"+ deep share {total_s - verify_s:.2f} s"
    )
    _share("tonight", load_s, total_s)
    heaviest, heaviest_due = max(per_night, key=lambda night: night[0])
    _share(f"heaviest rotation night ({len(heaviest_due)} deep tables)", load_s, heaviest)
    return 1 if failed or bad else 0


def _share(label: str, load_s: float, verify_s: float) -> None:
    share = verify_s / (load_s + verify_s)
    print(
        f"{label}: verify {verify_s:.2f} s / (load {load_s:.2f} s + verify) = {100 * share:.1f}% of the night "
        f"(goal < {100 * GOAL:.0f}%: {share / GOAL:.2f}x the goal); verify / load = {verify_s / load_s:.2f}"
    )


if __name__ == "__main__":
    sys.exit(main())
