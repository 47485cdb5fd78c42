"""TLS settings reach the drivers: SOURCE_SSL_MODE / SOURCE_SSL_CA become mysqlclient's `ssl_mode` / `ssl`,
TARGET_SSLMODE becomes libpq's `sslmode`; and a mode that requires TLS really refuses a server without it
(the local servers run without TLS, so a required mode must fail to connect, never fall back to plain),
and a verified TLS session to the test stack's PostgreSQL switched to ssl=on with a self-signed certificate."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import time

import pytest

from etl_pipeline.db import connect_source, connect_target
from etl_pipeline.errors import ConnectionFailed
from etl_pipeline.local.stack import find_postgres
from etl_pipeline.settings import load_settings, read_env_file

BASE_ENV = {"SOURCE_PASSWORD": "pw-source-1", "TARGET_PASSWORD": "pw-target-1", "ETL_ENV_FILE": "/nonexistent"}


def _settings(monkeypatch, **env):
    for key in ("SOURCE_SSL_MODE", "SOURCE_SSL_CA", "TARGET_SSLMODE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in {**BASE_ENV, **env}.items():
        monkeypatch.setenv(key, value)
    return load_settings()


def test_no_tls_settings_pass_nothing(monkeypatch):
    s = _settings(monkeypatch)
    assert "ssl" not in s.source.connect_kwargs() and "ssl_mode" not in s.source.connect_kwargs()
    assert "sslmode" not in s.target.connect_kwargs()


@pytest.mark.parametrize("mode", ["REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY", "required"])
def test_source_ssl_mode_reaches_mysqlclient(monkeypatch, mode):
    kwargs = _settings(monkeypatch, SOURCE_SSL_MODE=mode, SOURCE_SSL_CA="/etc/ssl/ca.pem").source.connect_kwargs()
    assert kwargs["ssl_mode"] == mode.upper()
    assert kwargs["ssl"] == {"ca": "/etc/ssl/ca.pem"}


def test_source_ssl_ca_alone_enables_tls(monkeypatch):
    kwargs = _settings(monkeypatch, SOURCE_SSL_CA="/etc/ssl/ca.pem").source.connect_kwargs()
    assert kwargs["ssl"] == {"ca": "/etc/ssl/ca.pem"}


def test_source_ssl_mode_disabled_passes_through(monkeypatch):
    kwargs = _settings(monkeypatch, SOURCE_SSL_MODE="DISABLED").source.connect_kwargs()
    assert kwargs["ssl_mode"] == "DISABLED" and "ssl" not in kwargs


def test_target_sslmode_reaches_libpq(monkeypatch):
    kwargs = _settings(monkeypatch, TARGET_SSLMODE="verify-full").target.connect_kwargs()
    assert kwargs["sslmode"] == "verify-full"


def test_bad_source_ssl_mode_is_a_config_error(monkeypatch):
    from etl_pipeline.errors import ConfigError
    with pytest.raises(ConfigError, match="SOURCE_SSL_MODE"):
        _settings(monkeypatch, SOURCE_SSL_MODE="ALWAYS")


@pytest.mark.parametrize("mode,ca", [("REQUIRED", None), ("VERIFY_CA", None), (None, "/etc/ssl/certs/ca-certificates.crt")])
def test_required_tls_refuses_a_plain_source(settings, mode, ca):
    # mysqlclient on MariaDB Connector/C falls back to plain text for REQUIRED and a bare CA: db.py checks
    required = dataclasses.replace(settings.source, ssl_mode=mode, ssl_ca=ca)
    with pytest.raises(ConnectionFailed, match="cannot connect to source"):
        connect_source(required, connect_timeout=5).close()
    connect_source(dataclasses.replace(settings.source, ssl_mode="PREFERRED")).close()


def test_required_tls_refuses_a_plain_target(settings):
    with pytest.raises(ConnectionFailed, match="cannot connect to target"):
        connect_target(dataclasses.replace(settings.target, sslmode="require"), connect_timeout=5).close()
    connect_target(dataclasses.replace(settings.target, sslmode="prefer")).close()


def test_target_sslrootcert_reaches_libpq(monkeypatch):
    kwargs = _settings(monkeypatch, TARGET_SSLMODE="verify-full", TARGET_SSLROOTCERT="/etc/ssl/pg-ca.pem"
                       ).target.connect_kwargs()
    assert (kwargs["sslmode"], kwargs["sslrootcert"]) == ("verify-full", "/etc/ssl/pg-ca.pem")


def _self_signed(directory, name):
    key, cert = directory / f"{name}.key", directory / f"{name}.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return key, cert


@pytest.fixture
def postgres_with_tls(local_stack, tmp_path):
    """The test stack's PostgreSQL with ssl=on (a self-signed certificate), switched back off afterwards."""
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    pgdir = local_stack.paths.postgres_data
    key, cert = _self_signed(tmp_path, "server")
    shutil.copy(key, pgdir / "fault_tls.key")
    shutil.copy(cert, pgdir / "fault_tls.crt")
    owner = pgdir.stat()
    for f in ("fault_tls.key", "fault_tls.crt"):
        os.chown(pgdir / f, owner.st_uid, owner.st_gid)
        os.chmod(pgdir / f, 0o600)
    binaries, creds = find_postgres(), read_env_file(local_stack.paths.secrets_file)
    local_stack._psql_super(binaries, "ALTER SYSTEM SET ssl_cert_file = 'fault_tls.crt'; "
                                      "ALTER SYSTEM SET ssl_key_file = 'fault_tls.key'; ALTER SYSTEM SET ssl = on; "
                                      "SELECT pg_reload_conf();", creds)
    time.sleep(0.5)
    yield cert
    local_stack._psql_super(binaries, "ALTER SYSTEM RESET ssl; ALTER SYSTEM RESET ssl_cert_file; "
                                      "ALTER SYSTEM RESET ssl_key_file; SELECT pg_reload_conf();", creds)
    time.sleep(0.5)
    (pgdir / "fault_tls.key").unlink()
    (pgdir / "fault_tls.crt").unlink()


def test_verified_tls_to_a_real_postgres(settings, postgres_with_tls, tmp_path):
    verified = dataclasses.replace(settings.target, sslmode="verify-full", sslrootcert=str(postgres_with_tls))
    conn = connect_target(verified)
    with conn.cursor() as cur:
        cur.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        encrypted, version = cur.fetchone()
    conn.close()
    assert encrypted and version.startswith("TLS")
    # a server certificate the CA file does not vouch for is refused
    _, other_ca = _self_signed(tmp_path, "other")
    with pytest.raises(ConnectionFailed, match="cannot connect to target"):
        connect_target(dataclasses.replace(verified, sslrootcert=str(other_ca)), connect_timeout=5).close()


def test_dbt_gets_the_target_ca_file(monkeypatch):
    from etl_pipeline.dbt_runner import dbt_env

    settings = _settings(monkeypatch, TARGET_SSLMODE="verify-full", TARGET_SSLROOTCERT="/etc/ssl/pg-ca.pem")
    env = dbt_env(settings)
    assert (env["TARGET_SSLMODE"], env["PGSSLROOTCERT"]) == ("verify-full", "/etc/ssl/pg-ca.pem")
