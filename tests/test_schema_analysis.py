"""analyze-schema on real MariaDB tables: classification, keys, types, quoting, stable output."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from schema_support import OPENDENTAL_LIKE, drop_database, execute, scratch_settings

from etl_pipeline.db import connect_source
from etl_pipeline.schema.analyze import analyze_source, render_tables_yml, run_analysis, tables_section
from etl_pipeline.schema.classify import Thresholds, round_estimate, tier_for
from etl_pipeline.schema.introspect import introspect
from etl_pipeline.schema.tables_config import load_tables_config
from etl_pipeline.schema.workflow import analyze_schema
from etl_pipeline.settings import PROJECT_ROOT
from etl_pipeline.type_mapping import map_column_type


@pytest.fixture(scope="module")
def od_source(settings, tmp_path_factory):
    s = scratch_settings(settings, "schema_t_analysis", tmp_path_factory.mktemp("analysis-config"))
    execute(s, *OPENDENTAL_LIKE)
    yield s
    drop_database(s)


EXPECTED = {
    # table: (strategy, cursor, primary key, detect_deletes)
    "patient": ("incremental", "DateTStamp", ["PatNum"], True),
    "claimproc": ("incremental", "SecDateTEdit", ["ClaimProcNum"], True),
    "securitylog": ("append_only", "SecurityLogNum", ["SecurityLogNum"], False),
    "histappointment": ("append_only", "HistApptNum", ["HistApptNum"], False),
    "auditentry": ("append_only", "AuditNum", ["AuditNum"], False),
    "definition": ("full", None, ["DefNum"], False),
    "userod": ("full", None, ["UserNum"], False),
    "scheduleop": ("incremental", "DateTStamp", ["ScheduleNum", "OperatoryNum"], True),
    "nokey": ("full", None, [], False),
    "prefs": ("full", None, ["PrefName"], False),
}


def test_every_table_is_classified_by_the_rules(od_source):
    config = analyze_source(od_source)
    assert sorted(config.tables) == sorted(EXPECTED)
    for name, (strategy, cursor, pk, deletes) in EXPECTED.items():
        table = config.tables[name]
        assert (table.strategy, table.cursor, list(table.primary_key), table.detect_deletes) == (
            strategy,
            cursor,
            pk,
            deletes,
        ), name
        assert table.lookback_minutes == (60 if strategy == "incremental" else 0)
        assert table.tier == "tiny"
        assert table.target_name == name.lower()


def test_columns_carry_source_and_lossless_target_types(od_source):
    config = analyze_source(od_source)
    patient = config.tables["patient"]
    assert [c.name for c in patient.columns] == [
        "PatNum",
        "LName",
        "SSN",
        "PatStatus",
        "DateTStamp",
        "SecDateEntry",
    ]
    status = patient.column("PatStatus")
    assert (status.source_type, status.target_type, status.nullable) == (
        "tinyint(3) unsigned",
        "smallint",
        False,
    )
    assert patient.column("DateTStamp").target_type == "timestamptz"
    # MariaDB reports JSON as longtext + json_valid() CHECK: recorded as json, mapped to jsonb
    value = config.tables["prefs"].column("ValueString")
    assert (value.source_type, value.target_type) == ("json", "jsonb")


def test_introspection_reads_indexes_sizes_and_on_update(od_source):
    schema = introspect(od_source.source)
    patient = schema.tables["patient"]
    assert patient.primary_key == ["PatNum"]
    assert "DateTStamp" in patient.leading_index_columns()
    assert patient.column("DateTStamp").on_update and patient.column("PatNum").auto_increment
    assert patient.column("SecDateEntry").default in ("'0001-01-01'", "0001-01-01")
    assert patient.data_bytes >= 0 and patient.index_bytes > 0
    assert schema.server_version


def test_rows_estimates_round_and_pick_tiers(od_source):
    execute(
        od_source,
        "INSERT INTO definition (Category, ItemName) VALUES "
        + ",".join(f"({i % 50}, 'x')" for i in range(1234)),
    )
    try:
        config = analyze_source(od_source)
        assert config.tables["definition"].estimated_rows == 1200  # MyISAM count 1234, 2 significant digits
        assert config.tables["definition"].tier == "tiny"
    finally:
        execute(od_source, "DELETE FROM definition")


@pytest.mark.parametrize(
    ("rows", "tier"),
    [
        (0, "tiny"),
        (9_999, "tiny"),
        (10_000, "small"),
        (99_999, "small"),
        (100_000, "medium"),
        (999_999, "medium"),
        (1_000_000, "large"),
        (4_737_615, "large"),
    ],
)
def test_tier_thresholds(rows, tier):
    assert tier_for(rows) == tier


def test_tier_thresholds_are_configurable():
    custom = Thresholds(large=500, medium=50, small=5)
    assert [tier_for(n, custom) for n in (4, 5, 50, 499, 500)] == [
        "tiny",
        "small",
        "medium",
        "medium",
        "large",
    ]
    with pytest.raises(ValueError):
        Thresholds(large=10, medium=100, small=1)


def test_round_estimate_keeps_two_significant_digits():
    assert [round_estimate(n) for n in (0, 7, 99, 100, 1234, 35135, 818050, 4737615)] == [
        0,
        7,
        99,
        100,
        1200,
        35000,
        820000,
        4700000,
    ]


def test_two_runs_give_byte_identical_table_sections(od_source):
    first = render_tables_yml(analyze_source(od_source))
    second = render_tables_yml(analyze_source(od_source))
    assert tables_section(first) == tables_section(second)
    assert "generated_at" not in tables_section(first)
    a, b = yaml.safe_load(first)["metadata"], yaml.safe_load(second)["metadata"]
    assert a["schema_fingerprint"] == b["schema_fingerprint"] and a["schema_fingerprint"].startswith(
        "sha256:"
    )
    assert a["table_count"] == len(EXPECTED) and a["analyzer_version"] and a["source_server_version"]
    assert list(yaml.safe_load(first)["tables"]) == sorted(EXPECTED)


def test_fingerprint_covers_every_table_including_disabled(od_source):
    before = analyze_source(od_source).metadata["schema_fingerprint"]
    (od_source.config_dir / "tables.overrides.yml").write_text("tables:\n  nokey: {enabled: false}\n")
    try:
        disabled = analyze_source(od_source)
        assert disabled.tables["nokey"].enabled is False
        assert disabled.metadata["schema_fingerprint"] == before
        execute(od_source, "ALTER TABLE nokey ADD COLUMN Extra int")
        assert analyze_source(od_source).metadata["schema_fingerprint"] != before
    finally:
        execute(od_source, "ALTER TABLE nokey DROP COLUMN Extra")
        (od_source.config_dir / "tables.overrides.yml").unlink()


def test_every_mapped_mysql_type_is_written_with_its_lossless_target(settings, tmp_path):
    columns = {
        "c_tinyint": "tinyint(4)",
        "c_tinyint_u": "tinyint(3) unsigned",
        "c_bool": "tinyint(1)",
        "c_smallint": "smallint(6)",
        "c_smallint_u": "smallint(5) unsigned",
        "c_mediumint": "mediumint(9)",
        "c_mediumint_u": "mediumint(8) unsigned",
        "c_int": "int(11)",
        "c_int_u": "int(10) unsigned",
        "c_bigint": "bigint(20)",
        "c_bigint_u": "bigint(20) unsigned",
        "c_decimal": "decimal(12,4)",
        "c_numeric": "decimal(65,30)",
        "c_float": "float",
        "c_double": "double",
        "c_bit1": "bit(1)",
        "c_bit9": "bit(9)",
        "c_year": "year(4)",
        "c_date": "date",
        "c_datetime": "datetime",
        "c_datetime6": "datetime(6)",
        "c_timestamp": "timestamp",
        "c_timestamp3": "timestamp(3)",
        "c_time": "time",
        "c_time6": "time(6)",
        "c_char": "char(1)",
        "c_varchar": "varchar(255)",
        "c_tinytext": "tinytext",
        "c_text": "text",
        "c_mediumtext": "mediumtext",
        "c_longtext": "longtext",
        "c_binary": "binary(16)",
        "c_varbinary": "varbinary(64)",
        "c_tinyblob": "tinyblob",
        "c_blob": "blob",
        "c_mediumblob": "mediumblob",
        "c_longblob": "longblob",
        "c_enum": "enum('a','b','it''s')",
        "c_set": "set('x','y')",
        "c_json": "longtext",
        "c_geometry": "geometry",
        "c_point": "point",
        "c_zerofill": "int(5) unsigned zerofill",
    }
    expected = {
        "c_tinyint": "smallint",
        "c_tinyint_u": "smallint",
        "c_bool": "smallint",
        "c_smallint": "smallint",
        "c_smallint_u": "integer",
        "c_mediumint": "integer",
        "c_mediumint_u": "integer",
        "c_int": "integer",
        "c_int_u": "bigint",
        "c_bigint": "bigint",
        "c_bigint_u": "numeric(20,0)",
        "c_decimal": "numeric(12,4)",
        "c_numeric": "numeric(65,30)",
        "c_float": "real",
        "c_double": "double precision",
        "c_bit1": "boolean",
        "c_bit9": "bit varying(9)",
        "c_year": "smallint",
        "c_date": "date",
        "c_datetime": "timestamp",
        "c_datetime6": "timestamp(6)",
        "c_timestamp": "timestamptz",
        "c_timestamp3": "timestamptz(3)",
        "c_time": "interval",
        "c_time6": "interval",
        "c_char": "text",
        "c_varchar": "text",
        "c_tinytext": "text",
        "c_text": "text",
        "c_mediumtext": "text",
        "c_longtext": "text",
        "c_binary": "bytea",
        "c_varbinary": "bytea",
        "c_tinyblob": "bytea",
        "c_blob": "bytea",
        "c_mediumblob": "bytea",
        "c_longblob": "bytea",
        "c_enum": "text",
        "c_set": "text[]",
        "c_json": "jsonb",
        "c_geometry": "bytea",
        "c_point": "bytea",
        "c_zerofill": "bigint",
    }
    s = scratch_settings(settings, "schema_t_types", tmp_path)
    ddl = ",\n".join(f"`{name}` {typ} NULL" for name, typ in columns.items() if name != "c_json")
    execute(s, f"CREATE TABLE alltypes (id int NOT NULL PRIMARY KEY, {ddl}, c_json json NULL)")
    try:
        analyze_schema(s)
        table = load_tables_config(s.tables_yml).tables["alltypes"]
        written = {c.name: c.target_type for c in table.columns if c.name != "id"}
        assert written == expected
        for col in table.columns:  # the written target is exactly type_mapping's answer
            assert col.target_type == map_column_type(col.source_type).pg_type
        assert table.column("c_json").source_type == "json"
    finally:
        drop_database(s)


def test_hostile_table_and_column_names_are_data_never_sql(settings, tmp_path):
    s = scratch_settings(settings, "schema_t_names", tmp_path)
    weird_table = "x`; DROP TABLE victim; -- \"q'"
    weird_column = 'c"; DELETE FROM victim; `x'
    execute(
        s,
        "CREATE TABLE victim (id int PRIMARY KEY)",
        "CREATE TABLE `"
        + weird_table.replace("`", "``")
        + "` (`"
        + weird_column.replace("`", "``")
        + "` int NOT NULL PRIMARY KEY, `Mixed Case` varchar(5))",
        "CREATE TABLE `Select` (`Order` int)",
    )
    try:
        analyze_schema(s)
        config = load_tables_config(s.tables_yml)
        assert sorted(config.tables) == sorted([weird_table, "victim", "Select"])
        table = config.tables[weird_table]
        assert table.target_name == weird_table.lower()
        assert list(table.primary_key) == [weird_column]
        assert [c.name for c in table.columns] == [weird_column, "Mixed Case"]
        assert config.tables["Select"].target_name == "select"
        conn = connect_source(s.source)
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*) FROM victim")
        assert cur.fetchone() == (0,)
        conn.close()
    finally:
        drop_database(s)


def test_case_collision_between_source_tables_is_refused(settings, tmp_path):
    s = scratch_settings(settings, "schema_t_case", tmp_path)
    execute(s, "CREATE TABLE Patient (a int)", "CREATE TABLE patient (a int)")
    try:
        cur = connect_source(s.source).cursor()
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (s.source.database,)
        )
        if cur.fetchone()[0] != 2:
            pytest.skip("server folds table names (lower_case_table_names != 0)")
        with pytest.raises(Exception, match="both map to raw table 'patient'"):
            run_analysis(s)
        assert not s.tables_yml.exists()
    finally:
        drop_database(s)


def test_read_only_user_on_the_real_source_database(settings, tmp_path):
    """The ETL reader (SELECT only) sees tables, keys and JSON checks in `opendental`."""
    from dataclasses import replace

    table = "zz_schema_probe_t"
    execute(
        settings,
        f"DROP TABLE IF EXISTS {table}",
        f"CREATE TABLE {table} (Id bigint(20) NOT NULL AUTO_INCREMENT PRIMARY KEY, Doc json, "
        "DateTStamp timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp())",
    )
    try:
        assert settings.source.user != settings.source_admin.user
        config = analyze_source(replace(settings, config_dir=tmp_path))
        probe = config.tables[table]
        assert (probe.strategy, probe.cursor, probe.column("Doc").source_type) == (
            "incremental",
            "DateTStamp",
            "json",
        )
    finally:
        execute(settings, f"DROP TABLE IF EXISTS {table}")


def test_cli_writes_tables_yml(od_source, tmp_path):
    env = {**_env(od_source), "ETL_CONFIG_DIR": str(tmp_path)}
    out = tmp_path / "custom.yml"
    result = subprocess.run(
        check=False,
        args=[sys.executable, "-m", "etl_pipeline.cli", "analyze-schema", "--output", str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "10 tables" in result.stdout
    assert set(load_tables_config(out).tables) == set(EXPECTED)
    dry = subprocess.run(
        check=False,
        args=[
            sys.executable,
            "-m",
            "etl_pipeline.cli",
            "analyze-schema",
            "--dry-run",
            "--output",
            str(tmp_path / "dry.yml"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=120,
    )
    assert dry.returncode == 0 and "nothing written" in dry.stdout
    assert not (tmp_path / "dry.yml").exists()


def _env(s) -> dict:
    import os

    src = s.source
    return {
        **os.environ,
        "SOURCE_HOST": src.host,
        "SOURCE_PORT": str(src.port),
        "SOURCE_DATABASE": src.database,
        "SOURCE_USER": src.user,
        "SOURCE_PASSWORD": src.password,
    }


def test_change_stamp_prefers_known_names_then_timestamp_over_datetime():
    from etl_pipeline.schema.classify import classify
    from etl_pipeline.schema.introspect import SourceColumn, SourceIndex, SourceTable

    def table(*columns):
        return SourceTable(
            "t",
            "InnoDB",
            0,
            0,
            0,
            columns=[SourceColumn("Id", "bigint(20)", False, None, "auto_increment"), *columns],
            indexes={"PRIMARY": SourceIndex("PRIMARY", True, ["Id"])},
        )

    on_update = "on update current_timestamp()"
    both = table(
        SourceColumn("Touched", "datetime", False, None, on_update),
        SourceColumn("Stamp", "timestamp", False, None, on_update),
    )
    assert classify(both, 0).cursor == "Stamp"
    named = table(
        SourceColumn("Other", "timestamp", False, None, on_update),
        SourceColumn("SecDateTEdit", "timestamp", False, None, on_update),
    )
    assert classify(named, 0).cursor == "SecDateTEdit"
    only_datetime = table(SourceColumn("Touched", "datetime(6)", False, None, on_update))
    assert (classify(only_datetime, 0).strategy, classify(only_datetime, 0).cursor) == (
        "incremental",
        "Touched",
    )
    plain = table(SourceColumn("Created", "timestamp", False, "current_timestamp()", ""))
    assert classify(plain, 0).strategy == "full"
