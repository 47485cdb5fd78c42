"""A live OpenDental server: loads of the whole synthetic source run back to back while E's live writer
does clinic work on it, with some InnoDB transactions held open so keys and change stamps commit out of
order. Every load succeeds, and once the writer stops the next load leaves raw equal to the source for
every table (live rows, deletes marked, content)."""

from __future__ import annotations

import io
import threading
import time

from test_load_support import admin_exec, pg_rows, source_rows

from etl_pipeline.load import run, verify_table
from etl_pipeline.load.engine import select_tables
from etl_pipeline.schema.analyze import analyze_source, render_tables_yml
from etl_pipeline.synthetic import ddl, generate
from etl_pipeline.synthetic.live import WRITTEN_TABLES, convert_to_innodb, run_live


def _fresh_source(settings, scale, seed):
    leftovers = [name for (name,) in source_rows(settings, "SHOW TABLES") if name not in ddl.TABLE_NAMES]
    if leftovers:  # other tests' tables
        admin_exec(settings, "DROP TABLE " + ", ".join(f"`{name}`" for name in leftovers))
    generate(settings.source_admin, scale=scale, seed=seed, out=io.StringIO())
    convert_to_innodb(settings.source_admin, list(WRITTEN_TABLES))
    pg_rows(settings, "DROP SCHEMA IF EXISTS raw CASCADE; DROP SCHEMA IF EXISTS etl CASCADE")
    settings.tables_yml.write_text(render_tables_yml(analyze_source(settings)))


def _failed(results):
    return [(r.table, r.error_class, r.message) for r in results if r.status != "success"]


def test_loads_during_live_writes_end_with_raw_equal_to_the_source(settings):
    _fresh_source(settings, 0.01, seed=31)
    assert _failed(run(settings, run_id="live-0")) == []
    reports = []
    writer = threading.Thread(
        target=lambda: reports.append(run_live(settings.source_admin, 40, 8, seed=5, hold_seconds=2)),
        daemon=True,
    )
    writer.start()
    loads = 0
    while writer.is_alive():
        loads += 1
        assert _failed(run(settings, run_id=f"live-{loads}")) == []
    writer.join()
    report = reports[0]
    assert loads >= 2 and report.held_transactions > 0
    assert report.out_of_order_tables, report.to_dict()  # keys did commit out of order
    time.sleep(1.05)  # the writer's last second behind the loader's bound
    assert _failed(run(settings, run_id="live-final")) == []
    bad = [p for p in (verify_table(settings, t, deep=True) for t in select_tables(settings)) if not p.ok]
    assert bad == []
