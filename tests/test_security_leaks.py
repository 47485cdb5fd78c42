"""No secret and no patient value leaves the process: the whole job through the CLI (as subprocesses, debug
logging on), its failure paths included, then every byte of stdout/stderr and every log/report file written
is grepped for each password of the stack and a sample of real patient names, SSNs, e-mails and notes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import yaml
from security_support import assert_no_leaks, collect_files, find_leaks, patient_needles, stack_secrets

from etl_pipeline.dbt_runner import DBT_PROJECT_DIR, DBT_TARGET_DIR
from etl_pipeline.local.stack import find_postgres
from etl_pipeline.settings import PROJECT_ROOT

WRONG_PASSWORD = "Wr0ng-passw0rd-for-leak-test"
DBT_BUILD = (
    "from etl_pipeline.dbt_runner import run_dbt; r = run_dbt(['build'], check=False); "
    "print(r.output); raise SystemExit(r.returncode)"
)


class Transcript:
    """Runs CLI commands with `-v` and keeps everything they printed."""

    def __init__(self, config_dir):
        self.config_dir = config_dir
        self.texts: dict[str, str] = {}

    def env(self, **overrides) -> dict[str, str]:
        env = dict(os.environ, ETL_CONFIG_DIR=str(self.config_dir))
        env.update(overrides)
        return env

    def keep(self, label, proc_out, proc_err):
        n = len(self.texts)
        self.texts[f"[{n}] {label} stdout"] = proc_out or ""
        self.texts[f"[{n}] {label} stderr"] = proc_err or ""

    def cli(self, *args, timeout=600, **env) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, "-m", "etl_pipeline.cli", "-v", *args],
            check=False,
            cwd=PROJECT_ROOT,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        self.keep(" ".join(args), proc.stdout, proc.stderr)
        return proc

    def python(self, label, code, timeout=900) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, "-c", code],
            check=False,
            cwd=PROJECT_ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        self.keep(label, proc.stdout, proc.stderr)
        return proc


def test_whole_job_and_its_failures_leak_no_secret_and_no_patient_data(local_stack, settings, tmp_path):
    t = Transcript(tmp_path / "config")
    t.config_dir.mkdir()

    # the happy path, end to end
    assert t.cli("synth", "--scale", "0.01", "--seed", "5").returncode == 0
    assert t.cli("test-connections").returncode == 0
    assert t.cli("analyze-schema", "--json").returncode == 0
    assert t.cli("validate-config", "--json").returncode == 0
    assert t.cli("run", "--full-refresh").returncode == 0, t.texts  # a rebuilt source: cursors restart
    assert t.cli("verify", "--deep", "--json").returncode == 0
    build = t.python("dbt build", DBT_BUILD)
    assert build.returncode == 0, build.stdout[-3000:]
    assert t.cli("status", "--json").returncode == 0
    assert t.cli("synth", "mutate", "--days", "1").returncode == 0
    assert t.cli("run", "--json").returncode == 0

    # failure paths
    wrong_src = t.cli("run", "--tables", "patient", SOURCE_PASSWORD=WRONG_PASSWORD)
    assert wrong_src.returncode != 0 and "etl_reader" in wrong_src.stdout + wrong_src.stderr
    wrong_tgt = t.cli("status", TARGET_PASSWORD=WRONG_PASSWORD)
    assert wrong_tgt.returncode == 1 and wrong_tgt.stderr.startswith("error: cannot connect to target")
    both_wrong = t.cli(
        "test-connections", "--json", SOURCE_PASSWORD=WRONG_PASSWORD, TARGET_PASSWORD=WRONG_PASSWORD
    )
    assert both_wrong.returncode == 1 and "Access denied" in both_wrong.stdout
    no_port = t.cli("run", "--tables", "patient", SOURCE_PORT="1")
    assert no_port.returncode != 0 and ":1/" in no_port.stdout + no_port.stderr
    tables_yml = t.config_dir / "tables.yml"
    good_yml = tables_yml.read_text()
    config = yaml.safe_load(good_yml)
    config["tables"]["zz_gone"] = dict(config["tables"]["patient"], target_name="zz_gone")
    tables_yml.write_text(yaml.safe_dump(config))
    missing = t.cli("run", "--tables", "zz_gone,definition")
    assert missing.returncode == 1 and "zz_gone" in missing.stdout
    tables_yml.write_text("tables:\n  patient: [not, a, mapping\n")
    assert t.cli("validate-config").returncode != 0
    assert t.cli("run").returncode == 3  # a configuration error
    tables_yml.write_text(good_yml)
    _postgres_stopped_mid_run(local_stack, t)
    assert t.cli("run").returncode == 0  # and it recovers

    # leaked nothing anywhere
    needles = stack_secrets(local_stack, {"wrong password": WRONG_PASSWORD}) + patient_needles(settings)
    files = collect_files(
        t.config_dir,
        DBT_PROJECT_DIR / "logs",
        DBT_TARGET_DIR / "run_results.json",
        DBT_TARGET_DIR / "manifest.json",
    )
    assert any(f.name.startswith("dbt.log") for f in files)
    assert_no_leaks(needles, t.texts, files)
    # the grep itself works: the stack's secrets file holds every password
    assert len(find_leaks(needles, paths=[local_stack.paths.secrets_file])) == 5


def _postgres_stopped_mid_run(stack, t: Transcript) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "etl_pipeline.cli", "-v", "run", "--full-refresh"],
        cwd=PROJECT_ROOT,
        env=t.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    pg = find_postgres()
    subprocess.run(
        stack._pg_run_as() + [pg["pg_ctl"], "stop", "-m", "immediate", "-D", str(stack.paths.postgres_data)],
        check=True,
        capture_output=True,
    )
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        stack.up()
    t.keep("run --full-refresh (postgres stopped)", out, err)


@pytest.mark.parametrize("url", ["postgresql://etl:{pw}@db:5432/analytics", "mysql://etl_reader:{pw}@h/od"])
def test_redact_masks_registered_secrets_and_url_passwords(url):
    from etl_pipeline.redact import redact, register_secret

    register_secret("s3cr3t-registered")
    assert "s3cr3t-registered" not in redact("failed: password s3cr3t-registered rejected")
    assert "unregistered-pw" not in redact(url.format(pw="unregistered-pw"))
    assert "hunter22" not in redact("connect(password='hunter22', host=x)")
