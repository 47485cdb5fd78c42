"""Build the synthetic OpenDental source database (all 36 tables) inside MariaDB.

Everything is generated server-side with set-based INSERT ... SELECT over the Sequence engine, into a
scratch database `<db>_synth_build`; at the end one RENAME TABLE moves all 36 tables into `<db>` (the
tables they replace go into the scratch database, which is then dropped). On any failure the scratch
database is dropped and `<db>` is left as it was.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from etl_pipeline.db import SOURCE_ERRORS, connect_source
from etl_pipeline.errors import ConfigError, EtlError
from etl_pipeline.settings import MySQLSettings
from etl_pipeline.synthetic import ddl
from etl_pipeline.synthetic.aging import aging_sql
from etl_pipeline.synthetic.schema_data import TABLES
from etl_pipeline.synthetic.tables_sql import BUILD_ORDER, EXTRA_KEYS, Builder
from etl_pipeline.synthetic.timeline import epoch, generation_now
from etl_pipeline.type_mapping import quote_mysql_ident as q

BYTES_PER_SCALE = 2_500_000_000  # ~1.7 GB of data+index at scale 1.0, plus headroom for the swap
MAX_SCALE = 50.0
METHODS = {"patient": "patient_rows"}


def check_scale(scale) -> float:
    try:
        value = float(scale)
    except (TypeError, ValueError):
        raise ConfigError(f"--scale {scale!r} is not a number (use e.g. 0.01 or 1.0)") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"--scale {scale!r} must be a positive number (1.0 = mid-size clinic)")
    if value > MAX_SCALE:
        raise ConfigError(f"--scale {value} is above the supported maximum {MAX_SCALE}")
    return value


def admin_settings(settings) -> MySQLSettings:
    if settings.source_admin is None:
        raise ConfigError("no admin connection for the source: set SOURCE_ADMIN_USER / SOURCE_ADMIN_PASSWORD")
    return settings.source_admin


def admin_connection(admin_cfg: MySQLSettings | None):
    if admin_cfg is None:
        raise ConfigError("no admin connection for the source: set SOURCE_ADMIN_USER / SOURCE_ADMIN_PASSWORD")
    # connect without a default database: the target database may not exist yet
    conn = connect_source(replace(admin_cfg, database="information_schema"))
    conn.autocommit(True)
    return conn


def check_disk(cur, scale: float) -> None:
    cur.execute("SELECT @@datadir")
    datadir = Path(cur.fetchone()[0])
    if not datadir.exists():  # server on another machine: cannot measure its disk from here
        return
    need = int(BYTES_PER_SCALE * scale)
    free = shutil.disk_usage(datadir).free
    if free < need:
        raise EtlError(
            f"--scale {scale} needs about {need / 1e9:.1f} GB free in the MariaDB datadir "
            f"{datadir}, only {free / 1e9:.1f} GB free"
        )


def modern_collation(cur) -> str:
    cur.execute("SHOW COLLATION LIKE 'utf8mb3_uca1400_ai_ci'")
    return "utf8mb3_uca1400_ai_ci" if cur.fetchone() else "utf8mb3_general_ci"


def create_tables(cur, scale: float) -> None:
    collation = modern_collation(cur)
    for table in ddl.TABLE_NAMES:
        sql = ddl.create_table_sql(table, collation, EXTRA_KEYS.get(table, ()))
        auto = TABLES[table].get("auto_increment")
        if auto:
            sql += f" AUTO_INCREMENT={max(1, round(auto * scale))}"
        cur.execute(sql)


def generate(admin_cfg: MySQLSettings, scale: float, seed: int = 42, *, out=None) -> dict[str, int]:
    """Build (or rebuild) the source database named by `admin_cfg.database`; returns rows per table."""
    scale = check_scale(scale)
    seed = int(seed)
    out = out or sys.stdout
    target = admin_cfg.database
    build = f"{target}_synth_build"
    conn = admin_connection(admin_cfg)
    cur = conn.cursor()
    try:
        check_disk(cur, scale)
        cur.execute(f"DROP DATABASE IF EXISTS {q(build)}")
        cur.execute(f"CREATE DATABASE {q(build)} CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci")
        cur.execute(f"USE {q(build)}")
        cur.execute(f"SET timestamp = {epoch(generation_now(seed))}")
        counts = _build(cur, scale, seed, out)
        _swap_in(cur, target, build)
    except BaseException as exc:
        _drop_quietly(cur, build)
        conn.close()
        if isinstance(exc, SOURCE_ERRORS):
            raise EtlError(
                f"building the synthetic source failed on {admin_cfg.display}: {exc.args[-1]}"
            ) from None
        raise
    conn.close()
    _print_summary(counts, out)
    return counts


def _build(cur, scale: float, seed: int, out) -> dict[str, int]:
    create_tables(cur, scale)
    builder = Builder(seed=seed, scale=scale)
    builder.cur = cur
    counts: dict[str, int] = {}
    started = time.monotonic()
    for table in BUILD_ORDER:
        t0 = time.monotonic()
        for statement in getattr(builder, METHODS.get(table, table))():
            cur.execute(statement)
        cur.execute(f"SELECT COUNT(*) FROM {q(table)}")
        counts[table] = cur.fetchone()[0]
        print(f"  {table:<16} {counts[table]:>10,} rows {time.monotonic() - t0:7.1f}s", file=out, flush=True)
    # last night's aging run (23:00, as `synth mutate` runs it): changed guarantor rows share that second
    last_night = generation_now(seed).date() - timedelta(days=1)
    cur.execute(
        f"SET timestamp = {epoch(datetime.combine(last_night, datetime.min.time()) + timedelta(hours=23))}"
    )
    cur.execute(aging_sql(last_night))
    aged = cur.rowcount
    cur.execute(f"SET timestamp = {epoch(generation_now(seed))}")
    print(
        f"  aging run        {aged:>10,} guarantors  total {time.monotonic() - started:.1f}s",
        file=out,
        flush=True,
    )
    return {table: counts[table] for table in ddl.TABLE_NAMES}


def _swap_in(cur, target: str, build: str) -> None:
    """One RENAME TABLE: every old table out into the build database (tables an upgrade added too: the
    same seed gives the same database), the new ones in."""
    cur.execute(f"CREATE DATABASE IF NOT EXISTS {q(target)} CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci")
    cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (target,))
    existing = {row[0] for row in cur.fetchall()}
    renames = [f"{q(target)}.{q(t)} TO {q(build)}.{q('_old_' + t)}" for t in sorted(existing)]
    renames += [f"{q(build)}.{q(t)} TO {q(target)}.{q(t)}" for t in ddl.TABLE_NAMES]
    cur.execute("RENAME TABLE " + ", ".join(renames))
    cur.execute(f"DROP DATABASE {q(build)}")


def _drop_quietly(cur, build: str) -> None:
    try:
        cur.execute(f"DROP DATABASE IF EXISTS {q(build)}")
    except SOURCE_ERRORS:  # the server went away: nothing more we can clean up from here
        return


def _print_summary(counts: dict[str, int], out) -> None:
    print(f"\n  {'table':<16} {'rows':>10}", file=out)
    for table, rows in counts.items():
        print(f"  {table:<16} {rows:>10,}", file=out)
    print(f"  {'total':<16} {sum(counts.values()):>10,}", file=out, flush=True)
