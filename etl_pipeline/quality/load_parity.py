"""The nightly parity: source vs raw judged against what the table's last load saw, with a content check.

`parity.verify_table` (the `verify` command) is exact: any difference fails. The source keeps being
written after a table's load, so the nightly judges each difference by one question: does the source
show that it was written after the load, and will the next load read it? Such a difference is
**in flight** (tomorrow's): counted, not a mismatch. Anything else is a mismatch and fails the night.

What a load saw is in `etl`: its latest successful `load_runs` row (start, what it did, the window it
read: `window_lower`), the saved cursor `load_state.cursor_value` (the newest value the load read, capped
at its upper bound), and the source mark it took before reading (`source_marks`, see `load.unchanged`).

1. Rows whose source cursor is newer than the saved cursor were written after the load (at the load,
   no row it could read had such a value): updates of old rows with a new stamp and new keys alike.
   They are left out on both sides and counted in flight; the next window starts below the saved cursor.
2. A difference whose source cursor lies inside the next load's window (the lookback below the saved
   cursor, or `lookback_keys` keys below the saved key) is a row committed after the load's snapshot
   with an earlier stamp (a transaction held open across the read): the next load reads it, so in flight.
3. Differences no cursor can date — keys live in raw that the source has lost (deletes), and any
   difference of a `full` table (tonight's reload has no cursor window), or a key raw lacks on an
   `append_only` table (its key check loads late keys) — are what the next load fixes. They are in
   flight only when the source table was written after the load's read began: its write mark
   (UPDATE_TIME) moved past the mark the load kept. On MyISAM an unchanged mark proves no write, so
   then they are mismatches at once; InnoDB keeps no reliable mark, so there they are always excused
   the first time. Each excused key is kept in `etl.parity_in_flight` with the start of the load it
   was judged against; when a later load has run and the same key still differs, it is a mismatch.
   So a delete at the source after the load is in flight for one night, and a delete the loader never
   marks fails the next night.
4. Any other difference (a raw value differing inside the rows the windows have passed, a row of an
   incremental table raw lacks below the next window) is a mismatch: no load will repair it.

Key sets: a single integer key is compared by key buckets (`key_summary`): per bucket of BUCKET_KEYS
keys the count, sum and xor of the source's keys (a GROUP BY over its key index, a range of buckets a
statement) against raw's live keys: the loader's kept summary (`etl.key_buckets`, maintained in the
transaction of every change to raw), so raw is not scanned; over the buckets of tonight's deep ranges
raw's keys are summed from raw itself and compared with the kept summary too, so a row changed in raw
behind the loader shows within PERIOD nights. Only the keys of the buckets that differ
are streamed and judged by the rules above; equal buckets hold equal key sets unless changes inside
one bucket balance all three sums, which the weekly deep check below finds. Other keys are streamed
whole.

Content check: the rows the load read tonight (source rows with cursor at or above the recorded
`window_lower`; every row after a full load; none after a skip) are streamed through the loader's
renderer (`read_plan.window_stream`, so MyISAM is read in key-range chunks) into a temporary table of
raw's types and compared by key with raw's live rows (`IS DISTINCT FROM` on the whole row): the same
canonical form as `parity`'s deep check. Where the source has no index on the cursor (OpenDental's
cursor columns have none) the window's rows are read by key: the keys raw holds with a cursor in the
window, so no statement scans the table. The deep check (`rotation`) does the same over every row
(`deep`), or over the key ranges due tonight (`day`: a seventh of each integer-key table a night),
keys compared exactly there. Those ranges are compared by bucket row hashes first (`row_hashes`: per
bucket, the count and a hash sum of the rows as COPY lines on both servers), and only the buckets whose
hashes differ are streamed and judged as above. A table without a primary key is compared exactly (whole rows, as
`parity` does), its differences
excused only by a moved write mark. Results are counts and names, never row values or keys.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg2
from psycopg2.extensions import connection, cursor

from etl_pipeline.db import SOURCE_ERRORS, SourceConnection, connect_source, connect_target, fetch_value
from etl_pipeline.load import key_summary, raw, state, unchanged
from etl_pipeline.load.context import LoadContext
from etl_pipeline.load.read_plan import chunk_rows, window_stream
from etl_pipeline.load.source import LiveColumn, live_columns
from etl_pipeline.load.sql_render import copy_column_list
from etl_pipeline.load.unchanged import SourceMark
from etl_pipeline.load.window import AnyWindow, Cursor, cursor_of, incremental_window, reread
from etl_pipeline.quality import rotation, row_hashes
from etl_pipeline.quality.parity import ParityResult, compare_rows
from etl_pipeline.quality.rotation import INTEGER_KEY_TYPES
from etl_pipeline.schema.tables_config import TableConfig
from etl_pipeline.settings import STATE_SCHEMA, Settings
from etl_pipeline.type_mapping import quote_ident, quote_mysql_ident

log = logging.getLogger(__name__)
# Above this many differing key ranges one statement over every key is simpler than the ranges.
MAX_KEY_RANGES = 500
# Tonight's deep key ranges compared by bucket row hashes first (False: every range streamed, as bench/ compares).
HASH_DEEP_RANGES = True
# Above this many keys in tonight's window its rows are read by the cursor range (one pass).
MAX_WINDOW_KEYS = 50_000
CURSOR_INDEX_SQL = """
SELECT 1 FROM information_schema.STATISTICS
 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND COLUMN_NAME = %s AND SEQ_IN_INDEX = 1
 LIMIT 1"""
S = quote_ident(STATE_SCHEMA)
PENDING_DDL = f"""
CREATE TABLE IF NOT EXISTS {S}.parity_in_flight (
    table_name       text NOT NULL,
    key              text NOT NULL,
    load_started_at  timestamptz NOT NULL,
    PRIMARY KEY (table_name, key)
)"""


@dataclass(frozen=True)
class LoadSeen:
    """What a table's latest successful load saw (see the module)."""

    started_at: datetime
    strategy: str  # what it did: full, incremental, append_only
    skipped: bool  # unchanged at the source: nothing was read
    window_lower: str | None  # cursor text; None: no lower end
    cursor_value: str | None  # the saved cursor after it
    mark: SourceMark | None


def load_seen(cur: cursor, table: str) -> LoadSeen | None:
    """The table's latest successful load (None: it has none)."""
    cur.execute(
        f"""
        SELECT r.started_at, r.strategy, r.reason, r.window_lower, s.cursor_value
          FROM {S}.load_runs r JOIN {S}.load_state s USING (table_name)
         WHERE r.table_name = %s AND r.status = 'success'
         ORDER BY r.started_at DESC LIMIT 1""",
        (table,),
    )
    row = cur.fetchone()
    if row is None:
        return None
    started, strategy, reason, lower, saved = row
    return LoadSeen(started, strategy or "", reason == "unchanged", lower, saved, state.read_mark(cur, table))


def verify_loaded(
    settings: Settings,
    table: TableConfig,
    deep: bool = False,
    *,
    day: int | None = None,
    src: SourceConnection | None = None,
    pg: connection | None = None,
) -> ParityResult:
    """Parity of `table` judged against its latest load, with the content check of what it read
    tonight; `deep`: the content check over every row; `day`: also the content check of the key
    ranges due that day in the key-range rotation (`rotation.key_ranges`; a single integer key only).
    `src`, `pg`: open connections to use (left open; `pg`'s transaction is committed), else its own."""
    t0 = time.monotonic()
    own_src, own_pg = src is None, pg is None
    src = connect_source(settings.source) if src is None else src
    try:
        src.commit()  # a reused connection: a fresh snapshot of an InnoDB table
        excluded = {c.lower() for c in table.excluded_columns}
        live = [c for c in live_columns(src, table.name) if c.name.lower() not in excluded]
        by_name = {c.name.lower(): c for c in live}
        cursor = cursor_of(table, by_name)
        mark_now = unchanged.read_mark(src, table.name)
        pg = connect_target(settings.target) if pg is None else pg
        try:
            result = _judged(settings, table, src, pg, live, cursor, mark_now, deep, day)
            pg.commit()
        finally:
            if own_pg:
                pg.close()
    finally:
        if own_src:
            src.close()
    result.seconds = round(time.monotonic() - t0, 3)
    return result


def _judged(
    settings: Settings,
    table: TableConfig,
    src: SourceConnection,
    pg: connection,
    live: list[LiveColumn],
    cursor: Cursor | None,
    mark_now: SourceMark | None,
    deep: bool,
    day: int | None,
) -> ParityResult:
    by_name = {c.name.lower(): c for c in live}
    with pg.cursor() as cur:
        existing = raw.raw_columns(cur, table.target_name)
        seen = load_seen(cur, table.name) if existing is not None else None
        if existing is None or seen is None:
            error = "raw table missing" if existing is None else "no successful load to judge against"
            return ParityResult(table.name, 0, 0, deep=deep, error=error, against_load=True)
        columns = [c for c in live if c.target_name in existing]
        keys = [by_name[k.lower()] for k in table.primary_key if k.lower() in by_name]
        written = not unchanged.unchanged_since(mark_now, seen.mark)
        if not keys or any(k.target_name not in existing for k in keys):
            return _without_key(settings, cur, table, columns, written)
        if cursor is not None and cursor.column.lower() not in {c.name.lower() for c in columns}:
            cursor = None
        ctx = LoadContext(settings, table, pg, datetime.now(UTC), pk_live=keys)
        return _Check(ctx, cur, src, columns, keys, cursor, seen, written, deep, day).run()


def _without_key(
    settings: Settings, cur: cursor, table: TableConfig, columns: Sequence[LiveColumn], written: bool
) -> ParityResult:
    target = raw.qualified(table.target_name)
    missing, extra = compare_rows(settings, cur, table, target, columns)
    cur.execute(f"SELECT count(*) FROM {target} WHERE _deleted_at IS NULL")
    live_rows = fetch_value(cur)
    result = ParityResult(table.name, live_rows + missing - extra, live_rows, deep=True, against_load=True)
    result.content_checked_rows = result.source_rows
    if written:
        result.in_flight = missing + extra
    else:
        result.missing_in_raw, result.extra_in_raw = missing, extra
        result.content_mismatches = missing + extra
    return result


class _Check:
    """One table's judged parity in the target transaction `cur` (temporary tables `_nk`: the source's
    keys and cursor compared, `_nrows`: the source rows of the content check, `_nflight`: keys written
    after the load, `_ndiff`: the differing keys and how each is judged).

    A single integer key is compared by key buckets first (`_differing_buckets`): only the keys of
    buckets whose count, sum or xor differ between the source and raw go to `_nk` (and the keys of
    tonight's deep ranges), and the keys raw lacks or has in excess are looked for in those ranges
    alone (`self.ranges`). Other keys are streamed whole (`self.ranges` None: every key)."""

    def __init__(
        self,
        ctx: LoadContext,
        cur: cursor,
        src: SourceConnection,
        columns: Sequence[LiveColumn],
        keys: Sequence[LiveColumn],
        cursor: Cursor | None,
        seen: LoadSeen,
        written: bool,
        deep: bool,
        day: int | None,
    ) -> None:
        self.ctx, self.cur, self.src, self.columns, self.keys = ctx, cur, src, list(columns), list(keys)
        self.cursor, self.seen, self.written, self.deep = cursor, seen, written, deep
        self.table = ctx.table
        self.target = raw.qualified(self.table.target_name)
        self.k = [quote_ident(c.target_name) for c in keys]
        self.c = None if cursor is None else quote_ident(_live(columns, cursor.column).target_name)
        saved = seen.cursor_value
        self.bound = None if cursor is None or saved is None else _as_pg(cursor, cursor.value(saved))
        self.bucketed = len(keys) == 1 and keys[0].pg_type in INTEGER_KEY_TYPES and not self._every_row()
        self.day = day if self.bucketed else None
        self.ranges: list[tuple[int, int]] | None = None  # the key ranges compared (None: every key)
        self.deep_ranges: list[tuple[int, int]] = []  # those streamed (see _hash_deep_ranges)
        self.deep_due: list[tuple[int, int]] = []  # tonight's deep ranges
        self.hashed_rows = 0  # rows of deep_due found equal by their buckets' row hashes
        self.counts: tuple[int, int] | None = None  # (source keys, raw live keys) from the buckets
        self.phases: dict[str, float] = {}

    def run(self) -> ParityResult:
        t0 = time.monotonic()
        if self.bucketed:
            self._differing_buckets()
            if self.deep_ranges:
                self._hash_deep_ranges()
        content = self._stream()
        self._in_flight()
        self._differences(content)
        self._judge()
        cur = self.cur
        if self.counts is None:
            cur.execute("SELECT count(*) FROM _nk")
            source_rows = fetch_value(cur)
            cur.execute(f"SELECT count(*) FROM {self.target} WHERE _deleted_at IS NULL")
            raw_rows = fetch_value(cur)
        else:
            source_rows, raw_rows = self.counts
        deep = self.deep or bool(self.deep_due)
        result = ParityResult(self.table.name, source_rows, raw_rows, deep=deep, against_load=True)
        cur.execute("SELECT count(*) FROM _nflight")
        result.in_flight = fetch_value(cur)
        if content:
            cur.execute(f"SELECT count(*) FROM _nrows r WHERE NOT EXISTS ({self._flight_of('r')})")
            result.content_checked_rows = fetch_value(cur) - self._read_and_hashed()
        result.content_checked_rows += self.hashed_rows
        result.deep_hashed_rows = self.hashed_rows
        cur.execute("SELECT kind, cls IS NULL OR cls = 'stale', count(*) FROM _ndiff GROUP BY 1, 2")
        for kind, real, n in cur.fetchall():
            if not real:
                result.in_flight += n
            elif kind == "missing":
                result.missing_in_raw += n
            elif kind == "extra":
                result.extra_in_raw += n
            else:
                result.content_mismatches += n
        self._keep_pending()
        self._phase("judge", t0)
        result.phase_seconds = {k: round(v, 3) for k, v in self.phases.items()}
        return result

    def _phase(self, name: str, since: float) -> float:
        """Add the seconds since `since` to phase `name` (all of run() less the named others: 'judge')."""
        now = time.monotonic()
        if name == "judge":
            named = sum(v for k, v in self.phases.items() if k in ("keys", "content", "deep"))
            self.phases[name] = now - since - named
        else:
            self.phases[name] = self.phases.get(name, 0.0) + now - since
        return now

    def _every_row(self) -> bool:
        """The content check reads every row (a deep check, or after a full load): so do the keys."""
        return self.deep or (self.seen.strategy == "full" and not self.seen.skipped)

    def _differing_buckets(self) -> None:
        """`self.ranges`: the key ranges of the buckets that differ between the source (one GROUP BY
        over its key index) and raw's live keys, and `self.counts`. Raw's side is the loader's kept
        summary (`etl.key_buckets`, maintained with every change to raw), summed from raw itself only
        over the buckets of tonight's deep ranges (`_raw_checked_ranges`), so that a row changed in
        raw by anything but the loader shows within PERIOD nights; a bucket where the two disagree is
        compared too, and logged: the loader's delete check trusts that summary. A table without a
        kept summary is summed from raw whole."""
        t0 = time.monotonic()
        key = self.keys[0]
        scur = self.src.cursor()
        try:
            source, span = key_summary.source_buckets(scur, self.table.name, key.name)
        finally:
            scur.close()
        if self.day is not None and span is not None:
            self.deep_ranges = rotation.key_ranges(self.table.name, self.day, *span)
        t1 = time.monotonic()
        kept = key_summary.kept(self.cur, self.table.name)
        if kept is None:
            raw_side = key_summary.recomputed(self.cur, self.target, key.target_name)
            drift: set[int] = set()
        else:
            checked = self._raw_checked_ranges(span)
            actual = key_summary.recomputed(self.cur, self.target, key.target_name, checked)

            def is_checked(bucket: int) -> bool:
                low = key_summary.bucket_range(bucket)[0]
                return any(lo <= low <= hi for lo, hi in checked)

            drift = {b for b in kept.keys() | actual.keys() if is_checked(b) and kept.get(b) != actual.get(b)}
            if drift:
                log.warning(
                    "%s: the kept key summary differs from raw in %d buckets", self.table.name, len(drift)
                )
            raw_side = {b: v for b, v in kept.items() if not is_checked(b)} | actual
        self.phases["keys_raw_summary"] = time.monotonic() - t1  # a part of "keys"
        differing = {b for b in source.keys() | raw_side.keys() if source.get(b) != raw_side.get(b)} | drift
        ranges = key_summary.ranges_of(differing)
        self.ranges = ranges if len(ranges) <= MAX_KEY_RANGES else None  # scattered: stream every key
        self.counts = (sum(n for n, _, _ in source.values()), sum(n for n, _, _ in raw_side.values()))
        self._phase("keys", t0)

    def _raw_checked_ranges(self, source_span: tuple[int, int] | None) -> list[tuple[int, int]]:
        """The key ranges, whole buckets, whose raw keys are summed from raw itself tonight: tonight's
        deep ranges over the key span of the source and raw together (keys raw holds beyond the
        source's lowest or highest fall in a block too); none on a night without a deep check."""
        if self.day is None:
            return []
        k = self.k[0]
        self.cur.execute(f"SELECT min({k}), max({k}) FROM {self.target}")
        raw_low, raw_high = self.cur.fetchone() or (None, None)
        ends = [int(e) for e in (*(source_span or ()), raw_low, raw_high) if e is not None]
        if not ends:
            return []
        return [
            (
                key_summary.bucket_range(key_summary.bucket_of(low))[0],
                key_summary.bucket_range(key_summary.bucket_of(high))[1],
            )
            for low, high in rotation.key_ranges(self.table.name, self.day, min(ends), max(ends))
        ]

    def _hash_deep_ranges(self) -> None:
        """Keep in `self.deep_ranges` only the parts of tonight's deep ranges whose buckets' row hashes
        differ between the source and raw (`row_hashes`): the other buckets hold the source's rows and
        are not streamed. Where the hashes cannot be taken (a json column, a database not in UTF-8, a
        raw column of another type than the source's maps to, a failing statement) every range is
        streamed as before."""
        t0 = time.monotonic()
        self.deep_due = list(self.deep_ranges)
        if not HASH_DEEP_RANGES or not row_hashes.hashable(self.columns):
            return
        cur = self.cur
        cur.execute("SELECT current_setting('server_encoding')")
        if fetch_value(cur) != "UTF8":
            return
        cur.execute("SAVEPOINT row_hashes")
        sides: dict[str, float] = {}
        try:
            differing, self.hashed_rows = row_hashes.differing_ranges(
                self.ctx.source_cfg,
                self.table.name,
                self.keys[0],
                self.columns,
                cur,
                self.target,
                self.deep_due,
                chunk_rows(self.ctx) or None,
                sides,
            )
        except (psycopg2.Error, *SOURCE_ERRORS) as exc:
            cur.execute("ROLLBACK TO SAVEPOINT row_hashes")
            log.warning(
                "%s: the deep check's row hashes failed (%s): its key ranges are streamed",
                self.table.name,
                type(exc).__name__,
            )
            return
        finally:
            self._phase("deep", t0)
            for side, spent in sides.items():  # parts of "deep", the two sides at once
                self.phases[f"deep_hash_{side}"] = spent
        cur.execute("RELEASE SAVEPOINT row_hashes")
        self.deep_ranges = differing

    def _read_and_hashed(self) -> int:
        """Rows of tonight's window the content check read that lie in buckets hashed equal too."""
        if not self.hashed_rows:
            return 0
        k = f"r.{self.k[0]}"
        streamed = f" AND NOT ({key_summary.in_ranges(k, self.deep_ranges)})" if self.deep_ranges else ""
        self.cur.execute(
            f"SELECT count(*) FROM _nrows r WHERE ({key_summary.in_ranges(k, self.deep_due)}){streamed} "
            f"AND NOT EXISTS ({self._flight_of('r')})"
        )
        return fetch_value(self.cur)

    def _stream(self) -> bool:
        """Stream the source into `_nk` (and `_nrows` for the content check); True when there is one."""
        cols = ", ".join(quote_ident(c.target_name) for c in self.columns)
        key_cols = self.k + ([self.c] if self.c and self.c not in self.k else [])
        key_live = [*self.keys]
        if self.cursor is not None and self.c not in self.k:
            key_live.append(_live(self.columns, self.cursor.column))
        if self._every_row():
            t0 = time.monotonic()
            self._copy("_nrows", cols, self.columns, "", ())
            # every row: the keys come from the same read
            self.cur.execute(
                f"CREATE TEMP TABLE _nk ON COMMIT DROP AS SELECT {', '.join(key_cols)} FROM _nrows"
            )
            self.cur.execute("ANALYZE _nk")
            self._phase("deep" if self.deep else "content", t0)
            return True
        t0 = time.monotonic()
        where, params = self._content_window()
        self._create("_nrows", cols)
        if where is not None:
            self._copy("_nrows", cols, self.columns, where, params)
        t0 = self._phase("content", t0)
        if self.deep_ranges:
            # tonight's deep ranges less the rows the window read already (a NULL cursor is not in it)
            outside = f" AND NOT COALESCE({where}, FALSE)" if where else ""
            inside = f"({key_summary.in_ranges(self._key_my(), self.deep_ranges)}){outside}"
            self._copy("_nrows", cols, self.columns, inside, params if where else ())
            t0 = self._phase("deep", t0)
        if self.ranges is None:
            self._copy("_nk", ", ".join(key_cols), key_live, "", ())
            self._phase("keys", t0)
        else:
            key_my = self._key_my()
            self._create("_nk", ", ".join(key_cols))
            if self.ranges:  # the differing buckets' keys
                self._copy(
                    "_nk", ", ".join(key_cols), key_live, key_summary.in_ranges(key_my, self.ranges), ()
                )
            t0 = self._phase("keys", t0)
            if self.deep_ranges:  # and tonight's deep ranges' keys, compared in full
                beside = f" AND NOT ({key_summary.in_ranges(key_my, self.ranges)})" if self.ranges else ""
                self._copy(
                    "_nk",
                    ", ".join(key_cols),
                    key_live,
                    f"({key_summary.in_ranges(key_my, self.deep_ranges)}){beside}",
                    (),
                )
                self.ranges = _union(self.ranges, self.deep_ranges)
                self._phase("deep", t0)
        return where is not None or bool(self.deep_ranges)

    def _key_my(self) -> str:
        return quote_mysql_ident(self.keys[0].name)

    def _content_window(self) -> tuple[str | None, tuple[Any, ...]]:
        """The source condition of the content check (None: no rows): the rows the load read, its
        cursor at or above the recorded `window_lower`. Where the source cannot read that range from
        an index (OpenDental's cursor columns have none), the rows are found by key instead
        (`_window_by_key`), so no statement scans the table. On the bucket path `_nk` no longer holds
        every key, so after a load that read nothing the rows written since (cursor above the saved
        one, all in flight) are read for the count of rows in flight, where an index allows."""
        seen = self.seen
        if self.cursor is None:
            return None, ()
        column = quote_mysql_ident(self.cursor.column)
        indexed = self._cursor_indexed()
        if not seen.skipped and seen.window_lower is not None:
            lower = self.cursor.value(seen.window_lower)
            return (f"{column} >= %s", (lower,)) if indexed else self._window_by_key(column, lower)
        if self.bucketed and self.written and seen.cursor_value is not None and indexed:
            return f"{column} > %s", (self.cursor.value(seen.cursor_value),)
        return None, ()

    def _cursor_indexed(self) -> bool:
        """Whether the source reads a range of the cursor from an index (the key, or an index the
        cursor column leads); tables off the bucket path read the range as before either way."""
        assert self.cursor is not None
        if not self.bucketed or self.cursor.column.lower() == self.keys[0].name.lower():
            return True
        scur = self.src.cursor()
        try:
            scur.execute(CURSOR_INDEX_SQL, (self.table.name, self.cursor.column))
            return scur.fetchone() is not None
        finally:
            scur.close()

    def _window_by_key(self, column: str, lower: Any) -> tuple[str | None, tuple[Any, ...]]:
        """The window's rows by key: the keys whose row raw holds with a cursor in the window (the rows
        the load read and merged), read by the source's key index. A row the load should have read
        but raw holds with an older cursor is not among them: the deep check's key range finds it
        within the week. Above MAX_WINDOW_KEYS keys (a window of weeks), the cursor range is read."""
        assert self.c is not None
        cur = self.cur
        cur.execute(
            f"SELECT {self.k[0]} FROM {self.target} WHERE {self.c} >= %s AND _deleted_at IS NULL "
            f"LIMIT {MAX_WINDOW_KEYS + 1}",
            (_as_pg(self.cursor, lower),),
        )
        keys = [int(k) for (k,) in cur.fetchall()]
        if len(keys) > MAX_WINDOW_KEYS:
            return f"{column} >= %s", (lower,)
        if not keys:
            return None, ()
        return f"{self._key_my()} IN ({', '.join(map(str, sorted(keys)))})", ()

    def _create(self, name: str, cols: str) -> None:
        self.cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {name} ON COMMIT DROP AS SELECT {cols} FROM {self.target} WITH NO DATA"
        )

    def _copy(
        self, name: str, cols: str, live: Sequence[LiveColumn], where: str, params: Sequence[Any]
    ) -> None:
        cur = self.cur
        self._create(name, cols)
        stream = window_stream(self.ctx, live, where, params)
        try:
            cur.copy_expert(f"COPY {name} ({copy_column_list(live)}) FROM STDIN", stream, size=1 << 20)
        finally:
            stream.close()
        stream.check()
        cur.execute(f"ANALYZE {name}")

    def _in_flight(self) -> None:
        """`_nflight`: the keys whose source cursor is newer than the saved one (in either read)."""
        k = ", ".join(self.k)
        if self.c is None or self.bound is None:
            self.cur.execute(f"CREATE TEMP TABLE _nflight ON COMMIT DROP AS SELECT {k} FROM _nk WITH NO DATA")
            return
        self.cur.execute(
            f"""CREATE TEMP TABLE _nflight ON COMMIT DROP AS
                SELECT {k} FROM _nk WHERE {self.c} > %(b)s UNION SELECT {k} FROM _nrows WHERE {self.c} > %(b)s""",
            {"b": self.bound},
        )
        self.cur.execute("ANALYZE _nflight")

    def _flight_of(self, alias: str) -> str:
        on = " AND ".join(f"f.{k} = {alias}.{k}" for k in self.k)
        return f"SELECT 1 FROM _nflight f WHERE {on}"

    def _differences(self, content: bool) -> None:
        t0 = time.monotonic()
        cur, t = self.cur, self.target
        c = f"s.{self.c}" if self.c else "NULL::text"
        cur.execute(
            f"CREATE TEMP TABLE _ndiff ON COMMIT DROP AS SELECT ''::text AS kind, ''::text AS key, {c} AS c, "
            f"''::text AS cls FROM _nk s WITH NO DATA"
        )
        on = " AND ".join(f"t.{k} = s.{k}" for k in self.k)
        key_text = "ROW({})::text"
        s_key = key_text.format(", ".join(f"s.{k}" for k in self.k))
        t_key = key_text.format(", ".join(f"t.{k}" for k in self.k))
        cur.execute(
            f"""INSERT INTO _ndiff (kind, key, c)
                SELECT 'missing', {s_key}, {c} FROM _nk s
                 WHERE NOT EXISTS (SELECT 1 FROM {t} t WHERE {on} AND t._deleted_at IS NULL)
                   AND NOT EXISTS ({self._flight_of("s")})"""
        )
        compared = (
            ""
            if self.ranges is None
            else f" AND ({key_summary.in_ranges(f't.{self.k[0]}', self.ranges) or 'FALSE'})"
        )
        cur.execute(
            f"""INSERT INTO _ndiff (kind, key)
                SELECT 'extra', {t_key} FROM {t} t
                 WHERE t._deleted_at IS NULL{compared} AND NOT EXISTS (SELECT 1 FROM _nk s WHERE {on})"""
        )
        # the keys of tonight's deep ranges are most of those compared when there are any
        t0 = self._phase("deep" if self.deep_ranges else "keys", t0)
        if content:
            cols = [quote_ident(col.target_name) for col in self.columns]
            s_row = ", ".join(f"s.{col}" for col in cols)
            t_row = ", ".join(f"t.{col}" for col in cols)
            cur.execute(
                f"""INSERT INTO _ndiff (kind, key, c)
                    SELECT 'content', {s_key}, {c} FROM _nrows s JOIN {t} t ON {on} AND t._deleted_at IS NULL
                     WHERE ROW({s_row}) IS DISTINCT FROM ROW({t_row})
                       AND NOT EXISTS ({self._flight_of("s")})"""
            )
            # one comparison of the window's rows and the deep ranges' (far more, when there are any)
            self._phase("deep" if self.deep_ranges else "content", t0)

    def _judge(self) -> None:
        """Set `_ndiff.cls`: 'zone' (the next window reads it), 'mark' (the next load fixes it and the
        source was written after the load), 'stale' (excused before, still there after a later load),
        NULL (a mismatch)."""
        cur = self.cur
        nxt = self._next_window()
        if nxt is not None and nxt.lower is not None:
            op = ">" if nxt.lower_end == "open" else ">="
            cur.execute(
                f"UPDATE _ndiff SET cls = 'zone' WHERE kind <> 'extra' AND c {op} %s",
                (_as_pg(self.cursor, nxt.lower),),
            )
        fixable = {"full": ("extra", "missing", "content"), "append_only": ("extra", "missing")}
        kinds = fixable.get(self.table.strategy, ("extra",))
        if not self.written:
            return
        cur.execute("UPDATE _ndiff SET cls = 'mark' WHERE cls IS NULL AND kind = ANY(%s)", (list(kinds),))
        cur.execute(PENDING_DDL)
        cur.execute(
            f"""UPDATE _ndiff d SET cls = 'stale' FROM {S}.parity_in_flight p
                 WHERE d.cls = 'mark' AND p.table_name = %s AND p.key = d.key AND p.load_started_at < %s""",
            (self.table.name, self.seen.started_at),
        )

    def _keep_pending(self) -> None:
        """`etl.parity_in_flight` holds the table's keys excused by the write mark (see the module)."""
        cur = self.cur
        cur.execute(PENDING_DDL)
        cur.execute(
            f"""DELETE FROM {S}.parity_in_flight p WHERE p.table_name = %s
                 AND NOT EXISTS (SELECT 1 FROM _ndiff d WHERE d.key = p.key AND d.cls IN ('mark', 'stale'))""",
            (self.table.name,),
        )
        cur.execute(
            f"""INSERT INTO {S}.parity_in_flight (table_name, key, load_started_at)
                SELECT DISTINCT %s, key, %s::timestamptz FROM _ndiff WHERE cls IN ('mark', 'stale')
                ON CONFLICT (table_name, key) DO NOTHING""",
            (self.table.name, self.seen.started_at),
        )

    def _next_window(self) -> AnyWindow | None:
        """The window the next incremental load reads (None: the table is not read by a cursor)."""
        if (
            self.cursor is None
            or self.seen.cursor_value is None
            or self.table.strategy not in ("incremental", "append_only")
        ):
            return None
        saved = self.seen.cursor_value
        window = incremental_window(self.cursor, saved, self.cursor.value(saved), self.table.lookback_minutes)
        return reread(window, lookback_keys=self.table.lookback_keys)


def _as_pg(cursor: Cursor | None, value: Any) -> Any:
    """A cursor bound as PostgreSQL compares it with raw's column (a TIMESTAMP's: an instant in UTC)."""
    if cursor is not None and cursor.kind == "timestamp" and isinstance(value, datetime):
        return value.replace(tzinfo=UTC)
    return value


def _live(columns: Sequence[LiveColumn], name: str) -> LiveColumn:
    return next(c for c in columns if c.name.lower() == name.lower())


def _union(a: Sequence[tuple[int, int]], b: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The key ranges of `a` and `b` together, overlapping and adjacent ones merged."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted([*a, *b]):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged
