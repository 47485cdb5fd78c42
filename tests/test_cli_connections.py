"""`etl test-connections`: both ends against the test stack (reachable, TLS off, versions, the reader's grants
without the password hash), a writable source user warned about, an unreachable end failing the command;
and the grant parsing on the forms MariaDB and MySQL print."""

from __future__ import annotations

import os
import re
from dataclasses import replace

import pytest
from test_cli_support import etl, etl_json

from etl_pipeline.connection_commands import scrub_grant, write_privileges
from etl_pipeline.connections import airflow_connection_env
from etl_pipeline.db import AVAILABLE_DRIVERS
from etl_pipeline.settings import load_settings, read_env_file

PASSWORD_HASH = re.compile(r"\*[0-9A-F]{40}")


@pytest.mark.parametrize("driver", AVAILABLE_DRIVERS)
def test_both_ends_reachable_with_the_readers_grants(local_stack, driver):
    document, done = etl_json("test-connections", SOURCE_DRIVER=driver)
    source, target = document["source"], document["target"]
    assert document["ok"] is True and source["ok"] and target["ok"]
    assert source["url"] == f"mysql://etl_reader@127.0.0.1:{local_stack.mariadb_port}/opendental"
    assert (source["driver"], source["tls"], source["write_privileges"]) == (driver, None, [])
    assert "MariaDB" in source["server_version"] and source["user"].startswith("etl_reader@")
    assert any("GRANT SELECT, SHOW VIEW ON `opendental`.* TO `etl_reader`@" in g for g in source["grants"])
    assert (
        target["server_version"].startswith("PostgreSQL ")
        and target["user"] == "etl"
        and target["tls"] is None
    )
    assert "IDENTIFIED" not in done.stdout and not PASSWORD_HASH.search(done.stdout)


def test_text_output_names_both_ends(local_stack):
    done = etl("test-connections")
    assert done.returncode == 0, done.stderr[-1500:]
    lines = done.stdout.splitlines()
    assert lines[0].split() == [
        "source",
        "ok",
        f"mysql://etl_reader@127.0.0.1:{local_stack.mariadb_port}/opendental",
        "(SOURCE_*",
        "settings)",
    ]
    assert "        TLS     off" in lines
    assert any(line.startswith("target  ok      postgresql://etl@127.0.0.1:") for line in lines)
    assert "warning" not in done.stdout


def test_a_source_user_that_can_write_is_warned_about(local_stack):
    creds = read_env_file(local_stack.paths.secrets_file)
    admin = {"SOURCE_USER": "etl_admin", "SOURCE_PASSWORD": creds["SOURCE_ADMIN_PASSWORD"]}
    document, done = etl_json("test-connections", **admin)
    assert document["ok"] is True  # a warning, not a failure
    assert document["source"]["write_privileges"] == ["ALL PRIVILEGES on *.*"]  # the local stack's admin
    assert "IDENTIFIED" not in done.stdout and not PASSWORD_HASH.search(done.stdout)
    text = etl("test-connections", **admin)
    assert text.returncode == 0
    assert "warning: the source user can write (" in text.stdout and "use a read-only user" in text.stdout
    assert creds["SOURCE_ADMIN_PASSWORD"] not in text.stdout + text.stderr + done.stdout + done.stderr


def test_an_unreachable_end_fails_the_command(local_stack):
    document, done = etl_json("test-connections", expect=1, TARGET_PORT="1")
    assert document["ok"] is False and document["source"]["ok"] is True
    target = document["target"]
    assert target["reachable"] is False and target["server_version"] is None
    assert target["error"].startswith("cannot connect to target postgresql://etl@127.0.0.1:1/analytics: ")
    text = etl("test-connections", SOURCE_PASSWORD="Wrong-Pass-5521")
    assert text.returncode == 1
    assert text.stdout.splitlines()[0].split()[:2] == ["source", "FAILED"]
    assert "Access denied" in text.stdout and "Wrong-Pass-5521" not in text.stdout + text.stderr


@pytest.mark.parametrize(
    "grant,scrubbed",
    [
        (
            "GRANT USAGE ON *.* TO `etl_reader`@`%` IDENTIFIED BY PASSWORD '*A4B6157319038724E3560894F7F932C8886EBFCF'",
            "GRANT USAGE ON *.* TO `etl_reader`@`%`",
        ),
        (
            "GRANT USAGE ON *.* TO `r`@`h` IDENTIFIED BY PASSWORD '*A4B6157319038724E3560894F7F932C8886EBFCF' "
            "REQUIRE SSL WITH MAX_QUERIES_PER_HOUR 10",
            "GRANT USAGE ON *.* TO `r`@`h` REQUIRE SSL WITH MAX_QUERIES_PER_HOUR 10",
        ),
        (
            "GRANT USAGE ON *.* TO `r`@`h` IDENTIFIED VIA ed25519 USING 'ZIgUREUg5PVgQ6LskhXmO+eZLS0nC8be6HPjYWR4YJY' "
            "OR unix_socket",
            "GRANT USAGE ON *.* TO `r`@`h`",
        ),
        ("GRANT SELECT, SHOW VIEW ON `opendental`.* TO `etl_reader`@`127.0.0.1`", None),
        ("GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION", None),
    ],
)
def test_grants_lose_their_identified_part(grant, scrubbed):
    assert scrub_grant(grant) == (scrubbed or grant)


@pytest.mark.parametrize(
    "grants,writes",
    [
        (["GRANT USAGE ON *.* TO `u`@`h`", "GRANT SELECT, SHOW VIEW ON `opendental`.* TO `u`@`h`"], []),
        (
            ["GRANT SELECT (`PatNum`, `LName`), UPDATE (`LName`) ON `opendental`.`patient` TO `u`@`h`"],
            ["UPDATE on `opendental`.`patient`"],
        ),
        (
            ["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"],
            ["ALL PRIVILEGES on *.*", "GRANT OPTION on *.*"],
        ),
        (
            ["GRANT EXECUTE ON PROCEDURE `opendental`.`p` TO `u`@`h`"],
            ["EXECUTE on PROCEDURE `opendental`.`p`"],
        ),
        (
            ["GRANT SELECT, INSERT, DELETE ON `opendental`.* TO 'u'@'h'"],
            ["INSERT on `opendental`.*", "DELETE on `opendental`.*"],
        ),
        (["GRANT `reporting` TO `u`@`h`"], []),  # a role: its own grants are listed apart
    ],
)
def test_write_privileges_are_found_with_their_object(grants, writes):
    assert write_privileges(grants) == writes


def test_the_airflow_connections_alone_reach_both_ends(local_stack, tmp_path):
    """AIRFLOW_CONN_* URIs as a deployment sets them, and no other credentials anywhere (an empty .env)."""
    settings = load_settings()
    empty = tmp_path / "empty.env"
    empty.write_text("")
    env = {key: "" for key in os.environ if key.startswith(("SOURCE_", "TARGET_"))}
    env.update(airflow_connection_env(settings), ETL_ENV_FILE=str(empty))
    document, done = etl_json("test-connections", **env)
    assert document["ok"] is True
    assert (document["source"]["defined_by"], document["target"]["defined_by"]) == (
        "AIRFLOW_CONN_OPENDENTAL_SOURCE",
        "AIRFLOW_CONN_ANALYTICS_WAREHOUSE",
    )
    assert document["source"]["url"] == f"mysql://etl_reader@127.0.0.1:{local_stack.mariadb_port}/opendental"
    text = etl("test-connections", **env)
    assert text.returncode == 0 and "(AIRFLOW_CONN_ANALYTICS_WAREHOUSE)" in text.stdout
    # the same connection with a wrong password fails, and does not show it
    wrong = airflow_connection_env(
        replace(settings, source=replace(settings.source, password="Wrong-Pass-7731"))
    )
    failed = etl("test-connections", **{**env, **wrong})
    assert failed.returncode == 1 and "Access denied" in failed.stdout
    everything = done.stdout + done.stderr + text.stdout + text.stderr + failed.stdout + failed.stderr
    for secret in (settings.source.password, settings.target.password, "Wrong-Pass-7731"):
        assert secret not in everything
