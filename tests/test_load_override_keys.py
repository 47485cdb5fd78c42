"""The loader's override keys `lookback_keys` (append_only: keys re-read below the saved one) and
`chunk_rows` (rows a statement of a chunked MyISAM read aims at): applied at read time, checked with
file:line: field errors, and not written to tables.yml (they live in the overrides)."""

from __future__ import annotations

import pytest
import yaml
from test_schema_validate import _source

from etl_pipeline.errors import ConfigError
from etl_pipeline.schema.analyze import build_analysis, render_tables_yml
from etl_pipeline.schema.constants import DEFAULT_LOOKBACK_KEYS
from etl_pipeline.schema.overrides import Overrides
from etl_pipeline.schema.tables_config import load_tables_config, table_to_dict
from etl_pipeline.schema.validate import validate_tables_config


@pytest.fixture
def paths(tmp_path):
    tables = tmp_path / "tables.yml"
    tables.write_text(render_tables_yml(build_analysis(_source(), Overrides()).config))
    return tables, tmp_path / "tables.overrides.yml"


def test_the_keys_apply_at_read_time_and_stay_out_of_tables_yml(paths):
    tables, overrides = paths
    overrides.write_text("tables:\n  procedurelog: {lookback_keys: 50, chunk_rows: 2000}\n")
    plain = load_tables_config(tables).tables["procedurelog"]
    assert (plain.lookback_keys, plain.chunk_rows) == (DEFAULT_LOOKBACK_KEYS, None)
    proc = load_tables_config(tables, overrides).tables["procedurelog"]
    assert (proc.lookback_keys, proc.chunk_rows) == (50, 2000)
    assert not {"lookback_keys", "chunk_rows"} & set(table_to_dict(proc))
    assert validate_tables_config(tables, overrides) == []
    # a tables.yml that carries them (written by hand) is read too
    data = yaml.safe_load(tables.read_text())
    data["tables"]["procedurelog"]["chunk_rows"] = 300
    tables.write_text(yaml.safe_dump(data))
    assert load_tables_config(tables).tables["procedurelog"].chunk_rows == 300


@pytest.mark.parametrize(
    "entry,message",
    [
        ("{lookback_keys: -1}", r":2: tables\.procedurelog\.lookback_keys: must not be negative"),
        ("{chunk_rows: 0}", r":2: tables\.procedurelog\.chunk_rows: must be at least 1"),
        ("{chunk_rows: lots}", r":2: tables\.procedurelog\.chunk_rows"),
    ],
)
def test_bad_values_stop_at_their_line(paths, entry, message):
    tables, overrides = paths
    overrides.write_text(f"tables:\n  procedurelog: {entry}\n")
    with pytest.raises(ConfigError, match=message):
        load_tables_config(tables, overrides)
    errors = [str(e) for e in validate_tables_config(tables, overrides)]
    assert len(errors) == 1 and "procedurelog" in errors[0]
