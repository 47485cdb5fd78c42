"""MySQL/MariaDB -> PostgreSQL type mapping: the one place it is decided.

The raw layer is a faithful copy, so every mapping is lossless:

| MySQL / MariaDB                          | PostgreSQL (raw)        | kind       |
|------------------------------------------|-------------------------|------------|
| tinyint, tinyint unsigned, smallint      | smallint                | integer    |
| smallint unsigned, mediumint (unsigned)  | integer                 | integer    |
| int                                      | integer                 | integer    |
| int unsigned                             | bigint                  | integer    |
| bigint                                   | bigint                  | integer    |
| bigint unsigned                          | numeric(20,0)           | integer    |
| decimal(p,s) / numeric(p,s)              | numeric(p,s)            | decimal    |
| float                                    | real                    | float      |
| double / real                            | double precision        | float      |
| bit(1)                                   | boolean                 | bit1       |
| bit(n), n > 1                            | bit varying(n)          | bits       |
| year                                     | smallint                | integer    |
| date                                     | date                    | date       |
| datetime(p)                              | timestamp(p)            | datetime   |
| timestamp(p)  (read in UTC)              | timestamptz(p)          | timestamp  |
| time(p)  (may be negative, > 24h)        | interval                | time       |
| char, varchar, tinytext..longtext        | text                    | text       |
| binary, varbinary, tinyblob..longblob    | bytea                   | binary     |
| enum(...)                                | text                    | enum       |
| set(...)                                 | text[]                  | set        |
| json (MariaDB: longtext + json_valid)    | jsonb                   | json       |
| geometry types                           | bytea (WKB)             | binary     |

Zero dates ('0000-00-00') become NULL; OpenDental's '0001-01-01' sentinel is kept as it is (staging
cleans it). Tinyint flags stay smallint here: they become booleans in dbt staging, not in raw.
The `kind` tells the loader how to read and write a column without knowing MySQL type names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from etl_pipeline.errors import ConfigError


@dataclass(frozen=True)
class TypeMapping:
    pg_type: str
    kind: str


_INTEGER_TYPES = {
    # base type: (signed target, unsigned target)
    "tinyint": ("smallint", "smallint"),
    "smallint": ("smallint", "integer"),
    "mediumint": ("integer", "integer"),
    "int": ("integer", "bigint"),
    "integer": ("integer", "bigint"),
    "bigint": ("bigint", "numeric(20,0)"),
}
_TEXT_TYPES = ("char", "varchar", "tinytext", "text", "mediumtext", "longtext", "nchar", "nvarchar")
_BINARY_TYPES = (
    "binary",
    "varbinary",
    "tinyblob",
    "blob",
    "mediumblob",
    "longblob",
    "geometry",
    "point",
    "linestring",
    "polygon",
    "multipoint",
    "multilinestring",
    "multipolygon",
    "geometrycollection",
)
# Types whose mapping does not depend on their arguments or flags.
_FIXED_TYPES: dict[str, TypeMapping] = {
    "double": TypeMapping("double precision", "float"),
    "real": TypeMapping("double precision", "float"),
    "bool": TypeMapping("smallint", "integer"),
    "boolean": TypeMapping("smallint", "integer"),
    "year": TypeMapping("smallint", "integer"),
    "date": TypeMapping("date", "date"),
    "time": TypeMapping("interval", "time"),
    "enum": TypeMapping("text", "enum"),
    "set": TypeMapping("text[]", "set"),
    "json": TypeMapping("jsonb", "json"),
    **{base: TypeMapping("text", "text") for base in _TEXT_TYPES},
    **{base: TypeMapping("bytea", "binary") for base in _BINARY_TYPES},
}
_TYPE_RE = re.compile(
    r"^\s*(?P<base>[a-z]+)\s*(?:\((?P<args>[^)]*)\))?\s*(?P<rest>.*)$", re.IGNORECASE | re.DOTALL
)


def parse_column_type(column_type: str) -> tuple[str, list[str], set[str]]:
    """Split a COLUMN_TYPE like 'bigint(20) unsigned zerofill' into ('bigint', ['20'], {'unsigned', 'zerofill'})."""
    match = _TYPE_RE.match(column_type or "")
    if not match:
        raise ConfigError(f"unrecognised MySQL column type {column_type!r}")
    base = match["base"].lower()
    args = [a.strip() for a in (match["args"] or "").split(",")] if match["args"] is not None else []
    flags = {w.lower() for w in match["rest"].split()}
    return base, args, flags


def map_column_type(column_type: str) -> TypeMapping:
    """The lossless PostgreSQL type and loader kind for a MySQL COLUMN_TYPE string."""
    base, args, flags = parse_column_type(column_type)
    if base in _INTEGER_TYPES:
        signed, unsigned = _INTEGER_TYPES[base]
        return TypeMapping(unsigned if "unsigned" in flags else signed, "integer")
    if base in _FIXED_TYPES:
        return _FIXED_TYPES[base]
    if base in _SIZED_TYPES:
        return _SIZED_TYPES[base](args)
    raise ConfigError(f"no PostgreSQL mapping for MySQL type {column_type!r}")


def _decimal(args: list[str]) -> TypeMapping:
    precision = args[0] if args and args[0] else "10"
    scale = args[1] if len(args) > 1 else "0"
    return TypeMapping(f"numeric({precision},{scale})", "decimal")


def _float(args: list[str]) -> TypeMapping:
    # float(p) with p > 24 is a double in MySQL
    if args and args[0] and int(args[0]) > 24 and len(args) == 1:
        return TypeMapping("double precision", "float")
    return TypeMapping("real", "float")


def _bit(args: list[str]) -> TypeMapping:
    width = int(args[0]) if args and args[0] else 1
    return TypeMapping("boolean", "bit1") if width == 1 else TypeMapping(f"bit varying({width})", "bits")


def _datetime(args: list[str]) -> TypeMapping:
    return TypeMapping(_with_precision("timestamp", args), "datetime")


def _timestamp(args: list[str]) -> TypeMapping:
    return TypeMapping(_with_precision("timestamptz", args), "timestamp")


# Types whose mapping depends on their arguments: (p,s), a float's precision, a bit width, fractional seconds.
_SIZED_TYPES: dict[str, Callable[[list[str]], TypeMapping]] = {
    "decimal": _decimal,
    "numeric": _decimal,
    "dec": _decimal,
    "fixed": _decimal,
    "float": _float,
    "bit": _bit,
    "datetime": _datetime,
    "timestamp": _timestamp,
}


def _with_precision(pg_base: str, args: list[str]) -> str:
    if args and args[0] and args[0] != "0":
        return f"{pg_base}({int(args[0])})"
    return pg_base


# Which raw column types can be changed in place (ALTER COLUMN TYPE) without losing data when the
# source widens a column. Anything else is an incompatible change: the loader rebuilds the table.
_WIDENING = {
    "smallint": {"integer", "bigint", "numeric(20,0)"},
    "integer": {"bigint", "numeric(20,0)"},
    "bigint": {"numeric(20,0)"},
    "real": {"double precision"},
    "date": {"timestamp"},
    "text": set(),
}


def is_widening(old_pg_type: str, new_pg_type: str) -> bool:
    """True when a column of `old_pg_type` can be altered to `new_pg_type` in place, losslessly."""
    if old_pg_type == new_pg_type:
        return True
    if new_pg_type in _WIDENING.get(old_pg_type, set()):
        return True
    old_num, new_num = _numeric_args(old_pg_type), _numeric_args(new_pg_type)
    if old_num and new_num:
        (p0, s0), (p1, s1) = old_num, new_num
        return s1 >= s0 and (p1 - s1) >= (p0 - s0)
    if old_pg_type.startswith("bit varying(") and new_pg_type.startswith("bit varying("):
        return _width(new_pg_type) >= _width(old_pg_type)
    if old_pg_type in ("smallint", "integer", "bigint") and new_num:
        digits = {"smallint": 5, "integer": 10, "bigint": 19}[old_pg_type]
        return new_num[0] - new_num[1] >= digits
    if old_pg_type.startswith("timestamp") and new_pg_type.startswith("timestamp"):
        return old_pg_type.startswith("timestamptz") == new_pg_type.startswith("timestamptz")
    return False


def _numeric_args(pg_type: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"numeric\((\d+),(\d+)\)", pg_type)
    return (int(match[1]), int(match[2])) if match else None


def _width(pg_type: str) -> int:
    match = re.search(r"\((\d+)\)", pg_type)
    if match is None:
        raise ValueError(f"no width in {pg_type!r}")
    return int(match[1])


def quote_ident(name: str) -> str:
    """Quote a PostgreSQL identifier (double quotes doubled). Every identifier goes through here."""
    return '"' + name.replace('"', '""') + '"'


def quote_mysql_ident(name: str) -> str:
    """Quote a MySQL identifier (backticks doubled)."""
    return "`" + name.replace("`", "``") + "`"


def target_identifier(source_name: str) -> str:
    """Raw-layer name of a source table or column: lowercase, otherwise unchanged (quoted when used)."""
    return source_name.lower()
