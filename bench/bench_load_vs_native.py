"""Full load of a 2M-row procedurelog-shaped table: our loader vs the native pipe vs pgloader.

    .venv/bin/python bench/bench_load_vs_native.py [--rows 2000000] [--repeat 3] [--keep]
        [--driver mysqlclient|pymysql|both] [--scratch-id 3]

Starts a scratch MariaDB + PostgreSQL (.local/scratch-<id>, ports 24306/26432 + 10 * id), creates
`procedurelog` with the synthetic generator's DDL (all 67 real columns), fills it with INSERT ... SELECT over
seq_1_to_N (text notes with tabs/newlines/backslashes included), then loads the same table three
ways, in this one script so that the shared machine's load hits all three alike:
  ours    python -m etl_pipeline.cli run --tables procedurelog --full-refresh (subprocess; includes
          building the primary key and the atomic swap)
  native  mariadb --batch --quick ... | psql -c "\\copy ..." into the same column definitions (no key)
  pgloader the Debian pgloader copying the table (creates its own table and indexes)
Ours and the native pipe run --repeat rounds, alternating (a single pair varies with the machine's
state); their medians are compared. Prints rows/s for each, our ratio to each, the per-round ratios,
and our peak RSS. `--driver` picks the source driver ours reads with (SOURCE_DRIVER); `both` runs ours
once with each per round and adds PyMySQL's ratio to mysqlclient.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from etl_pipeline.db import AVAILABLE_DRIVERS, connect_source, connect_target
from etl_pipeline.load.source import live_columns
from etl_pipeline.local.stack import scratch_stack
from etl_pipeline.schema.tables_config import ColumnConfig, TableConfig, table_to_dict
from etl_pipeline.settings import MySQLSettings, PostgresSettings
from etl_pipeline.synthetic import ddl
from etl_pipeline.type_mapping import map_column_type, parse_column_type, quote_ident

SCRATCH_ID = 3


def fill_expression(name: str, column_type: str, i: int) -> str:
    base, args, _ = parse_column_type(column_type)
    if name == "ProcNum":
        return "seq"
    if base in ("bigint", "int"):
        return f"(seq * {7 + i}) % {1000 + 97 * i}"
    if base in ("tinyint", "smallint"):
        return f"(seq + {i}) % 7"
    if base in ("double", "float"):
        return "ROUND((seq % 100000) / 7.0, 2)"
    if base == "date":
        return f"'2018-01-01' + INTERVAL ((seq * {i}) % 3000) DAY"
    if base == "datetime":
        return "'2018-01-01 08:00:00' + INTERVAL (seq % 250000000) SECOND"
    if base == "timestamp":
        return "'2019-01-01 00:00:00' + INTERVAL (seq % 200000000) SECOND"
    if base == "time":
        return "SEC_TO_TIME((seq * 37) % 86400)"
    width = int(args[0]) if args and args[0] else 255
    if width >= 80:  # notes: realistic free text, some with tabs, newlines and backslashes
        return (
            f"LEFT(IF(seq % 5 = 0, '', CONCAT('Pt tolerated procedure well; ', seq % 977, "
            f"IF(seq % 13 = 0, '\\tfollow-up\\nsee chart C:\\\\notes', ' no complications'))), {width})"
        )
    return f"LEFT(CONCAT(CHAR(65 + seq % 26), seq % 1000), {width})"


def build_source(admin: MySQLSettings, rows: int) -> None:
    conn = connect_source(admin)
    cur = conn.cursor()
    cur.execute("DROP TABLE IF EXISTS procedurelog")
    cur.execute(ddl.create_table_sql("procedurelog"))
    cur.execute(
        "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
        "AND TABLE_NAME = 'procedurelog' ORDER BY ORDINAL_POSITION"
    )
    cols = cur.fetchall()
    exprs = ", ".join(fill_expression(n, t, i) for i, (n, t) in enumerate(cols))
    cur.execute(f"INSERT INTO procedurelog SELECT {exprs} FROM seq_1_to_{rows}")
    conn.commit()
    conn.close()


def table_config(admin: MySQLSettings) -> TableConfig:
    conn = connect_source(admin)
    cols = live_columns(conn, "procedurelog")
    conn.close()
    return TableConfig(
        name="procedurelog",
        target_name="procedurelog",
        tier="large",
        strategy="incremental",
        columns=tuple(
            ColumnConfig(c.name, c.source_type, map_column_type(c.source_type).pg_type) for c in cols
        ),
        primary_key=("ProcNum",),
        cursor="DateTStamp",
        detect_deletes=True,
    )


def run_ours(env: dict, config_dir: Path, driver: str) -> float:
    """Seconds of our full load (a CLI subprocess) reading the source with `driver`."""
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "etl_pipeline.cli", "run", "--tables", "procedurelog", "--full-refresh"],
        cwd=ROOT,
        env={**os.environ, **env, "ETL_CONFIG_DIR": str(config_dir), "SOURCE_DRIVER": driver},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def run_native(source: MySQLSettings, target: PostgresSettings, table: TableConfig) -> float:
    conn = connect_target(target)
    with conn.cursor() as cur:
        cur.execute("DROP SCHEMA IF EXISTS native CASCADE; CREATE SCHEMA native")
        cols = ", ".join(f"{quote_ident(c.target_name)} {c.target_type}" for c in table.columns)
        cur.execute(f"CREATE TABLE native.procedurelog ({cols})")
    conn.commit()
    conn.close()
    env = {**os.environ, "MYSQL_PWD": source.password, "PGPASSWORD": target.password}
    pipe = (
        f"mariadb --batch --quick --skip-column-names -h {source.host} -P {source.port} -u {source.user} "
        f"{source.database} -e 'SELECT * FROM procedurelog' | "
        f"psql -q -h {target.host} -p {target.port} -U {target.user} -d {target.database} "
        f"-c \"\\copy native.procedurelog FROM STDIN WITH (NULL 'NULL')\""
    )
    t0 = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", pipe], env=env, check=True)
    return time.perf_counter() - t0


def run_pgloader(source: MySQLSettings, target: PostgresSettings) -> float | None:
    script = f"""LOAD DATABASE
  FROM mysql://{source.user}:{source.password}@{source.host}:{source.port}/{source.database}
  INTO postgresql://{target.user}:{target.password}@{target.host}:{target.port}/{target.database}
  WITH include drop, create tables, create indexes, reset sequences, workers = 2, concurrency = 1,
       prefetch rows = 10000, batch rows = 10000
  INCLUDING ONLY TABLE NAMES MATCHING 'procedurelog'
  ALTER SCHEMA '{source.database}' RENAME TO 'pgl';
"""
    with tempfile.NamedTemporaryFile("w", suffix=".load", delete=False) as f:
        f.write(script)
    try:
        t0 = time.perf_counter()
        done = subprocess.run(["pgloader", f.name], capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - t0
    finally:
        os.unlink(f.name)
    if done.returncode != 0:
        lines = (done.stdout + done.stderr).strip().splitlines()
        print(
            "pgloader failed:",
            *[line for line in lines if "ERROR" in line or "FATAL" in line][:3],
            *lines[-3:],
            sep="\n  ",
            file=sys.stderr,
        )
        return None
    return seconds


def reset_target(target: PostgresSettings) -> None:
    conn = connect_target(target)
    with conn.cursor() as cur:
        cur.execute("DROP SCHEMA IF EXISTS raw CASCADE; DROP SCHEMA IF EXISTS etl CASCADE")
    conn.commit()
    conn.close()


def report(
    n: int, ours_runs: dict[str, list[float]], native_runs: list[float], pgl: float | None, peak_kb: int
) -> None:
    native = statistics.median(native_runs)
    print(f"medians of {len(native_runs)} rounds:")
    for driver, runs in ours_runs.items():
        ours = statistics.median(runs)
        per_round = ", ".join(f"{b / a:.2f}" for a, b in zip(runs, native_runs, strict=True))
        print(
            f"{f'ours ({driver})':<18} {ours:7.1f} s  {n / ours:10,.0f} rows/s  "
            f"ratio ours/native {native / ours:.2f} (per round {per_round})"
        )
        if pgl:
            print(f"{'':18}ratio ours/pgloader {pgl / ours:.2f}")
    print(f"native             {native:7.1f} s  {n / native:10,.0f} rows/s")
    if pgl:
        print(f"pgloader           {pgl:7.1f} s  {n / pgl:10,.0f} rows/s")
    if len(ours_runs) == 2:
        mysqlclient_s, pymysql_s = (statistics.median(ours_runs[d]) for d in ("mysqlclient", "pymysql"))
        print(
            f"ours with pymysql loads at {mysqlclient_s / pymysql_s:.2f}x the speed of ours with mysqlclient"
        )
    print(f"peak RSS of our load {peak_kb / 1024:.0f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--keep", action="store_true", help="leave the scratch servers running")
    parser.add_argument("--skip-pgloader", action="store_true")
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of ours + native (medians are compared)"
    )
    parser.add_argument(
        "--scratch-id", type=int, default=SCRATCH_ID, help=f"scratch stack id (default {SCRATCH_ID})"
    )
    parser.add_argument(
        "--driver",
        choices=(*AVAILABLE_DRIVERS, "both"),
        default="mysqlclient",
        help="source driver of our load (default mysqlclient); both: each, side by side",
    )
    args = parser.parse_args()
    drivers = [d for d in AVAILABLE_DRIVERS if args.driver in (d, "both")]

    stack = scratch_stack(args.scratch_id)
    env = stack.up()
    try:
        source = MySQLSettings(
            "127.0.0.1", int(env["SOURCE_PORT"]), "opendental", env["SOURCE_USER"], env["SOURCE_PASSWORD"]
        )
        admin = MySQLSettings(
            "127.0.0.1",
            int(env["SOURCE_PORT"]),
            "opendental",
            env["SOURCE_ADMIN_USER"],
            env["SOURCE_ADMIN_PASSWORD"],
        )
        target = PostgresSettings(
            "127.0.0.1",
            int(env["TARGET_PORT"]),
            env.get("TARGET_DATABASE", "analytics"),
            env.get("TARGET_USER", "etl"),
            env["TARGET_PASSWORD"],
        )
        print(f"building procedurelog with {args.rows:,} rows ...", flush=True)
        build_source(admin, args.rows)
        table = table_config(admin)
        config_dir = Path(tempfile.mkdtemp(prefix="bench-load-"))
        (config_dir / "tables.yml").write_text(
            yaml.safe_dump({"tables": {"procedurelog": table_to_dict(table)}})
        )

        ours_runs: dict[str, list[float]] = {d: [] for d in drivers}
        native_runs: list[float] = []
        for round_no in range(1, args.repeat + 1):  # alternating, so that drift on the machine hits all
            for driver in drivers:
                reset_target(target)  # a first load: no old table to carry history over from
                ours_runs[driver].append(run_ours(env, config_dir, driver))
            native_runs.append(run_native(source, target, table))
            ours_text = ", ".join(f"ours ({d}) {runs[-1]:.1f} s" for d, runs in ours_runs.items())
            print(f"round {round_no}: {ours_text}, native {native_runs[-1]:.1f} s", flush=True)
        # the largest child so far: ours is the one Python process; the native pipe's clients are small
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        pgl = None if args.skip_pgloader else run_pgloader(admin, target)
        report(args.rows, ours_runs, native_runs, pgl, peak_kb)
    finally:
        if not args.keep:
            stack.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
