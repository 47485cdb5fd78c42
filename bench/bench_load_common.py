"""Shared by the bench_load_* scripts: a scratch stack and a synthetic source analysed into tables.yml."""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from etl_pipeline.local.stack import LocalStack
from etl_pipeline.local.stack import scratch_stack as local_scratch_stack
from etl_pipeline.settings import load_settings

SCRATCH_ID = 3


def scratch_stack() -> LocalStack:
    return local_scratch_stack(SCRATCH_ID)


def point_settings_at(env: dict) -> Path:
    """Make load_settings() (and CLI subprocesses) use the scratch stack and a temp config dir."""
    config_dir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    os.environ.update(env)
    os.environ["ETL_CONFIG_DIR"] = str(config_dir)
    os.environ["ETL_ENV_FILE"] = str(config_dir / "none.env")
    return config_dir


def synthetic_source(scale: float, seed: int = 42):
    """Generate the source, analyse it into tables.yml; returns (settings, seconds to generate)."""
    from etl_pipeline.schema.analyze import analyze_source, render_tables_yml
    from etl_pipeline.synthetic import generate

    settings = load_settings()
    t0 = time.perf_counter()
    generate(settings.source_admin, scale=scale, seed=seed, out=io.StringIO())
    seconds = time.perf_counter() - t0
    settings.tables_yml.write_text(render_tables_yml(analyze_source(settings)))
    return settings, seconds


def reset_target(settings) -> None:
    from etl_pipeline.db import connect_target

    conn = connect_target(settings.target)
    with conn.cursor() as cur:
        cur.execute("DROP SCHEMA IF EXISTS raw CASCADE; DROP SCHEMA IF EXISTS etl CASCADE")
    conn.commit()
    conn.close()
