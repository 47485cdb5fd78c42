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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tables:\n  patient:\n    flavour: x\n", r":3: tables\.patient\.flavour: unknown key"),
        (
            "tables:\n  patient: {tier: big}\n",
            r":2: tables\.patient\.tier: 'big' is not one of large, medium",
        ),
        ("tables:\n  patient:\n    strategy: cdc\n", r":3: tables\.patient\.strategy: 'cdc' is not one of"),
        (
            "tables:\n  patient: {lookback_minutes: '60'}\n",
            r":2: tables\.patient\.lookback_minutes: expected an",
        ),
        (
            "tables:\n  patient: {exclude_columns: SSN}\n",
            r":2: tables\.patient\.exclude_columns: expected a list",
        ),
        ("tables: [patient]\n", r":1: tables: expected a mapping"),
        (
            "defaults:\n  tier_thresholds: {large: 10, medium: 100}\n",
            r":2: defaults\.tier_thresholds: need large >= medium >= small >= 0",
        ),
        ("defaults: {max_table_loss: 2}\n", r":1: defaults\.max_table_loss: must be between 0 and 1"),
        (
            "tables:\n  patient: {lookback_minutes: -5}\n",
            r":2: tables\.patient\.lookback_minutes: must not be",
        ),
        ("defaults:\n  lookback_minutes: -1\n", r":2: defaults\.lookback_minutes: must not be negative"),
    ],
)
def test_overrides_that_cannot_be_applied_stop_the_load_at_their_line(paths, text, expected):
    tables, overrides = paths
    overrides.write_text(text)
    with pytest.raises(ConfigError, match=r"tables\.overrides\.yml" + expected):
        load_tables_config(tables, overrides)


def test_defaults_are_parsed(tmp_path):
    from etl_pipeline.schema.constants import Thresholds
    from etl_pipeline.schema.overrides import load_overrides

    path = tmp_path / "tables.overrides.yml"
    path.write_text(
        "defaults:\n"
        "  lookback_minutes: 15\n"
        "  tier_thresholds: {large: 500, medium: 50, small: 5}\n"
        "  max_table_loss: 0\n"
        "tables:\n  patient: {note: PII, exclude_columns: [SSN]}\n"
    )
    overrides = load_overrides(path)
    assert (overrides.lookback_minutes, overrides.thresholds, overrides.max_table_loss) == (
        15,
        Thresholds(500, 50, 5),
        0.0,
    )
    assert overrides.tables == {"patient": {"note": "PII", "exclude_columns": ["SSN"]}}
    assert load_overrides(tmp_path / "absent.yml") == Overrides()


def test_loading_parses_and_leaves_validation_to_validate_config(paths):
    """Problems the loader can work with do not stop it; the full check finds them."""
    from etl_pipeline.schema.validate import validate_tables_config

    tables, _ = paths
    text = tables.read_text()
    tables.write_text(
        text.replace("table_count: 2", "table_count: 3").replace(
            "target_type: double precision", "target_type: real"
        )
    )
    assert load_tables_config(tables).tables["procedurelog"].columns[1].target_type == "real"
    assert [e.path for e in validate_tables_config(tables)] == [
        "tables.procedurelog.columns[1].target_type",
        "metadata.table_count",
    ]


def test_a_table_entry_the_loader_cannot_use_names_file_line_and_field(paths):
    tables, _ = paths
    text = tables.read_text()
    tables.write_text(text.replace("tier: medium", "tier: gigantic"))
    line = next(i for i, row in enumerate(tables.read_text().splitlines(), 1) if "gigantic" in row)
    with pytest.raises(
        ConfigError, match=rf"tables\.yml:{line}: tables\.procedurelog\.tier: 'gigantic' is not one of"
    ):
        load_tables_config(tables)
    tables.write_text(text.replace("    strategy: incremental\n", "", 1))
    with pytest.raises(ConfigError, match=r"tables\.yml:\d+: tables\.\w+: missing required key 'strategy'"):
        load_tables_config(tables)
    tables.write_text("tables:\n  patient: {tier: [\n")
    with pytest.raises(ConfigError, match=r"tables\.yml:\d+: \(file\): malformed YAML"):
        load_tables_config(tables)
