"""The source and the warehouse as Airflow Connections (etl_pipeline.connections): read as Airflow reads
them, mapped onto the settings, rendered into the Cosmos dbt profile, refused by name when wrong."""

from __future__ import annotations

import json
import os
import re
from urllib.parse import quote

import pytest

from etl_pipeline.connections import (
    SOURCE_CONN_ID,
    WAREHOUSE_CONN_ID,
    airflow_connection,
    airflow_connection_env,
    connection_from_env,
    env_key,
)
from etl_pipeline.dbt_runner import DBT_PROJECT_DIR, dbt_env
from etl_pipeline.errors import ConfigError
from etl_pipeline.settings import load_settings

SOURCE_KEY, WAREHOUSE_KEY = env_key(SOURCE_CONN_ID), env_key(WAREHOUSE_CONN_ID)
TRICKY_PASSWORD = "p@ss:w/rd%41 #1"

URIS = [
    "mysql://etl_reader:s3cr%40t%3A%2F@od-server.clinic.example:3307/opendental?ssl_mode=VERIFY_CA&ssl_ca=%2Fcerts%2Fca.pem",
    "postgresql://etl:pw@warehouse:6543/analytics?sslmode=verify-full&sslrootcert=/ca.pem",
    "postgres://etl@warehouse/analytics",
    "mysql://od-server/opendental",
    "mysql://u:p@h:3306/db?__extra__=%7B%22ssl%22%3A+%7B%22ca%22%3A+%22%2Fca.pem%22%7D%7D",
    "google-cloud-platform://u@h/x",
]


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No connection settings from the machine: an empty .env, no SOURCE_*/TARGET_*/AIRFLOW_CONN_*."""
    for key in list(os.environ):
        if key.startswith(("SOURCE_", "TARGET_", "AIRFLOW_CONN_")):
            monkeypatch.delenv(key)
    env_file = tmp_path / ".env"
    env_file.write_text("")
    monkeypatch.setenv("ETL_ENV_FILE", str(env_file))
    return env_file


@pytest.mark.parametrize("uri", URIS)
def test_a_uri_reads_as_airflow_reads_it(uri):
    from airflow.sdk.definitions.connection import Connection

    theirs = Connection.from_uri(uri, conn_id="x")
    ours = connection_from_env({"AIRFLOW_CONN_X": uri}, "x")
    assert (ours.conn_type, ours.host, ours.port, ours.schema, ours.login, ours.password) == (
        theirs.conn_type,
        theirs.host or None,
        theirs.port,
        theirs.schema or None,
        theirs.login,
        theirs.password,
    )
    assert dict(ours.extra) == theirs.extra_dejson


def test_the_json_form_reads_as_airflow_reads_it():
    from airflow.sdk.definitions.connection import Connection

    value = json.dumps(
        {
            "conn_type": "postgres",
            "host": "warehouse",
            "login": "etl",
            "password": TRICKY_PASSWORD,
            "schema": "analytics",
            "port": "6543",
            "extra": {"sslmode": "verify-ca", "sslrootcert": "/ca.pem"},
        }
    )
    theirs = Connection.from_json(value, conn_id="analytics_warehouse")
    ours = connection_from_env({WAREHOUSE_KEY: value}, WAREHOUSE_CONN_ID)
    assert (ours.host, ours.port, ours.schema, ours.login, ours.password) == (
        theirs.host,
        theirs.port,
        theirs.schema,
        theirs.login,
        theirs.password,
    )
    assert dict(ours.extra) == theirs.extra_dejson


def test_the_settings_come_from_the_connections_alone(clean_env, monkeypatch):
    monkeypatch.setenv(
        SOURCE_KEY,
        "mysql://etl_reader:p%40ss%3Aw%2Frd%2541%20%231@od-server:3307/opendental"
        "?ssl_mode=verify_identity&ssl_ca=/certs/od-ca.pem&driver=pymysql",
    )
    monkeypatch.setenv(
        WAREHOUSE_KEY,
        json.dumps(
            {
                "conn_type": "postgres",
                "host": "warehouse",
                "port": 6543,
                "schema": "dso",
                "login": "loader",
                "password": TRICKY_PASSWORD,
                "extra": {"sslmode": "verify-full", "sslrootcert": "/certs/pg-ca.pem"},
            }
        ),
    )
    settings = load_settings()
    source, target = settings.source, settings.target
    assert (source.host, source.port, source.database, source.user, source.password) == (
        "od-server",
        3307,
        "opendental",
        "etl_reader",
        TRICKY_PASSWORD,
    )
    assert (source.ssl_mode, source.ssl_ca, source.driver) == (
        "VERIFY_IDENTITY",
        "/certs/od-ca.pem",
        "pymysql",
    )
    assert (target.host, target.port, target.database, target.user, target.password) == (
        "warehouse",
        6543,
        "dso",
        "loader",
        TRICKY_PASSWORD,
    )
    assert (target.sslmode, target.sslrootcert) == ("verify-full", "/certs/pg-ca.pem")
    assert (source.defined_by, target.defined_by) == (SOURCE_KEY, WAREHOUSE_KEY)
    # the password shows in no rendering of the settings
    assert TRICKY_PASSWORD not in repr(settings) + source.display + target.display


def test_the_env_file_is_the_fallback_and_the_environment_wins(clean_env, monkeypatch):
    clean_env.write_text(
        f"{SOURCE_KEY}=mysql://etl_reader:from-file-pw@file-host:3306/opendental\n"
        f"{WAREHOUSE_KEY}='postgres://etl:from-file-pw@file-warehouse:5432/analytics'\n"
    )
    settings = load_settings()
    assert (settings.source.host, settings.target.host) == ("file-host", "file-warehouse")
    monkeypatch.setenv(WAREHOUSE_KEY, "postgres://etl:env-pw@env-warehouse:5432/analytics")
    settings = load_settings()
    assert (settings.source.host, settings.target.host, settings.target.password) == (
        "file-host",
        "env-warehouse",
        "env-pw",
    )


def test_without_connections_the_variables_still_define_both_ends(clean_env, monkeypatch):
    monkeypatch.setenv("SOURCE_HOST", "od-server")
    monkeypatch.setenv("TARGET_URL", "postgresql://etl@warehouse:6543/analytics")
    settings = load_settings()
    assert (settings.source.host, settings.target.port) == ("od-server", 6543)
    assert (settings.source.defined_by, settings.target.defined_by) == ("SOURCE_* settings", "TARGET_URL")


def test_a_connection_without_a_password_takes_it_from_its_own_secret(clean_env, monkeypatch):
    monkeypatch.setenv(SOURCE_KEY, "mysql://etl_reader@od-server:3306/opendental")
    monkeypatch.setenv("SOURCE_PASSWORD", "kept-in-a-secret-of-its-own")
    monkeypatch.setenv("SOURCE_READ_TIMEOUT", "42")
    source = load_settings().source
    assert (source.host, source.password, source.read_timeout) == (
        "od-server",
        "kept-in-a-secret-of-its-own",
        42,
    )


def test_a_url_beside_the_connection_must_agree(clean_env, monkeypatch):
    monkeypatch.setenv(SOURCE_KEY, "mysql://etl_reader:pw1234@od-server:3306/opendental")
    monkeypatch.setenv("SOURCE_URL", "mysql://etl_reader:pw1234@od-server:3306/opendental")
    assert load_settings().source.host == "od-server"
    monkeypatch.setenv("SOURCE_URL", "mysql://etl_reader:pw1234@old-server:3306/opendental")
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert str(refused.value).startswith(f"SOURCE_URL and {SOURCE_KEY} disagree on the host")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            SOURCE_KEY,
            "postgres://etl_reader:pw-not-shown@h:3306/od",
            f"{SOURCE_KEY}: connection opendental_source has conn_type 'postgres', expected mysql or mariadb",
        ),
        (
            WAREHOUSE_KEY,
            "postgres://etl:pw-not-shown@h/analytics?sslmod=verify-full",
            f"{WAREHOUSE_KEY}: connection analytics_warehouse has unknown extra 'sslmod' (known: sslmode, sslrootcert)",
        ),
        (SOURCE_KEY, "mysql://etl_reader:pw-not-shown@h:33o6/od", f"{SOURCE_KEY}: the port is not a number"),
        (
            SOURCE_KEY,
            "mysql://etl_reader:pw-not-shown@h:3306/od?ssl_mode=SOMETIMES",
            f"{SOURCE_KEY}'s ssl_mode='SOMETIMES' is not one of",
        ),
        (SOURCE_KEY, "mysql://etl_reader:pw-not-shown@h:3306/od?driver=odbc", "driver='odbc' is not one of"),
        (
            WAREHOUSE_KEY,
            '{"conn_type": "postgres", "password": "pw-not-shown", "hots": "h"}',
            f"{WAREHOUSE_KEY}: unknown field 'hots'",
        ),
        (WAREHOUSE_KEY, '{"conn_type": "postgres", "password": "pw-not-shown",', "is not valid JSON (line 1"),
        (
            SOURCE_KEY,
            'mysql://u:pw-not-shown@h/od?__extra__={"ssl": {"ca": "/ca.pem", "cert": "/c.pem"}}',
            "extra 'ssl' may only name a CA file",
        ),
    ],
)
def test_a_wrong_connection_is_refused_by_name_without_its_password(
    clean_env, monkeypatch, key, value, message
):
    monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert message in str(refused.value)
    assert "pw-not-shown" not in str(refused.value) and "shown@h" not in str(refused.value)


def test_the_local_airflow_gets_the_same_definitions_as_the_cli(clean_env, monkeypatch):
    monkeypatch.setenv("SOURCE_HOST", "od-server")
    monkeypatch.setenv("SOURCE_PASSWORD", TRICKY_PASSWORD)
    monkeypatch.setenv("SOURCE_SSL_MODE", "REQUIRED")
    monkeypatch.setenv("TARGET_PORT", "6543")
    monkeypatch.setenv("TARGET_PASSWORD", TRICKY_PASSWORD + "-pg")
    monkeypatch.setenv("TARGET_SSLMODE", "verify-ca")
    monkeypatch.setenv("TARGET_SSLROOTCERT", "/ca.pem")
    cli = load_settings()
    conn_env = airflow_connection_env(cli)
    assert set(conn_env) == {SOURCE_KEY, WAREHOUSE_KEY}
    through_airflow = load_settings(environment={**conn_env, "ETL_ENV_FILE": str(clean_env)})
    assert (through_airflow.source, through_airflow.target) == (cli.source, cli.target)
    assert through_airflow.source.password == TRICKY_PASSWORD
    assert through_airflow.source.defined_by == SOURCE_KEY


def test_inside_airflow_the_connection_is_airflows(clean_env, monkeypatch):
    monkeypatch.setenv(
        WAREHOUSE_KEY,
        '{"conn_type": "postgres", "host": "w", "login": "etl", "password": "pw-1234", "schema": "a"}',
    )
    conn = airflow_connection(WAREHOUSE_CONN_ID)
    assert (conn.conn_type, conn.host, conn.login, conn.password, conn.schema) == (
        "postgres",
        "w",
        "etl",
        "pw-1234",
        "a",
    )
    assert conn.origin == "Airflow connection analytics_warehouse"
    assert airflow_connection("no_such_connection") is None
    settings = load_settings(connection=airflow_connection)
    assert (settings.target.host, settings.target.defined_by) == (
        "w",
        "Airflow connection analytics_warehouse",
    )


@pytest.mark.parametrize(("target", "default_sslmode"), [("local", "prefer"), ("prod", "require")])
def test_cosmos_renders_the_profile_the_cli_gives_dbt(clean_env, monkeypatch, target, default_sslmode):
    from etl_pipeline.cosmos_profile import warehouse_profile

    monkeypatch.setenv(
        WAREHOUSE_KEY, f"postgres://loader:{quote(TRICKY_PASSWORD, safe='')}@warehouse:6543/dso"
    )
    mapping = warehouse_profile(target).profile_mapping
    profile = mapping.profile
    cli_env = dbt_env(load_settings())
    assert (profile["host"], profile["port"], profile["dbname"], profile["user"]) == (
        cli_env["TARGET_HOST"],
        int(cli_env["TARGET_PORT"]),
        cli_env["TARGET_DATABASE"],
        cli_env["TARGET_USER"],
    )
    # the password reaches dbt as an environment variable, never in the rendered profile
    assert TRICKY_PASSWORD not in json.dumps(profile)
    assert list(mapping.env_vars.values()) == [TRICKY_PASSWORD] == [cli_env["TARGET_PASSWORD"]]
    # without an sslmode extra: the default the CLI's profiles.yml has for that target
    profiles_yml = (DBT_PROJECT_DIR / "profiles.yml").read_text()
    block = profiles_yml.split(f"    {target}:\n", 1)[1]
    assert re.search(r"env_var\('TARGET_SSLMODE', '([a-z-]+)'\)", block)[1] == default_sslmode
    assert profile["sslmode"] == default_sslmode
    assert (profile["schema"], profile["threads"]) == ("analytics", 4)

    monkeypatch.setenv(
        WAREHOUSE_KEY, "postgres://loader:pw-1234@warehouse/dso?sslmode=verify-full&sslrootcert=/ca.pem"
    )
    profile = warehouse_profile(target).profile_mapping.profile
    assert (profile["sslmode"], profile["sslrootcert"]) == ("verify-full", "/ca.pem")
