"""The dbt docs site: `docs generate` builds it, `docs serve` serves it, and it loads in a real
headless browser (Debian chromium) with the project's models in the page."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

from etl_pipeline.docs_commands import docs_server, generate_docs
from etl_pipeline.errors import ConfigError
from etl_pipeline.settings import PROJECT_ROOT

pytest_plugins = ["dbt_support"]

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def docs_url(dental_marts):
    dental_marts.ensure_current()
    generate_docs()
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "etl_pipeline.cli", "docs", "serve", "--port", str(port)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail(f"docs serve exited: {server.stdout.read()}")
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_site_files_are_served(docs_url):
    for name in ("index.html", "manifest.json", "catalog.json"):
        with urllib.request.urlopen(docs_url + name, timeout=5) as response:
            assert response.status == 200
            body = response.read()
        if name.endswith(".json"):
            data = json.loads(body)
            assert data["metadata"]["dbt_schema_version"]
    catalog = json.loads(urllib.request.urlopen(docs_url + "catalog.json", timeout=5).read())
    assert "model.dbt_dental_models.fct_ar_aging" in catalog["nodes"]  # generated against the built marts


def test_site_renders_in_headless_chromium(docs_url):
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed: apt-get install -y chromium (the Makefile's system-deps)"
    with tempfile.TemporaryDirectory() as profile_dir:
        proc = subprocess.run(
            [
                chromium,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile_dir}",
                "--virtual-time-budget=15000",
                "--dump-dom",
                docs_url + "#!/overview",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    dom = proc.stdout
    assert "<title>dbt Docs</title>" in dom
    # the model tree and overview come from manifest.json, fetched by the page's JavaScript
    assert "fct_daily_production" in dom and "stg_opendental__patient" in dom
    assert "Dental practice marts" in dom


def test_serve_without_a_built_site_says_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="docs generate"):
        docs_server(port=0, directory=tmp_path)


def test_docs_serve_help_lists_port():
    out = subprocess.run(
        [sys.executable, "-m", "etl_pipeline.cli", "docs", "serve", "--help"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ),
        check=False,
    ).stdout
    assert "--port" in out
