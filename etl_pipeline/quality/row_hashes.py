"""Per key bucket row hashes on both servers, so the deep check streams only the buckets that differ.

Each side renders every row as the loader's COPY-text line and sums a 60-bit MD5 of it per bucket of
`key_summary.BUCKET_KEYS` keys, with the bucket's row count:

- the source renders the line with `sql_render.line_expression`, the very line a load would COPY;
- PostgreSQL rebuilds the same line from raw's live row (`raw_line_expression`): the same columns in
  `sql_render.line_columns` order, each value written the way the source writes it (COPY escapes,
  `\\N`, `\\\\x` hex, ISO dates and times, `+00` on timestamps, 0/1 for bit(1), set literals).

A bucket whose count and hash sum are equal on both sides holds the same rows: raw's rows render as
exactly the lines the source would load. Any other bucket (a row changed on either side, or a value
the two servers write differently, such as some floats) is streamed and compared row by row as before,
so a rendering that differs costs time, never a missed difference. A table with a json column is not
hashed (jsonb normalises the text). Counts and bucket numbers only, never values.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from psycopg2.extensions import cursor

from etl_pipeline.db import connect_source
from etl_pipeline.load.key_summary import BUCKET_KEYS, bucket_of, bucket_range, in_ranges
from etl_pipeline.load.source import LiveColumn
from etl_pipeline.load.sql_render import line_columns, line_expression
from etl_pipeline.settings import MySQLSettings
from etl_pipeline.type_mapping import parse_column_type, quote_ident, quote_mysql_ident

Hashes = dict[int, tuple[int, int]]  # bucket -> (rows, sum of the rows' 60-bit hashes)
Ranges = Sequence[tuple[int, int]]

_NULL = "'\\N'"  # the two characters \N
_HASH_DIGITS = 15  # hex digits of the MD5 kept: 60 bits, so a bucket's sum stays exact


def hashable(columns: Sequence[LiveColumn]) -> bool:
    """Whether raw's rows can be written back as the source's lines (jsonb normalises json text)."""
    return bool(columns) and all(c.kind != "json" for c in columns)


def differing_ranges(
    source_cfg: MySQLSettings,
    table: str,
    key: LiveColumn,
    columns: Sequence[LiveColumn],
    pg: cursor,
    target: str,
    ranges: Ranges,
    keys_per_statement: int | None,
    seconds: dict[str, float] | None = None,
) -> tuple[list[tuple[int, int]], int]:
    """The parts of `ranges` (key ranges, clipped to buckets) whose buckets differ between the source
    and raw's live rows, and the rows of the buckets found equal. The source side runs on its own
    connection beside the PostgreSQL side, in statements over at most `keys_per_statement` keys
    (a MyISAM table is locked while one runs; None: a statement a range). `seconds` gets each side's
    time ('source', 'raw')."""
    timed = {} if seconds is None else seconds

    def source_side() -> Hashes:
        t0 = time.monotonic()
        hashes = source_hashes(source_cfg, table, key, columns, ranges, keys_per_statement)
        timed["source"] = time.monotonic() - t0
        return hashes

    with ThreadPoolExecutor(max_workers=1) as pool:
        theirs_later = pool.submit(source_side)
        t0 = time.monotonic()
        mine = raw_hashes(pg, target, key, columns, ranges)
        timed["raw"] = time.monotonic() - t0
        theirs = theirs_later.result()
    differing: list[tuple[int, int]] = []
    equal_rows = 0
    for lo, hi in ranges:
        for bucket in range(bucket_of(lo), bucket_of(hi) + 1):
            if theirs.get(bucket) == mine.get(bucket):
                equal_rows += theirs.get(bucket, (0, 0))[0]
                continue
            b_lo, b_hi = bucket_range(bucket)
            part = (max(lo, b_lo), min(hi, b_hi))
            if differing and differing[-1][1] + 1 == part[0]:
                differing[-1] = (differing[-1][0], part[1])
            else:
                differing.append(part)
    return differing, equal_rows


def source_hashes(
    cfg: MySQLSettings,
    table: str,
    key: LiveColumn,
    columns: Sequence[LiveColumn],
    ranges: Ranges,
    keys_per_statement: int | None,
) -> Hashes:
    k = quote_mysql_ident(key.name)
    digest = f"CAST(CONV(LEFT(MD5({line_expression(columns)}), {_HASH_DIGITS}), 16, 10) AS UNSIGNED)"
    sql = (
        f"SELECT {k} DIV {BUCKET_KEYS}, COUNT(*), SUM({digest}) FROM {quote_mysql_ident(table)} "
        f"WHERE {k} BETWEEN %s AND %s GROUP BY 1"
    )
    hashes: Hashes = {}
    src = connect_source(cfg)
    try:
        cur = src.cursor()
        for lo, hi in _pieces(ranges, keys_per_statement):
            cur.execute(sql, (lo, hi))
            for bucket, n, total in cur.fetchall():
                _add(hashes, int(bucket), int(n), int(total))
        cur.close()
    finally:
        src.close()
    return hashes


def raw_hashes(
    pg: cursor, target: str, key: LiveColumn, columns: Sequence[LiveColumn], ranges: Ranges
) -> Hashes:
    k = quote_ident(key.target_name)
    where = in_ranges(k, ranges)
    digest = f"('x' || left(md5({raw_line_expression(columns)}), {_HASH_DIGITS}))::bit(60)::bigint"
    pg.execute(
        f"SELECT {k} / {BUCKET_KEYS}, count(*), sum({digest}) FROM {target} "
        f"WHERE _deleted_at IS NULL AND ({where}) GROUP BY 1"
    )
    hashes: Hashes = {}
    for bucket, n, total in pg.fetchall():
        _add(hashes, int(bucket), int(n), int(total))
    return hashes


def raw_line_expression(columns: Sequence[LiveColumn]) -> str:
    """PostgreSQL text of a raw row as the source's COPY line (`sql_render.line_expression`)."""
    return "concat_ws(chr(9), " + ", ".join(_raw_value(c) for c in line_columns(columns)) + ")"


def _raw_value(c: LiveColumn) -> str:
    col = quote_ident(c.target_name)
    kind = c.kind
    if kind == "integer" and parse_column_type(c.source_type)[0] == "year":
        expr = f"lpad({col}::text, 4, '0')"  # the source writes year 0 as 0000
    elif kind in ("integer", "decimal", "float", "bits"):
        expr = f"{col}::text"
    elif kind == "time":
        expr = _interval_text(col, _precision(c.source_type))
    elif kind == "bit1":
        expr = f"CASE WHEN {col} THEN '1' WHEN NOT {col} THEN '0' END"
    elif kind == "date":
        expr = f"to_char({col}, 'YYYY-MM-DD')"
    elif kind in ("datetime", "timestamp"):
        value = f"{col} AT TIME ZONE 'UTC'" if kind == "timestamp" else col
        expr = _time_text(value, _precision(c.source_type))
        if kind == "timestamp":
            expr = f"{expr} || '+00'"
    elif kind == "binary":
        expr = f"'\\\\x' || upper(encode({col}, 'hex'))"
    elif kind == "set":
        members = f"replace(replace(array_to_string({col}, chr(1)), '\\', '\\\\'), '\"', '\\\"')"
        literal = f"CASE WHEN cardinality({col}) = 0 THEN '{{}}' ELSE '{{\"' || replace({members}, chr(1), '\",\"') || '\"}}' END"
        expr = _copy_escaped(literal)
    elif kind in ("text", "enum"):
        expr = _copy_escaped(col)
    else:
        raise ValueError(f"column {c.name}: kind {kind} has no rendering from raw")
    return f"coalesce({expr}, {_NULL})"


def _time_text(value: str, precision: int) -> str:
    if precision == 0:
        return f"to_char({value}, 'YYYY-MM-DD HH24:MI:SS')"
    return f"left(to_char({value}, 'YYYY-MM-DD HH24:MI:SS.US'), {20 + precision})"


def _interval_text(col: str, precision: int) -> str:
    """'[-]HH:MM:SS' (hours past 24 kept, IntervalStyle postgres) with the source's `precision` digits
    of fraction (PostgreSQL drops trailing zeros)."""
    if precision == 0:
        return f"{col}::text"
    text = f"{col}::text"
    whole = f"split_part({text}, '.', 1)"
    return f"rpad({whole} || '.' || split_part({text}, '.', 2), length({whole}) + {1 + precision}, '0')"


def _precision(source_type: str) -> int:
    _, args, _ = parse_column_type(source_type)
    return int(args[0]) if args and args[0] else 0


def _copy_escaped(expr: str) -> str:
    """Backslash, tab, newline and CR escaped as the source escapes them for COPY (backslash first)."""
    expr = f"replace({expr}, '\\', '\\\\')"
    for char, escape in ((9, "t"), (10, "n"), (13, "r")):
        expr = f"replace({expr}, chr({char}), '\\{escape}')"
    return expr


def _add(hashes: Hashes, bucket: int, n: int, total: int) -> None:
    """A bucket split between two statements adds up."""
    n0, t0 = hashes.get(bucket, (0, 0))
    hashes[bucket] = (n0 + n, t0 + total)


def _pieces(ranges: Ranges, width: int | None) -> list[tuple[int, int]]:
    if width is None:
        return [(int(lo), int(hi)) for lo, hi in ranges]
    pieces = []
    for lo, hi in ranges:
        start = int(lo)
        while start <= hi:
            end = min(start + width - 1, int(hi))
            pieces.append((start, end))
            start = end + 1
    return pieces
