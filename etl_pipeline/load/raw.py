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

from psycopg2.extensions import cursor

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
    vanished: list[str] = field(default_factory=list)  # raw column names

    @property
    def needs_rebuild(self) -> bool:
        return bool(self.incompatible)

    @property
    def source_columns_changed(self) -> bool:
        """A source column is new or maps to another type than its raw column."""
        return bool(self.add or self.widen or self.incompatible)


def plan_drift(live: Sequence[LiveColumn], existing: Mapping[str, str]) -> DriftPlan:
    plan = DriftPlan()
    live_names = {c.target_name for c in live}
    for col in live:
        old = existing.get(col.target_name)
        if old is None:
            plan.add.append(col)
        elif old != col.pg_type:
            (plan.widen if is_widening(old, col.pg_type) else plan.incompatible).append((col, old))
    plan.vanished = [n for n in existing if n not in live_names and n not in META_COLUMNS]
    return plan


def apply_drift(cur: cursor, table: str, target: str, plan: DriftPlan) -> None:
    """Add new columns and widen types in place (inside the caller's transaction)."""
    for col in plan.add:
        log.info("%s: new source column %s added to raw", table, col.target_name)
        cur.execute(
            f"ALTER TABLE {qualified(target)} ADD COLUMN {quote_ident(col.target_name)} {col.pg_type}"
        )
    for col, old in plan.widen:
        log.info("%s: column %s widened from %s to %s", table, col.target_name, old, col.pg_type)
        cur.execute(
            f"ALTER TABLE {qualified(target)} ALTER COLUMN {quote_ident(col.target_name)} "
            f"TYPE {col.pg_type} USING {quote_ident(col.target_name)}::{col.pg_type}"
        )
    for name in plan.vanished:
        log.warning("%s: column %s no longer exists at the source; kept in raw (no new values)", table, name)


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


def has_dependent_views(cur: cursor, name: str) -> bool:
    cur.execute(
        """
        SELECT EXISTS (
          SELECT 1
            FROM pg_depend d
            JOIN pg_rewrite r ON r.oid = d.objid
           WHERE d.refobjid = %s::regclass AND r.ev_class <> d.refobjid)""",
        (qualified(name),),
    )
    return bool(_one(cur))


def swap_in(
    cur: cursor, target: str, new: str, columns: Sequence[RawColumn], pk: tuple[str, ...], had_old: bool
) -> None:
    """Make raw.<new> the content of raw.<target>, inside the caller's transaction.

    Without dependent views the tables are swapped by renames and the old one dropped; with views
    (dbt) depending on raw.<target>, its contents are replaced (TRUNCATE + INSERT) so the views stay
    valid. Readers see either the old table or the new one, never a partial one.
    """
    pkey_name = f"{target}_pkey"
    if not had_old:
        cur.execute(f"ALTER TABLE {qualified(new)} RENAME TO {quote_ident(target)}")
    elif not has_dependent_views(cur, target):
        old = f"{target}__old"
        cur.execute(f"DROP TABLE IF EXISTS {qualified(old)}")
        cur.execute(f"ALTER TABLE {qualified(target)} RENAME TO {quote_ident(old)}")
        cur.execute(f"ALTER TABLE {qualified(new)} RENAME TO {quote_ident(target)}")
        cur.execute(f"DROP TABLE {qualified(old)}")
    else:
        names = [c.target_name for c in columns] + list(META_COLUMNS)
        cols = ", ".join(quote_ident(n) for n in names)
        cur.execute(f"TRUNCATE {qualified(target)}")
        cur.execute(f"INSERT INTO {qualified(target)} ({cols}) SELECT {cols} FROM {qualified(new)}")
        cur.execute(f"DROP TABLE {qualified(new)}")
        return
    if pk:
        cur.execute(
            f"ALTER INDEX {quote_ident(RAW_SCHEMA)}.{quote_ident(new + '_pkey')} "
            f"RENAME TO {quote_ident(pkey_name)}"
        )
        cur.execute(
            f"ALTER INDEX IF EXISTS {quote_ident(RAW_SCHEMA)}.{quote_ident(deleted_index_name(new))} "
            f"RENAME TO {quote_ident(deleted_index_name(target))}"
        )


def _one(cur: cursor) -> object:
    row = cur.fetchone()
    assert row is not None
    return row[0]
