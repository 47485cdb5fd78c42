"""TLS settings reach the drivers: SOURCE_SSL_MODE / SOURCE_SSL_CA become mysqlclient's `ssl_mode` / `ssl`,
TARGET_SSLMODE becomes libpq's `sslmode`; and a mode that requires TLS really refuses a server without it
(the local servers run without TLS, so a required mode must fail to connect, never fall back to plain)."""

from __future__ import annotations

import dataclasses

import pytest

from etl_pipeline.db import connect_source, connect_target
from etl_pipeline.errors import ConnectionFailed
from etl_pipeline.settings import load_settings

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
