"""The throwaway local stack: idempotent up, status without passwords, clean down, clear errors."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from etl_pipeline.db import connect_source, connect_target
from etl_pipeline.errors import LocalStackError
from etl_pipeline.local import stack as stack_module
from etl_pipeline.local.processes import processes_mentioning
from etl_pipeline.local.stack import _read_pid
from etl_pipeline.settings import load_settings


def _processes_using(path) -> list[str]:
    return [p.command_line for p in processes_mentioning(path)]


def test_up_is_idempotent_and_status_hides_passwords(local_stack, capsys):
    pid_before = _read_pid(local_stack.paths.mariadb_pid)
    env = local_stack.up()
    assert _read_pid(local_stack.paths.mariadb_pid) == pid_before, "second up must reuse the running server"

    status = local_stack.status()
    assert status["mariadb"]["running"] and status["postgres"]["running"]
    rendered = repr(status)
    for key in ("SOURCE_PASSWORD", "SOURCE_ADMIN_PASSWORD", "TARGET_PASSWORD"):
        assert env[key] not in rendered


def test_cli_status_prints_urls_without_passwords(local_stack):
    env = local_stack.env_values()
    result = subprocess.run(
        [sys.executable, "-m", "etl_pipeline.cli", "local", "status"],
        capture_output=True,
        text=True,
        env={
            **env,
            "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
            "LOCAL_STACK_DIR": str(local_stack.root),
            "LOCAL_MARIADB_PORT": str(local_stack.mariadb_port),
            "LOCAL_POSTGRES_PORT": str(local_stack.postgres_port),
        },
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"127.0.0.1:{local_stack.mariadb_port}/opendental" in result.stdout
    assert env["SOURCE_PASSWORD"] not in result.stdout + result.stderr


def test_reader_is_read_only_and_admin_can_write(settings):
    admin = connect_source(settings.source_admin)
    admin.cursor().execute("CREATE TABLE IF NOT EXISTS opendental.ro_probe (id int)")
    reader = connect_source(settings.source)
    cur = reader.cursor()
    cur.execute("SELECT COUNT(*) FROM opendental.ro_probe")
    assert cur.fetchone() == (0,)
    with pytest.raises(Exception, match="denied"):
        cur.execute("INSERT INTO opendental.ro_probe VALUES (1)")
    reader.close()  # its open transaction holds a metadata lock that DROP would wait for
    admin.cursor().execute("DROP TABLE opendental.ro_probe")
    admin.close()


def test_target_role_owns_analytics(settings):
    conn = connect_target(settings.target)
    cur = conn.cursor()
    cur.execute(
        "SELECT current_user, current_database(), rolsuper FROM pg_roles WHERE rolname = current_user"
    )
    assert cur.fetchone() == ("etl", "analytics", False)
    cur.execute("CREATE SCHEMA IF NOT EXISTS probe_schema; DROP SCHEMA probe_schema")


def test_port_in_use_gives_one_line_error_and_no_stray_process(scratch_stacks):
    scratch = scratch_stacks("port", 1)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", scratch.mariadb_port))
        blocker.listen()
        with pytest.raises(LocalStackError, match=rf"port {scratch.mariadb_port} .* in use"):
            scratch.up()
    assert _processes_using(scratch.root) == []


def test_postgres_port_in_use_stops_the_mariadb_it_started(scratch_stacks):
    scratch = scratch_stacks("pgport", 2)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", scratch.postgres_port))
        blocker.listen()
        with pytest.raises(LocalStackError, match=rf"port {scratch.postgres_port}"):
            scratch.up()
    assert _processes_using(scratch.root) == [], "the MariaDB this call started must be stopped again"


def test_missing_binaries_say_how_to_install(monkeypatch):
    monkeypatch.setattr(stack_module, "POSTGRES_BIN_DIRS", ("/nonexistent/bin",))
    with pytest.raises(LocalStackError, match="apt-get install -y postgresql"):
        stack_module.find_postgres()
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(stack_module.shutil, "which", lambda name, path=None: None)
    with pytest.raises(
        LocalStackError, match="mariadbd not found: install it with: apt-get install -y mariadb-server"
    ):
        stack_module.find_mariadb()


def test_down_leaves_no_process_behind(scratch_stacks):
    scratch = scratch_stacks("down", 3)
    scratch.up()
    assert _processes_using(scratch.root), "servers should be running after up"
    assert sorted(scratch.down()) == ["mariadb", "postgres"]
    assert _processes_using(scratch.root) == []


def test_settings_come_from_the_env_file_the_stack_writes(local_stack, monkeypatch):
    for key in local_stack.env_values():
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("ETL_ENV_FILE", str(local_stack.env_file))
    settings = load_settings()
    assert settings.source.port == local_stack.mariadb_port
    assert settings.target.port == local_stack.postgres_port
    assert "password" not in repr(settings).lower()
