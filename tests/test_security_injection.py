"""Identifiers cannot inject SQL: a source table and columns named with quotes, backticks, semicolons, `--`,
spaces, uppercase and unicode load correctly (quoted everywhere), and a tables.yml naming
`patient; DROP TABLE x` or a column `a"; drop schema raw; --` is rejected with a clear error (a table: SourceTableMissing) or inert (a column: the loader
takes column names from the source catalogue). In every case
the sentinel tables on both servers survive and nothing else is dropped or executed."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import yaml
from test_load_support import admin_exec, pg_rows, source_rows, table_config

from etl_pipeline.load import load_table, verify_table
from etl_pipeline.schema.tables_config import table_to_dict
from etl_pipeline.settings import PROJECT_ROOT

HOSTILE_TABLE = 'Odd "t`; -- x'
HOSTILE_COLUMNS = (
    'a"; drop schema raw; --',
    "b`tick",
    "Sp ace",
    "UPPER",
    "ünï;code",
    "x'); DROP TABLE x; --",
)


@pytest.fixture
def sentinels(settings):
    """A table `x` on both servers (what the hostile names try to drop); checked after each test."""
    admin_exec(settings, "CREATE TABLE IF NOT EXISTS x (id int PRIMARY KEY)", "REPLACE INTO x VALUES (1)")
    pg_rows(settings, "CREATE SCHEMA IF NOT EXISTS raw")
    pg_rows(settings, "CREATE TABLE IF NOT EXISTS raw.x (id int PRIMARY KEY)")
    pg_rows(settings, "CREATE TABLE IF NOT EXISTS public.x (id int PRIMARY KEY)")
    yield
    assert source_rows(settings, "SELECT id FROM x") == ((1,),)
    assert pg_rows(
        settings, "SELECT to_regclass('raw.x') IS NOT NULL, to_regclass('public.x') IS NOT NULL"
    ) == [(True, True)]
    assert pg_rows(settings, "SELECT count(*) FROM pg_namespace WHERE nspname = 'raw'") == [(1,)]
    # leave nothing behind that a later analyze-schema + run would pick up
    admin_exec(settings, "DROP TABLE x", "DROP TABLE IF EXISTS inj_base")
    pg_rows(settings, "DROP TABLE raw.x, public.x")
    pg_rows(settings, "DROP TABLE IF EXISTS raw.inj_base")


def _hostile_source_table(settings):
    q = "`" + HOSTILE_TABLE.replace("`", "``") + "`"
    cols = ", ".join("`" + c.replace("`", "``") + "` varchar(40)" for c in HOSTILE_COLUMNS)
    admin_exec(
        settings,
        f"DROP TABLE IF EXISTS {q}",
        f"""CREATE TABLE {q} (id bigint PRIMARY KEY, {cols},
                   ts timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(), KEY (ts))""",
    )
    values = ", ".join(f"(%s, {', '.join(['%s'] * len(HOSTILE_COLUMNS))})" for _ in range(3))
    params = [v for i in range(1, 4) for v in (i, *[f"{c}-{i}" for c in HOSTILE_COLUMNS])]
    names = ", ".join("`" + c.replace("`", "``") + "`" for c in ("id", *HOSTILE_COLUMNS))
    admin_exec(settings, f"INSERT INTO {q} ({names}) VALUES {values}", params=params)
    return q


def test_hostile_table_and_column_names_load_quoted(settings, sentinels):
    q = _hostile_source_table(settings)
    table = table_config(settings, HOSTILE_TABLE)
    pg_rows(settings, 'DROP TABLE IF EXISTS raw."odd ""t`; -- x" CASCADE')
    load_table(settings, table, "hostile-0")
    assert verify_table(settings, table, deep=True).ok
    raw_cols = [
        c
        for (c,) in pg_rows(
            settings,
            "SELECT attname FROM pg_attribute WHERE attrelid = "
            '\'raw."odd ""t`; -- x"\'::regclass AND attnum > 0 '
            "AND NOT attisdropped ORDER BY attnum",
        )
    ]
    assert [c.lower() for c in HOSTILE_COLUMNS] == raw_cols[1 : 1 + len(HOSTILE_COLUMNS)]
    assert pg_rows(settings, 'SELECT "a""; drop schema raw; --" FROM raw."odd ""t`; -- x" WHERE id = 2') == [
        (f"{HOSTILE_COLUMNS[0]}-2",)
    ]
    # incremental path too: an update and a delete at the source
    time.sleep(1.1)  # the update lands in a later second than the first load's window
    admin_exec(settings, f"UPDATE {q} SET `UPPER` = 'changed' WHERE id = 1", f"DELETE FROM {q} WHERE id = 3")
    time.sleep(1.1)
    load_table(settings, table, "hostile-1")
    assert verify_table(settings, table, deep=True).ok
    admin_exec(settings, f"DROP TABLE {q}")
    pg_rows(settings, 'DROP TABLE raw."odd ""t`; -- x"')


def _cli(config_dir, *args):
    return subprocess.run(
        [sys.executable, "-m", "etl_pipeline.cli", *args],
        check=False,
        cwd=PROJECT_ROOT,
        env=dict(os.environ, ETL_CONFIG_DIR=str(config_dir)),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _small_table(settings):
    admin_exec(
        settings,
        "DROP TABLE IF EXISTS inj_base",
        "CREATE TABLE inj_base (id bigint PRIMARY KEY, a varchar(10), "
        "ts timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp())",
        "INSERT INTO inj_base (id, a) VALUES (1, 'one'), (2, 'two')",
    )
    return table_to_dict(table_config(settings, "inj_base"))


def test_tables_yml_naming_a_statement_as_table_is_rejected(settings, sentinels, tmp_path):
    entry = _small_table(settings)
    evil = "patient; DROP TABLE x"
    (tmp_path / "tables.yml").write_text(
        yaml.safe_dump({"tables": {evil: dict(entry, target_name="x; drop")}})
    )
    done = _cli(tmp_path, "run")
    assert done.returncode == 1
    assert (
        "FAILED (SourceTableMissing): table 'patient; DROP TABLE x' does not exist at the source"
        in done.stdout
    )
    assert pg_rows(settings, "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'x;%%'") == [(0,)]


def test_tables_yml_with_an_injected_column_is_rejected(settings, sentinels, tmp_path):
    entry = _small_table(settings)
    evil = 'a"; drop schema raw; --'
    entry["columns"] = [dict(c, name=evil) if c["name"] == "a" else c for c in entry["columns"]]
    (tmp_path / "tables.yml").write_text(yaml.safe_dump({"tables": {"inj_base": entry}}))
    pg_rows(settings, "DROP TABLE IF EXISTS raw.inj_base")
    done = _cli(tmp_path, "run")
    # the loader takes column names from the source catalogue, not from tables.yml: the edit is inert
    assert done.returncode == 0, done.stdout + done.stderr
    assert pg_rows(
        settings,
        "SELECT attname FROM pg_attribute WHERE attrelid = 'raw.inj_base'::regclass "
        "AND attnum > 0 ORDER BY attnum",
    )[:3] == [("id",), ("a",), ("ts",)]
    assert pg_rows(settings, "SELECT a FROM raw.inj_base ORDER BY id") == [("one",), ("two",)]
