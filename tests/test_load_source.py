"""The whole synthetic OpenDental source: full load, `mutate --days 3`, incremental load; raw equals the
source exactly for all 36 tables (live rows, deletes marked, deep content check)."""

from __future__ import annotations

import io

import pytest
from test_load_support import admin_exec, pg_rows, source_rows

from etl_pipeline.load import run, verify_table
from etl_pipeline.load.engine import select_tables
from etl_pipeline.schema.analyze import analyze_source, render_tables_yml
from etl_pipeline.synthetic import ddl, generate, mutate


def _fresh_source(settings, scale, seed):
    leftovers = [name for (name,) in source_rows(settings, "SHOW TABLES") if name not in ddl.TABLE_NAMES]
    if leftovers:  # other tests' tables
        admin_exec(settings, "DROP TABLE " + ", ".join(f"`{name}`" for name in leftovers))
    generate(settings.source_admin, scale=scale, seed=seed, out=io.StringIO())
    pg_rows(settings, "DROP SCHEMA IF EXISTS raw CASCADE; DROP SCHEMA IF EXISTS etl CASCADE")
    settings.tables_yml.write_text(render_tables_yml(analyze_source(settings)))


def _assert_all_ok(results):
    failed = [(r.table, r.error_class, r.message) for r in results if r.status != "success"]
    assert not failed


def _assert_parity(settings):
    bad = []
    for table in select_tables(settings):
        parity = verify_table(settings, table, deep=True)
        if not parity.ok:
            bad.append(parity)
    assert not bad


def _full_then_incremental(settings, scale, seed):
    _fresh_source(settings, scale, seed)
    tables = select_tables(settings)
    assert len(tables) == 36
    first = run(settings, max_workers=2, run_id=f"seed{seed}-full")
    _assert_all_ok(first)
    assert {r.strategy for r in first} == {"full"}
    _assert_parity(settings)

    changes = mutate(settings.source_admin, days=3, seed=seed, quiet=True, out=io.StringIO())
    second = run(settings, max_workers=2, run_id=f"seed{seed}-incr")
    _assert_all_ok(second)
    _assert_parity(settings)
    by_name = {t.name: t for t in tables}
    for name, counts in changes.items():
        table = by_name[name]
        if table.primary_key and table.strategy != "full" and table.detect_deletes:
            marked = pg_rows(
                settings, f'SELECT count(*) FROM raw."{table.target_name}" WHERE _deleted_at IS NOT NULL'
            )[0][0]
            assert marked == counts["deleted"], name
    incremental = [r for r in second if r.strategy != "full"]
    assert incremental, "no table was loaded incrementally"
    return first, second


@pytest.mark.parametrize("seed", [11, 12])
def test_full_then_incremental_after_three_days_tiny(settings, seed):
    _full_then_incremental(settings, 0.01, seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [21, 22, 23, 24])
def test_full_then_incremental_after_three_days_bigger(settings, seed):
    _full_then_incremental(settings, 0.1, seed)
