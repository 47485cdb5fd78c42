"""`make demo`: the whole nightly job on a throwaway local stack, with progress and a summary.

    python -m etl_pipeline.demo [--scale 0.05] [--seed 42]

1. the local MariaDB + PostgreSQL (`cli local up`), 2. the synthetic OpenDental source and a fresh
local warehouse, 3. `analyze-schema` (tables.yml), 4. `airflow dags test etl_pipeline` (the first, full run),
5. one simulated day of clinic work (`synth mutate --days 1`), 6. the second, incremental run,
7. an OpenDental upgrade (`synth upgrade`) and a third night while the clinic keeps writing (`synth live`
in the background, some tables InnoDB so commits arrive out of order), 8. the writer stopped, a fourth
night and `verify --deep` (raw equal to the source on every table), 9. a summary: rows per tier, the run
reports (rows in flight), where the dbt docs are.

Every step stops the demo with a one-line reason when it fails (exit 2).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from etl_pipeline.errors import EtlError
from etl_pipeline.settings import PROJECT_ROOT

WRITER_MAX_SECONDS = 1800.0  # at the demo's rate, within synth live's statement limit


def step(title: str):
    print(f"\n==> {title}", flush=True)
    return time.monotonic()


def cli(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "etl_pipeline.cli", *args], cwd=PROJECT_ROOT, check=False)
    if proc.returncode != 0:
        raise EtlError(f"`python -m etl_pipeline.cli {' '.join(args)}` failed (exit {proc.returncode})")


def fresh_warehouse() -> None:
    """Drop the local warehouse's `raw` and `etl` schemas: the synthetic source was just built anew, so
    what an earlier demo loaded is another database's data (the first run would otherwise carry it all
    over as deleted history). Only on the local stack (ETL_ENVIRONMENT=local)."""
    from etl_pipeline.db import connect_target
    from etl_pipeline.settings import RAW_SCHEMA, STATE_SCHEMA, load_settings
    from etl_pipeline.type_mapping import quote_ident

    settings = load_settings()
    if settings.environment != "local":
        raise EtlError(
            f"the demo only runs on the local stack, not on ETL_ENVIRONMENT={settings.environment}"
        )
    conn = connect_target(settings.target)
    try:
        with conn.cursor() as cur:
            for schema in (RAW_SCHEMA, STATE_SCHEMA):  # CASCADE: dbt's views on raw; the run rebuilds them
                cur.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
        conn.commit()
    finally:
        conn.close()


def nightly_run(env: dict, label: str, conf: dict | None = None) -> float:
    from etl_pipeline.airflow_local import dags_test

    t0 = step(f"{label}: airflow dags test etl_pipeline (log: {env['AIRFLOW_HOME']}/demo-{label}.log)")
    proc = dags_test("etl_pipeline", env, conf=conf)
    output = proc.stdout + proc.stderr
    log_path = f"{env['AIRFLOW_HOME']}/demo-{label}.log"
    with open(log_path, "w") as fh:
        fh.write(output)
    notes = [line for line in output.splitlines() if '"event": "etl_notification"' in line]
    if notes:
        print("    notification:", notes[-1][notes[-1].find("{") :][:400])
    if proc.returncode != 0:
        raise EtlError(f"{label} run failed; see {log_path} (the notification above names the failed step)")
    seconds = time.monotonic() - t0
    print(f"    {label} run succeeded in {seconds:.0f} s")
    return seconds


@contextmanager
def clinic_writing(seed: int, rate: float = 20.0) -> Iterator[None]:
    """`synth live` in a thread for as long as the block runs (the front desk working late)."""
    from etl_pipeline.settings import load_settings
    from etl_pipeline.synthetic.build import admin_settings
    from etl_pipeline.synthetic.live import convert_to_innodb, writing_in_background

    admin = admin_settings(load_settings())
    convert_to_innodb(admin, ["paysplit", "payment", "securitylog"])
    step(
        f"the clinic keeps writing during the night (synth live --rate {rate:g}, InnoDB paysplit/securitylog)"
    )
    with writing_in_background(admin, rate, seed, max_seconds=WRITER_MAX_SECONDS) as writing:
        yield
    done = writing.report
    assert done is not None
    print(
        f"    the writer made {done.operations} writes in {done.transactions} transactions over "
        f"{done.elapsed_seconds:.0f} s ({done.held_transactions} held open: keys committed out of order)"
    )


def summary(runs: dict[str, float]) -> None:
    from etl_pipeline.db import connect_target
    from etl_pipeline.dbt_steps import docs_dir
    from etl_pipeline.schema.tables_config import TIERS
    from etl_pipeline.settings import load_settings
    from etl_pipeline.tables_yml import tables_config

    settings = load_settings()
    config = tables_config(settings)
    conn = connect_target(settings.target)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT run_id, status, totals, tables FROM etl.nightly_runs ORDER BY finished_at DESC LIMIT %s",
                (len(runs),),
            )
            reports = cur.fetchall()
            cur.execute("SELECT relname, n_live_tup FROM pg_stat_user_tables WHERE schemaname = 'raw'")
            raw_rows = dict(cur.fetchall())
    finally:
        conn.close()
    step("summary")
    per_tier: dict[str, list[int]] = {}
    for table in config.enabled_tables():
        per_tier.setdefault(table.tier, [0, 0])
        per_tier[table.tier][0] += 1
        per_tier[table.tier][1] += int(raw_rows.get(table.target_name, 0))
    for tier in TIERS:
        count, rows = per_tier.get(tier, [0, 0])
        print(f"    {tier:<7} {count:>3} tables {rows:>12,} raw rows")
    for run_id, status, totals, tables in reversed(reports):
        strategies: dict[str, int] = {}
        for t in tables:
            strategies[t["strategy"] or "-"] = strategies.get(t["strategy"] or "-", 0) + 1
        print(
            f"    run {run_id}: {status}, {totals['succeeded']}/{totals['tables']} tables, "
            f"{totals['rows_read']:,} rows read, load {totals['seconds']:.1f} s, "
            f"rows in flight {totals.get('in_flight', 0):,}, strategies {json.dumps(strategies)}"
        )
    for label, seconds in runs.items():
        print(f"    {label} run wall time: {seconds:.0f} s")
    print(f"    dbt docs: {docs_dir() / 'index.html'} (and under Browse > dbt Docs in `make airflow`)")
    print("    Airflow UI with these runs: `make airflow`, then http://localhost:8080")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m etl_pipeline.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        step("local MariaDB + PostgreSQL")
        cli("local", "up")
        step(f"synthetic OpenDental source (scale {args.scale}, seed {args.seed})")
        cli("synth", "--scale", str(args.scale), "--seed", str(args.seed))
        step("a fresh local warehouse (raw and etl schemas of an earlier demo dropped)")
        fresh_warehouse()
        step("analyze-schema -> tables.yml")
        cli("analyze-schema")
        from etl_pipeline.airflow_local import airflow_env, prepare

        step("local Airflow (metadata DB, pools)")
        env = airflow_env()
        prepare(env)
        runs = {"full": nightly_run(env, "full", {"force_full_refresh": True})}
        step("one day of clinic activity at the source")
        cli("synth", "mutate", "--days", "1")
        runs["incremental"] = nightly_run(env, "incremental")
        step(
            "an OpenDental upgrade at the source (synth upgrade: columns added, widened, renamed, two new tables)"
        )
        cli("synth", "upgrade", "--seed", str(args.seed))
        with clinic_writing(args.seed):
            runs["upgrade, clinic writing"] = nightly_run(env, "upgrade")
        runs["catch-up"] = nightly_run(env, "catch-up")
        step("verify --deep: every table's rows and values, source against raw")
        cli("verify", "--deep")
        summary(runs)
    except EtlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"\ndemo finished in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
