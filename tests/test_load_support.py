"""Helpers for the loader tests (no tests here): source DDL through the admin user, hand-built TableConfigs."""

from __future__ import annotations

from etl_pipeline.db import connect_source, connect_target
from etl_pipeline.load.source import LiveColumn, live_columns
from etl_pipeline.schema.tables_config import ColumnConfig, TableConfig
from etl_pipeline.type_mapping import map_column_type


def admin_exec(settings, *statements, params=None):
    conn = connect_source(settings.source_admin)
    cur = conn.cursor()
    for sql in statements:
        cur.execute(sql, params)
    conn.commit()
    conn.close()


def source_rows(settings, sql):
    conn = connect_source(settings.source_admin)
    cur = conn.cursor()
    cur.execute(sql)
    rows = cur.fetchall()
    conn.close()
    return rows


def pg_rows(settings, sql, params=None):
    conn = connect_target(settings.target)
    with conn.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall() if cur.description else None
    conn.commit()
    conn.close()
    return rows


def parity_counts(result):
    """A judged parity result as (ok, missing, extra, content mismatches, in flight, rows content-checked)."""
    return (
        result.ok,
        result.missing_in_raw,
        result.extra_in_raw,
        result.content_mismatches,
        result.in_flight,
        result.content_checked_rows,
    )


def table_config(
    settings,
    name,
    pk=("id",),
    strategy="incremental",
    cursor="ts",
    detect_deletes=True,
    lookback=60,
    tier="small",
    excluded=(),
) -> TableConfig:
    conn = connect_source(settings.source_admin)
    cols = live_columns(conn, name)
    conn.close()
    columns = tuple(ColumnConfig(c.name, c.source_type, map_column_type(c.source_type).pg_type) for c in cols)
    return TableConfig(
        name=name,
        target_name=name.lower(),
        tier=tier,
        strategy=strategy,
        columns=columns,
        primary_key=tuple(pk),
        cursor=cursor,
        lookback_minutes=lookback,
        detect_deletes=detect_deletes,
        excluded_columns=tuple(excluded),
    )


def drop_everywhere(settings, *names):
    for name in names:
        admin_exec(settings, f"DROP TABLE IF EXISTS `{name}`")
        pg_rows(settings, f'DROP TABLE IF EXISTS raw."{name.lower()}" CASCADE')
        if pg_rows(settings, "SELECT to_regclass('etl.load_state') IS NOT NULL")[0][0]:
            pg_rows(settings, "DELETE FROM etl.load_state WHERE table_name = %s", (name,))


def offline_table(name, columns, pk=("id",), strategy="incremental", cursor="ts", **fields):
    """(TableConfig, live columns) from {column: MySQL type}, without a server (decision and window tests)."""
    live = [LiveColumn(col, source_type) for col, source_type in columns.items()]
    config = TableConfig(
        name=name,
        target_name=name.lower(),
        tier="small",
        strategy=strategy,
        columns=tuple(ColumnConfig(c.name, c.source_type, c.pg_type) for c in live),
        primary_key=tuple(pk),
        cursor=cursor,
        **fields,
    )
    return config, live
