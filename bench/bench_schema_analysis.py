"""Benchmark: analyze-schema on a source with ~450 tables.

The source is the 36 synthetic OpenDental tables at a tiny scale plus 414 extra small tables (mixed
types, keys, ON UPDATE stamps, a few rows each), in a scratch stack of its own
(.local/scratch-<id>, ports 24306+10*id / 26432+10*id), destroyed at the end unless --keep.
It times the whole `analyze_schema` job (introspection with the read-only user, classification,
overrides, change report, validation, atomic write) and prints the seconds and the ratio to the
published comparison: about 7 minutes (420 s) for 446 tables with a round trip per table.

    .venv/bin/python bench/bench_schema_analysis.py [--scratch-id 2] [--extra 414] [--runs 3] [--keep]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from etl_pipeline.db import connect_source
from etl_pipeline.local.stack import scratch_stack
from etl_pipeline.schema.workflow import analyze_schema
from etl_pipeline.settings import load_settings
from etl_pipeline.type_mapping import quote_mysql_ident

COMPARISON_SECONDS = 420.0  # published: ~7 minutes for 446 tables
COMPARISON_TABLES = 446
TARGET_SECONDS = 30.0
TYPES = [
    "bigint(20) NOT NULL",
    "int(11) NOT NULL DEFAULT 0",
    "tinyint(4) NOT NULL",
    "tinyint(3) unsigned NOT NULL",
    "smallint(5) unsigned NOT NULL",
    "double NOT NULL DEFAULT 0",
    "decimal(12,2)",
    "varchar(255) DEFAULT ''",
    "varchar(100)",
    "char(1) DEFAULT ''",
    "text",
    "mediumtext",
    "date NOT NULL DEFAULT '0001-01-01'",
    "datetime NOT NULL DEFAULT '0001-01-01 00:00:00'",
    "time",
    "float",
    "longblob",
    "json",
]
STAMP = "timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp()"


def extra_table_ddl(index: int, rng: random.Random) -> tuple[str, str]:
    name = f"addon_{index:03d}"
    pk = f"{name.title().replace('_', '')}Num"
    columns = [f"{quote_mysql_ident(pk)} bigint(20) NOT NULL AUTO_INCREMENT"]
    columns += [f"`Col{j}` {rng.choice(TYPES)}" for j in range(rng.randint(4, 30))]
    if rng.random() < 0.6:
        columns.append(f"`{rng.choice(['DateTStamp', 'SecDateTEdit'])}` {STAMP}")
    keys = [f"PRIMARY KEY ({quote_mysql_ident(pk)})"] + [
        f"KEY `k{j}` (`Col{j}`)"
        for j in range(min(2, len(columns) - 1))
        if "text" not in columns[j + 1] and "blob" not in columns[j + 1] and "json" not in columns[j + 1]
    ]
    engine = rng.choice(["MyISAM", "MyISAM", "InnoDB"])
    ddl = f"CREATE TABLE {quote_mysql_ident(name)} ({', '.join(columns + keys)}) ENGINE={engine}"
    rows = f"INSERT INTO {quote_mysql_ident(name)} () VALUES " + ", ".join(["()"] * rng.randint(0, 20))
    return ddl, rows


def build_source(settings, extra: int, scale: float, seed: int, synthetic: bool = True) -> int:
    if synthetic:
        try:
            from etl_pipeline.synthetic import generate
        except ImportError:
            sys.exit(
                "etl_pipeline.synthetic.generate is not available; rerun with --no-synthetic --extra 450"
            )
        generate(settings.source_admin, scale, seed)
    rng = random.Random(seed)
    conn = connect_source(settings.source_admin)
    cur = conn.cursor()
    for i in range(extra):
        ddl, rows = extra_table_ddl(i, rng)
        cur.execute(f"DROP TABLE IF EXISTS {quote_mysql_ident(f'addon_{i:03d}')}")
        cur.execute(ddl)
        if not rows.endswith("VALUES "):
            cur.execute(rows)
    conn.commit()
    cur.execute(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (settings.source.database,)
    )
    (tables,) = cur.fetchone()
    conn.close()
    return int(tables)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scratch-id", type=int, default=2)
    parser.add_argument("--extra", type=int, default=414, help="extra small tables beside the synthetic 36")
    parser.add_argument("--scale", type=float, default=0.01, help="synthetic scale (tiny)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="leave the scratch stack running")
    parser.add_argument("--no-synthetic", action="store_true", help="only the extra tables (no generator)")
    args = parser.parse_args()

    stack = scratch_stack(args.scratch_id)
    os.environ.update(stack.up())
    os.environ["ETL_ENV_FILE"] = str(stack.env_file)
    try:
        with tempfile.TemporaryDirectory() as config_dir:
            settings = replace(load_settings(), config_dir=Path(config_dir))
            print(
                f"building the source: synthetic scale {args.scale} + {args.extra} extra tables ...",
                flush=True,
            )
            tables = build_source(
                settings, args.extra, args.scale, args.seed, synthetic=not args.no_synthetic
            )
            timings = []
            for _ in range(args.runs):
                started = time.perf_counter()
                summary = analyze_schema(settings, force=True)
                timings.append(time.perf_counter() - started)
            best, worst = min(timings), max(timings)
            print(f"tables analysed: {summary['new_table_count']} (source has {tables})")
            print(
                f"analyze-schema: best {best:.2f} s, worst {worst:.2f} s over {args.runs} runs "
                f"(target < {TARGET_SECONDS:.0f} s)"
            )
            per_table_ours = best / max(summary["new_table_count"], 1)
            per_table_ref = COMPARISON_SECONDS / COMPARISON_TABLES
            print(
                f"ratio to the published comparison ({COMPARISON_SECONDS:.0f} s for {COMPARISON_TABLES} tables): "
                f"{COMPARISON_SECONDS / best:.0f}x faster overall, {per_table_ref / per_table_ours:.0f}x per table"
            )
            return 0 if best < TARGET_SECONDS else 1
    finally:
        if not args.keep:
            stack.destroy()


if __name__ == "__main__":
    sys.exit(main())
