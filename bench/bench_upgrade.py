"""New columns on the largest table after an upgrade: filled by a targeted read vs a full refresh.

    .venv/bin/python bench/bench_upgrade.py [--scale 1.0] [--repeat 2] [--scratch-id 6] [--keep]

Scratch servers (.local/scratch-<id>), the synthetic source at --scale analysed into tables.yml,
procedurelog (the largest table) loaded into raw, with a dbt-like staging view on it. Each round
puts the source's procedurelog back to its shape before the upgrade, refreshes raw from it, then
runs `ALTER TABLE procedurelog ADD COLUMN C8 int NOT NULL DEFAULT 8, ADD COLUMN ExternalNote
varchar(255) NULL` (every existing row gets 8 and NULL, no cursor moves) and times the one load
that must bring raw level with the source, three ways, in this one script so the shared machine
weighs on all alike:

  targeted   the nightly's load (reason columns_added): the window, then the key and the new columns
             of the rows whose new values are not the source's defaults, merged by one UPDATE ... FROM;
             the rows holding the defaults get them from a catalog default (no rewrite)
  every-row  the same targeted read with no default taken (each column's default seen as NULL): every
             row whose new values are not NULL is read and updated (here: all of them)
  refresh    `load_table(..., full_refresh=True)`: every column of every row into a new table, key,
             swap (the staging view recreated on it)

Rounds alternate the three; medians are compared. After each timed load a deep parity check
(source vs raw, every column, not timed) must be clean. Prints seconds per way and round, the
medians and the ratios of each way to `targeted`.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time

from bench_load_common import point_settings_at, synthetic_source

from etl_pipeline.local.stack import scratch_stack

TABLE = "procedurelog"
UPGRADE = (
    f"ALTER TABLE {TABLE} ADD COLUMN C8 int(11) NOT NULL DEFAULT 8, ADD COLUMN ExternalNote varchar(255) NULL"
)
DOWNGRADE = f"ALTER TABLE {TABLE} DROP COLUMN C8, DROP COLUMN ExternalNote"
VIEW = (
    "CREATE SCHEMA IF NOT EXISTS stg_bench; "
    "CREATE OR REPLACE VIEW stg_bench.stg_procedurelog AS "
    f"SELECT * FROM raw.{TABLE} WHERE _deleted_at IS NULL"
)
WAYS = ("targeted", "every-row", "refresh")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=2, help="rounds of each way (default 2)")
    parser.add_argument("--scratch-id", type=int, default=6, help="scratch stack id (default 6)")
    parser.add_argument("--keep", action="store_true", help="leave the scratch servers running")
    args = parser.parse_args()
    stack = scratch_stack(args.scratch_id)
    point_settings_at(stack.up())
    try:
        from etl_pipeline.load import select_tables

        settings, gen_s = synthetic_source(args.scale)
        (table,) = select_tables(settings, [TABLE])
        rows = source_scalar(settings, f"SELECT COUNT(*) FROM {TABLE}")
        print(f"scale {args.scale}: source generated in {gen_s:.0f} s; {TABLE} {rows:,} rows")
        seconds: dict[str, list[float]] = {way: [] for way in WAYS}
        for round_no in range(1, args.repeat + 1):
            for way in WAYS:
                before_upgrade(settings, table)
                took, result = timed_load(settings, table, way, f"{way}-{round_no}")
                seconds[way].append(took)
                check_parity(settings, table, way)
                assert result.reason in ("columns_added", "forced"), result.reason
                print(
                    f"round {round_no} {way:<10} {took:6.1f} s  (reason {result.reason}, read {result.rows_read:,}, "
                    f"inserted {result.inserted:,}, updated {result.updated:,})",
                    flush=True,
                )
        report(seconds)
        return 0
    finally:
        if not args.keep:
            stack.destroy()


def before_upgrade(settings, table) -> None:
    """The source without the new columns, raw refreshed from it, the staging view on raw."""
    from etl_pipeline.load import load_table

    if "C8" in source_columns(settings):
        source_exec(settings, DOWNGRADE)
        # raw keeps columns the source lost: drop them, so that the refresh below leaves raw as it was
        target_exec(
            settings,
            f"ALTER TABLE raw.{TABLE} DROP COLUMN IF EXISTS c8 CASCADE, DROP COLUMN IF EXISTS externalnote CASCADE",
        )
    load_table(settings, table, "bench-before", full_refresh=True)
    target_exec(settings, VIEW, f"VACUUM ANALYZE raw.{TABLE}")
    time.sleep(1.1)  # the load's window ends a second before the source clock
    source_exec(settings, UPGRADE)
    time.sleep(1.1)


def timed_load(settings, table, way: str, run_id: str):
    from etl_pipeline.load import backfill, load_table

    literal = backfill._LITERAL
    if way == "every-row":  # a measurement hook: no column default is taken as known
        backfill._LITERAL = re.compile(r"(?!)")
    try:
        t0 = time.perf_counter()
        result = load_table(settings, table, run_id, full_refresh=way == "refresh")
        return time.perf_counter() - t0, result
    finally:
        backfill._LITERAL = literal


def check_parity(settings, table, way: str) -> None:
    from etl_pipeline.load import verify_table

    parity = verify_table(settings, table, deep=True)
    if not parity.ok:
        raise SystemExit(f"bench_upgrade: raw differs from the source after the {way} load: {parity}")


def report(seconds: dict[str, list[float]]) -> None:
    medians = {way: statistics.median(values) for way, values in seconds.items()}
    print("\nmedian seconds of the load after the upgrade (lower is better):")
    for way in WAYS:
        ratio = medians[way] / medians["targeted"]
        rounds = ", ".join(f"{s:.1f}" for s in seconds[way])
        print(f"  {way:<10} {medians[way]:6.1f} s  ({ratio:4.1f}x targeted; rounds {rounds})")
    faster = min(medians, key=medians.__getitem__)
    print(f"fastest: {faster}")


def source_columns(settings) -> set[str]:
    from etl_pipeline.db import connect_source

    conn = connect_source(settings.source_admin)
    cur = conn.cursor()
    cur.execute(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
        (TABLE,),
    )
    names = {row[0] for row in cur.fetchall()}
    conn.close()
    return names


def source_scalar(settings, sql: str) -> int:
    from etl_pipeline.db import connect_source

    conn = connect_source(settings.source_admin)
    cur = conn.cursor()
    cur.execute(sql)
    (value,) = cur.fetchone()
    conn.close()
    return int(value)


def source_exec(settings, sql: str) -> None:
    from etl_pipeline.db import connect_source

    conn = connect_source(settings.source_admin)
    conn.cursor().execute(sql)
    conn.commit()
    conn.close()


def target_exec(settings, *statements: str) -> None:
    from etl_pipeline.db import connect_target

    conn = connect_target(settings.target, autocommit=True)
    with conn.cursor() as cur:
        for sql in statements:
            cur.execute(sql)
    conn.close()


if __name__ == "__main__":
    sys.exit(main())
