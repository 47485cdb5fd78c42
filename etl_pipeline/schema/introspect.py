"""Read the source's structure from `information_schema` with a handful of set-based queries.

One query per kind of fact (tables, columns, indexes, check constraints), each covering the whole
database, so the cost does not grow with a round trip per table: 450 tables take about as many
queries as 5. Names come back as data and are never put into SQL text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from etl_pipeline.db import SOURCE_OPERATIONAL_ERRORS, connect_source
from etl_pipeline.settings import MySQLSettings


class Cursor(Protocol):
    """The part of a DB-API cursor this module uses (any source driver's)."""

    def execute(self, query: str, args: tuple[Any, ...]) -> Any: ...

    def fetchall(self) -> Sequence[tuple[Any, ...]]: ...


TABLES_SQL = """
SELECT TABLE_NAME, ENGINE, TABLE_ROWS, DATA_LENGTH, INDEX_LENGTH, AUTO_INCREMENT
  FROM information_schema.TABLES
 WHERE TABLE_SCHEMA = %s
   AND TABLE_TYPE = 'BASE TABLE'
"""

COLUMNS_SQL = """
SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA
  FROM information_schema.COLUMNS
 WHERE TABLE_SCHEMA = %s
 ORDER BY TABLE_NAME, ORDINAL_POSITION
"""

INDEXES_SQL = """
SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME
  FROM information_schema.STATISTICS
 WHERE TABLE_SCHEMA = %s
 ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX
"""

# MariaDB stores a JSON column as longtext plus a column-level CHECK (json_valid(`col`)).
JSON_CHECKS_SQL = """
SELECT TABLE_NAME, CHECK_CLAUSE
  FROM information_schema.CHECK_CONSTRAINTS
 WHERE CONSTRAINT_SCHEMA = %s
   AND CHECK_CLAUSE LIKE 'json_valid(%%'
"""

_JSON_VALID_RE = re.compile(r"^json_valid\(`((?:[^`]|``)+)`\)$", re.IGNORECASE)


@dataclass
class SourceColumn:
    name: str
    column_type: str  # COLUMN_TYPE as the server reports it, e.g. 'tinyint(3) unsigned'
    nullable: bool
    default: str | None
    extra: str  # e.g. 'auto_increment', 'on update current_timestamp()'

    @property
    def auto_increment(self) -> bool:
        return "auto_increment" in self.extra.lower()

    @property
    def on_update(self) -> bool:
        return "on update" in self.extra.lower()


@dataclass
class SourceIndex:
    name: str
    unique: bool
    columns: list[str] = field(default_factory=list)


@dataclass
class SourceTable:
    name: str
    engine: str | None
    rows: int
    data_bytes: int
    index_bytes: int
    columns: list[SourceColumn] = field(default_factory=list)
    indexes: dict[str, SourceIndex] = field(default_factory=dict)

    @property
    def primary_key(self) -> list[str]:
        index = self.indexes.get("PRIMARY")
        return list(index.columns) if index else []

    def column(self, name: str) -> SourceColumn | None:
        return next((c for c in self.columns if c.name.lower() == name.lower()), None)

    def leading_index_columns(self) -> set[str]:
        """Columns that lead some index (a range scan on them is cheap)."""
        return {i.columns[0] for i in self.indexes.values() if i.columns}


@dataclass
class SourceSchema:
    server_version: str
    database: str
    tables: dict[str, SourceTable]


def introspect(cfg: MySQLSettings) -> SourceSchema:
    """All tables of `cfg.database` with columns, keys, indexes and size estimates."""
    conn = connect_source(cfg)
    try:
        cur = conn.cursor()
        cur.execute("SELECT VERSION()")
        (server_version,) = cur.fetchone()
        tables = _read_tables(cur, cfg.database)
        cur.close()
    finally:
        conn.close()
    return SourceSchema(server_version=server_version, database=cfg.database, tables=tables)


def _read_tables(cur: Cursor, database: str) -> dict[str, SourceTable]:
    cur.execute(TABLES_SQL, (database,))
    tables = {
        _text(name): SourceTable(
            name=_text(name),
            engine=_text(engine) if engine else None,
            rows=int(rows or 0),
            data_bytes=int(data or 0),
            index_bytes=int(index or 0),
        )
        for name, engine, rows, data, index, _auto_inc in cur.fetchall()
    }

    cur.execute(COLUMNS_SQL, (database,))
    for table, name, _pos, column_type, is_nullable, default, extra in cur.fetchall():
        if _text(table) in tables:  # views have columns too; they are not copied
            tables[_text(table)].columns.append(
                SourceColumn(
                    name=_text(name),
                    column_type=_text(column_type),
                    nullable=_text(is_nullable) == "YES",
                    default=None if default is None else _text(default),
                    extra=_text(extra or ""),
                )
            )

    cur.execute(INDEXES_SQL, (database,))
    for table, index_name, non_unique, _seq, column in cur.fetchall():
        source = tables.get(_text(table))
        if source is None or column is None:  # functional index parts have no column
            continue
        index = source.indexes.setdefault(
            _text(index_name), SourceIndex(_text(index_name), not int(non_unique))
        )
        index.columns.append(_text(column))

    for table, column in _json_columns(cur, database):
        source = tables.get(table)
        col = source.column(column) if source else None
        if col is not None and col.column_type.lower() == "longtext":
            col.column_type = "json"
    return tables


def _json_columns(cur: Cursor, database: str) -> list[tuple[str, str]]:
    try:
        cur.execute(JSON_CHECKS_SQL, (database,))
    except SOURCE_OPERATIONAL_ERRORS as exc:  # MySQL < 8.0.16: no CHECK_CONSTRAINTS (and a native json type)
        if "CHECK_CONSTRAINTS" in str(exc):
            return []
        raise
    found = []
    for table, clause in cur.fetchall():
        match = _JSON_VALID_RE.match(_text(clause).strip())
        if match:
            found.append((_text(table), match[1].replace("``", "`")))
    return found


def _text(value: object) -> str:
    return value.decode() if isinstance(value, (bytes, bytearray)) else str(value)
