"""Source lock waits: OpenDental-like writes on procedurelog while the loader reads it, MyISAM vs InnoDB.

    .venv/bin/python bench/bench_source_locks.py [--scale 2.45] [--scratch-id 7] [--reuse] [--keep]
        [--json] [--interval 0.05] [--baseline-seconds 10] [--engines MyISAM,InnoDB]

Starts a scratch MariaDB + PostgreSQL (.local/scratch-<id>, ports 24306/26432 + 10 * id), builds the
synthetic source at --scale (the default 2.45: a procedurelog of 2.0M rows; 1.0 gives 818k) and
tables.yml with analyze-schema; `--reuse` keeps a source and tables.yml already on a kept stack. Then,
for each engine (procedurelog is ALTERed to it first), a write probe (`etl_pipeline.synthetic.write_probe`:
an UPDATE by key and an INSERT, alternating, one every --interval seconds, each timed on a connection of
its own) runs
  baseline          with no load running, for --baseline-seconds
  full              during `etl run --tables procedurelog --full-refresh`
  full (unchunked)  the same with SOURCE_CHUNK_ROWS=0 (one streaming statement per reader), MyISAM only
  incremental       during `etl run --tables procedurelog` after `synth mutate --days 1` (not probed)
A first full refresh, not timed, fills raw when it has no procedurelog yet, so that every timed one
replaces an existing table (with the carry-over of deleted rows). The loads are CLI subprocesses, as the
nightly runs them; the probe stamps its writes on the synthetic data's clock, so the simulated day and
the loader's windows stay as they would be without it.
Prints one table (engine, scenario, load seconds, rows read, probe writes, p50/p99/max wait, writes over
1 s, the slowest UPDATE and INSERT, the histogram), chunking's speed cost (MyISAM full refresh seconds
chunked vs unchunked, and the ratio) and the goal lines; `--json` prints the same numbers
as one JSON document instead (progress goes to stderr either way). procedurelog is left with the last
engine's; the scratch stack is destroyed unless --keep. Exit 0, or 1 when a load failed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from etl_pipeline.db import connect_source, connect_target
from etl_pipeline.local.stack import LocalStack, scratch_stack
from etl_pipeline.settings import MySQLSettings, Settings, load_settings
from etl_pipeline.synthetic.build import admin_settings
from etl_pipeline.synthetic.write_probe import BUCKETS, SLOW_SECONDS, ProbeReport, WriteProbe

SCRATCH_ID = 7
TABLE = "procedurelog"
ENGINES = ("MyISAM", "InnoDB")
DEFAULT_SCALE = 2.45  # procedurelog 2,004,223 rows: the 2M-row table
UNCHUNKED = "full (unchunked)"
GOAL = "goal: no single write waits more than 1 s on MyISAM, none blocked on InnoDB"
PROBE_MAX_SECONDS = 4 * 3600.0  # a bound far above any load here: the load's end stops the probe


@dataclass(frozen=True)
class Load:
    seconds: float
    ok: bool
    rows_read: int | None
    strategy: str | None


@dataclass(frozen=True)
class Round:
    engine: str
    scenario: str
    load: Load | None  # None: the baseline
    report: ProbeReport
    max_update: float
    max_insert: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "scenario": self.scenario,
            "load_seconds": round(self.load.seconds, 2) if self.load else None,
            "load_ok": self.load.ok if self.load else None,
            "rows_read": self.load.rows_read if self.load else None,
            "strategy": self.load.strategy if self.load else None,
            "probe": self.report.to_dict(),
            "max_update_seconds": round(self.max_update, 4),
            "max_insert_seconds": round(self.max_insert, 4),
        }


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ set-up


def point_at(stack: LocalStack, env: dict[str, str]) -> Settings:
    """Make load_settings() here and in the CLI subprocesses read the scratch stack (and only it)."""
    for key in ("SOURCE_URL", "TARGET_URL"):  # a URL in the caller's environment would win over the parts
        os.environ.pop(key, None)
    os.environ.update(env)
    os.environ["ETL_ENV_FILE"] = str(stack.env_file)
    config_dir = stack.root / "bench-config"  # inside the stack: --reuse finds its tables.yml again
    config_dir.mkdir(parents=True, exist_ok=True)
    os.environ["ETL_CONFIG_DIR"] = str(config_dir)
    return load_settings()


def source_rows(admin: MySQLSettings) -> int | None:
    conn = connect_source(admin)
    try:
        cur = conn.cursor()
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
            (TABLE,),
        )
        if not cur.fetchone()[0]:
            return None
        cur.execute(f"SELECT COUNT(*) FROM {TABLE}")
        return int(cur.fetchone()[0])
    finally:
        conn.close()


def prepare_source(settings: Settings, scale: float, reuse: bool) -> tuple[int, bool]:
    """The synthetic source and its tables.yml (kept ones with --reuse); returns procedurelog's rows and
    whether the source was built now."""
    from etl_pipeline.schema.workflow import analyze_schema  # lazy: the classifier and YAML writer
    from etl_pipeline.synthetic import generate

    admin = admin_settings(settings)
    rows = source_rows(admin) if reuse else None
    built = not rows
    if rows:
        say(f"reusing the source: {TABLE} has {rows:,} rows")
    else:
        say(f"building the synthetic source at scale {scale} ...")
        t0 = time.perf_counter()
        generate(admin, scale, seed=42, out=io.StringIO())
        rows = source_rows(admin) or 0
        say(f"  {TABLE} {rows:,} rows, {time.perf_counter() - t0:.0f} s")
    if not (reuse and settings.tables_yml.exists()):
        analyze_schema(settings)
        say(f"tables.yml written by analyze-schema: {settings.tables_yml}")
    return rows or 0, built


def raw_has_table(settings: Settings) -> bool:
    conn = connect_target(settings.target)
    try:
        cur = conn.cursor()
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f"raw.{TABLE}",))
        return bool(cur.fetchone()[0])
    finally:
        conn.close()


def set_engine(admin: MySQLSettings, engine: str) -> None:
    conn = connect_source(admin)
    try:
        cur = conn.cursor()
        cur.execute(
            "SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
            (TABLE,),
        )
        (current,) = cur.fetchone()
        current = current.decode() if isinstance(current, bytes) else current
        if current.lower() == engine.lower():
            return
        t0 = time.perf_counter()
        cur.execute(f"ALTER TABLE {TABLE} ENGINE = {engine}")
        say(f"{TABLE}: ENGINE {current} -> {engine} in {time.perf_counter() - t0:.0f} s")
    finally:
        conn.close()


# ----------------------------------------------------------------- rounds


def run_load(full_refresh: bool, env: dict[str, str] | None = None) -> Load:
    """`etl run --tables procedurelog [--full-refresh] --json` in a subprocess, as the nightly runs it,
    with `env` added to its environment."""
    command = [sys.executable, "-m", "etl_pipeline.cli", "run", "--tables", TABLE, "--json"]
    if full_refresh:
        command.append("--full-refresh")
    t0 = time.perf_counter()
    done = subprocess.run(
        command, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - t0
    try:
        table = json.loads(done.stdout)["tables"][0]
    except (ValueError, KeyError, IndexError):
        table = {}
    if done.returncode != 0:
        say(f"the load failed (exit {done.returncode}):")
        for line in done.stderr.strip().splitlines()[-5:]:  # the CLI's own messages: identifiers and counts
            say(f"  {line}")
    return Load(seconds, done.returncode == 0, table.get("rows_read"), table.get("strategy"))


def probed(admin: MySQLSettings, engine: str, scenario: str, interval: float, during) -> Round:
    """Run `during()` (a load, or a pause) with the probe writing; the probe is stopped however it ends."""
    say(f"{engine} {scenario} ...")
    probe = WriteProbe(admin, TABLE, interval_seconds=interval, max_seconds=PROBE_MAX_SECONDS, clock="table")
    with probe:
        load = during()
    report = probe.report()
    if report.errors:
        say(f"  probe write errors (server code: writes): {report.errors}")
    samples = probe.samples
    worst = {
        kind: max((s.seconds for s in samples if s.kind == kind), default=0.0)
        for kind in ("update", "insert")
    }
    return Round(engine, scenario, load, report, worst["update"], worst["insert"])


def engine_rounds(settings: Settings, engine: str, args: argparse.Namespace, night: int) -> list[Round]:
    from etl_pipeline.synthetic import mutate

    admin = admin_settings(settings)
    set_engine(admin, engine)
    rounds = [probed(admin, engine, "baseline", args.interval, lambda: time.sleep(args.baseline_seconds))]
    if not raw_has_table(settings):  # so that every timed full refresh replaces raw's table (carry-over)
        say("warm-up full refresh (not timed) ...")
        run_load(full_refresh=True)
    rounds.append(probed(admin, engine, "full", args.interval, lambda: run_load(full_refresh=True)))
    if engine.lower() == "myisam":  # chunking's cost: InnoDB reads a snapshot, chunked or not
        unchunked = {"SOURCE_CHUNK_ROWS": "0"}
        rounds.append(probed(admin, engine, UNCHUNKED, args.interval, lambda: run_load(True, unchunked)))
    changes = mutate(admin, days=1, seed=7 + night, quiet=True, out=io.StringIO())[TABLE]
    say(f"synth mutate --days 1: {TABLE} +{changes['inserted']} ~{changes['updated']} -{changes['deleted']}")
    rounds.append(probed(admin, engine, "incremental", args.interval, lambda: run_load(full_refresh=False)))
    return rounds


# ----------------------------------------------------------------- output


def goal(rounds: list[Round]) -> dict[str, dict[str, Any]]:
    """Per engine: the worst wait and the writes over 1 s during the (chunked) loads; met when
    there are none. The unchunked full refresh is the comparison, not judged."""
    verdicts = {}
    for engine in dict.fromkeys(r.engine for r in rounds):
        loads = [r for r in rounds if r.engine == engine and r.load is not None and r.scenario != UNCHUNKED]
        slow = sum(r.report.over_1s + r.report.interrupted for r in loads)
        worst = max((max(r.report.max, r.report.interrupted_seconds) for r in loads), default=0.0)
        verdicts[engine] = {"met": slow == 0, "over_1s": slow, "max_seconds": round(worst, 4)}
    return verdicts


def chunking_cost(rounds: list[Round]) -> dict[str, float] | None:
    """MyISAM full refresh seconds chunked and unchunked and their ratio, when both ran and succeeded."""
    full = {
        r.scenario: r.load.seconds
        for r in rounds
        if r.engine.lower() == "myisam" and r.load is not None and r.load.ok and r.scenario.startswith("full")
    }
    if "full" not in full or UNCHUNKED not in full:
        return None
    return {
        "chunked_seconds": round(full["full"], 2),
        "unchunked_seconds": round(full[UNCHUNKED], 2),
        "ratio": round(full["full"] / full[UNCHUNKED], 3),
    }


def print_table(rows: int, rounds: list[Round]) -> None:
    buckets = "/".join(name for name, _ in BUCKETS)
    print(f"{TABLE}: {rows:,} rows at the start; probe: UPDATE by key + INSERT, alternating")
    header = (
        f"{'engine':<7} {'scenario':<16} {'load s':>7} {'rows read':>10} {'writes':>7} {'p50 ms':>7} "
        f"{'p99 ms':>8} {'max s':>8} {'>1s':>4} {'max upd/ins s':>15}  histogram {buckets}"
    )
    print(header)
    print("-" * len(header))
    for r in rounds:
        p = r.report
        load_s = f"{r.load.seconds:.1f}" + ("" if r.load.ok else "!") if r.load else "-"
        read = f"{r.load.rows_read:,}" if r.load and r.load.rows_read is not None else "-"
        print(
            f"{r.engine:<7} {r.scenario:<16} {load_s:>7} {read:>10} {p.count:>7} {1000 * p.p50:>7.1f} "
            f"{1000 * p.p99:>8.1f} {p.max:>8.3f} {p.over_1s:>4} {f'{r.max_update:.3f}/{r.max_insert:.3f}':>15}  "
            + "/".join(str(n) for n in p.histogram.values())
            + (f"  (+{p.interrupted} killed at stop)" if p.interrupted else "")
        )
    cost = chunking_cost(rounds)
    if cost:
        print(
            f"chunking's cost (MyISAM full refresh): chunked {cost['chunked_seconds']:.1f} s vs unchunked "
            f"{cost['unchunked_seconds']:.1f} s: {cost['ratio']:.2f}x"
        )
    print(GOAL)
    for engine, verdict in goal(rounds).items():
        print(
            f"  {engine}: worst wait during loads {verdict['max_seconds']:.3f} s, "
            f"{verdict['over_1s']} write(s) over {SLOW_SECONDS:.0f} s -> {'met' if verdict['met'] else 'NOT met'}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale",
        type=float,
        default=DEFAULT_SCALE,
        help=f"synthetic source size (default {DEFAULT_SCALE}: procedurelog ~2.0M rows; 1.0: 818k)",
    )
    parser.add_argument(
        "--scratch-id", type=int, default=SCRATCH_ID, help=f"scratch stack id (default {SCRATCH_ID})"
    )
    parser.add_argument("--reuse", action="store_true", help="keep the source and tables.yml of a kept stack")
    parser.add_argument("--keep", action="store_true", help="leave the scratch servers running")
    parser.add_argument("--json", action="store_true", help="print the numbers as one JSON document")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between probe writes")
    parser.add_argument("--baseline-seconds", type=float, default=10.0, help="length of the baseline")
    parser.add_argument(
        "--engines", default=",".join(ENGINES), help=f"engines, in order (default {','.join(ENGINES)})"
    )
    args = parser.parse_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e.lower() not in {x.lower() for x in ENGINES}]
    if unknown:
        parser.error(f"--engines: unknown {', '.join(unknown)} (use {', '.join(ENGINES)})")

    stack = scratch_stack(args.scratch_id)
    env = stack.up()
    try:
        settings = point_at(stack, env)
        rows, built = prepare_source(settings, args.scale, args.reuse)
        rounds: list[Round] = []
        for night, engine in enumerate(engines):
            rounds += engine_rounds(settings, engine, args, night)
        if args.json:
            doc = {
                "table": TABLE,
                "rows": rows,
                "scale": args.scale if built else None,
                "interval_seconds": args.interval,
                "rounds": [r.to_dict() for r in rounds],
                "chunking_cost": chunking_cost(rounds),
                "goal": {"text": GOAL, **goal(rounds)},
            }
            print(json.dumps(doc, indent=2))
        else:
            print_table(rows, rounds)
        return 0 if all(r.load.ok for r in rounds if r.load) else 1
    finally:
        if not args.keep:
            stack.destroy()


if __name__ == "__main__":
    sys.exit(main())
