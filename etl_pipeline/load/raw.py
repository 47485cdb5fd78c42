"""The raw layer in PostgreSQL: table DDL, column inspection, drift handling and the atomic swap.

Conventions: schema `raw`, lowercase names, lossless types, no NOT NULL but the primary key,
`_loaded_at timestamptz` (start of the load that last wrote the row) and `_deleted_at timestamptz`
(set when the row vanished at the source; cleared when it comes back).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import psycopg2
from psycopg2.extensions import cursor

from etl_pipeline.load import views
from etl_pipeline.load.failure import LoadStepFailed, Where, explain
from etl_pipeline.load.source import LiveColumn
from etl_pipeline.settings import RAW_SCHEMA
from etl_pipeline.type_mapping import is_widening, quote_ident

log = logging.getLogger(__name__)

META_COLUMNS = ("_loaded_at", "_deleted_at")


class RawColumn(Protocol):
    """A column as raw has it: a source column, or one the source no longer has."""

    @property
    def target_name(self) -> str: ...

    @property
    def pg_type(self) -> str: ...


def qualified(name: str) -> str:
    return f"{quote_ident(RAW_SCHEMA)}.{quote_ident(name)}"


def ensure_raw_schema(cur: cursor) -> None:
    cur.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(RAW_SCHEMA)}")


def raw_columns(cur: cursor, name: str) -> dict[str, str] | None:
    """{column: type as this module writes it} of raw.<name>, or None when the table does not exist."""
    cur.execute(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod)
          FROM pg_attribute a
          JOIN pg_class c ON c.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = %s AND c.relname = %s AND c.relkind = 'r'
           AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY a.attnum""",
        (RAW_SCHEMA, name),
    )
    rows = cur.fetchall()
    if not rows:
        return None
    return {n: normalise_pg_type(t) for n, t in rows}


def normalise_pg_type(formatted: str) -> str:
    """format_type() output in the spelling type_mapping uses ('timestamp(3) with time zone' -> 'timestamptz(3)')."""
    match = re.fullmatch(r"timestamp(\(\d+\))? with(out)? time zone", formatted)
    if match:
        return ("timestamp" if match[2] else "timestamptz") + (match[1] or "")
    return formatted


def create_table_sql(name: str, columns: Sequence[RawColumn], loaded_at_default: str | None = None) -> str:
    lines = [f"{quote_ident(c.target_name)} {c.pg_type}" for c in columns]
    default = f" DEFAULT {loaded_at_default}" if loaded_at_default else ""
    lines.append(f"_loaded_at timestamptz{default}")
    lines.append("_deleted_at timestamptz")
    return f"CREATE TABLE {qualified(name)} (\n  " + ",\n  ".join(lines) + "\n)"


@dataclass
class DriftPlan:
    """What the live source columns mean for an existing raw table."""

    add: list[LiveColumn] = field(default_factory=list)
    widen: list[tuple[LiveColumn, str]] = field(default_factory=list)  # (column, old pg type)
    incompatible: list[tuple[LiveColumn, str]] = field(default_factory=list)  # (column, old pg type)
    vanished: list[str] = field(default_factory=list)  # raw column names (renamed ones included)
    renamed: list[tuple[str, LiveColumn]] = field(default_factory=list)  # (old raw name, new column)

    @property
    def needs_rebuild(self) -> bool:
        return bool(self.incompatible)

    @property
    def source_columns_changed(self) -> bool:
        """A source column is new or maps to another type than its raw column."""
        return bool(self.add or self.widen or self.incompatible)


def plan_drift(live: Sequence[LiveColumn], existing: Mapping[str, str]) -> DriftPlan:
    """`existing`: raw's columns in their table order (as `raw_columns` returns them)."""
    plan = DriftPlan()
    live_names = {c.target_name for c in live}
    for col in live:
        old = existing.get(col.target_name)
        if old is None:
            plan.add.append(col)
        elif old != col.pg_type:
            (plan.widen if is_widening(old, col.pg_type) else plan.incompatible).append((col, old))
    plan.vanished = [n for n in existing if n not in live_names and n not in META_COLUMNS]
    plan.renamed = _renamed(live, existing, plan.add, plan.vanished)
    return plan


def _renamed(
    live: Sequence[LiveColumn],
    existing: Mapping[str, str],
    added: Sequence[LiveColumn],
    vanished: Sequence[str],
) -> list[tuple[str, LiveColumn]]:
    """Pairs (vanished raw column, new source column) that look like one column renamed: the same raw
    type and the same place, between the same neighbours among the columns both sides have. A column
    that matches more than one partner is taken as dropped and added (raw's rows are the same either
    way: the new column is filled, the old one kept)."""
    live_order = [c.target_name for c in live]
    raw_order = [n for n in existing if n not in META_COLUMNS]
    pairs = []
    for old in vanished:
        around_old = _neighbours(raw_order, old, keep=set(live_order))
        for col in added:
            if existing[old] != col.pg_type:
                continue
            if _neighbours(live_order, col.target_name, keep=set(raw_order)) == around_old:
                pairs.append((old, col))
    olds = [old for old, _ in pairs]
    news = [col.target_name for _, col in pairs]
    return [(old, col) for old, col in pairs if olds.count(old) == 1 and news.count(col.target_name) == 1]


def _neighbours(order: Sequence[str], name: str, keep: set[str]) -> tuple[str | None, str | None]:
    """The columns just before and after `name`, among `keep`."""
    kept = [n for n in order if n in keep or n == name]
    i = kept.index(name)
    return (kept[i - 1] if i > 0 else None), (kept[i + 1] if i + 1 < len(kept) else None)


def apply_drift(cur: cursor, table: str, target: str, plan: DriftPlan) -> None:
    """Widen types in place and add new columns, inside the caller's transaction.

    The views reading a widened column (and the views on them) are set aside around the change (see
    `views`); a view the loader cannot recreate stops the load before anything is changed."""
    if plan.widen:
        with views.set_aside(cur, qualified(target), [c.target_name for c, _ in plan.widen]) as saved:
            for col, old in plan.widen:
                _widen(cur, table, target, col, old)
        if saved:
            log.info("%s: %d dependent view(s) recreated around the type change", table, len(saved))
    for col in plan.add:
        log.info("%s: new source column %s added to raw", table, col.target_name)
        cur.execute(
            f"ALTER TABLE {qualified(target)} ADD COLUMN {quote_ident(col.target_name)} {col.pg_type}"
        )
    warn_vanished(table, plan)


def _widen(cur: cursor, table: str, target: str, col: LiveColumn, old: str) -> None:
    log.info("%s: column %s widened from %s to %s", table, col.target_name, old, col.pg_type)
    name = quote_ident(col.target_name)
    try:
        cur.execute(
            f"ALTER TABLE {qualified(target)} ALTER COLUMN {name} TYPE {col.pg_type} USING {name}::{col.pg_type}"
        )
    except psycopg2.Error as exc:
        where = Where(
            table,
            target,
            columns={col.target_name: (col.source_type, col.pg_type)},
            step=f"widening column {col.target_name} from {old} to {col.pg_type}",
            column=col.target_name,
        )
        raise LoadStepFailed(explain(exc, where)) from exc


def warn_vanished(table: str, plan: DriftPlan) -> None:
    """The columns raw keeps though the source lost them (renamed ones say what they became)."""
    renamed = dict(plan.renamed)
    for name in plan.vanished:
        if name in renamed:
            log.warning(
                "%s: column %s was renamed to %s at the source (same type and place): %s is filled for "
                "every row, %s kept in raw (no new values)",
                table,
                name,
                renamed[name].target_name,
                renamed[name].target_name,
                name,
            )
        else:
            log.warning(
                "%s: column %s no longer exists at the source; kept in raw (no new values)", table, name
            )


# dbt's staging pre-hook (macros/assert_no_vanished_columns.sql) looks for this prefix
VANISHED_COMMENT = "vanished at the source"


def mark_vanished(cur: cursor, table: str, target: str, live_names: set[str]) -> None:
    """Comment raw's columns the source no longer has (`VANISHED_COMMENT ...`) and clear the comment of
    one that is back, inside the load's transaction, so a model still reading such a column fails by name."""
    cur.execute(
        """
        SELECT a.attname, d.description
          FROM pg_attribute a
          LEFT JOIN pg_description d ON d.objoid = a.attrelid AND d.objsubid = a.attnum
         WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped""",
        (qualified(target),),
    )
    for name, comment in cur.fetchall():
        if name in META_COLUMNS:
            continue
        marked = (comment or "").startswith(VANISHED_COMMENT)
        column = f"{qualified(target)}.{quote_ident(name)}"
        if name not in live_names and not marked:
            log.info("%s: raw column %s marked as vanished at the source", table, name)
            cur.execute(
                f"COMMENT ON COLUMN {column} IS %s",
                (f"{VANISHED_COMMENT} (renamed or dropped by an upgrade): old values kept, no new ones",),
            )
        elif name in live_names and marked:
            log.info("%s: column %s is back at the source", table, name)
            cur.execute(f"COMMENT ON COLUMN {column} IS NULL")


def deleted_index_name(name: str) -> str:
    return f"{name}__deleted"


def create_deleted_index(cur: cursor, name: str, pk: tuple[str, ...]) -> None:
    """A partial index of the keys marked deleted: finding them costs as much as there are deletes."""
    cols = ", ".join(quote_ident(c) for c in pk)
    cur.execute(
        f"CREATE INDEX IF NOT EXISTS {quote_ident(deleted_index_name(name))} ON {qualified(name)} "
        f"({cols}) WHERE _deleted_at IS NOT NULL"
    )


def ensure_deleted_index(cur: cursor, name: str, pk: tuple[str, ...]) -> None:
    """The partial index of deleted keys, built once for a raw table made before it existed."""
    cur.execute(
        "SELECT to_regclass(%s)", (f"{quote_ident(RAW_SCHEMA)}.{quote_ident(deleted_index_name(name))}",)
    )
    if _one(cur) is None:
        create_deleted_index(cur, name, pk)


def add_missing_meta_columns(
    cur: cursor, table: str, name: str, existing: dict[str, str] | None
) -> list[str]:
    """A raw table made elsewhere (a restore, a hand-made copy) may lack `_loaded_at`/`_deleted_at`:
    add them (inside the caller's transaction; `existing` is updated) and return their names. The
    caller then rebuilds the table with a full refresh, so every row gets its load time."""
    if existing is None:
        return []
    lacking = [c for c in META_COLUMNS if c not in existing]
    for column in lacking:
        cur.execute(f"ALTER TABLE {qualified(name)} ADD COLUMN {quote_ident(column)} timestamptz")
        existing[column] = "timestamptz"
    if lacking:
        log.warning(
            "%s: raw.%s lacked the loader's column(s) %s (not made by this loader?): added; full refresh",
            table,
            name,
            ", ".join(lacking),
        )
    return lacking


def swap_in(cur: cursor, target: str, new: str, pk: tuple[str, ...], had_old: bool) -> None:
    """Make raw.<new> raw.<target> by renames, inside the caller's transaction.

    The views depending on the old table are set aside and recreated on the new one (see `views`), and
    the old table's grants and comments are given to the new one. Readers see the old table or the new
    one (they wait on the locks), never a partial one or a missing view.
    """
    if not had_old:
        cur.execute(f"ALTER TABLE {qualified(new)} RENAME TO {quote_ident(target)}")
    else:
        old = f"{target}__old"
        with views.set_aside(cur, qualified(target)):
            cur.execute(f"DROP TABLE IF EXISTS {qualified(old)}")
            cur.execute(f"ALTER TABLE {qualified(target)} RENAME TO {quote_ident(old)}")
            cur.execute(f"ALTER TABLE {qualified(new)} RENAME TO {quote_ident(target)}")
            _carry_grants_and_comments(cur, old, target)
            cur.execute(f"DROP TABLE {qualified(old)}")
    if pk:
        cur.execute(
            f"ALTER INDEX {quote_ident(RAW_SCHEMA)}.{quote_ident(new + '_pkey')} "
            f"RENAME TO {quote_ident(target + '_pkey')}"
        )
        cur.execute(
            f"ALTER INDEX IF EXISTS {quote_ident(RAW_SCHEMA)}.{quote_ident(deleted_index_name(new))} "
            f"RENAME TO {quote_ident(deleted_index_name(target))}"
        )


def _carry_grants_and_comments(cur: cursor, old: str, new: str) -> None:
    """Grants (table and column) and comments (table and columns) of raw.<old>, given to raw.<new>."""
    new_columns = raw_columns(cur, new) or {}
    for grant in views.grants_of(cur, qualified(old)):
        if grant.column is None or grant.column in new_columns:
            cur.execute(grant.sql(qualified(new)))
    cur.execute("SELECT obj_description(%s::regclass, 'pg_class')", (qualified(old),))
    comment = _one(cur)
    if comment is not None:
        cur.execute(f"COMMENT ON TABLE {qualified(new)} IS %s", (comment,))
    cur.execute(
        """
        SELECT o.attname, col_description(o.attrelid, o.attnum)
          FROM pg_attribute o JOIN pg_attribute n ON n.attrelid = %s::regclass AND n.attname = o.attname
         WHERE o.attrelid = %s::regclass AND o.attnum > 0 AND NOT o.attisdropped
           AND col_description(o.attrelid, o.attnum) IS NOT NULL""",
        (qualified(new), qualified(old)),
    )
    for column, text in cur.fetchall():
        cur.execute(f"COMMENT ON COLUMN {qualified(new)}.{quote_ident(column)} IS %s", (text,))


def _one(cur: cursor) -> object:
    row = cur.fetchone()
    assert row is not None
    return row[0]
