"""Settings parsing and secret redaction."""

from __future__ import annotations

import logging

import pytest

from etl_pipeline.db import connect_source, connect_target
from etl_pipeline.errors import ConfigError, ConnectionFailed
from etl_pipeline.redact import install_log_filter, redact, register_secret
from etl_pipeline.settings import MySQLSettings, PostgresSettings, load_settings, read_env_file


def test_env_file_parsing(tmp_path):
    path = tmp_path / ".env"
    path.write_text("# comment\nexport A=1\nB='two words'\n\nC=\"x=y\"\n")
    assert read_env_file(path) == {"A": "1", "B": "two words", "C": "x=y"}


def test_bad_env_file_line_is_named(tmp_path):
    path = tmp_path / ".env"
    path.write_text("A=1\nthis is not a setting\n")
    with pytest.raises(ConfigError, match=r"\.env:2: expected KEY=VALUE"):
        read_env_file(path)


def test_bad_port_is_a_config_error(monkeypatch, tmp_path):
    monkeypatch.setenv("ETL_ENV_FILE", str(tmp_path / "none.env"))
    monkeypatch.setenv("SOURCE_PORT", "33o6")
    with pytest.raises(ConfigError, match="SOURCE_PORT='33o6' is not a port number"):
        load_settings()


def test_redaction_masks_registered_secrets_urls_and_assignments():
    register_secret("s3cr3t-Pa55")
    text = "login failed for s3cr3t-Pa55 at postgresql://etl:hunter22@db:5432/x; password=abc123 PWD: 'q'"
    cleaned = redact(text)
    assert "s3cr3t-Pa55" not in cleaned and "hunter22" not in cleaned and "abc123" not in cleaned
    assert "postgresql://etl:***@db:5432/x" in cleaned


def test_log_filter_scrubs_messages(caplog):
    register_secret("Another-Secret-9")
    logger = logging.getLogger("redaction-test")
    install_log_filter(logger)
    with caplog.at_level(logging.INFO, logger="redaction-test"):
        logger.info("connecting with %s", "Another-Secret-9")
    assert "Another-Secret-9" not in caplog.text and "***" in caplog.text


def test_connection_errors_name_the_server_not_the_password():
    password = "Wr0ng-Password-77"
    register_secret(password)
    source = MySQLSettings(
        host="127.0.0.1", port=1, database="opendental", user="etl_reader", password=password
    )
    with pytest.raises(ConnectionFailed) as excinfo:
        connect_source(source, connect_timeout=2)
    assert "mysql://etl_reader@127.0.0.1:1/opendental" in str(excinfo.value)
    assert password not in str(excinfo.value)
    target = PostgresSettings(host="127.0.0.1", port=1, database="analytics", user="etl", password=password)
    with pytest.raises(ConnectionFailed) as excinfo:
        connect_target(target, connect_timeout=2)
    assert "postgresql://etl@127.0.0.1:1/analytics" in str(excinfo.value)
    assert password not in str(excinfo.value)


def test_wrong_password_message_does_not_echo_it(settings):
    bad = MySQLSettings(
        host=settings.source.host,
        port=settings.source.port,
        database="opendental",
        user="etl_reader",
        password="Not-The-Password-1",
    )
    register_secret("Not-The-Password-1")
    with pytest.raises(ConnectionFailed, match="Access denied") as excinfo:
        connect_source(bad)
    assert "Not-The-Password-1" not in str(excinfo.value)
