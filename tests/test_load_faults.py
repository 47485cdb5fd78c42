"""Bad input: an unreachable source, PostgreSQL going away mid-COPY, a table that no longer exists, a column
type changing during the read. Each is a clear error or a documented fallback, the other tables still
load and nothing is half-written."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
import time

import psycopg2
import pytest
import yaml
from test_load_support import admin_exec, drop_everywhere, pg_rows, table_config

from etl_pipeline.errors import ConfigError, ConnectionFailed
from etl_pipeline.load import load_table, run, source, verify_table
from etl_pipeline.load.source import SourceTableMissing
from etl_pipeline.schema.tables_config import table_to_dict
from etl_pipeline.settings import PROJECT_ROOT

DDL = """CREATE TABLE {name} (id bigint PRIMARY KEY, v int, note text,
  ts timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(), KEY (ts)) ENGINE=InnoDB"""


def make(settings, name, rows=2000):
    drop_everywhere(settings, name)
    admin_exec(
        settings,
        DDL.format(name=name),
        f"INSERT INTO {name} (id, v, note) SELECT seq, seq, 'n' FROM seq_1_to_{rows}",
    )
    return table_config(settings, name)


def test_unreachable_source_is_a_clear_recorded_failure(settings):
    t = make(settings, "f_nosrc", rows=10)
    bad = dataclasses.replace(settings, source=dataclasses.replace(settings.source, port=1))
    with pytest.raises(ConnectionFailed, match="cannot connect to source .*:1/"):
        load_table(bad, t, "nosrc")
    assert pg_rows(settings, "SELECT status, error_class FROM etl.load_runs WHERE run_id = 'nosrc'") == [
        ("failed", "ConnectionFailed")
    ]
    assert pg_rows(settings, "SELECT to_regclass('raw.f_nosrc')") == [(None,)]


def test_postgres_going_away_mid_copy_leaves_old_table_and_state(settings, monkeypatch):
    t = make(settings, "f_pgdown", rows=5000)
    load_table(settings, t, "pg0")
    before = pg_rows(settings, "SELECT count(*), max(_loaded_at) FROM raw.f_pgdown")
    state_before = pg_rows(settings, "SELECT cursor_value FROM etl.load_state WHERE table_name = 'f_pgdown'")
    monkeypatch.setattr(source, "BATCH_ROWS", 500)

    def kill_backend(table, batch_no):
        if table == "f_pgdown" and batch_no == 3:
            pg_rows(
                settings,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE 'COPY%%f_pgdown%%' AND pid <> pg_backend_pid()",
            )

    monkeypatch.setattr(source, "batch_hook", kill_backend)
    with pytest.raises(psycopg2.OperationalError):
        load_table(settings, t, "pg1", full_refresh=True)
    monkeypatch.setattr(source, "batch_hook", None)
    assert pg_rows(settings, "SELECT count(*), max(_loaded_at) FROM raw.f_pgdown") == before
    assert (
        pg_rows(settings, "SELECT cursor_value FROM etl.load_state WHERE table_name = 'f_pgdown'")
        == state_before
    )
    assert pg_rows(settings, "SELECT to_regclass('raw.f_pgdown__new')") == [(None,)]
    assert pg_rows(settings, "SELECT status FROM etl.load_runs WHERE run_id = 'pg1'") == [("failed",)]
    load_table(settings, t, "pg2", full_refresh=True)
    assert verify_table(settings, t, deep=True).ok


def test_missing_table_fails_alone_and_others_load(settings):
    good = make(settings, "f_good", rows=50)
    gone = make(settings, "f_gone", rows=5)
    admin_exec(settings, "DROP TABLE f_gone")
    settings.tables_yml.write_text(
        yaml.safe_dump({"tables": {"f_good": table_to_dict(good), "f_gone": table_to_dict(gone)}})
    )
    results = {r.table: r for r in run(settings, run_id="missing")}
    assert results["f_good"].status == "success"
    assert (results["f_gone"].status, results["f_gone"].error_class) == ("failed", "SourceTableMissing")
    assert "does not exist at the source" in results["f_gone"].message
    assert verify_table(settings, good).ok
    with pytest.raises(SourceTableMissing):
        load_table(settings, gone, "missing-2")


def test_column_type_change_during_the_read(settings, monkeypatch, caplog):
    t = make(settings, "f_retype", rows=3000)
    load_table(settings, t, "rt0")
    admin_exec(settings, "UPDATE f_retype SET v = v + 1")
    time.sleep(1.05)  # into the next window
    monkeypatch.setattr(source, "BATCH_ROWS", 300)
    alter = []

    def retype(table, batch_no):
        if table == "f_retype" and batch_no == 2 and not alter:
            # the ALTER waits for the read's metadata lock, so it runs beside the load
            alter.append(
                threading.Thread(
                    target=admin_exec,
                    args=(
                        settings,
                        "ALTER TABLE f_retype MODIFY v varchar(20)",
                        "UPDATE f_retype SET v = CONCAT('x', v) WHERE id <= 10",
                    ),
                )
            )
            alter[0].start()

    monkeypatch.setattr(source, "batch_hook", retype)
    load_table(settings, t, "rt1")
    monkeypatch.setattr(source, "batch_hook", None)
    alter[0].join(timeout=60)
    result = load_table(settings, t, "rt2")
    assert result.strategy == "full" and "not a widening" in caplog.text
    assert pg_rows(settings, "SELECT v FROM raw.f_retype WHERE id = 1") == [("x2",)]
    assert verify_table(settings, t, deep=True).ok


def test_cli_run_status_verify(settings):
    t = make(settings, "f_cli", rows=20)
    settings.tables_yml.write_text(yaml.safe_dump({"tables": {"f_cli": table_to_dict(t)}}))

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "etl_pipeline.cli", *args],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )

    done = cli("run", "--tables", "f_cli")
    assert done.returncode == 0 and "f_cli" in done.stdout
    status = json.loads(cli("status", "--json").stdout)
    assert [s["last_status"] for s in status if s["table_name"] == "f_cli"] == ["success"]
    assert cli("verify", "--deep").returncode == 0
    bad = cli("run", "--tables", "nope")
    assert (
        bad.returncode == ConfigError.exit_code and bad.stderr.startswith("error: ") and "nope" in bad.stderr
    )
    assert cli("run", "--dry-run").stdout.strip() == "would load f_cli (incremental)"
