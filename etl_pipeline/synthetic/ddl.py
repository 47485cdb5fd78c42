"""CREATE TABLE statements for the 36 OpenDental tables, built from the frozen facts in `schema_data`.

A column spec reads like the facts file: "<type> [unsigned] [COLLATE c] [NULL] [DEFAULT v]
[ON UPDATE CURRENT_TIMESTAMP] [AUTO_INCREMENT]"; everything is NOT NULL unless it says NULL, and a
`timestamp ON UPDATE CURRENT_TIMESTAMP` column is NOT NULL DEFAULT current_timestamp() ON UPDATE ...
Tables are MyISAM in utf8mb3 (the facts file's `engine`/`charset` win where given). The table
collation is utf8mb3_uca1400_ai_ci when the server has it (MariaDB 11, as in the reference clinic),
else utf8mb3_general_ci; userod/employer/securitylog/clinic are utf8mb3_general_ci as in the reference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from etl_pipeline.synthetic.schema_data import TABLES
from etl_pipeline.type_mapping import quote_mysql_ident

TABLE_NAMES: tuple[str, ...] = tuple(TABLES)
_SPEC = re.compile(
    r"^(?P<type>[a-z]+(?:\(\d+\))?)"
    r"(?P<unsigned> unsigned)?"
    r"(?: COLLATE (?P<collate>\w+))?"
    r"(?P<null> NULL)?"
    r"(?: DEFAULT (?P<default>'[^']*'|-?[\d.]+))?"
    r"(?P<on_update> ON UPDATE CURRENT_TIMESTAMP)?"
    r"(?P<auto> AUTO_INCREMENT)?$"
)


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str  # e.g. "tinyint(3) unsigned", "varchar(15)"
    nullable: bool
    default: str | None  # SQL literal as written in the facts file, or None for no DEFAULT
    collation: str | None
    on_update: bool
    auto_increment: bool

    @property
    def base_type(self) -> str:
        return self.type.split("(")[0]


def parse_spec(name: str, spec: str) -> ColumnSpec:
    match = _SPEC.match(spec)
    if not match:
        raise ValueError(f"column {name}: cannot parse spec {spec!r}")
    col_type = match["type"] + (" unsigned" if match["unsigned"] else "")
    on_update = bool(match["on_update"])
    default = match["default"]
    if on_update and default is None:
        default = "current_timestamp()"
    return ColumnSpec(
        name=name,
        type=col_type,
        nullable=bool(match["null"]),
        default=default,
        collation=match["collate"],
        on_update=on_update,
        auto_increment=bool(match["auto"]),
    )


def columns(table: str) -> list[ColumnSpec]:
    return [parse_spec(name, spec) for name, spec in TABLES[table]["columns"]]


def column_definition(col: ColumnSpec) -> str:
    parts = [quote_mysql_ident(col.name), col.type]
    if col.collation:
        parts.append(f"CHARACTER SET utf8mb3 COLLATE {col.collation}")
    parts.append("NULL" if col.nullable else "NOT NULL")
    if col.default is not None:
        parts.append(f"DEFAULT {col.default}")
    if col.on_update:
        parts.append("ON UPDATE current_timestamp()")
    if col.auto_increment:
        parts.append("AUTO_INCREMENT")
    return " ".join(parts)


def table_collation(table: str, modern_collation: str) -> str:
    charset = TABLES[table].get("charset") or ""
    if "general_ci" in charset or charset == "utf8":
        return "utf8mb3_general_ci"
    return modern_collation


def create_table_sql(
    table: str, modern_collation: str = "utf8mb3_general_ci", extra_keys: tuple[str, ...] = ()
) -> str:
    """CREATE TABLE for `table`; `extra_keys` are secondary KEY definitions (the generator's lookups)."""
    facts = TABLES[table]
    lines = [column_definition(col) for col in columns(table)]
    lines.append(f"PRIMARY KEY ({quote_mysql_ident(facts['pk'])})")
    lines.extend(extra_keys)
    body = ",\n  ".join(lines)
    return (
        f"CREATE TABLE {quote_mysql_ident(table)} (\n  {body}\n) ENGINE={facts['engine']} "
        f"DEFAULT CHARSET=utf8mb3 COLLATE={table_collation(table, modern_collation)}"
    )
