"""Helpers for the CLI tests (no tests here): the CLI as a subprocess, with or without the test stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from etl_pipeline.settings import PROJECT_ROOT

# no .env of the checkout's own (a demo stack's) may leak into a test that expects none
NO_SETTINGS = {"ETL_ENV_FILE": "/nonexistent/.env"}


def etl(*args: str, timeout: int = 300, **env: str) -> subprocess.CompletedProcess:
    """`python -m etl_pipeline.cli ARGS` with os.environ plus `env` (the test stack's, once it is up)."""
    return subprocess.run(
        [sys.executable, "-m", "etl_pipeline.cli", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def etl_json(*args: str, expect: int = 0, **env: str):
    """Run a `--json` command; its whole stdout must be one JSON document, and it must exit `expect`."""
    done = etl(*args, "--json", **env)
    assert done.returncode == expect, (
        f"{args}: exit {done.returncode}\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
    )
    return json.loads(done.stdout), done
