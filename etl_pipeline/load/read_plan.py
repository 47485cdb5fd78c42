"""How a table's rows are read from the source: by engine, so that the clinic's writes do not wait on us.

MyISAM (OpenDental's default) locks a whole table for reading for as long as a statement runs, its
sending included, and every write waits for that lock: one streaming SELECT over a large table would
hold the clinic's writes for the whole read. So a table of a table-locking engine with a single
integer key is read in key-range chunks (`source.KeyChunks`): one statement per range, each fetched
whole before the next, sized to return about SOURCE_CHUNK_ROWS rows (the table's `chunk_rows`
override) within SOURCE_CHUNK_SECONDS, so a write waits at most one chunk's time; SOURCE_CHUNK_ROWS=0
turns chunking off (one streaming statement per reader: for a read replica, where no one waits on our
locks). InnoDB reads take no locks: each reader reads one consistent snapshot (START TRANSACTION WITH
CONSISTENT SNAPSHOT).

Chunks follow the key, so a row is read once whatever is written meanwhile: updated rows are read in
one state or the other (the next window reads them again by their cursor), rows inserted during the
read above the MAX(key) taken at its start are left to the next run, and a row deleted meanwhile is
simply not read. A chunked read is not one snapshot; nothing in the loader needs it to be: a full
refresh's carry-over marks deleted only keys that the source no longer has (keys do not move between
ranges the way rows shift under LIMIT/OFFSET paging), and deletes the read missed are found by the
next run's delete check.

Large tables are read by READ_STREAMS parallel readers over halves of the key range, chunked or not.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from etl_pipeline.db import connect_source
from etl_pipeline.load.context import LoadContext, Progress
from etl_pipeline.load.source import CHUNK_GROWTH, KeyChunks, LineStream, LiveColumn, Part
from etl_pipeline.load.sql_render import select_lines_sql
from etl_pipeline.type_mapping import quote_mysql_ident

log = logging.getLogger(__name__)

READ_STREAMS = 2  # parallel source streams for big tables (the source renders rows on its CPUs)
PARALLEL_MIN_KEYS = 200_000  # below this key range one stream is as fast
# Engines that lock the table for a read's whole statement; InnoDB (and XtraDB) read a snapshot.
TABLE_LOCKING_ENGINES = frozenset({"MyISAM", "Aria", "MRG_MyISAM", "MEMORY", "CSV", "ARCHIVE"})

SHAPE_SQL = """
SELECT ENGINE, TABLE_ROWS FROM information_schema.TABLES
 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s
"""


@dataclass(frozen=True)
class Shape:
    """What the plan needs to know of the source table now."""

    engine: str | None
    low: int | None  # MIN(key), None: empty (or no single integer key)
    high: int | None  # MAX(key)
    rows: int  # row count (MyISAM's exact one, InnoDB's estimate)

    @property
    def locks_table(self) -> bool:
        return self.engine in TABLE_LOCKING_ENGINES


def window_stream(
    ctx: LoadContext,
    live: Sequence[LiveColumn],
    where: str,
    params: Sequence[Any],
    *,
    also: str | None = None,
    track_max: bool = False,
    parallel: bool = False,
    progress: Progress | None = None,
) -> LineStream:
    """A started `LineStream` of the rows matching `where` (rendered by `sql_render`), read as the
    module describes; `parallel`: split a large key range between READ_STREAMS readers."""
    key = _integer_key(ctx)
    shape = read_shape(ctx, key)
    parts: list[Part] | None = None
    if key is not None and shape.low is not None and shape.high is not None:
        ranges = _split(shape.low, shape.high, READ_STREAMS if parallel else 1)
        if shape.locks_table and chunk_rows(ctx):
            parts = [_chunks(ctx, live, where, params, also, key, lo, hi, shape) for lo, hi in ranges]
        elif len(ranges) > 1:
            parts = [_range_part(ctx, live, where, params, also, key, lo, hi) for lo, hi in ranges]
    elif shape.locks_table:
        log.debug("%s: %s without a single integer key: read in one statement", ctx.table.name, shape.engine)
    return LineStream(
        ctx.source_cfg,
        select_lines_sql(ctx.table.name, live, where, also=also),
        tuple(params),
        table=ctx.table.name,
        progress=progress,
        parts=parts,
        track_max=track_max,
        snapshot=not shape.locks_table,
    )


def read_shape(ctx: LoadContext, key: str | None) -> Shape:
    """The engine, the key's MIN and MAX and the row count, read before the rows (one connection)."""
    table = ctx.table.name
    src = connect_source(ctx.source_cfg)
    try:
        cur = src.cursor()
        cur.execute(SHAPE_SQL, (table,))
        row = cur.fetchone()
        engine = _text(row[0]) if row and row[0] is not None else None
        estimate = int(row[1] or 0) if row else 0
        if key is None:
            return Shape(engine, None, None, estimate)
        k = quote_mysql_ident(key)
        locking = engine in TABLE_LOCKING_ENGINES
        # MyISAM keeps its row count, so COUNT(*) costs nothing there; InnoDB's would scan: its estimate
        count = "COUNT(*)" if locking else "NULL"
        cur.execute(f"SELECT MIN({k}), MAX({k}), {count} FROM {quote_mysql_ident(table)}")
        low, high, rows = cur.fetchone()
        cur.close()
    finally:
        src.close()
    if low is None:
        return Shape(engine, None, None, 0)
    return Shape(engine, int(low), int(high), int(rows) if rows is not None else estimate)


def chunk_rows(ctx: LoadContext) -> int:
    """Rows one chunk statement aims at: the table's `chunk_rows` override, else SOURCE_CHUNK_ROWS;
    0 when SOURCE_CHUNK_ROWS is 0 (no chunked reads, overrides included: a replica takes no one's locks)."""
    if not ctx.source_cfg.chunk_rows:
        return 0
    return ctx.table.chunk_rows or ctx.source_cfg.chunk_rows


def _integer_key(ctx: LoadContext) -> str | None:
    if len(ctx.pk_live) == 1 and ctx.pk_live[0].kind == "integer":
        return ctx.pk_live[0].name
    return None


def _split(low: int, high: int, streams: int) -> list[tuple[int, int]]:
    """[low, high] in `streams` contiguous ranges (one when the range is small)."""
    if streams < 2 or high - low < PARALLEL_MIN_KEYS:
        return [(low, high)]
    step = (high - low) // streams + 1
    return [(low + i * step, min(low + (i + 1) * step - 1, high)) for i in range(streams)]


def _and(where: str, cond: str) -> str:
    return f"({where}) AND {cond}" if where else cond


def _range_part(
    ctx: LoadContext,
    live: Sequence[LiveColumn],
    where: str,
    params: Sequence[Any],
    also: str | None,
    key: str,
    low: int,
    high: int,
) -> tuple[str, tuple[Any, ...]]:
    cond = f"{quote_mysql_ident(key)} BETWEEN {int(low)} AND {int(high)}"
    return select_lines_sql(ctx.table.name, live, _and(where, cond), also=also), tuple(params)


def _chunks(
    ctx: LoadContext,
    live: Sequence[LiveColumn],
    where: str,
    params: Sequence[Any],
    also: str | None,
    key: str,
    low: int,
    high: int,
    shape: Shape,
) -> KeyChunks:
    rows = chunk_rows(ctx)
    span = shape.high - shape.low + 1 if shape.high is not None and shape.low is not None else shape.rows
    keys_per_row = span / max(shape.rows, 1)
    # the first range an eighth of the target: its time is not known yet; the next ones grow to it
    width = max(1, int(rows / CHUNK_GROWTH * max(keys_per_row, 1.0)))
    # the key range last, so the statement's last two parameters are each chunk's bounds
    cond = f"{quote_mysql_ident(key)} BETWEEN %s AND %s"
    sql = select_lines_sql(ctx.table.name, live, _and(where, cond), also=also)
    return KeyChunks(sql, tuple(params), low, high, rows, ctx.source_cfg.chunk_seconds, width)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, (bytes, bytearray)) else str(value)
