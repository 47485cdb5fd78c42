"""The nightly steps as plain functions: conf checks, tables.yml age and environment, planning, the dbt
selection from the manifest, failed-node detection, the notification's severity and the email path."""

from __future__ import annotations

import json
import smtplib
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from airflow_support import SmtpStandIn

from etl_pipeline import cosmos_watcher, dbt_steps, nightly_checks, nightly_notify, nightly_plan, notify
from etl_pipeline.errors import ConfigError, EtlError
from etl_pipeline.settings import load_settings
from etl_pipeline.tables_yml import NewTables


def _write_tables_yml(config_dir, generated_at, environment="local"):
    config_dir.mkdir(parents=True, exist_ok=True)
    column = {"name": "Id", "source_type": "bigint(20)", "target_type": "bigint", "nullable": False}
    tables = {
        name: {
            "target_name": name.lower(),
            "enabled": True,
            "tier": tier,
            "estimated_rows": rows,
            "primary_key": ["Id"],
            "strategy": "full",
            "cursor": None,
            "lookback_minutes": 0,
            "detect_deletes": False,
            "columns": [column],
            "excluded_columns": [],
        }
        for name, tier, rows in [
            ("procedurelog", "large", 2_000_000),
            ("securitylog", "large", 3_000_000),
            ("patient", "small", 30_000),
            ("definition", "tiny", 500),
        ]
    }
    metadata = {
        "generated_at": generated_at.isoformat(),
        "analyzer_version": "1",
        "environment": environment,
        "table_count": len(tables),
        "source_database": "opendental",
    }
    (config_dir / "tables.yml").write_text(
        yaml.safe_dump({"metadata": metadata, "tables": tables}, sort_keys=False)
    )


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    monkeypatch.setenv("ETL_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("ETL_ENVIRONMENT", "local")
    monkeypatch.setenv("ETL_ENV_FILE", str(tmp_path / "none.env"))
    _write_tables_yml(tmp_path / "config", datetime.now(UTC) - timedelta(days=1))
    return load_settings()


def test_params_normalised_and_unknown_tables_named(cfg):
    options = nightly_checks.check_params({"tables": ["patient", "patient"], "max_workers": 3}, cfg)
    assert options == {
        "tables": ["patient"],
        "force_full_refresh": False,
        "skip_validation": False,
        "max_workers": 3,
    }
    with pytest.raises(ConfigError, match=r"unknown table\(s\) nosuch, other"):
        nightly_checks.check_params({"tables": ["patient", "nosuch", "other"]}, cfg)
    with pytest.raises(ConfigError, match="max_workers"):
        nightly_checks.check_params({"max_workers": 40}, cfg)


def test_a_misspelled_option_is_refused_by_name_not_ignored(cfg):
    with pytest.raises(ConfigError, match=r"'force_full_refesh' \(did you mean 'force_full_refresh'\?\)"):
        nightly_checks.check_params({"force_full_refresh": False}, cfg, conf={"force_full_refesh": True})
    with pytest.raises(ConfigError, match=r"unknown option\(s\) 'colour', 'tabels' \(did you mean 'tables'"):
        nightly_checks.check_params({"tabels": ["patient"], "colour": 1}, cfg)
    options = nightly_checks.check_params({}, cfg, conf={"force_full_refresh": True, "tables": None})
    assert options["tables"] is None


def test_tables_yml_age_warns_at_30_days_and_fails_at_90(cfg, tmp_path):
    assert nightly_checks.check_tables_config(cfg)["warnings"] == []
    _write_tables_yml(tmp_path / "config", datetime.now(UTC) - timedelta(days=31))
    assert "31 days old" in nightly_checks.check_tables_config(cfg)["warnings"][0]
    _write_tables_yml(tmp_path / "config", datetime.now(UTC) - timedelta(days=90))
    with pytest.raises(ConfigError, match="generated 90 days ago"):
        nightly_checks.check_tables_config(cfg)


def test_tables_yml_of_another_environment_is_refused(cfg, tmp_path):
    _write_tables_yml(tmp_path / "config", datetime.now(UTC), environment="prod")
    with pytest.raises(ConfigError, match="metadata.environment is 'prod'"):
        nightly_checks.check_tables_config(cfg)


def test_missing_tables_yml_is_named(cfg):
    cfg.tables_yml.unlink()
    with pytest.raises(ConfigError, match="tables.yml"):
        nightly_checks.check_tables_config(cfg)


def test_plan_puts_every_table_in_its_tier_largest_first(cfg):
    no_new = NewTables()  # no source here (the source's new tables: test_nightly_new_tables.py)
    plan = nightly_plan.plan_run(cfg, {"force_full_refresh": True, "max_workers": 3}, new=no_new)
    assert [i["table"] for i in plan["large"]] == ["securitylog", "procedurelog"]
    assert {i["slots"] for i in plan["large"]} == {3} and {i["slots"] for i in plan["tiny"]} == {0}
    assert all(i["full_refresh"] for items in plan.values() for i in items)
    only = nightly_plan.plan_run(cfg, {"tables": ["patient"]}, new=no_new)
    assert [i["table"] for items in only.values() for i in items] == ["patient"]


def test_dbt_selection_follows_the_manifest_downstream():
    models = dbt_steps.dbt_models_for(["patient"])
    assert "stg_opendental__patient" in models and "dim_patient" in models
    assert "stg_opendental__procedurelog" not in models
    # a relationships test runs only when both of its models are selected
    provider = dbt_steps.dbt_models_for(["provider"])
    assert "relationships_dim_patient_primary_provider_id__provider_id__ref_dim_provider_" not in provider
    assert {"dim_provider", "unique_dim_provider_provider_id"} <= provider
    assert dbt_steps.dbt_models_for(None) is None


def test_failed_dbt_nodes_are_the_model_and_test_tasks_not_the_producer():
    states = {
        "dbt_models.dbt_producer_watcher": "failed",
        "dbt_models.dbt_producer_watcher_done": "upstream_failed",
        "dbt_models.dim_clinic.run": "success",  # failed in the build, healed by its retry
        "dbt_models.fct_claim.run": "failed",
        "dbt_models.fct_claim.test": "upstream_failed",
        "dbt_models.stg_opendental__clinic.test": "skipped",
        "dbt_models.dim_provider.run": None,
    }
    assert cosmos_watcher.failed_nodes(states, "dbt_models") == ["fct_claim.run", "fct_claim.test"]
    assert cosmos_watcher.failed_nodes({"dbt_models.dbt_producer_watcher": "failed"}, "dbt_models") == []


def test_tables_yml_checks_are_skipped_on_request_but_not_the_params(cfg):
    cfg.tables_yml.write_text("not: [valid")
    assert nightly_checks.check_tables_config(cfg, {"skip_validation": True}) == {
        "skipped": True,
        "warnings": [],
    }
    assert nightly_checks.drift_check(cfg, {"skip_validation": True}) == {"drift": False, "skipped": True}
    with pytest.raises(ConfigError):
        nightly_checks.check_tables_config(cfg, {"skip_validation": False})


REPORT = {
    "run_id": "r1",
    "status": "failed",
    "failed_tables": ["recall"],
    "parity_failed_tables": [],
    "totals": {"tables": 3, "succeeded": 2, "failed": 1, "rows_read": 10},
}


@pytest.mark.parametrize(
    "outcome, severity",
    [
        (
            {
                "validation": {},
                "report": {
                    **REPORT,
                    "status": "success",
                    "failed_tables": [],
                    "totals": {**REPORT["totals"], "failed": 0},
                },
                "dbt": "success",
            },
            "INFO",
        ),
        ({"validation": {}, "report": REPORT, "dbt": "skipped"}, "WARNING"),
        (
            {
                "validation": {},
                "report": {**REPORT, "totals": {"tables": 1, "succeeded": 0, "failed": 1}},
                "dbt": "skipped",
            },
            "CRITICAL",
        ),
        ({"validation": None, "report": None, "dbt": "skipped"}, "CRITICAL"),
    ],
)
def test_severity_of_a_run(outcome, severity):
    assert nightly_notify.summarise(outcome)[0] == severity


def test_notify_run_sends_then_fails_the_run_and_names_the_tables(caplog):
    with pytest.raises(EtlError, match=r"1 table\(s\) failed, dbt skipped \(recall\)"):
        nightly_notify.notify_run(
            run_id="r1", validation={}, drift=None, report=REPORT, freshness=None, docs=None
        )
    line = next(r.getMessage() for r in caplog.records if "etl_notification" in r.getMessage())
    record = json.loads(line)
    assert record["severity"] == "WARNING" and record["summary"]["failed_tables"] == ["recall"]


def test_the_notification_names_the_failed_dbt_models_and_tests(caplog):
    clean = {**REPORT, "status": "success", "failed_tables": [], "totals": {**REPORT["totals"], "failed": 0}}
    failures = ["stg_opendental__procedurelog.run", "fct_ar_aging.test"] + [f"m{i}.run" for i in range(10)]
    with pytest.raises(EtlError, match="dbt failed"):
        nightly_notify.notify_run(
            run_id="r2",
            validation={},
            drift=None,
            report=clean,
            freshness=None,
            docs=None,
            dbt_failures=failures,
        )
    line = next(r.getMessage() for r in caplog.records if "etl_notification" in r.getMessage())
    record = json.loads(line)
    assert record["severity"] == "WARNING"
    dbt_lines = [d for d in record["details"] if d.startswith("dbt")]
    assert dbt_lines[:3] == [
        "dbt: failed",
        "dbt model failed: stg_opendental__procedurelog",
        "dbt tests failed: fct_ar_aging",
    ]
    assert dbt_lines[-1] == "dbt: 2 more failed task(s), see the dbt_models group" and len(dbt_lines) == 12


@pytest.mark.parametrize(
    "report, docs, state",
    [
        ({"status": "success"}, {"docs_dir": "/d"}, "success"),
        ({"status": "success"}, None, "failed"),  # loading succeeded, dbt did not reach the docs
        ({"status": "failed"}, None, "skipped"),
        (None, None, "skipped"),
    ],
)
def test_dbt_state_from_the_report_and_the_docs(report, docs, state):
    assert nightly_notify.dbt_state(report, docs) == state


def _smtp_env(monkeypatch, stand_in, **extra):
    for key, value in {**stand_in.env, "NOTIFY_EMAIL_TO": "ops@example, lead@example", **extra}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    monkeypatch.setenv("ETL_ENV_FILE", "/nonexistent.env")


def test_email_is_sent_through_a_real_smtp_conversation(monkeypatch):
    with SmtpStandIn("etl", "mail-secret-5521") as server:
        _smtp_env(monkeypatch, server)
        notify.notify("Nightly ETL", "WARNING", {"failed": 1}, ["table failed: recall"])
    assert server.logins == ["etl"]
    (message,) = server.messages
    assert message["To"] == "ops@example, lead@example" and message["Subject"] == "[WARNING] Nightly ETL"
    assert "table failed: recall" in message.get_content()


def test_a_refused_smtp_login_is_logged_without_the_password(monkeypatch, caplog):
    with SmtpStandIn("etl", "the-right-one") as server:
        _smtp_env(monkeypatch, server, SMTP_PASSWORD="wrong-mail-secret-7731")
        notify.notify("Nightly ETL", "CRITICAL", {"failed": 3})
    assert server.messages == []
    assert "email notification failed" in caplog.text and "535" in caplog.text
    assert "wrong-mail-secret-7731" not in caplog.text


def test_email_is_not_attempted_without_configuration(monkeypatch):
    monkeypatch.setattr(smtplib, "SMTP", lambda *a, **k: pytest.fail("no SMTP configured"))
    for key in ("SMTP_HOST", "NOTIFY_EMAIL_TO", "SLACK_WEBHOOK_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("ETL_ENV_FILE", "/nonexistent.env")
    assert notify.notify("Nightly ETL", "INFO", {"failed": 0}) is False
