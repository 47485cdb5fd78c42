"""The dbt project without a database: `dbt parse` builds manifest.json offline (Cosmos renders the
DAG from it) and the profile reads the settings' environment variables (sqlfluff runs in `make lint`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from etl_pipeline.dbt_runner import DBT_PROJECT_DIR, dbt_executable

VENV_BIN = Path(sys.executable).parent


def test_parse_builds_the_manifest_without_a_database(tmp_path):
    env = dict(
        os.environ,
        TARGET_HOST="127.0.0.1",
        TARGET_PORT="1",
        TARGET_PASSWORD="unused",
        DBT_SEND_ANONYMOUS_USAGE_STATS="False",
        DBT_TARGET_PATH=str(tmp_path / "target"),
    )
    proc = subprocess.run(
        [dbt_executable(), "parse", "--profiles-dir", ".", "--target", "local"],
        cwd=DBT_PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    models = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    assert {"stg_opendental__patient", "int_transactions", "fct_ar_aging", "fct_daily_production"} <= set(
        models
    )
    sources = list(manifest["sources"].values())
    assert len(sources) == 36
    assert all(
        "loaded_at_from_load_state(this)" in s["loaded_at_query"] and s["freshness"]["error_after"]["count"]
        for s in sources
    )
    # every mart and every mart column is described; KPI marts point at their definition
    for name, node in models.items():
        if node["fqn"][1] == "marts":
            assert node["description"], f"{name} has no description"
            undocumented = [c for c, col in node["columns"].items() if not col["description"]]
            assert not undocumented, f"{name}: columns without description {undocumented}"
    assert "Net production" in models["fct_daily_production"]["description"]
    assert {e["name"] for e in manifest["exposures"].values()} >= {
        "morning_dashboard",
        "monthly_provider_report",
    }


def test_profile_reads_the_settings_variables():
    profile = (DBT_PROJECT_DIR / "profiles.yml").read_text()
    for var in (
        "TARGET_HOST",
        "TARGET_PORT",
        "TARGET_DATABASE",
        "TARGET_USER",
        "TARGET_PASSWORD",
        "TARGET_SSLMODE",
    ):
        assert f"env_var('{var}'" in profile
    assert "local:" in profile and "prod:" in profile
