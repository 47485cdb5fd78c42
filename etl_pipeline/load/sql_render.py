"""The SELECT that makes MariaDB render each source row as one PostgreSQL COPY-text line.

Python only joins bytes: every value is converted, escaped and NULL-marked by the source server,
which is several times faster than decoding rows into Python objects and formatting them again.
Each column kind (from `etl_pipeline.type_mapping`) has one rendering:

- text, enum, json: backslash, tab, newline and CR escaped for COPY; NUL characters removed
  (PostgreSQL text cannot hold them; documented loss, binary columns keep them).
- binary: `\\x` + HEX(), so NUL bytes and invalid UTF-8 travel as hex.
- date/datetime/timestamp: zero dates and dates with a zero year/month/day become NULL
  (PostgreSQL has no such dates); timestamps are read in UTC (session time zone +00:00) and
  suffixed `+00`.
- time: MariaDB's '-838:59:59' form, which PostgreSQL `interval` accepts as it is.
- bit(1): 0/1 (boolean input); bit(n): the bit string zero-padded to n.
- set: a PostgreSQL array literal with every member quoted; the empty set is `{}`.
- integer/decimal/float: the server's own text (unsigned bigint max included).

A row whose rendering exceeds the server's max_allowed_packet comes back NULL; the reader treats
that as an error instead of loading a wrong row.
"""

from __future__ import annotations

from etl_pipeline.type_mapping import parse_column_type, quote_mysql_ident

NULL_MARK = "'\\\\N'"   # SQL literal for the two characters \N


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


def _text(col: str, charset: str | None) -> str:
    return copy_escape(f"REPLACE({as_utf8_bytes(col, charset)}, '\\0', '')")


def _zero_date_guard(col: str) -> str:
    return f"YEAR({col}) = 0 OR MONTH({col}) = 0 OR DAYOFMONTH({col}) = 0"


# Kinds whose rendering is never NULL for a NOT NULL column (dates can become NULL: zero dates).
_NOT_NULL_SAFE = {"integer", "decimal", "float", "time", "bit1", "bits", "binary", "set", "text", "enum", "json"}


def column_expression(name: str, source_type: str, kind: str, charset: str | None = None,
                      nullable: bool = True) -> str:
    """The rendering of one column as COPY text (NULL becomes \\N)."""
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
        expr = f"IF({_zero_date_guard(col)}, NULL, {col})"
    elif kind == "timestamp":
        expr = f"IF({_zero_date_guard(col)}, NULL, CONCAT({col}, '+00'))"
    elif kind == "binary":
        expr = f"CONCAT('\\\\\\\\x', HEX({col}))"
    elif kind == "set":
        members = f"REPLACE(REPLACE({as_utf8_bytes(col, charset)}, '\\\\', '\\\\\\\\'), '\"', '\\\\\"')"
        array = f"IF({col} = '', '{{}}', CONCAT('{{\"', REPLACE({members}, ',', '\",\"'), '\"}}'))"
        expr = copy_escape(array)
    else:  # text, enum, json
        expr = _text(col, charset)
    if not nullable and kind in _NOT_NULL_SAFE:
        return expr
    return f"COALESCE({expr}, {NULL_MARK})"


def line_expression(columns) -> str:
    """One binary string per row: the COPY-text line (without the newline)."""
    parts = ", ".join(column_expression(c.name, c.source_type, c.kind, getattr(c, "charset", None),
                                        getattr(c, "nullable", True)) for c in columns)
    return f"CAST(CONCAT_WS('\\t', {parts}) AS BINARY)"


def cursor_expression(name: str) -> str:
    """A DATETIME/TIMESTAMP cursor as text, 'YYYY-MM-DD HH:MM:SS[.ffffff]', which orders like the times:
    the reader takes its maximum without making a Python datetime of every row. Zero dates are NULL."""
    col = quote_mysql_ident(name)
    return f"IF({_zero_date_guard(col)}, NULL, CAST({col} AS BINARY))"


def select_lines_sql(table: str, columns, where: str = "", also: str | None = None) -> str:
    """`also`: a time cursor column returned as text after the line (to take its maximum)."""
    extra = f", {cursor_expression(also)}" if also else ""
    sql = f"SELECT {line_expression(columns)}{extra} FROM {quote_mysql_ident(table)}"
    return f"{sql} WHERE {where}" if where else sql
