"""New source columns filled for every row raw holds, in the load that first sees them.

An incremental load reads only the rows after the saved cursor. `ALTER TABLE ... ADD COLUMN` (or a
rename) at the source gives the column a value on every row without moving any cursor, so without
this step raw would keep NULL for good on every row outside the window. Two steps around the
incremental load, in its transaction:

`prepare` (before): reads the new columns' DEFAULT at the source, rendered as COPY text like any
value, and adds the columns to raw with it as the default for the rows raw holds. PostgreSQL keeps
such a default in the catalog, so the ALTER rewrites nothing; the default is dropped right after,
so later rows get the values the loads write.

`fill` (after): streams the key and the new columns of every source row whose new values differ
from that default (a targeted read, filtered at the source on the rendered line), into the temp
table `_backfill`, and merges them with one UPDATE ... FROM. Rows that hold the default, usually
nearly all right after an upgrade, are neither read nor written. Rows only raw holds (marked
deleted) get NULL, as a full refresh gives them.

Against a full refresh of the table (which reads and writes every column of every row) the targeted
read is measured in bench/bench_upgrade.py.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg2
from psycopg2.extensions import cursor

from etl_pipeline.db import connect_source
from etl_pipeline.load import raw
from etl_pipeline.load.context import LoadContext
from etl_pipeline.load.read_plan import window_stream
from etl_pipeline.load.result import LoadCounts
from etl_pipeline.load.source import LiveColumn
from etl_pipeline.load.sql_render import copy_column_list, line_expression
from etl_pipeline.type_mapping import quote_ident, quote_mysql_ident

log = logging.getLogger(__name__)

# MariaDB's information_schema.COLUMNS.COLUMN_DEFAULT quotes literals; anything else (NULL, an
# expression such as current_timestamp()) is taken as NULL here: that only means more rows are read.
_LITERAL = re.compile(r"'.*'|-?\d+(\.\d*)?([eE][-+]?\d+)?|b'[01]*'", re.DOTALL)

DEFAULTS_SQL = """
SELECT COLUMN_NAME, COLUMN_DEFAULT
  FROM information_schema.COLUMNS
 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s
"""


@dataclass(frozen=True)
class Backfill:
    """The columns `prepare` added and the COPY-text line of their defaults (what `fill` skips)."""

    columns: tuple[LiveColumn, ...]  # rendered as nullable: a default may be NULL
    default_line: bytes
    defaults: tuple[str | None, ...]  # each column's default as PostgreSQL text (None: NULL)


def prepare(ctx: LoadContext, added: Sequence[LiveColumn], existing: dict[str, str]) -> Backfill:
    """Add `added` to raw with their source defaults for the rows raw holds; `existing` is updated."""
    columns = tuple(dataclasses.replace(c, nullable=True) for c in added)
    src = connect_source(ctx.source_cfg)
    try:
        default_line = _default_line(src, ctx.table.name, columns)
    finally:
        src.close()
    cur = ctx.pg.cursor()
    defaults = _as_postgres_text(cur, ctx, columns, default_line)
    target = raw.qualified(ctx.table.target_name)
    for col, default in zip(columns, defaults, strict=True):
        name = quote_ident(col.target_name)
        log.info("%s: new source column %s added to raw", ctx.table.name, col.target_name)
        if default is None:
            cur.execute(f"ALTER TABLE {target} ADD COLUMN {name} {col.pg_type}")
        else:  # a constant default: kept in the catalog for the rows there are, no rewrite
            cur.execute(
                f"ALTER TABLE {target} ADD COLUMN {name} {col.pg_type} DEFAULT %s::{col.pg_type}", (default,)
            )
            cur.execute(f"ALTER TABLE {target} ALTER COLUMN {name} DROP DEFAULT")
        existing[col.target_name] = col.pg_type
    return Backfill(columns, default_line, defaults)


def fill(ctx: LoadContext, backfill: Backfill, counts: LoadCounts) -> LoadCounts:
    """Read and merge the rows whose new values are not the defaults; `counts` plus what it did."""
    cur = ctx.pg.cursor()
    target = raw.qualified(ctx.table.target_name)
    read = [*ctx.pk_live, *backfill.columns]
    names = ", ".join(quote_ident(c.target_name) for c in read)
    cur.execute(f"CREATE TEMP TABLE _backfill ON COMMIT DROP AS SELECT {names} FROM {target} WITH NO DATA")
    where = f"NOT ({line_expression(backfill.columns)} <=> %s)"
    params = (backfill.default_line,)
    stream = window_stream(ctx, read, where, params, parallel=True)
    try:
        cur.copy_expert(f"COPY _backfill ({copy_column_list(read)}) FROM STDIN", stream, size=1 << 20)
    except psycopg2.Error:
        stream.check()  # the reader's own error (the source failed or hung) says more than the aborted COPY
        raise
    finally:
        stream.close()
    stream.check()
    cur.execute("ANALYZE _backfill")
    updated = _merge(cur, ctx, target, backfill.columns)
    if any(d is not None for d in backfill.defaults):
        _clear_deleted_rows(cur, target, backfill.columns)
    log.info(
        "%s: %s filled for every row: %d rows differ from the default%s and were read, %d updated",
        ctx.table.name,
        ", ".join(c.target_name for c in backfill.columns),
        stream.rows,
        "s" if len(backfill.columns) > 1 else "",
        updated,
    )
    return dataclasses.replace(
        counts,
        rows_read=counts.rows_read + stream.rows,
        updated=counts.updated + updated,
        bytes=counts.bytes + stream.bytes,
    )


def _default_line(src: Any, table: str, columns: Sequence[LiveColumn]) -> bytes:
    """The COPY-text line of the columns' defaults, rendered by the source like every value."""
    scur = src.cursor()
    try:
        scur.execute(DEFAULTS_SQL, (table,))
        found = {_text(n).lower(): d for n, d in scur.fetchall()}
        values = []
        for col in columns:
            default = found.get(col.target_name)
            literal = default is not None and _LITERAL.fullmatch(_text(default))
            value = f"DEFAULT({quote_mysql_ident(col.name)})" if literal else "NULL"
            values.append(f"{value} AS {quote_mysql_ident(col.name)}")
        # DEFAULT() needs a row to be read from: the table's first, or none (an empty table)
        scur.execute(
            f"SELECT {line_expression(columns)} FROM (SELECT {', '.join(values)} "
            f"FROM {quote_mysql_ident(table)} LIMIT 1) AS d"
        )
        row = scur.fetchone()
        if row is None:
            nulls = ", ".join(f"NULL AS {quote_mysql_ident(c.name)}" for c in columns)
            scur.execute(f"SELECT {line_expression(columns)} FROM (SELECT {nulls}) AS d")
            row = scur.fetchone()
    finally:
        scur.close()
    return bytes(row[0])


def _as_postgres_text(
    cur: cursor, ctx: LoadContext, columns: Sequence[LiveColumn], line: bytes
) -> tuple[str | None, ...]:
    """The defaults as PostgreSQL reads the line (each value's text in raw's type, None for NULL)."""
    defs = ", ".join(f"{quote_ident(c.target_name)} {c.pg_type}" for c in columns)
    cur.execute(f"CREATE TEMP TABLE _backfill_default ({defs}) ON COMMIT DROP")
    cur.copy_expert(
        f"COPY _backfill_default ({copy_column_list(columns)}) FROM STDIN", io.BytesIO(line + b"\n")
    )
    cur.execute(
        f"SELECT {', '.join(quote_ident(c.target_name) + '::text' for c in columns)} FROM _backfill_default"
    )
    row = cur.fetchone()
    assert row is not None
    cur.execute("DROP TABLE _backfill_default")
    return tuple(row)


def _merge(cur: cursor, ctx: LoadContext, target: str, columns: Sequence[LiveColumn]) -> int:
    """One UPDATE ... FROM `_backfill`; rows that already hold the values (the window's) are left."""
    names = [quote_ident(c.target_name) for c in columns]
    sets = ", ".join(f"{n} = b.{n}" for n in names)
    join = " AND ".join(f"t.{quote_ident(k)} = b.{quote_ident(k)}" for k in ctx.pk_targets)
    cur.execute(
        f"""
        UPDATE {target} t SET {sets}, _loaded_at = %s
          FROM _backfill b
         WHERE {join}
           AND ROW({", ".join("t." + n for n in names)}) IS DISTINCT FROM ROW({", ".join("b." + n for n in names)})""",
        (ctx.load_ts,),
    )
    return int(cur.rowcount)


def _clear_deleted_rows(cur: cursor, target: str, columns: Sequence[LiveColumn]) -> None:
    """Rows marked deleted were gone before the columns came: NULL, not the default."""
    names = [quote_ident(c.target_name) for c in columns]
    cur.execute(
        f"UPDATE {target} SET {', '.join(n + ' = NULL' for n in names)} "
        f"WHERE _deleted_at IS NOT NULL AND NOT ({' AND '.join(n + ' IS NULL' for n in names)})"
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, (bytes, bytearray)) else str(value)
