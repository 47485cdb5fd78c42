"""The one data set of the dbt, KPI and docs tests (a pytest plugin: `pytest_plugins = ["dbt_support"]`;
test modules reach everything through the `marts` fixture and never import this module).

`dental_marts` builds it once per session on the test stack: the synthetic OpenDental source at a
small scale (DBT_TEST_SCALE, default 0.02), loaded into raw by the real loader (`analyze-schema`,
then `run --full-refresh`), then `dbt build`. Registered as a plugin (not imported into each module)
so that the session fixture really runs once for all the modules that use it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date

import pytest

from etl_pipeline.db import connect_source, connect_target
from etl_pipeline.dbt_runner import DBT_TARGET_DIR, DbtResult, run_dbt
from etl_pipeline.settings import PROJECT_ROOT, Settings
from etl_pipeline.synthetic import generate, mutate
from etl_pipeline.synthetic.ddl import TABLE_NAMES

SCALE = float(os.environ.get("DBT_TEST_SCALE", "0.02"))
SEED = 7
# the source tables the marts read: if another suite rewrites them, the marts are rebuilt
FINGERPRINT_TABLES = (
    "patient",
    "procedurelog",
    "claimproc",
    "claim",
    "adjustment",
    "payment",
    "paysplit",
    "appointment",
    "histappointment",
    "recall",
    "recalltype",
    "schedule",
    "insplan",
)


@dataclass
class DentalMarts:
    settings: Settings
    build: DbtResult
    as_of_date: date
    fingerprint: tuple
    config_dir: object
    run_results: dict  # target/run_results.json of the build, read right after it

    def ensure_current(self) -> None:
        """Rebuild when another suite changed the source since the build (tests run in one session)."""
        built = self.pg(
            "select to_regclass('raw.procedurelog') is not null"
            " and to_regclass('marts.fct_ar_aging') is not null"
        )[0][0]
        if not built or source_fingerprint(self.settings) != self.fingerprint:
            rebuilt = build_marts(self.settings, self.config_dir)
            self.__dict__.update(rebuilt.__dict__)

    def simulate_days(self, days: int, seed: int = 11) -> None:
        """Days of clinic work at the source, the nightly incremental load, an incremental dbt build."""
        mutate(self.settings.source_admin, days, seed, quiet=True)
        etl_cli("run", "--tables", ",".join(TABLE_NAMES), config_dir=self.config_dir)
        self.build = run_dbt(["build"], settings=self.settings, check=False)
        assert self.build.ok, f"dbt build after the incremental load failed:\n{self.build.output[-4000:]}"
        self.run_results = json.loads((DBT_TARGET_DIR / "run_results.json").read_text())
        (self.as_of_date,) = self.pg("select as_of_date from intermediate.int_as_of_date")[0]
        self.fingerprint = source_fingerprint(self.settings)

    def pg(self, sql: str, params=None) -> list[tuple]:
        return pg_rows(self.settings, sql, params)

    def mysql(self, sql: str, params=None) -> list[tuple]:
        conn = connect_source(self.settings.source)
        try:
            cur = conn.cursor()
            cur.execute(sql, params)
            return list(cur.fetchall())
        finally:
            conn.close()


def pg_rows(settings: Settings, sql: str, params=None) -> list[tuple]:
    conn = connect_target(settings.target)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall() if cur.description else []
        conn.commit()
        return rows
    finally:
        conn.close()


def etl_cli(*args: str, config_dir) -> None:
    """Run the project CLI the way a user does; fail the fixture with its output when it fails."""
    env = dict(os.environ, ETL_CONFIG_DIR=str(config_dir))
    proc = subprocess.run(
        [sys.executable, "-m", "etl_pipeline.cli", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"etl_pipeline.cli {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )


def source_fingerprint(settings: Settings) -> tuple:
    conn = connect_source(settings.source)
    try:
        cur = conn.cursor()
        cur.execute("CHECKSUM TABLE " + ", ".join(FINGERPRINT_TABLES))
        return tuple(cur.fetchall())
    finally:
        conn.close()


def build_marts(settings: Settings, config_dir) -> DentalMarts:
    """Synthetic source -> real loader (analyze-schema, run) -> dbt build."""
    with open(os.devnull, "w") as quiet:
        generate(settings.source_admin, SCALE, SEED, out=quiet)
    etl_cli("analyze-schema", config_dir=config_dir)
    etl_cli("run", "--full-refresh", "--tables", ",".join(TABLE_NAMES), config_dir=config_dir)
    build = run_dbt(["build"], settings=settings, check=False)
    assert build.ok, f"dbt build failed:\n{build.output[-4000:]}"
    (as_of,) = pg_rows(settings, "select as_of_date from intermediate.int_as_of_date")[0]
    return DentalMarts(
        settings=settings,
        build=build,
        as_of_date=as_of,
        fingerprint=source_fingerprint(settings),
        config_dir=config_dir,
        run_results=json.loads((DBT_TARGET_DIR / "run_results.json").read_text()),
    )


@pytest.fixture(scope="session")
def dental_marts(settings, tmp_path_factory) -> DentalMarts:
    """The marts built on a fresh synthetic source, once per session (rebuilt if the source changed)."""
    marts = build_marts(settings, tmp_path_factory.mktemp("dbt-etl-config"))
    yield marts


@pytest.fixture
def marts(dental_marts) -> DentalMarts:
    """`dental_marts`, checked to still match the source before each test."""
    dental_marts.ensure_current()
    return dental_marts
