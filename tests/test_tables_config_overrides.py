"""load_tables_config(path, overrides_path): overrides take effect at read time, without re-analysis."""

from __future__ import annotations

import pytest
from test_schema_validate import _source

from etl_pipeline.errors import ConfigError
from etl_pipeline.schema.analyze import build_analysis, render_tables_yml
from etl_pipeline.schema.overrides import Overrides
from etl_pipeline.schema.tables_config import load_tables_config


@pytest.fixture
def paths(tmp_path):
    tables = tmp_path / "tables.yml"
    tables.write_text(render_tables_yml(build_analysis(_source(), Overrides()).config))
    return tables, tmp_path / "tables.overrides.yml"


def test_without_overrides_the_file_is_read_as_written(paths):
    tables, _ = paths
    config = load_tables_config(tables)
    assert config.tables["patient"].excluded_columns == ()
    assert config.tables["procedurelog"].tier == "medium"


def test_overrides_apply_at_read_time(paths):
    tables, overrides = paths
    overrides.write_text(
        "tables:\n"
        "  patient: {exclude_columns: [ssn], enabled: false}\n"  # case-insensitive name
        "  procedurelog: {tier: large, lookback_minutes: 15, strategy: full}\n"
    )
    config = load_tables_config(tables, overrides)
    patient = config.tables["patient"]
    assert patient.excluded_columns == ("SSN",) and not patient.enabled
    assert [c.name for c in patient.loaded_columns] == ["PatNum", "DateTStamp"]
    proc = config.tables["procedurelog"]
    assert (proc.tier, proc.strategy, proc.cursor, proc.lookback_minutes) == ("large", "full", None, 15)
    assert [t.name for t in config.enabled_tables()] == ["procedurelog"]
    # applying the same overrides again changes nothing
    again = load_tables_config(tables, overrides)
    assert again.tables == config.tables


def test_missing_overrides_file_means_none(paths):
    tables, overrides = paths
    assert load_tables_config(tables, overrides).tables == load_tables_config(tables).tables


def test_unknown_names_in_overrides_are_logged_not_fatal(paths, caplog):
    tables, overrides = paths
    overrides.write_text("tables:\n  ghost: {enabled: false}\n  patient: {exclude_columns: [Nope]}\n")
    config = load_tables_config(tables, overrides)
    assert "ghost" not in config.tables
    assert "'ghost' does not exist" in caplog.text and "unknown column 'Nope'" in caplog.text


def test_pk_cannot_be_excluded(paths, caplog):
    tables, overrides = paths
    overrides.write_text("tables:\n  patient: {exclude_columns: [PatNum]}\n")
    assert load_tables_config(tables, overrides).tables["patient"].excluded_columns == ()
    assert "cannot be excluded" in caplog.text


def test_malformed_overrides_raise_with_line(paths):
    tables, overrides = paths
    overrides.write_text("tables:\n  patient: {tier: [\n")
    with pytest.raises(ConfigError, match=r"tables.overrides.yml:\d+: \(file\): malformed YAML"):
        load_tables_config(tables, overrides)
    overrides.write_text("tables:\n  patient:\n    enabled: maybe\n")
    with pytest.raises(
        ConfigError, match=r"tables.overrides.yml:3: tables.patient.enabled: expected true/false"
    ):
        load_tables_config(tables, overrides)


def test_impossible_strategy_overrides_are_ignored_and_reported(tmp_path, caplog):
    from etl_pipeline.schema.introspect import SourceColumn, SourceSchema, SourceTable

    keyless = SourceTable(
        "nokey",
        "MyISAM",
        5,
        0,
        0,
        columns=[
            SourceColumn("Thing", "varchar(10)", True, None, ""),
            SourceColumn("Touched", "timestamp", False, None, "on update current_timestamp()"),
        ],
    )
    tables = tmp_path / "tables.yml"
    tables.write_text(
        render_tables_yml(build_analysis(SourceSchema("x", "db", {"nokey": keyless}), Overrides()).config)
    )
    overrides = tmp_path / "tables.overrides.yml"
    overrides.write_text("tables:\n  nokey: {strategy: incremental, cursor: Touched}\n")
    table = load_tables_config(tables, overrides).tables["nokey"]
    assert (table.strategy, table.cursor) == ("full", None)
    assert "needs a primary key" in caplog.text
