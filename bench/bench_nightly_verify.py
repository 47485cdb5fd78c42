"""The nightly verify's cost beside the night: key parity, content check and deep share, against the load
and against the whole night (load + verify + dbt build).

    .venv/bin/python bench/bench_nightly_verify.py [--scale 1.0] [--workers 2] [--scratch-id 15] [--keep]

Scratch servers (.local/scratch-<id>), the synthetic source at --scale, a full load of every table,
then two simulated days (`synth mutate --days 1`), each followed by the incremental load of every
table (the first night after a full load also re-reads its lookback window; the second is a usual
night, and the one timed). After the second night's load, the nightly verify of every table it loaded
as `nightly_report.verify_run` runs it (`verify_tables` with tonight's deep check: the key ranges due
tonight of each table with an integer key, the other tables dealt to tonight), on each of the 7
rotation nights in turn (tonight first; --nights, default tonight only) and the keys each of the
7 nights' key ranges hold; then `dbt build` of the project, timed. Prints per night
the verify's parts (summed over tables from each check's `phase_seconds`: key parity, content check
of tonight's window, deep share, the rest: judging, counts, connections), and tonight's and the
heaviest night's share of (a) load + verify and (b) the whole night with the dbt build; goal < 10%
of (b). Tonight's verify runs twice, first streaming every deep range row by row, then with the
bucket row hashes (`quality.row_hashes`, the default): their deep shares side by side. EXPLAIN shows how the source would read each table's window by its cursor (a range on an
index, or a scan: the content check then reads the window's rows by key instead).
"""

from __future__ import annotations

import argparse
import io
import sys
import time

from bench_load_common import point_settings_at, reset_target, synthetic_source

from etl_pipeline.local.stack import scratch_stack

GOAL = 0.10
PHASES = ("keys", "content", "deep")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7, help="seed of the first simulated day")
    parser.add_argument("--scratch-id", type=int, default=15, help="scratch stack .local/scratch-<id>")
    parser.add_argument("--keep", action="store_true", help="leave the scratch servers running")
    parser.add_argument("--nights", type=int, default=1, help="rotation nights verified, tonight first (1-7)")
    args = parser.parse_args()
    stack = scratch_stack(args.scratch_id)
    point_settings_at(stack.up())
    try:
        return _bench(args)
    finally:
        if not args.keep:
            stack.destroy()


def _bench(args: argparse.Namespace) -> int:
    from etl_pipeline.dbt_runner import run_dbt
    from etl_pipeline.load import run
    from etl_pipeline.synthetic import mutate

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
    _explain_windows(settings, loaded)

    _deep_keys_per_night(settings, loaded)
    streamed = _streamed_tonight(settings, loaded)
    nights, bad = _verify_nights(settings, loaded, max(1, min(args.nights, 7)))
    print(
        f"deep share tonight: {nights[0]['deep']:.2f} s with bucket row hashes against {streamed['deep']:.2f} s "
        f"streaming every deep range ({streamed['deep'] / max(nights[0]['deep'], 1e-9):.1f}x); "
        f"verify {nights[0]['total']:.2f} s against {streamed['total']:.2f} s"
    )
    t0 = time.perf_counter()
    run_dbt(["build"], settings=settings)
    dbt_s = time.perf_counter() - t0
    print(f"dbt build: {dbt_s:.1f} s")

    tonight = nights[0]
    heaviest = max(nights, key=lambda n: n["total"])
    for label, n in (("tonight", tonight), (f"heaviest rotation night (+{heaviest['offset']})", heaviest)):
        verify_s = n["total"]
        a = verify_s / (load_s + verify_s)
        b = verify_s / (load_s + verify_s + dbt_s)
        print(
            f"{label}: verify {verify_s:.2f} s = key parity {n['keys']:.2f} + content {n['content']:.2f} "
            f"+ deep share {n['deep']:.2f} + the rest {n['rest']:.2f}; "
            f"(a) of load {load_s:.2f} + verify: {100 * a:.1f}%; verify / load = {verify_s / load_s:.2f}; "
            f"(b) of the whole night (+ dbt build {dbt_s:.1f} s): {100 * b:.1f}% "
            f"(goal < {100 * GOAL:.0f}%: {b / GOAL:.2f}x the goal)"
        )
    return 1 if failed or bad else 0


def _streamed_tonight(settings, loaded: list[str]) -> dict:
    """Tonight's verify with every deep range streamed row by row (no bucket row hashes), run first so
    that it finds no cache the other run warmed."""
    from etl_pipeline.quality import load_parity

    load_parity.HASH_DEEP_RANGES = False
    try:
        print("without bucket row hashes:")
        [night], _ = _verify_nights(settings, loaded, 1)
    finally:
        load_parity.HASH_DEEP_RANGES = True
    print("with bucket row hashes:")
    return night


def _verify_nights(settings, loaded: list[str], count: int) -> tuple[list[dict], list[str]]:
    """Tonight's verify as verify_run runs it, on each rotation night from tonight on."""
    from etl_pipeline.nightly_report import verify_tables
    from etl_pipeline.quality import rotation
    from etl_pipeline.tables_yml import tables_config

    config = tables_config(settings)
    weights = {t.name: t.estimated_rows for t in config.enabled_tables() if not rotation.sliced(t)}
    today = rotation.day_number()
    nights, bad = [], set()
    for offset in range(count):
        day = today + offset
        t0 = time.perf_counter()
        judged = verify_tables(settings, loaded, deep=rotation.deep_tonight(weights, day), day=day)
        total = time.perf_counter() - t0
        bad |= {name for name, r in judged.items() if not r["ok"]}
        parts = {p: sum(r.get("phase_seconds", {}).get(p, 0.0) for r in judged.values()) for p in PHASES}
        night = {"offset": offset, "total": total, **parts, "rest": total - sum(parts.values())}
        nights.append(night)
        checked = sum(r.get("content_checked_rows", 0) for r in judged.values())
        hashed = sum(r.get("deep_hashed_rows", 0) for r in judged.values())
        hash_sides = {
            side: sum(r.get("phase_seconds", {}).get(f"deep_hash_{side}", 0.0) for r in judged.values())
            for side in ("source", "raw")
        }
        dealt = sorted(n for n, r in judged.items() if r.get("deep") and n in weights)
        sliced = sum(1 for n, r in judged.items() if r.get("deep") and n not in weights)
        print(
            f"verify, night +{offset}: {total:.2f} s (keys {parts['keys']:.2f}, content {parts['content']:.2f}, "
            f"deep {parts['deep']:.2f}, rest {night['rest']:.2f}); {checked:,} rows' content compared "
            f"({hashed:,} by bucket row hashes: source side {hash_sides['source']:.2f} s, raw side "
            f"{hash_sides['raw']:.2f} s, at once), "
            f"{sum(r.get('in_flight', 0) for r in judged.values())} in flight; deep: key ranges of {sliced} "
            f"tables, whole: {', '.join(dealt) or 'none'}; "
            + (f"MISMATCH: {sorted(bad)}" if bad else "no mismatch")
        )
    return nights, sorted(bad)


def _deep_keys_per_night(settings, loaded: list[str]) -> None:
    """How many keys the key-range rotation checks on each of the 7 nights (from each table's key span)."""
    from etl_pipeline.db import connect_source
    from etl_pipeline.quality import rotation
    from etl_pipeline.tables_yml import tables_config
    from etl_pipeline.type_mapping import quote_mysql_ident

    tables = tables_config(settings).tables
    today = rotation.day_number()
    per_night = [0] * rotation.PERIOD
    src = connect_source(settings.source)
    try:
        scur = src.cursor()
        for name in loaded:
            if not rotation.sliced(tables[name]):
                continue
            key = quote_mysql_ident(tables[name].primary_key[0])
            scur.execute(f"SELECT MIN({key}), MAX({key}) FROM {quote_mysql_ident(name)}")
            low, high = scur.fetchone()
            if low is None:
                continue
            for offset in range(rotation.PERIOD):
                ranges = rotation.key_ranges(name, today + offset, int(low), int(high))
                per_night[offset] += sum(hi - lo + 1 for lo, hi in ranges)
    finally:
        src.close()
    print(f"deep check by key range, keys per night from tonight: {', '.join(f'{n:,}' for n in per_night)}")


def _explain_windows(settings, loaded: list[str]) -> None:
    """How the source reads tonight's content window of each loaded table with a cursor."""
    from etl_pipeline.db import connect_source, connect_target
    from etl_pipeline.quality.load_parity import load_seen
    from etl_pipeline.tables_yml import tables_config
    from etl_pipeline.type_mapping import quote_mysql_ident

    tables = tables_config(settings).tables
    plans: dict[str, list[str]] = {}
    src, pg = connect_source(settings.source), connect_target(settings.target)
    try:
        scur, cur = src.cursor(), pg.cursor()
        for name in loaded:
            table = tables[name]
            seen = load_seen(cur, name)
            if table.cursor is None or seen is None or seen.skipped or seen.window_lower is None:
                continue
            scur.execute(
                f"EXPLAIN SELECT * FROM {quote_mysql_ident(name)} WHERE {quote_mysql_ident(table.cursor)} >= %s",
                (seen.window_lower,),
            )
            columns = [d[0] for d in scur.description]
            row = dict(zip(columns, scur.fetchone(), strict=True))
            access = f"{row['type']}" + (f" on {row['key']}" if row.get("key") else "")
            plans.setdefault(access, []).append(name)
    finally:
        src.close()
        pg.close()
    for access, names in sorted(plans.items()):
        print(f"window by cursor at the source: {access}: {len(names)} tables ({', '.join(sorted(names))})")


if __name__ == "__main__":
    sys.exit(main())
