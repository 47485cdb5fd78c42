"""Parity between the source and raw: live row count, exact primary-key set, optional deep content check.

The key check streams the source's primary keys into a temporary table and anti-joins both ways.
The deep check streams every loaded column of the source through the loader's renderer into a
temporary table of raw's column types and compares whole rows both ways (EXCEPT ALL), so both sides
are compared in the same canonical form: PostgreSQL's own values. (That the renderer itself is
faithful is pinned down by tests/test_load_types.py against values read directly from MariaDB.)

This check is exact: a write at the source after a table's load is a difference. The nightly judges
each table against what its load saw instead (`load_parity`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from psycopg2.extensions import cursor

from etl_pipeline.db import connect_source, connect_target, fetch_value
from etl_pipeline.load import raw
from etl_pipeline.load.source import LineStream, LiveColumn, live_columns, scalar
from etl_pipeline.load.sql_render import copy_column_list, select_lines_sql
from etl_pipeline.schema.tables_config import TableConfig
from etl_pipeline.settings import Settings
from etl_pipeline.type_mapping import quote_ident, quote_mysql_ident


@dataclass
class ParityResult:
    table: str
    source_rows: int
    raw_live_rows: int
    missing_in_raw: int = 0  # source keys (or rows, deep) not live in raw
    extra_in_raw: int = 0  # live raw keys (or rows, deep) not at the source
    deep: bool = False
    content_mismatches: int = 0
    seconds: float = 0.0
    error: str | None = None
    # judged against the table's last load (`load_parity`): differences it shows the source made
    # after that load are counted in `in_flight` instead of the counts above, so the row counts differ
    against_load: bool = False
    in_flight: int = 0
    content_checked_rows: int = 0  # source rows whose whole content was compared
    deep_hashed_rows: int = 0  # of those, rows of deep key ranges compared by bucket row hashes
    phase_seconds: dict[str, float] = field(default_factory=dict)  # keys, content, deep, judge

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and (self.against_load or self.source_rows == self.raw_live_rows)
            and not self.missing_in_raw
            and not self.extra_in_raw
            and not self.content_mismatches
        )

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def verify_table(settings: Settings, table: TableConfig, deep: bool = False) -> ParityResult:
    t0 = time.monotonic()
    src = connect_source(settings.source)
    try:
        excluded = {c.lower() for c in table.excluded_columns}
        live = [c for c in live_columns(src, table.name) if c.name.lower() not in excluded]
        source_rows = int(scalar(src, f"SELECT COUNT(*) FROM {quote_mysql_ident(table.name)}"))
    finally:
        src.close()
    pg = connect_target(settings.target)
    try:
        with pg.cursor() as cur:
            target = raw.qualified(table.target_name)
            existing = raw.raw_columns(cur, table.target_name)
            if existing is None:
                return ParityResult(
                    table.name,
                    source_rows,
                    0,
                    missing_in_raw=source_rows,
                    error="raw table missing",
                    seconds=time.monotonic() - t0,
                )
            cur.execute(f"SELECT count(*) FROM {target} WHERE _deleted_at IS NULL")
            result = ParityResult(table.name, source_rows, fetch_value(cur), deep=deep)
            by_name = {c.name.lower(): c for c in live}
            key_cols = [by_name[c.lower()] for c in table.primary_key if c.lower() in by_name]
            compare = live if (deep or not key_cols) else key_cols
            compare = [c for c in compare if c.target_name in existing]
            result.missing_in_raw, result.extra_in_raw = compare_rows(settings, cur, table, target, compare)
            if deep:
                result.content_mismatches = result.missing_in_raw + result.extra_in_raw
        pg.rollback()
    finally:
        pg.close()
    result.seconds = round(time.monotonic() - t0, 3)
    return result


def compare_rows(
    settings: Settings, cur: cursor, table: TableConfig, target: str, columns: Sequence[LiveColumn]
) -> tuple[int, int]:
    """(source rows not live in raw, live raw rows not at the source) over `columns`, counted as
    multisets (EXCEPT ALL), in the transaction of `cur`."""
    cols = ", ".join(quote_ident(c.target_name) for c in columns)
    cur.execute(f"CREATE TEMP TABLE _parity ON COMMIT DROP AS SELECT {cols} FROM {target} WITH NO DATA")
    stream = LineStream(settings.source, select_lines_sql(table.name, columns), (), table=table.name)
    try:
        cur.copy_expert(f"COPY _parity ({copy_column_list(columns)}) FROM STDIN", stream, size=1 << 20)
    finally:
        stream.close()
    stream.check()
    live_raw = f"(SELECT {cols} FROM {target} WHERE _deleted_at IS NULL)"
    cur.execute(f"SELECT count(*) FROM (SELECT {cols} FROM _parity EXCEPT ALL SELECT * FROM {live_raw} r) x")
    missing = fetch_value(cur)
    cur.execute(f"SELECT count(*) FROM (SELECT * FROM {live_raw} r EXCEPT ALL SELECT {cols} FROM _parity) x")
    extra = fetch_value(cur)
    return missing, extra
