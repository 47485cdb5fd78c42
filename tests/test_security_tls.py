"""TLS settings reach the drivers: SOURCE_SSL_MODE / SOURCE_SSL_CA become mysqlclient's `ssl_mode` / `ssl`
and PyMySQL's `ssl` context (or `ssl_disabled`), TARGET_SSLMODE becomes libpq's `sslmode`; and a mode that requires TLS really refuses a server without it
(the local servers run without TLS, so a required mode must fail to connect, never fall back to plain),
a verified TLS session to the test stack's PostgreSQL switched to ssl=on with a self-signed certificate, and a
scratch MariaDB with a test CA: VERIFY_CA encrypts the session and carries a load, a wrong CA is refused."""

from __future__ import annotations

import dataclasses
import os
import shutil
import ssl
import subprocess
import sys
import time

import pytest

from etl_pipeline.db import (
    AVAILABLE_DRIVERS,
    connect_source,
    connect_target,
    mysqlclient_kwargs,
    pymysql_kwargs,
)
from etl_pipeline.errors import ConnectionFailed
from etl_pipeline.local.stack import find_postgres, scratch_stack
from etl_pipeline.settings import PROJECT_ROOT, load_settings, read_env_file

BASE_ENV = {
    "SOURCE_PASSWORD": "pw-source-1",
    "TARGET_PASSWORD": "pw-target-1",
    "ETL_ENV_FILE": "/nonexistent",
}


def _settings(monkeypatch, **env):
    for key in ("SOURCE_SSL_MODE", "SOURCE_SSL_CA", "TARGET_SSLMODE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in {**BASE_ENV, **env}.items():
        monkeypatch.setenv(key, value)
    return load_settings()


SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"  # a real CA file: PyMySQL's context loads it


def test_no_tls_settings_pass_nothing(monkeypatch):
    s = _settings(monkeypatch)
    assert "ssl" not in mysqlclient_kwargs(s.source) and "ssl_mode" not in mysqlclient_kwargs(s.source)
    assert {"ssl", "ssl_disabled"}.isdisjoint(pymysql_kwargs(s.source))  # PyMySQL's default: TLS if offered
    assert "sslmode" not in s.target.connect_kwargs()


@pytest.mark.parametrize("mode", ["REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY", "required"])
def test_source_ssl_mode_reaches_mysqlclient(monkeypatch, mode):
    kwargs = mysqlclient_kwargs(
        _settings(monkeypatch, SOURCE_SSL_MODE=mode, SOURCE_SSL_CA="/etc/ssl/ca.pem").source
    )
    assert kwargs["ssl_mode"] == mode.upper()
    assert kwargs["ssl"] == {"ca": "/etc/ssl/ca.pem"}


def test_source_ssl_ca_alone_enables_tls(monkeypatch):
    kwargs = mysqlclient_kwargs(_settings(monkeypatch, SOURCE_SSL_CA="/etc/ssl/ca.pem").source)
    assert kwargs["ssl"] == {"ca": "/etc/ssl/ca.pem"}


def test_source_ssl_mode_disabled_passes_through(monkeypatch):
    kwargs = mysqlclient_kwargs(_settings(monkeypatch, SOURCE_SSL_MODE="DISABLED").source)
    assert kwargs["ssl_mode"] == "DISABLED" and "ssl" not in kwargs


@pytest.mark.parametrize(
    "mode,ca,verify,check_hostname",
    [
        ("REQUIRED", None, ssl.CERT_NONE, False),
        ("REQUIRED", SYSTEM_CA, ssl.CERT_NONE, False),
        ("VERIFY_CA", SYSTEM_CA, ssl.CERT_REQUIRED, False),
        ("VERIFY_IDENTITY", SYSTEM_CA, ssl.CERT_REQUIRED, True),
        (None, SYSTEM_CA, ssl.CERT_REQUIRED, False),  # a CA alone: TLS, the chain checked
    ],
)
def test_source_ssl_settings_reach_pymysql(monkeypatch, mode, ca, verify, check_hostname):
    env = {"SOURCE_SSL_MODE": mode} if mode else {}
    kwargs = pymysql_kwargs(_settings(monkeypatch, **env, **({"SOURCE_SSL_CA": ca} if ca else {})).source)
    context = kwargs["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert (context.verify_mode, context.check_hostname) == (verify, check_hostname)


def test_source_ssl_disabled_reaches_pymysql(monkeypatch):
    kwargs = pymysql_kwargs(_settings(monkeypatch, SOURCE_SSL_MODE="DISABLED").source)
    assert kwargs["ssl_disabled"] is True and "ssl" not in kwargs


def test_target_sslmode_reaches_libpq(monkeypatch):
    kwargs = _settings(monkeypatch, TARGET_SSLMODE="verify-full").target.connect_kwargs()
    assert kwargs["sslmode"] == "verify-full"


def test_bad_source_ssl_mode_is_a_config_error(monkeypatch):
    from etl_pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="SOURCE_SSL_MODE"):
        _settings(monkeypatch, SOURCE_SSL_MODE="ALWAYS")


@pytest.mark.parametrize("driver", AVAILABLE_DRIVERS)
@pytest.mark.parametrize("mode,ca", [("REQUIRED", None), ("VERIFY_CA", None), (None, SYSTEM_CA)])
def test_required_tls_refuses_a_plain_source(settings, mode, ca, driver):
    # mysqlclient on MariaDB Connector/C falls back to plain text for REQUIRED and a bare CA: db.py checks
    required = dataclasses.replace(settings.source, ssl_mode=mode, ssl_ca=ca, driver=driver)
    with pytest.raises(ConnectionFailed, match="cannot connect to source"):
        connect_source(required, connect_timeout=5).close()
    connect_source(dataclasses.replace(settings.source, ssl_mode="PREFERRED", driver=driver)).close()


def test_required_tls_refuses_a_plain_target(settings):
    with pytest.raises(ConnectionFailed, match="cannot connect to target"):
        connect_target(dataclasses.replace(settings.target, sslmode="require"), connect_timeout=5).close()
    connect_target(dataclasses.replace(settings.target, sslmode="prefer")).close()


def test_target_sslrootcert_reaches_libpq(monkeypatch):
    kwargs = _settings(
        monkeypatch, TARGET_SSLMODE="verify-full", TARGET_SSLROOTCERT="/etc/ssl/pg-ca.pem"
    ).target.connect_kwargs()
    assert (kwargs["sslmode"], kwargs["sslrootcert"]) == ("verify-full", "/etc/ssl/pg-ca.pem")


def _self_signed(directory, name):
    key, cert = directory / f"{name}.key", directory / f"{name}.crt"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
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
    local_stack._psql_super(
        binaries,
        "ALTER SYSTEM SET ssl_cert_file = 'fault_tls.crt'; "
        "ALTER SYSTEM SET ssl_key_file = 'fault_tls.key'; ALTER SYSTEM SET ssl = on; "
        "SELECT pg_reload_conf();",
        creds,
    )
    time.sleep(0.5)
    yield cert
    local_stack._psql_super(
        binaries,
        "ALTER SYSTEM RESET ssl; ALTER SYSTEM RESET ssl_cert_file; "
        "ALTER SYSTEM RESET ssl_key_file; SELECT pg_reload_conf();",
        creds,
    )
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


# --- a real MariaDB with TLS: a scratch server with a test CA and a server certificate it signs ---

SCRATCH_ID = int(os.environ.get("TEST_STACK_ID", "0"))


def _ca_and_server_cert(directory):
    """ca.pem, server-cert.pem, server-key.pem (for 127.0.0.1) in `directory`: what LocalStack.mariadb_tls_dir wants."""

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=etl test CA",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server-key.pem",
        "-out",
        "server.csr",
    )
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "san.ext",
        "-out",
        "server-cert.pem",
    )
    return directory / "ca.pem"


@pytest.fixture(scope="module")
def mariadb_with_tls(tmp_path_factory):
    """A scratch LocalStack whose MariaDB offers TLS, and the CA file that vouches for it; destroyed after."""
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    tls_dir = tmp_path_factory.mktemp("mariadb-tls")
    ca = _ca_and_server_cert(tls_dir)
    stack = scratch_stack(SCRATCH_ID, mariadb_tls_dir=tls_dir)
    stack.destroy()
    try:
        stack.up()
        yield stack, ca
    finally:
        stack.destroy()


def _env_for(stack, ca, config_dir, **extra) -> dict[str, str]:
    return {
        **stack.env_values(),
        "ETL_ENV_FILE": str(stack.env_file),
        "ETL_CONFIG_DIR": str(config_dir),
        "SOURCE_SSL_MODE": "VERIFY_CA",
        "SOURCE_SSL_CA": str(ca),
        **extra,
    }


def _cli(env, *args):
    return subprocess.run(
        [sys.executable, "-m", "etl_pipeline.cli", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_verified_tls_to_a_real_mariadb_carries_a_load(mariadb_with_tls, monkeypatch, tmp_path):
    stack, ca = mariadb_with_tls
    env = _env_for(stack, ca, tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s = load_settings()
    for driver in AVAILABLE_DRIVERS:
        conn = connect_source(dataclasses.replace(s.source, driver=driver))
        cur = conn.cursor()
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        assert cur.fetchone()[1], f"the session is not encrypted ({driver})"
        conn.close()

    # the reader may only come in over TLS from now on: a load that succeeds went over TLS
    admin = connect_source(s.source_admin)
    cur = admin.cursor()
    cur.execute(
        "CREATE TABLE tls_probe (ProbeNum BIGINT PRIMARY KEY, Descript VARCHAR(40), "
        "DateTStamp TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)"
    )
    cur.execute("INSERT INTO tls_probe (ProbeNum, Descript) VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    cur.execute("ALTER USER 'etl_reader'@'127.0.0.1' REQUIRE SSL")
    admin.commit()
    admin.close()
    with pytest.raises(ConnectionFailed, match="cannot connect to source"):
        connect_source(dataclasses.replace(s.source, ssl_mode="DISABLED", ssl_ca=None)).close()

    for args in (("analyze-schema",), ("run", "--tables", "tls_probe")):
        done = _cli(env, *args)
        assert done.returncode == 0, f"{args}: {done.stdout[-1500:]}{done.stderr[-1500:]}"
    target = connect_target(s.target)
    with target.cursor() as tcur:
        tcur.execute("SELECT count(*) FROM raw.tls_probe")
        assert tcur.fetchone()[0] == 3
    target.close()


@pytest.mark.parametrize("driver", AVAILABLE_DRIVERS)
def test_a_wrong_ca_is_refused_naming_the_server_not_the_password(mariadb_with_tls, tmp_path, driver):
    stack, _ca = mariadb_with_tls
    _, other_ca = _self_signed(tmp_path, "other")
    env = _env_for(stack, other_ca, tmp_path, SOURCE_DRIVER=driver)
    refused = _cli(env, "analyze-schema")
    message = refused.stdout + refused.stderr
    assert refused.returncode == 1, message[-1500:]
    assert f"cannot connect to source mysql://etl_reader@127.0.0.1:{stack.mariadb_port}/opendental" in message
    assert env["SOURCE_PASSWORD"] not in message and env["SOURCE_ADMIN_PASSWORD"] not in message
