"""The SELECT that makes MariaDB render each source row as one PostgreSQL COPY-text line.

Python only joins bytes: every value is converted, escaped and NULL-marked by the source server,
which costs far less than decoding rows into Python objects and formatting them again.
Each column kind (from `etl_pipeline.type_mapping`) has one rendering:

- text, enum, json, set: backslash, tab, newline and CR escaped for COPY; NUL characters removed
  (PostgreSQL text cannot hold them; documented loss, binary columns keep them). A set becomes a
  PostgreSQL array literal with every member quoted; the empty set is `{}`.
- binary: `\\x` + HEX(), so NUL bytes and invalid UTF-8 travel as hex.
- date/datetime/timestamp: zero dates and dates with a zero year/month/day become NULL
  (PostgreSQL has no such dates); timestamps are read in UTC (session time zone +00:00) and
  suffixed `+00`.
- time: MariaDB's '-838:59:59' form, which PostgreSQL `interval` accepts as it is.
- bit(1): 0/1 (boolean input); bit(n): the bit string zero-padded to n.
- integer/decimal/float: the server's own text (unsigned bigint max included).

The columns that need escaping are escaped together, not one by one: they are joined with the byte
0xFF (NULL as 0xFE), the escapes run once over the joined bytes, and then 0xFF becomes the tab and
0xFE `\\N`. Those two bytes never occur in UTF-8, and MariaDB stores no invalid UTF-8 in a text
column (it turns such bytes into '?'). Five REPLACEs a row instead of five a column keep the
source's CPU down on tables with many text columns. The line therefore lists the columns in
`line_columns` order, which the COPY column list must follow (`copy_column_list`).

A row whose rendering exceeds the server's max_allowed_packet comes back NULL; the reader treats
that as an error instead of loading a wrong row.
"""

from __future__ import annotations

from collections.abc import Sequence

from etl_pipeline.load.source import LiveColumn
from etl_pipeline.type_mapping import parse_column_type, quote_ident, quote_mysql_ident

NULL_MARK = "'\\\\N'"  # SQL literal for the two characters \N


def copy_escape(expr: str) -> str:
    """Escape a string expression for COPY text format (backslash first)."""
    expr = f"REPLACE({expr}, '\\\\', '\\\\\\\\')"
    expr = f"REPLACE({expr}, '\\t', '\\\\t')"
    expr = f"REPLACE({expr}, '\\n', '\\\\n')"
    expr = f"REPLACE({expr}, '\\r', '\\\\r')"
    return expr


# Character sets whose bytes are already UTF-8: escaping works on the bytes (no ASCII byte occurs
# inside a UTF-8 multibyte sequence), which is much faster than charset-aware string functions.
_UTF8_CHARSETS = {None, "", "utf8", "utf8mb3", "utf8mb4", "ascii", "binary"}


def as_utf8_bytes(col: str, charset: str | None) -> str:
    if (charset or "").lower() in _UTF8_CHARSETS:
        return f"CAST({col} AS BINARY)"
    return f"CAST(CONVERT({col} USING utf8mb4) AS BINARY)"


def _real_date(col: str) -> str:
    """True for a date PostgreSQL has: TO_DAYS is NULL for a zero date or a zero month or day, and below
    366 in year 0 (one function call where YEAR(), MONTH() and DAYOFMONTH() would be three)."""
    return f"TO_DAYS({col}) >= 366"


# Kinds whose rendering is never NULL for a NOT NULL column (dates can become NULL: zero dates).
_NOT_NULL_SAFE = {"integer", "decimal", "float", "time", "bit1", "bits", "binary"}


def column_expression(name: str, source_type: str, kind: str, nullable: bool = True) -> str:
    """The rendering of one column that needs no escaping as COPY text (NULL becomes \\N)."""
    col = quote_mysql_ident(name)
    if kind in ("integer", "decimal", "float", "time"):
        expr = col
    elif kind == "bit1":
        expr = f"{col} + 0"
    elif kind == "bits":
        _, args, _ = parse_column_type(source_type)
        width = int(args[0]) if args and args[0] else 1
        expr = f"LPAD(BIN({col} + 0), {width}, '0')"
    elif kind in ("date", "datetime"):
        expr = f"IF({_real_date(col)}, {col}, NULL)"
    elif kind == "timestamp":
        expr = f"IF({_real_date(col)}, CONCAT({col}, '+00'), NULL)"
    elif kind == "binary":
        expr = f"CONCAT('\\\\\\\\x', HEX({col}))"
    else:
        raise ValueError(f"column {name}: kind {kind} is escaped with the text columns (line_expression)")
    if not nullable and kind in _NOT_NULL_SAFE:
        return expr
    return f"COALESCE({expr}, {NULL_MARK})"


# Kinds escaped together in one joined string (see the module's docstring).
_ESCAPED_KINDS = {"text", "enum", "json", "set"}
_JOIN, _NULL_IN_JOIN = "X'FF'", "X'FE'"  # bytes that never occur in UTF-8


def _plain_and_escaped(columns: Sequence[LiveColumn]) -> tuple[list[LiveColumn], list[LiveColumn]]:
    """The columns that need no escaping, and those escaped together, each in table order."""
    return (
        [c for c in columns if c.kind not in _ESCAPED_KINDS],
        [c for c in columns if c.kind in _ESCAPED_KINDS],
    )


def line_columns(columns: Sequence[LiveColumn]) -> list[LiveColumn]:
    """The columns in the order the line renders them: those that need no escaping, then the others."""
    plain, escaped = _plain_and_escaped(columns)
    return plain + escaped


def copy_column_list(columns: Sequence[LiveColumn]) -> str:
    """The target column list of the COPY that reads these lines."""
    return ", ".join(quote_ident(c.target_name) for c in line_columns(columns))


def line_expression(columns: Sequence[LiveColumn]) -> str:
    """One binary string per row: the COPY-text line (without the newline)."""
    plain, escaped = _plain_and_escaped(columns)
    rendered = [column_expression(c.name, c.source_type, c.kind, c.nullable) for c in plain]
    parts = [f"CONCAT_WS('\\t', {', '.join(rendered)})"] if rendered else []
    if escaped:
        parts.append(_escaped_together(escaped))
    # CONCAT, not CONCAT_WS: a part too large for max_allowed_packet (NULL) makes the whole line NULL
    between = ", '\\t', "
    return f"CAST(CONCAT({between.join(parts)}) AS BINARY)"


def _escaped_together(columns: Sequence[LiveColumn]) -> str:
    values = []
    for c in columns:
        value = _unescaped(c)
        values.append(f"COALESCE({value}, {_NULL_IN_JOIN})" if c.nullable else value)
    joined = f"REPLACE(CONCAT_WS({_JOIN}, {', '.join(values)}), '\\0', '')"
    expr = f"REPLACE({copy_escape(joined)}, {_JOIN}, '\\t')"
    if any(c.nullable for c in columns):
        expr = f"REPLACE({expr}, {_NULL_IN_JOIN}, {NULL_MARK})"
    return expr


def _unescaped(c: LiveColumn) -> str:
    """A text-like column as UTF-8 bytes, not yet escaped (a set as a PostgreSQL array literal)."""
    col, charset = quote_mysql_ident(c.name), c.charset
    if c.kind != "set":
        return as_utf8_bytes(col, charset)
    members = f"REPLACE(REPLACE({as_utf8_bytes(col, charset)}, '\\\\', '\\\\\\\\'), '\"', '\\\\\"')"
    return f"IF({col} = '', '{{}}', CONCAT('{{\"', REPLACE({members}, ',', '\",\"'), '\"}}'))"


def cursor_expression(name: str) -> str:
    """A DATETIME/TIMESTAMP cursor as text, 'YYYY-MM-DD HH:MM:SS[.ffffff]', which orders like the times:
    the reader takes its maximum without making a Python datetime of every row. Zero dates are NULL."""
    col = quote_mysql_ident(name)
    return f"IF({_real_date(col)}, CAST({col} AS BINARY), NULL)"


def select_lines_sql(
    table: str, columns: Sequence[LiveColumn], where: str = "", also: str | None = None
) -> str:
    """`also`: a time cursor column returned as text after the line (to take its maximum)."""
    extra = f", {cursor_expression(also)}" if also else ""
    sql = f"SELECT {line_expression(columns)}{extra} FROM {quote_mysql_ident(table)}"
    return f"{sql} WHERE {where}" if where else sql
