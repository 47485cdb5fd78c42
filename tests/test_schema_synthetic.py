"""The analysis of the synthetic OpenDental source matches the schema facts file, table by table."""

from __future__ import annotations

import io
import shutil
from dataclasses import replace

import pytest
import yaml
from schema_support import drop_database, scratch_settings

from etl_pipeline.schema.tables_config import load_tables_config
from etl_pipeline.schema.validate import validate_tables_config
from etl_pipeline.schema.workflow import analyze_schema
from etl_pipeline.settings import PROJECT_ROOT
from etl_pipeline.type_mapping import map_column_type

FACTS = (
    yaml.safe_load(
        (PROJECT_ROOT.parent / "shared" / "opendental_schema.yml").read_text()
        if (PROJECT_ROOT.parent / "shared" / "opendental_schema.yml").is_file()
        else "{}"
    )
    or {}
)
EXAMPLE_OVERRIDES = PROJECT_ROOT / "etl_pipeline" / "config" / "tables.overrides.yml"


@pytest.fixture(scope="module")
def synthetic(settings, tmp_path_factory):
    synthetic = pytest.importorskip("etl_pipeline.synthetic")
    s = scratch_settings(settings, "schema_t_synth", tmp_path_factory.mktemp("synth-config"))
    synthetic.generate(s.source_admin, 0.01, 7, out=io.StringIO())
    shutil.copy(EXAMPLE_OVERRIDES, s.overrides_yml)
    analyze_schema(s)
    yield s
    drop_database(replace(s))


def _facts_tables() -> dict:
    if not FACTS.get("tables"):
        pytest.skip("schema facts file /work/shared/opendental_schema.yml not available")
    return FACTS["tables"]


def test_all_36_tables_are_found(synthetic):
    config = load_tables_config(synthetic.tables_yml)
    assert sorted(config.tables) == sorted(_facts_tables())


def test_each_table_is_classified_as_the_facts_file_says(synthetic):
    config = load_tables_config(synthetic.tables_yml)
    wrong = []
    for name, facts in _facts_tables().items():
        table = config.tables[name]
        expected_strategy = (
            "full"
            if facts["cursor"] is None
            else "append_only"
            if facts["cursor"] == facts["pk"]
            else "incremental"
        )
        got = (list(table.primary_key), table.cursor, table.strategy)
        if got != ([facts["pk"]], facts["cursor"], expected_strategy):
            wrong.append(f"{name}: got {got}, facts say pk {facts['pk']} cursor {facts['cursor']}")
        assert table.detect_deletes == (table.strategy == "incremental"), name
        assert table.lookback_minutes == (60 if table.strategy == "incremental" else 0), name
    assert wrong == []


def test_columns_and_types_match_the_facts(synthetic):
    config = load_tables_config(synthetic.tables_yml)
    for name, facts in _facts_tables().items():
        table = config.tables[name]
        assert [c.name for c in table.columns] == list(facts["columns"]), name
        for col in table.columns:
            declared = facts["columns"][col.name].split("#")[0]
            base = declared.split()[0].split("(")[0].lower()
            assert col.source_type.lower().startswith(base), (name, col.name, col.source_type, declared)
            assert col.target_type == map_column_type(col.source_type).pg_type


def test_example_overrides_apply_and_validate(synthetic):
    config = load_tables_config(synthetic.tables_yml)
    assert config.tables["patient"].excluded_columns == ("SSN",)
    assert config.tables["inssub"].excluded_columns == ("SubscriberID",)
    assert config.tables["provider"].excluded_columns == ("SSN",)
    assert config.tables["userod"].excluded_columns == ("Password",)
    assert validate_tables_config(synthetic.tables_yml, synthetic.overrides_yml) == []


def test_second_run_on_unchanged_source_is_byte_stable(synthetic):
    before = synthetic.tables_yml.read_text()
    summary = analyze_schema(synthetic)
    after = synthetic.tables_yml.read_text()
    assert summary["changes"] == []
    assert before[before.index("\ntables:") :] == after[after.index("\ntables:") :]
