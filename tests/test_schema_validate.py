"""validate-config: schema errors with file:line, for tables.yml and the overrides file."""

from __future__ import annotations

import subprocess
import sys

import pytest

from etl_pipeline.errors import EXIT_CONFIG
from etl_pipeline.schema.analyze import build_analysis, render_tables_yml
from etl_pipeline.schema.introspect import SourceColumn, SourceIndex, SourceSchema, SourceTable
from etl_pipeline.schema.overrides import Overrides
from etl_pipeline.schema.validate import validate_tables_config
from etl_pipeline.settings import PROJECT_ROOT


def _source() -> SourceSchema:
    stamp = "on update current_timestamp()"
    procedurelog = SourceTable(
        "procedurelog",
        "MyISAM",
        818050,
        0,
        0,
        columns=[
            SourceColumn("ProcNum", "bigint(20)", False, None, "auto_increment"),
            SourceColumn("ProcFee", "double", False, "0", ""),
            SourceColumn("DateTStamp", "timestamp", False, "current_timestamp()", stamp),
        ],
        indexes={"PRIMARY": SourceIndex("PRIMARY", True, ["ProcNum"])},
    )
    patient = SourceTable(
        "patient",
        "MyISAM",
        35135,
        0,
        0,
        columns=[
            SourceColumn("PatNum", "bigint(20)", False, None, "auto_increment"),
            SourceColumn("SSN", "varchar(100)", True, "''", ""),
            SourceColumn("DateTStamp", "timestamp", False, "current_timestamp()", stamp),
        ],
        indexes={"PRIMARY": SourceIndex("PRIMARY", True, ["PatNum"])},
    )
    return SourceSchema("10.11.19-MariaDB", "opendental", {"procedurelog": procedurelog, "patient": patient})


@pytest.fixture
def tables_yml(tmp_path):
    path = tmp_path / "tables.yml"
    path.write_text(render_tables_yml(build_analysis(_source(), Overrides()).config))
    return path


def _line_of(path, needle: str, after: str = "") -> int:
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    return next(i for i, line in enumerate(lines) if i >= start and needle in line) + 1


def _edit(path, old: str, new: str, after: str = "") -> None:
    text = path.read_text()
    cut = text.index(after) if after else 0
    path.write_text(text[:cut] + text[cut:].replace(old, new, 1))


def test_generated_file_is_valid(tables_yml):
    assert validate_tables_config(tables_yml) == []


def test_unknown_cursor_column_names_file_line_and_field(tables_yml):
    _edit(tables_yml, "cursor: DateTStamp", "cursor: DateTStmp", after="procedurelog:")
    line = _line_of(tables_yml, "cursor: DateTStmp")
    errors = validate_tables_config(tables_yml)
    assert [str(e) for e in errors] == [
        f'{tables_yml}:{line}: tables.procedurelog.cursor: unknown column "DateTStmp"'
    ]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "tier: medium",
            "tier: gigantic",
            "tables.procedurelog.tier: 'gigantic' is not one of large, medium, small, tiny",
        ),
        (
            "strategy: incremental",
            "strategy: sometimes",
            "tables.procedurelog.strategy: 'sometimes' is not one of",
        ),
        (
            "enabled: true",
            "enabled: 'yes please'",
            "tables.procedurelog.enabled: expected true/false, got 'yes please'",
        ),
        (
            "lookback_minutes: 60",
            "lookback_minutes: soon",
            "tables.procedurelog.lookback_minutes: expected an integer",
        ),
        (
            "lookback_minutes: 60",
            "lookback_minutes: -5",
            "tables.procedurelog.lookback_minutes: must not be negative",
        ),
        (
            "detect_deletes: true",
            "detect_deletes: true\n    colour: blue",
            "tables.procedurelog.colour: unknown key",
        ),
        (
            "primary_key: [ProcNum]",
            "primary_key: [ProcNumber]",
            'tables.procedurelog.primary_key: unknown column "ProcNumber"',
        ),
        (
            "primary_key: [ProcNum]",
            "primary_key: ProcNum",
            "tables.procedurelog.primary_key: expected a list",
        ),
        (
            "target_type: double precision",
            "target_type: real",
            "tables.procedurelog.columns[1].target_type: 'real' does not match the type mapping for 'double'",
        ),
        (
            "source_type: double",
            "source_type: hyperdouble",
            "tables.procedurelog.columns[1].source_type: no PostgreSQL mapping for MySQL type 'hyperdouble'",
        ),
        (
            "cursor: DateTStamp",
            "cursor: null",
            "tables.procedurelog.cursor: strategy incremental needs a cursor column",
        ),
        (
            "excluded_columns: []",
            "excluded_columns: [Nope]",
            'tables.procedurelog.excluded_columns: unknown column "Nope"',
        ),
    ],
)
def test_bad_values_are_reported_on_their_line(tables_yml, old, new, expected):
    _edit(tables_yml, old, new, after="procedurelog:")
    errors = validate_tables_config(tables_yml)
    assert errors, "expected an error"
    first_new_line = new.splitlines()[-1].strip()
    assert expected in str(errors[0])
    assert errors[0].line == _line_of(tables_yml, first_new_line, after="procedurelog:")


def test_missing_required_key_and_unknown_top_level_key(tables_yml):
    text = tables_yml.read_text().replace("    strategy: incremental\n", "", 1) + "extras: 1\n"
    tables_yml.write_text(text)
    messages = [e.message for e in validate_tables_config(tables_yml)]
    assert "missing required key 'strategy'" in messages
    assert any(m.startswith("unknown key") for m in messages)


def test_duplicate_keys_are_errors(tables_yml):
    _edit(tables_yml, "tier: medium", "tier: medium\n    tier: large", after="procedurelog:")
    assert any(e.message == "duplicate key" for e in validate_tables_config(tables_yml))


def test_malformed_yaml_gives_its_line(tmp_path):
    path = tmp_path / "tables.yml"
    path.write_text("tables:\n  patient:\n    tier: [small\n    strategy: full\n")
    (error,) = validate_tables_config(path)
    assert error.path == "(file)" and "malformed YAML" in error.message and error.line >= 3


def test_missing_file(tmp_path):
    (error,) = validate_tables_config(tmp_path / "nope.yml")
    assert "not found" in error.message


def test_overrides_naming_unknown_tables_and_columns(tables_yml, tmp_path):
    overrides = tmp_path / "tables.overrides.yml"
    overrides.write_text(
        "tables:\n"
        "  patient:\n"
        "    exclude_columns: [SSN, ShoeSize]\n"
        "  ghost: {enabled: false}\n"
        "  procedurelog: {cursor: Nope, tier: big, flavour: x, lookback_minutes: '60'}\n"
        "defaults: {max_table_loss: 3}\n"
    )
    errors = [str(e) for e in validate_tables_config(tables_yml, overrides)]
    assert f'{overrides}:3: tables.patient.exclude_columns: unknown column "ShoeSize"' in errors
    assert f'{overrides}:4: tables.ghost: unknown table "ghost" (not in tables.yml)' in errors
    assert any(e.startswith(f"{overrides}:5: tables.procedurelog.flavour: unknown key") for e in errors)
    assert any(e.startswith(f"{overrides}:5: tables.procedurelog.tier: 'big' is not one of") for e in errors)
    assert any(
        e.startswith(f"{overrides}:5: tables.procedurelog.lookback_minutes: expected an integer")
        for e in errors
    )
    assert f'{overrides}:5: tables.procedurelog.cursor: unknown column "Nope"' in errors
    assert f"{overrides}:6: defaults.max_table_loss: must be between 0 and 1" in errors


def test_committed_example_overrides_are_well_formed():
    from etl_pipeline.schema.validate import validate_overrides_file

    assert validate_overrides_file(PROJECT_ROOT / "etl_pipeline" / "config" / "tables.overrides.yml") == []


def test_cli_exit_codes(tables_yml, tmp_path):
    def run(*args):
        return subprocess.run(
            check=False,
            args=[sys.executable, "-m", "etl_pipeline.cli", "validate-config", *args],
            capture_output=True,
            text=True,
            cwd=PROJECT_ROOT,
            timeout=60,
        )

    empty_overrides = tmp_path / "none.yml"
    ok = run("--file", str(tables_yml), "--overrides", str(empty_overrides))
    assert ok.returncode == 0 and "ok" in ok.stdout
    _edit(tables_yml, "cursor: DateTStamp", "cursor: DateTStmp", after="procedurelog:")
    bad = run("--file", str(tables_yml), "--overrides", str(empty_overrides))
    assert bad.returncode == EXIT_CONFIG
    assert 'tables.procedurelog.cursor: unknown column "DateTStmp"' in bad.stdout


def test_table_count_must_match(tables_yml):
    _edit(tables_yml, "table_count: 2", "table_count: 3")
    (error,) = validate_tables_config(tables_yml)
    assert error.path == "metadata.table_count" and "says 3 but the file lists 2 tables" in error.message
