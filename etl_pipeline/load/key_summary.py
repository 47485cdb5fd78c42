"""The raw side of the delete reconciliation's key-bucket summary, kept in `etl.key_buckets`.

Per bucket of BUCKET_KEYS primary-key values: count, sum and xor of raw's live keys (`_deleted_at
IS NULL`). All three are maintained by deltas in the same transaction as the change to raw (a key
becoming live adds it, a key marked deleted subtracts it: xor is its own inverse), so a nightly
scans only the source side. A full load recomputes it from the new table. `etl.key_summaries` lists
the tables whose buckets are maintained; a table without an entry gets its summary computed from
raw once, on its next incremental load.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg2.extensions import cursor

from etl_pipeline.load.context import LoadContext
from etl_pipeline.settings import STATE_SCHEMA
from etl_pipeline.type_mapping import quote_ident, quote_mysql_ident

# Primary-key bucket width of the delete reconciliation summary: narrow enough that scattered
# deletes stream few keys, wide enough that the summaries stay small (a row per BUCKET_KEYS keys).
BUCKET_KEYS = 1024
_U64 = (1 << 64) - 1  # MariaDB's BIT_XOR is unsigned, PostgreSQL's signed: compare the bits
S = quote_ident(STATE_SCHEMA)

DDL = f"""
CREATE TABLE IF NOT EXISTS {S}.key_summaries (table_name text PRIMARY KEY, bucket_keys int NOT NULL);
CREATE TABLE IF NOT EXISTS {S}.key_buckets (
    table_name  text NOT NULL,
    bucket      bigint NOT NULL,
    n           bigint NOT NULL,
    s           numeric NOT NULL,
    x           bigint NOT NULL,
    PRIMARY KEY (table_name, bucket)
);
"""


def eligible(ctx: LoadContext) -> bool:
    """A single integer key with delete detection, or an append_only table read by its key (its purges
    and late keys are found by buckets, see `append_only`): the tables reconciled by buckets."""
    table = ctx.table
    by_key = table.strategy == "append_only" and tuple(table.primary_key) == (table.cursor,)
    return bool(
        (table.detect_deletes or by_key)
        and len(ctx.pk_live) == 1
        and ctx.pk_live[0].pg_type in ("smallint", "integer", "bigint")
    )


def lowest_live_key(cur: cursor, table: str) -> int | None:
    """The lowest key raw may hold live: the start of the lowest bucket of the kept summary."""
    cur.execute(f"SELECT min(bucket) FROM {S}.key_buckets WHERE table_name = %s", (table,))
    row = cur.fetchone()
    if row is None or row[0] is None:
        return None
    bucket = int(row[0])
    return bucket * BUCKET_KEYS if bucket > 0 else (bucket - 1) * BUCKET_KEYS + 1


def forget(cur: cursor, table: str) -> None:
    cur.execute(f"DELETE FROM {S}.key_buckets WHERE table_name = %s", (table,))
    cur.execute(f"DELETE FROM {S}.key_summaries WHERE table_name = %s", (table,))


def recompute(cur: cursor, table: str, target: str, key: str) -> None:
    """The summary of raw's live keys now (after a full swap, or when none is kept yet)."""
    forget(cur, table)
    k = quote_ident(key)
    # every key (read from the primary key index alone when the pages are all-visible, as after a
    # COPY FREEZE) less the keys marked deleted (the partial index): the live keys, without reading
    # the wide rows. xor is its own inverse; a bucket whose keys are all deleted has no row.
    cur.execute(
        f"""
        INSERT INTO {S}.key_buckets (table_name, bucket, n, s, x)
        SELECT %s, bucket, sum(n), sum(s), bit_xor(x)
          FROM (SELECT {k} / {BUCKET_KEYS} AS bucket, count(*) AS n, sum({k}) AS s, bit_xor({k}::bigint) AS x
                  FROM {target} GROUP BY 1
                UNION ALL
                SELECT {k} / {BUCKET_KEYS}, -count(*), -sum({k}), bit_xor({k}::bigint)
                  FROM {target} WHERE _deleted_at IS NOT NULL GROUP BY 1) AS parts
         GROUP BY bucket
        HAVING sum(n) > 0""",
        (table,),
    )
    cur.execute(
        f"INSERT INTO {S}.key_summaries (table_name, bucket_keys) VALUES (%s, %s)", (table, BUCKET_KEYS)
    )


def ensure(cur: cursor, table: str, target: str, key: str) -> None:
    cur.execute(f"SELECT bucket_keys FROM {S}.key_summaries WHERE table_name = %s", (table,))
    row = cur.fetchone()
    if row is None or row[0] != BUCKET_KEYS:  # none kept yet, or kept at another width
        recompute(cur, table, target, key)


def start_delta(cur: cursor) -> None:
    """`_key_delta(k, sign)`: keys that became live (+1) or were marked deleted (-1) in this transaction."""
    cur.execute("CREATE TEMP TABLE _key_delta (k bigint NOT NULL, sign int NOT NULL) ON COMMIT DROP")


def apply_delta(cur: cursor, table: str) -> None:
    cur.execute(
        f"""
        INSERT INTO {S}.key_buckets AS b (table_name, bucket, n, s, x)
        SELECT %s, k / {BUCKET_KEYS}, sum(sign), sum(sign * k::numeric), bit_xor(k)
          FROM _key_delta GROUP BY 2
        ON CONFLICT (table_name, bucket) DO UPDATE
           SET n = b.n + EXCLUDED.n, s = b.s + EXCLUDED.s, x = b.x # EXCLUDED.x""",
        (table,),
    )
    cur.execute(f"DELETE FROM {S}.key_buckets WHERE table_name = %s AND n = 0", (table,))
    cur.execute("TRUNCATE _key_delta")


def live_keys(cur: cursor, table: str) -> int:
    """How many keys are live in raw, from the kept summary."""
    cur.execute(f"SELECT COALESCE(sum(n), 0) FROM {S}.key_buckets WHERE table_name = %s", (table,))
    row = cur.fetchone()
    assert row is not None
    return int(row[0])


def buckets(cur: cursor, table: str) -> dict[int, tuple[int, int, int]]:
    cur.execute(f"SELECT bucket, n, s, x FROM {S}.key_buckets WHERE table_name = %s", (table,))
    return {int(b): (int(n), int(s), int(x) & _U64) for b, n, s, x in cur.fetchall()}


def recomputed(
    cur: cursor, target: str, key: str, ranges: Sequence[tuple[int, int]] | None = None
) -> dict[int, tuple[int, int, int]]:
    """The summary computed from raw itself (tests, and a check that the kept one is right), over
    every key or over the key `ranges` alone."""
    if ranges is not None and not ranges:
        return {}
    k = quote_ident(key)
    within = f" AND ({in_ranges(k, ranges)})" if ranges else ""
    cur.execute(f"""
        SELECT {k} / {BUCKET_KEYS}, count(*), sum({k}), bit_xor({k}::bigint)
          FROM {target} WHERE _deleted_at IS NULL{within} GROUP BY 1""")
    return {int(b): (int(n), int(s), int(x) & _U64) for b, n, s, x in cur.fetchall()}


Summary = dict[int, tuple[int, int, int]]  # per bucket: (count, sum, xor of the keys as unsigned bits)

# Buckets per statement of the source-side summary: a range of the key index, so a table-locking
# engine (MyISAM) is locked for one short statement at a time, as the loader's chunked reads are.
SOURCE_SUMMARY_BUCKETS = 256


def source_buckets(scur: Any, table: str, key: str) -> tuple[Summary, tuple[int, int] | None]:
    """The same summary of the source table's keys now, read from its key index (`scur`: a source
    cursor), in statements over SOURCE_SUMMARY_BUCKETS buckets' key ranges; and the lowest and
    highest key (None: the table is empty)."""
    t, k = quote_mysql_ident(table), quote_mysql_ident(key)
    scur.execute(f"SELECT MIN({k}), MAX({k}) FROM {t}")
    low, high = scur.fetchone()
    summary: Summary = {}
    if low is None:
        return summary, None
    step = SOURCE_SUMMARY_BUCKETS * BUCKET_KEYS
    start = int(low)
    while start <= int(high):
        end = min(start + step - 1, int(high))
        scur.execute(
            f"SELECT {k} DIV {BUCKET_KEYS}, COUNT(*), SUM({k}), BIT_XOR({k}) FROM {t} "
            f"WHERE {k} BETWEEN %s AND %s GROUP BY 1",
            (start, end),
        )
        for b, n, s, x in scur.fetchall():
            # a bucket split between two statements (ranges need not start on a bucket) adds up
            n0, s0, x0 = summary.get(int(b), (0, 0, 0))
            summary[int(b)] = (n0 + int(n), s0 + int(s), (x0 ^ int(x)) & _U64)
        start = end + 1
    return summary, (int(low), int(high))


def kept(cur: cursor, table: str) -> Summary | None:
    """The maintained summary (None: none is kept for `table` at this bucket width)."""
    cur.execute(f"SELECT bucket_keys FROM {S}.key_summaries WHERE table_name = %s", (table,))
    row = cur.fetchone()
    if row is None or row[0] != BUCKET_KEYS:
        return None
    return buckets(cur, table)


def bucket_of(key: int) -> int:
    """key DIV BUCKET_KEYS as both servers compute it (truncating toward zero)."""
    return abs(key) // BUCKET_KEYS * (1 if key >= 0 else -1)


def in_ranges(column: str, ranges: Sequence[tuple[int, int]]) -> str:
    """SQL: `column` in one of the key `ranges` ('' for none); the same text for either server."""
    return " OR ".join(f"{column} BETWEEN {int(lo)} AND {int(hi)}" for lo, hi in ranges)


def bucket_range(bucket: int) -> tuple[int, int]:
    """Keys k with k DIV BUCKET_KEYS == bucket (DIV truncates toward zero on both servers)."""
    if bucket > 0:
        return bucket * BUCKET_KEYS, (bucket + 1) * BUCKET_KEYS - 1
    if bucket < 0:
        return (bucket - 1) * BUCKET_KEYS + 1, bucket * BUCKET_KEYS
    return -(BUCKET_KEYS - 1), BUCKET_KEYS - 1


def ranges_of(buckets_: set[int]) -> list[tuple[int, int]]:
    """The key ranges of `buckets_`, neighbours merged."""
    ranges: list[tuple[int, int]] = []
    for low, high in map(bucket_range, sorted(buckets_)):
        if ranges and ranges[-1][1] + 1 == low:
            ranges[-1] = (ranges[-1][0], high)
        else:
            ranges.append((low, high))
    return ranges
