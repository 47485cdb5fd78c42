"""Loading one table, and a run over many: the API the CLI and the nightly DAG call.

`load_table` decides between a full refresh and an incremental load, runs it in one PostgreSQL
transaction together with the table's state row, and records failures in `etl.load_runs` before
re-raising them (so an Airflow task is marked failed). `run` loads many tables in parallel and
never stops at the first failure.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from etl_pipeline.db import connect_source, connect_target
from etl_pipeline.errors import ConfigError, EtlError
from etl_pipeline.load import raw, state, unchanged
from etl_pipeline.load.full import load_full
from etl_pipeline.load.incremental import load_incremental
from etl_pipeline.load.source import live_columns, scalar, source_clock_bound, source_upper_bound
from etl_pipeline.schema.tables_config import TableConfig, load_tables_config
from etl_pipeline.settings import Settings
from etl_pipeline.type_mapping import quote_mysql_ident

log = logging.getLogger(__name__)


@dataclass
class TableLoadResult:
    table: str
    strategy: str  # what was done: full | incremental | append_only
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    bytes: int = 0
    seconds: float = 0.0
    status: str = "success"  # success | failed | skipped
    error_class: str | None = None
    target_name: str = ""
    message: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class LoadContext:
    settings: Settings
    table: TableConfig
    pg: object
    load_ts: datetime
    pk_live: list = field(default_factory=list)
    progress: object = None

    @property
    def source_cfg(self):
        return self.settings.source

    @property
    def pk_targets(self) -> tuple[str, ...]:
        return tuple(c.target_name for c in self.pk_live)

    @property
    def key_cursor(self) -> bool:
        """append_only reading by a single integer key (rows beyond the last key)."""
        t = self.table
        return t.strategy == "append_only" and tuple(t.primary_key) == (t.cursor,)


def load_table(
    settings: Settings, table: TableConfig, run_id: str, full_refresh: bool = False, progress=None, pg=None
) -> TableLoadResult:
    """Load one table into raw; returns counts. Failures are recorded in etl.load_runs and re-raised.

    `pg`: an open target connection whose state tables are known to exist, reused across tables (`run`
    passes one per worker); it is left committed or rolled back, never closed. Without it the load
    opens and closes its own.
    """
    started = datetime.now(UTC)
    t0 = time.monotonic()
    result = TableLoadResult(table=table.name, strategy=table.strategy, target_name=table.target_name)
    own = pg is None
    try:
        if own:
            pg = connect_target(settings.target)
            state.ensure_state_tables(pg)
        ctx = LoadContext(settings, table, pg, started, progress=progress)
        counts, cursor_value, strategy = _load(ctx, full_refresh)
        result.strategy = strategy
        for key in ("rows_read", "inserted", "updated", "deleted", "bytes"):
            setattr(result, key, int(counts[key]))
        result.seconds = round(time.monotonic() - t0, 3)
        with pg.cursor() as cur:
            raw_rows = counts.get("raw_rows")
            if raw_rows is None:
                previous = state.read_state(cur, table.name) or {}
                raw_rows = (previous.get("raw_rows") or 0) + result.inserted
            state.record_success(
                cur,
                result,
                run_id,
                started,
                cursor_value,
                raw_rows,
                cursor_column=table.cursor if cursor_value is not None else None,
            )
            state.record_mark(cur, table.name, counts.get("source_mark"))
        pg.commit()
        log.info(
            "%s: %s load done: read %d, inserted %d, updated %d, deleted %d, %.1f s",
            table.name,
            strategy,
            result.rows_read,
            result.inserted,
            result.updated,
            result.deleted,
            result.seconds,
        )
        return result
    except BaseException as exc:
        result.status = "failed"
        result.error_class = type(exc).__name__
        result.message = str(exc) if isinstance(exc, EtlError) else f"{type(exc).__name__}"
        result.seconds = round(time.monotonic() - t0, 3)
        _record_failure(settings, pg, result, run_id, started)
        raise
    finally:
        if own and pg is not None:
            pg.close()


def _load(ctx: LoadContext, full_refresh: bool):
    table = ctx.table
    src = connect_source(ctx.settings.source)
    try:
        excluded = {c.lower() for c in table.excluded_columns}
        live = [c for c in live_columns(src, table.name) if c.name.lower() not in excluded]
        by_name = {c.name.lower(): c for c in live}
        missing_pk = [c for c in table.primary_key if c.lower() not in by_name]
        if missing_pk:
            raise ConfigError(
                f"{table.name}: primary key column(s) {missing_pk} not found at the source; "
                "re-run analyze-schema"
            )
        ctx.pk_live = [by_name[c.lower()] for c in table.primary_key]
        with ctx.pg.cursor() as cur:
            existing = raw.raw_columns(cur, table.target_name)
            previous = state.read_state(cur, table.name)
            previous_mark = state.read_mark(cur, table.name)
            lacking = raw.add_missing_meta_columns(cur, table.name, table.target_name, existing)
        mark = unchanged.read_mark(src, table.name)  # before reading: see `unchanged`
        mode = "full" if lacking else _choose_mode(ctx, full_refresh, existing, previous, live)
        # MyISAM rebuilds a table on every ALTER, so a new CREATE_TIME with a changed shape is an ALTER
        # (handled as drift below); with the same shape it is a re-creation, e.g. a restore from backup.
        if (
            mode == "incremental"
            and unchanged.recreated(mark, previous_mark)
            and not (existing is not None and raw.plan_drift(live, existing).source_columns_changed)
        ):
            log.warning(
                "%s: the source table was re-created since the last load (restored?): full refresh",
                table.name,
            )
            mode = "full"
        if _skippable(
            ctx, mode, full_refresh or bool(lacking), existing, previous, live
        ) and unchanged.unchanged_since(mark, previous_mark):
            log.info("%s: source not written since the last load: nothing to read", table.name)
            return _nothing(previous_mark), previous["cursor_value"], table.strategy
        track = _time_cursor(ctx, by_name)
        if track:
            kind = by_name[table.cursor.lower()].kind
            upper = source_clock_bound(src, local_time=(kind == "datetime"))
        else:
            upper = _upper_bound(src, ctx, by_name)
    finally:
        src.close()
    if mode == "full":
        where, params = _full_window(ctx, upper)
        counts = load_full(ctx, live, existing, where, params, track_cursor=track)
        cursor = _capped_cursor(counts["max_cursor"], upper) if track else _cursor_text(upper)
        return {**counts, "source_mark": mark}, cursor, "full"
    counts = load_incremental(ctx, live, existing, previous["cursor_value"], upper, track_cursor=track)
    counts["source_mark"] = mark
    if track:
        return counts, _later_cursor(previous["cursor_value"], counts["max_cursor"]), table.strategy
    return counts, _cursor_text(upper), table.strategy


def _skippable(ctx, mode: str, forced: bool, existing, previous, live) -> bool:
    """May this load be skipped when the source table was not written since the last one?

    An incremental load always; a full refresh only when it is full by nature (strategy `full`, or no
    primary key), not forced, and raw already holds the table in the source's current shape: a
    refresh would then rewrite the same rows.
    """
    if mode == "incremental":
        return True
    table = ctx.table
    if forced or existing is None or previous is None or previous.get("last_status") != "success":
        return False
    if table.strategy != "full" and table.primary_key:
        return False  # full for a reason of its own (first load, cursor changed, drift, re-created)
    return not raw.plan_drift(live, existing).source_columns_changed


def _nothing(mark) -> dict:
    """The counts of a skipped table; the previous mark stays (its checked_at still bounds the last read)."""
    return {"rows_read": 0, "inserted": 0, "updated": 0, "deleted": 0, "bytes": 0, "source_mark": mark}


def _time_cursor(ctx, by_name) -> bool:
    """A DATETIME/TIMESTAMP cursor: the window is bounded by the source clock alone and the new
    cursor is the newest value read, so the table is scanned once (no MAX scan; cursor columns
    mostly have no index), in a full load as in an incremental one."""
    col = by_name.get((ctx.table.cursor or "").lower())
    return col is not None and not ctx.key_cursor and col.kind in ("datetime", "timestamp")


def _later_cursor(previous: str, read_max) -> str:
    """The committed cursor never moves back (a deleted newest row) and never passes what was read:
    every value read is at or below the clock bound, so no second that can still receive rows is passed.
    Both are 'YYYY-MM-DD HH:MM:SS' text, which orders like the times."""
    read = _cursor_text(read_max)
    return previous if read is None or read < previous else read


def _capped_cursor(read_max, bound) -> str | None:
    """A full load's cursor: the newest value read, but never past the clock bound taken before the read
    (a row stamped ahead of the source clock is read again next time). None: the table was empty."""
    read = _cursor_text(read_max)
    return None if read is None else min(read, _cursor_text(bound))


def _choose_mode(ctx, full_refresh, existing, previous, live) -> str:
    table = ctx.table
    if not table.primary_key:
        log.info("%s: no primary key, full refresh (documented fallback)", table.name)
        return "full"
    if table.strategy == "full" or full_refresh or existing is None:
        return "full"
    if not table.cursor or previous is None or previous.get("cursor_value") is None:
        return "full"
    if previous.get("cursor_column") != table.cursor:
        log.info("%s: cursor changed to %s since the last load: full refresh", table.name, table.cursor)
        return "full"
    plan = raw.plan_drift(live, existing)
    if plan.needs_rebuild:
        for col, old in plan.incompatible:
            log.warning(
                "%s: column %s changed from %s to %s (not a widening): full refresh",
                table.name,
                col.target_name,
                old,
                col.pg_type,
            )
        return "full"
    if any(c not in existing for c in ctx.pk_targets):
        return "full"
    return "incremental"


def _upper_bound(src, ctx, by_name):
    """The end of this run's read window, fixed before reading (None: no cursor, or an empty table)."""
    table = ctx.table
    if not table.cursor or table.cursor.lower() not in by_name:
        if table.cursor and table.strategy != "full":
            raise ConfigError(f"{table.name}: cursor column {table.cursor!r} not found at the source")
        return None
    if ctx.key_cursor:
        top = scalar(
            src, f"SELECT MAX({quote_mysql_ident(table.cursor)}) FROM {quote_mysql_ident(table.name)}"
        )
        return int(top or 0)
    kind = by_name[table.cursor.lower()].kind
    return source_upper_bound(src, table.name, table.cursor, local_time=(kind == "datetime"))


def _full_window(ctx, upper):
    if ctx.key_cursor and upper is not None:
        return f"{quote_mysql_ident(ctx.table.cursor)} <= %s", (upper,)
    return "", ()


def _cursor_text(value):
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return value.decode()
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _record_failure(settings, pg, result, run_id, started) -> None:
    log.error(
        "%s: load failed (%s)%s",
        result.table,
        result.error_class,
        f": {result.message}" if result.message and result.message != result.error_class else "",
    )
    try:
        if pg is not None and not pg.closed:
            pg.rollback()
            conn = pg
        else:
            conn = connect_target(settings.target)
        state.ensure_state_tables(conn)
        state.record_failure(conn, result, run_id, started)
    except Exception as exc:
        log.error("%s: could not record the failure in etl.load_runs (%s)", result.table, type(exc).__name__)


# --- many tables ---------------------------------------------------------------------------------


def new_run_id() -> str:
    return "manual__" + datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def select_tables(settings: Settings, tables=None, tier=None) -> list[TableConfig]:
    config = load_tables_config(settings.tables_yml, settings.overrides_yml)
    chosen = config.enabled_tables()
    if tables:
        unknown = [t for t in tables if t not in config.tables]
        if unknown:
            raise ConfigError(f"{settings.tables_yml}: no table(s) {', '.join(unknown)}")
        chosen = [config.tables[t] for t in tables]
    if tier:
        chosen = [t for t in chosen if t.tier == tier]
    return sorted(chosen, key=lambda t: (-t.estimated_rows, t.name))


def run(
    settings: Settings,
    tables=None,
    tier=None,
    full_refresh: bool = False,
    max_workers: int = 2,
    run_id: str | None = None,
    dry_run: bool = False,
) -> list[TableLoadResult]:
    """Load the chosen tables (all enabled by default), largest first, `max_workers` at a time.

    A failing table is recorded and reported in its result; the others still load.
    """
    chosen = select_tables(settings, tables, tier)
    run_id = run_id or new_run_id()
    if dry_run:
        return [
            TableLoadResult(table=t.name, strategy=t.strategy, status="skipped", target_name=t.target_name)
            for t in chosen
        ]
    progress = ProgressFactory(len(chosen))
    targets = WorkerConnections(settings)

    def one(table: TableConfig) -> TableLoadResult:
        try:
            return load_table(
                settings, table, run_id, full_refresh, progress=progress.for_table(table), pg=targets.get()
            )
        except Exception as exc:
            targets.discard()  # whatever failed may have been the connection itself
            return TableLoadResult(
                table=table.name,
                strategy=table.strategy,
                status="failed",
                error_class=type(exc).__name__,
                target_name=table.target_name,
                message=str(exc) if isinstance(exc, EtlError) else type(exc).__name__,
            )

    try:
        with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
            results = list(pool.map(one, chosen))
    finally:
        targets.close_all()
    progress.done()
    return results


class WorkerConnections:
    """One target connection per worker thread, reused for table after table (a PostgreSQL log-in
    costs more than loading an unchanged table). `get` returns None when connecting fails, so that
    `load_table` connects itself and records the failure as usual."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._local = threading.local()
        self._opened: list = []
        self._lock = threading.Lock()

    def get(self):
        pg = getattr(self._local, "pg", None)
        if pg is not None and not pg.closed:
            return pg
        pg = None
        try:
            pg = connect_target(self._settings.target)
            state.ensure_state_tables(pg)
        except Exception:
            if pg is not None:
                pg.close()
            return None
        self._local.pg = pg
        with self._lock:
            self._opened.append(pg)
        return pg

    def discard(self) -> None:
        pg = getattr(self._local, "pg", None)
        self._local.pg = None
        if pg is not None and not pg.closed:
            pg.close()

    def close_all(self) -> None:
        with self._lock:
            for pg in self._opened:
                if not pg.closed:
                    pg.close()


class ProgressFactory:
    """Progress lines: one refreshed status line on a terminal, a log line every 10 s otherwise."""

    def __init__(self, total_tables: int):
        self.tty = sys.stderr.isatty()
        self.total = total_tables
        self._last = 0.0

    def for_table(self, table: TableConfig):
        estimate = max(table.estimated_rows, 1)
        start = time.monotonic()

        def report(rows: int) -> None:
            now = time.monotonic()
            if self.tty:
                share = min(rows / estimate, 1.0)
                bar = "#" * int(share * 30)
                sys.stderr.write(
                    f"\r{table.name:<24} [{bar:<30}] {rows:>11,} rows "
                    f"{rows / max(now - start, 1e-6):>9,.0f}/s"
                )
                sys.stderr.flush()
            elif now - self._last >= 10:
                self._last = now
                log.info("%s: %d rows read (%.0f rows/s)", table.name, rows, rows / max(now - start, 1e-6))

        return report

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\n")
