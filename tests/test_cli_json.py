"""`--json` on the commands a script reads (run, status, verify, analyze-schema, validate-config), against
the test stack: stdout is one JSON document with the text output's information, counts and identifiers
only (a distinctive row value never shows), and the exit code says the same as the document."""

from __future__ import annotations

import pytest
import yaml
from test_cli_support import etl, etl_json
from test_load_support import admin_exec, drop_everywhere, pg_rows, table_config

from etl_pipeline.schema.tables_config import table_to_dict

ROW_VALUE = "Zebra-Row-Value-8812"  # in every row of cli_json: must never reach the output
ROWS = 25


@pytest.fixture(scope="module")
def config(settings, tmp_path_factory):
    """A config dir whose tables.yml lists cli_json (25 rows at the source) and cli_json_gone (no source table)."""
    drop_everywhere(settings, "cli_json", "cli_json_gone")
    admin_exec(
        settings,
        "CREATE TABLE cli_json (id int NOT NULL PRIMARY KEY, note varchar(40), "
        "ts timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP)",
        f"INSERT INTO cli_json (id, note) SELECT seq, '{ROW_VALUE}' FROM seq_1_to_{ROWS}",
    )
    table = table_config(settings, "cli_json")
    gone = table_to_dict(table) | {"target_name": "cli_json_gone"}
    config_dir = tmp_path_factory.mktemp("cli-json")
    (config_dir / "tables.yml").write_text(
        yaml.safe_dump({"tables": {"cli_json": table_to_dict(table), "cli_json_gone": gone}})
    )
    yield {"ETL_CONFIG_DIR": str(config_dir)}
    drop_everywhere(settings, "cli_json", "cli_json_gone")


def test_run_json_has_the_run_its_totals_and_each_table(settings, config):
    document, done = etl_json("run", "--tables", "cli_json", "--run-id", "cli-json-1", **config)
    assert (document["run_id"], document["ok"], document["dry_run"], document["failed"]) == (
        "cli-json-1",
        True,
        False,
        [],
    )
    (table,) = document["tables"]
    assert (table["table"], table["target_name"], table["status"]) == ("cli_json", "cli_json", "success")
    assert table["rows_read"] == table["inserted"] == ROWS
    totals = document["totals"]
    assert (totals["tables"], totals["succeeded"], totals["failed"], totals["rows_read"]) == (1, 1, 0, ROWS)
    assert ROW_VALUE not in done.stdout + done.stderr
    assert pg_rows(settings, "SELECT count(*) FROM raw.cli_json") == [(ROWS,)]


def test_run_json_reports_a_failed_table_and_exits_1(config):
    document, _ = etl_json("run", "--tables", "cli_json,cli_json_gone", expect=1, **config)
    assert (document["ok"], document["failed"], document["totals"]["failed"]) == (False, ["cli_json_gone"], 1)
    by_table = {t["table"]: t for t in document["tables"]}
    assert by_table["cli_json"]["status"] == "success"
    assert by_table["cli_json_gone"]["status"] == "failed"
    assert by_table["cli_json_gone"]["error_class"] == "SourceTableMissing"


def test_run_dry_run_json_lists_what_would_load(config):
    document, _ = etl_json("run", "--dry-run", **config)
    assert document["dry_run"] is True and document["totals"]["rows_read"] == 0
    assert sorted((t["table"], t["status"]) for t in document["tables"]) == [
        ("cli_json", "skipped"),
        ("cli_json_gone", "skipped"),
    ]


def test_status_json_matches_the_text(config):
    etl_json("run", "--tables", "cli_json", **config)
    rows, _ = etl_json("status", **config)
    (mine,) = [r for r in rows if r["table_name"] == "cli_json"]
    assert (mine["last_status"], mine["raw_rows"], mine["target_name"]) == ("success", ROWS, "cli_json")
    text = etl("status", **config).stdout
    (line,) = [line for line in text.splitlines() if line.startswith("cli_json ")]
    assert line.split()[1:4] == ["success", mine["strategy"], str(ROWS)]


def test_verify_json_says_ok_then_the_mismatch(settings, config):
    etl_json("run", "--tables", "cli_json", **config)
    (result,), _ = etl_json("verify", "--tables", "cli_json", "--deep", **config)
    assert (result["table"], result["ok"], result["source_rows"], result["raw_live_rows"]) == (
        "cli_json",
        True,
        ROWS,
        ROWS,
    )
    admin_exec(settings, "DELETE FROM cli_json WHERE id = 1")
    try:
        (result,), _ = etl_json("verify", "--tables", "cli_json", expect=1, **config)
        assert (result["ok"], result["source_rows"], result["raw_live_rows"], result["extra_in_raw"]) == (
            False,
            ROWS - 1,
            ROWS,
            1,
        )
    finally:
        admin_exec(settings, f"INSERT INTO cli_json (id, note) VALUES (1, '{ROW_VALUE}')")


def test_analyze_schema_json_then_validate_config_json(config, tmp_path):
    output = tmp_path / "tables.yml"
    dry, _ = etl_json("analyze-schema", "--dry-run", "--output", str(output), **config)
    assert dry["dry_run"] is True and dry["tables_yml"] is None and not output.exists()
    assert dry["table_count"] >= 1 and set(dry["counts"]) == {"CRITICAL", "WARNING", "INFO"}
    written, done = etl_json("analyze-schema", "--output", str(output), **config)
    assert written["tables_yml"] == str(output) and output.is_file()
    assert written["table_count"] == len(yaml.safe_load(output.read_text())["tables"])
    assert ROW_VALUE not in done.stdout
    checked, _ = etl_json(
        "validate-config", "--file", str(output), "--overrides", str(tmp_path / "none.yml"), **config
    )
    assert checked == {"ok": True, "file": str(output), "overrides": None, "error_count": 0, "errors": []}
