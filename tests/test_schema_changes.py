"""Change detection against the previous tables.yml, the loss guard, backups, overrides, bad sources."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from schema_support import STAMP, drop_database, execute, scratch_settings

from etl_pipeline.errors import ConfigError, ConnectionFailed
from etl_pipeline.schema.tables_config import load_tables_config
from etl_pipeline.schema.workflow import SchemaGuardError, analyze_schema

BASE = (
    f"""CREATE TABLE patient (PatNum bigint(20) NOT NULL AUTO_INCREMENT PRIMARY KEY, LName varchar(100),
        SSN varchar(100), Age smallint(6), Note varchar(50), DateTStamp {STAMP}) ENGINE=MyISAM""",
    f"""CREATE TABLE claim (ClaimNum bigint(20) NOT NULL AUTO_INCREMENT PRIMARY KEY, ClaimFee double,
        SecDateTEdit {STAMP}) ENGINE=MyISAM""",
    "CREATE TABLE definition (DefNum bigint(20) NOT NULL AUTO_INCREMENT PRIMARY KEY, ItemName varchar(255))",
    "CREATE TABLE userod (UserNum bigint(20) NOT NULL AUTO_INCREMENT PRIMARY KEY, Password varchar(255))",
)


@pytest.fixture
def source(settings, tmp_path):
    s = scratch_settings(settings, "schema_t_changes", tmp_path / "config")
    execute(s, *BASE, *(f"CREATE TABLE extra{i} (id int PRIMARY KEY)" for i in range(8)))
    yield s
    drop_database(s)


def _changes(summary) -> dict[tuple[str, str], str]:
    report = json.loads(Path(summary["report_json"]).read_text())
    return {
        (c["kind"], c["table"] + ("." + c["column"] if c["column"] else "")): c["severity"]
        for c in report["changes"]
    }


def test_each_kind_of_change_is_detected_with_its_severity(source):
    first = analyze_schema(source)
    assert first["previous_table_count"] == 0 and first["new_table_count"] == 12
    execute(
        source,
        "ALTER TABLE patient ADD COLUMN Email varchar(100)",  # column added: INFO
        "ALTER TABLE patient DROP COLUMN Note",  # column removed: CRITICAL
        "ALTER TABLE patient MODIFY LName varchar(255)",  # same raw type: INFO
        "ALTER TABLE patient MODIFY Age int(11)",  # widening: WARNING
        "ALTER TABLE claim MODIFY ClaimFee varchar(20)",  # incompatible: CRITICAL
        "ALTER TABLE definition DROP PRIMARY KEY, ADD PRIMARY KEY (DefNum, ItemName)",  # PK: CRITICAL
        f"ALTER TABLE userod ADD COLUMN DateTStamp {STAMP}",  # full -> incremental
        "DROP TABLE extra0",  # table removed: CRITICAL
        "CREATE TABLE newthing (id int PRIMARY KEY)",
    )  # table added: INFO
    second = analyze_schema(source)
    changes = _changes(second)
    assert changes == {
        ("column_added", "patient.Email"): "INFO",
        ("column_removed", "patient.Note"): "CRITICAL",
        ("column_retyped", "patient.LName"): "INFO",
        ("column_retyped", "patient.Age"): "WARNING",
        ("column_retyped", "claim.ClaimFee"): "CRITICAL",
        ("nullability_changed", "definition.ItemName"): "INFO",
        ("primary_key_changed", "definition"): "CRITICAL",
        ("column_added", "userod.DateTStamp"): "INFO",
        ("strategy_changed", "userod"): "WARNING",
        ("cursor_changed", "userod"): "WARNING",
        ("table_removed", "extra0"): "CRITICAL",
        ("table_added", "newthing"): "INFO",
    }
    assert second["severity"] == "CRITICAL"
    assert second["backup"] and Path(second["backup"]).read_text().count("extra0:") == 1
    markdown = Path(second["report_markdown"]).read_text()
    assert "| CRITICAL | table_removed | extra0 |" in markdown and "Severity: **CRITICAL**" in markdown
    assert "extra0" not in load_tables_config(source.tables_yml).tables


def test_tier_move_is_info(source):
    (source.config_dir).mkdir(parents=True, exist_ok=True)
    analyze_schema(source)
    execute(source, "INSERT INTO definition (ItemName) VALUES " + ",".join(["('x')"] * 20))
    (source.config_dir / "tables.overrides.yml").write_text(
        "defaults:\n  tier_thresholds: {large: 1000, medium: 100, small: 10}\n"
    )
    changes = _changes(analyze_schema(source))
    assert changes[("tier_changed", "definition")] == "INFO"


def test_unchanged_source_reports_nothing_and_keeps_table_sections(source):
    analyze_schema(source)
    before = source.tables_yml.read_text()
    summary = analyze_schema(source)
    assert summary["changes"] == [] and summary["severity"] == "INFO"
    after = source.tables_yml.read_text()
    assert before[before.index("\ntables:") :] == after[after.index("\ntables:") :]


def test_guard_refuses_losing_too_many_tables_unless_forced(source):
    analyze_schema(source)
    before = source.tables_yml.read_text()
    execute(source, "DROP TABLE extra0", "DROP TABLE extra1")  # 2 of 12 = 17% > 10%
    with pytest.raises(SchemaGuardError, match="lost 17% of the tables"):
        analyze_schema(source)
    assert source.tables_yml.read_text() == before
    assert not list(source.config_dir.glob(".*candidate*"))
    summary = analyze_schema(source, force=True)
    assert summary["new_table_count"] == 10
    assert "extra1" not in load_tables_config(source.tables_yml).tables


def test_guard_share_is_configurable(source):
    analyze_schema(source)
    (source.config_dir / "tables.overrides.yml").write_text("defaults:\n  max_table_loss: 0.25\n")
    execute(source, "DROP TABLE extra0", "DROP TABLE extra1")
    assert analyze_schema(source)["new_table_count"] == 10


def test_overrides_survive_regeneration_and_unknown_names_are_reported(source):
    (source.config_dir).mkdir(parents=True, exist_ok=True)
    (source.config_dir / "tables.overrides.yml").write_text(
        "tables:\n"
        "  patient: {exclude_columns: [SSN, Shoe], lookback_minutes: 180, tier: large}\n"
        "  userod: {exclude_columns: [Password]}\n"
        "  claim: {strategy: full}\n"
        "  extra3: {enabled: false}\n"
        "  ghost: {enabled: false}\n"
    )
    for _ in range(2):
        summary = analyze_schema(source)
        config = load_tables_config(source.tables_yml)
        patient = config.tables["patient"]
        assert patient.excluded_columns == ("SSN",) and "SSN" not in [c.name for c in patient.loaded_columns]
        assert (patient.lookback_minutes, patient.tier, patient.strategy) == (180, "large", "incremental")
        assert config.tables["userod"].excluded_columns == ("Password",)
        claim = config.tables["claim"]
        assert (claim.strategy, claim.cursor, claim.detect_deletes) == ("full", None, False)
        assert config.tables["extra3"].enabled is False
        problems = [line for line in summary["changes"] if "override_unknown" in line]
        assert any("'ghost' does not exist" in p for p in problems)
        assert any("exclude_columns: unknown column 'Shoe'" in p for p in problems)


def test_unreachable_source_leaves_the_old_file_untouched(source):
    analyze_schema(source)
    before = source.tables_yml.read_text()
    dead = replace(source, source=replace(source.source, port=1))
    with pytest.raises(ConnectionFailed, match="127.0.0.1:1"):
        analyze_schema(dead)
    assert source.tables_yml.read_text() == before
    assert len(list(source.reports_dir.glob("*.json"))) == 1


def test_wrong_password_names_user_not_password(source):
    bad = replace(source, source=replace(source.source, password="not-the-password-xyz"))
    with pytest.raises(ConnectionFailed) as err:
        analyze_schema(bad)
    assert "etl_admin" in str(err.value) and "not-the-password-xyz" not in str(err.value)
    assert not source.tables_yml.exists()


def test_bad_overrides_fail_before_anything_is_written(source):
    analyze_schema(source)
    before = source.tables_yml.read_text()
    (source.config_dir / "tables.overrides.yml").write_text("tables:\n  patient: {tier: huge}\n")
    with pytest.raises(
        ConfigError, match=r"tables.overrides.yml:2: tables.patient.tier: 'huge' is not one of"
    ):
        analyze_schema(source)
    assert source.tables_yml.read_text() == before


def test_malformed_previous_file_is_backed_up_and_replaced(source):
    source.config_dir.mkdir(parents=True, exist_ok=True)
    source.tables_yml.write_text("tables: [unclosed\n")
    summary = analyze_schema(source)
    assert summary["previous_table_count"] == 0
    assert Path(summary["backup"]).read_text() == "tables: [unclosed\n"
    assert len(load_tables_config(source.tables_yml).tables) == 12


def test_cli_unreachable_source_exits_with_one_line(source):
    import os
    import subprocess
    import sys

    from etl_pipeline.errors import EXIT_FAILURE
    from etl_pipeline.settings import PROJECT_ROOT

    analyze_schema(source)
    before = source.tables_yml.read_text()
    env = {
        **os.environ,
        "ETL_CONFIG_DIR": str(source.config_dir),
        "SOURCE_HOST": "127.0.0.1",
        "SOURCE_PORT": "1",
        "SOURCE_USER": "etl_reader",
        "SOURCE_PASSWORD": "pw-should-not-show",
    }
    result = subprocess.run(
        check=False,
        args=[sys.executable, "-m", "etl_pipeline.cli", "analyze-schema"],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=60,
    )
    assert result.returncode == EXIT_FAILURE  # a runtime failure, not a configuration error
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1
    assert error_lines[0].startswith(
        "error: cannot connect to source mysql://etl_reader@127.0.0.1:1/opendental: "
    )
    assert "pw-should-not-show" not in result.stderr + result.stdout
    assert source.tables_yml.read_text() == before


def test_backups_are_timestamped_and_pruned(tmp_path):
    from datetime import UTC, datetime, timedelta

    from etl_pipeline.schema.workflow import backup_tables_yml

    output = tmp_path / "tables.yml"
    assert backup_tables_yml(output, tmp_path / "backups") is None
    start = datetime(2026, 1, 4, 8, 0, tzinfo=UTC)
    for week in range(5):
        output.write_text(f"week {week}\n")
        backup_tables_yml(output, tmp_path / "backups", now=start + timedelta(weeks=week), keep=3)
    kept = sorted((tmp_path / "backups").iterdir())
    assert [p.read_text() for p in kept] == ["week 2\n", "week 3\n", "week 4\n"]
    assert kept[0].name == "tables_20260118T080000000000Z.yml"
