"""A failed load as a message a person can act on: which table, which column and types, what to do.

PostgreSQL's own error text cannot be shown as it is: a COPY that fails on a value quotes the value
in its CONTEXT line, a failed cast quotes it in the primary message, a duplicate key shows the key in
DETAIL, and all of it may be patient data. So `explain` builds the message from the SQLSTATE, the
names the load itself knows (the table, its columns and their source and raw types, the step it was
at) and, from the server's report, only the column name of a COPY's CONTEXT line (kept only when it
is one of the table's columns). The server's full text is in the PostgreSQL log, where it belongs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import psycopg2

from etl_pipeline.db import SOURCE_ERRORS, source_error_code
from etl_pipeline.errors import EtlError


class LoadStepFailed(EtlError):
    """A step of a load failed in PostgreSQL; the message names the table, column and types."""


@dataclass(frozen=True)
class Where:
    """What a load knows about where it failed (names and types only, never values)."""

    table: str  # the source table
    target: str  # its raw table
    columns: Mapping[str, tuple[str | None, str | None]] = field(default_factory=dict)  # (source, raw type)
    key: tuple[str, ...] = ()  # raw's primary key columns
    step: str = ""  # what the load was doing, e.g. "widening column x from smallint to integer"
    column: str | None = None  # the column the step works on, when there is one


# A COPY's CONTEXT line: `COPY <relation>, line <n>, column <column>: "<value>"` (the value is never read).
_COPY_CONTEXT = re.compile(r"COPY (?P<relation>[^,\s]+), line \d+, column (?P<column>[^:]+):")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")

_RERUN = "Nothing of this table's load was committed."

# SQLSTATE -> (what happened, what to do next); {target}, {table}, {key} are filled in.
_BY_CODE: dict[str, tuple[str, str]] = {
    "0A000": (
        "PostgreSQL cannot make this change to raw.{target} in place",
        "Something that is not a plain view depends on the column (a rule or a policy): drop or alter it, "
        "or rebuild the table with `etl run --tables {table} --full-refresh`.",
    ),
    "2BP01": (
        "an object that is not a view depends on raw.{target}",
        "The loader sets aside and recreates views only; a function, a column of this table's row type "
        "or a foreign key in the way must be dropped (the PostgreSQL log names it), then re-run the load "
        "and create it again.",
    ),
    "55P03": (
        "raw.{target} (or a view over it) could not be locked within lock_timeout",
        "Another session holds it: a long dbt run or an open transaction reading it. Re-run when it is "
        "done, or end that session (pg_stat_activity shows it).",
    ),
    "57014": (
        "a statement of the load was cancelled (statement_timeout, or by an operator)",
        "Re-run; if it recurs, raise statement_timeout for the loader's role.",
    ),
    "40P01": (
        "a deadlock with another session using raw.{target}; PostgreSQL aborted this load",
        "Re-run the load.",
    ),
    "40001": ("a serialization failure with another session using raw.{target}", "Re-run the load."),
    "42703": (
        "a column raw.{target} should have is missing (changed by hand?)",
        "Rebuild the table with `etl run --tables {table} --full-refresh`.",
    ),
    "42P01": (
        "raw.{target} or a temporary table vanished during the load (dropped by another session?)",
        "Re-run the load.",
    ),
    "42501": (
        "the loader's role lacks a privilege on raw.{target}, a view over it or schema raw",
        "Grant it (the PostgreSQL log says which) and re-run.",
    ),
    "23505": (
        "the source holds duplicate values of the primary key ({key})",
        "The key in tables.yml does not identify the rows: fix primary_key for {table} in "
        "tables.overrides.yml (or the source table's key), then re-run.",
    ),
    "23502": (
        "a NULL reached a NOT NULL column of raw.{target}",
        "Only key columns are NOT NULL in raw: check primary_key for {table} in tables.overrides.yml.",
    ),
    "53100": (
        "the target's disk is full",
        "Free space (a full refresh needs room for a second copy of the table), then re-run.",
    ),
    "53200": (
        "the target ran out of memory",
        "Lower the loader's parallel workers or raise work_mem limits.",
    ),
    "53300": ("the target has no free connection slot", "Raise max_connections or run fewer workers."),
}
# by SQLSTATE class (the first two characters) when the code has no entry of its own
_BY_CLASS: dict[str, tuple[str, str]] = {
    "22": (
        "a value read from the source could not be stored in raw's type",
        "The value is not shown (it may be patient data). If the source column's type changed, re-run: "
        "the change is picked up; otherwise the type mapping does not fit the values the source holds: "
        "report the column and its types.",
    ),
    "08": ("the connection to the target was lost", "Re-run the load once the target is reachable."),
    "57": ("the target server shut down or restarted during the load", "Re-run the load."),
    "53": ("the target ran out of a resource", "Check the target server's log, then re-run."),
    "40": ("PostgreSQL rolled the load's transaction back", "Re-run the load."),
}
_GENERIC = (
    "PostgreSQL refused a statement of the load",
    "The server's log has the details (not shown here: they may quote row values); re-run, and report "
    "it if it recurs.",
)
# temp and swap tables a COPY may write, and what the load was doing then
_COPY_STEPS = {
    "_stage": "copying the read window into the stage table",
    "_keys": "copying the source's keys for the delete check",
    "_backfill": "copying the added columns of every row for the backfill",
    "_parity": "copying source rows for the parity check",
}


_ATTRIBUTE = "etl_load_message"


def attach(exc: BaseException, message: str) -> None:
    """Keep `message` on the exception a failed load re-raises, for callers that report it."""
    setattr(exc, _ATTRIBUTE, message)


def message_of(exc: BaseException) -> str:
    """The message of a failed load's exception: the one `load_table` attached, else an EtlError's
    own, else the class name (an exception that did not come from a load)."""
    attached = getattr(exc, _ATTRIBUTE, None)
    if isinstance(attached, str):
        return attached
    return str(exc) if isinstance(exc, EtlError) else type(exc).__name__


def explain(exc: BaseException, where: Where) -> str:
    """One line for `TableLoadResult.message`: never a bare exception class, never a row value."""
    if isinstance(exc, EtlError):
        return str(exc)
    if isinstance(exc, psycopg2.Error):
        return _postgres(exc, where)
    name = type(exc).__name__
    if isinstance(exc, SOURCE_ERRORS):
        code = source_error_code(exc)
        return (
            f"{where.table}: the source failed{_while(where.step)} ({name}, error {code}). "
            f"Check the source server and its log, then re-run. {_RERUN}"
        )
    if isinstance(exc, KeyboardInterrupt):
        return f"{where.table}: the load was interrupted{_while(where.step)}. {_RERUN} Re-run it."
    return (
        f"{where.table}: unexpected {name} in the loader{_while(where.step)} (a bug: the traceback is in "
        f"the log). {_RERUN}"
    )


def _postgres(exc: psycopg2.Error, where: Where) -> str:
    code = exc.pgcode or ""
    if not code:  # no server report: the connection broke, or the client refused
        what, todo = _BY_CLASS["08"]
    else:
        what, todo = _BY_CODE.get(code) or _BY_CLASS.get(code[:2]) or _GENERIC
    fill = {"target": where.target, "table": where.table, "key": ", ".join(where.key) or "none"}
    relation, column = _copy_context(exc, where)
    step = _COPY_STEPS.get(relation or "", "") or where.step
    if relation == f"{where.target}__new":
        step = f"copying the source's rows into raw.{where.target}__new (full refresh)"
    column = column or where.column or _named_column(exc, where)
    return (
        f"{where.table}: {what.format(**fill)}{_column(column, where)}{_while(step)} "
        f"({type(exc).__name__}, SQLSTATE {code or 'none'}). {todo.format(**fill)} {_RERUN}"
    )


def _copy_context(exc: psycopg2.Error, where: Where) -> tuple[str | None, str | None]:
    """(relation, column) of a failed COPY, each only when it is a name the load knows."""
    context = getattr(exc.diag, "context", None) or ""
    match = _COPY_CONTEXT.search(context)
    if match is None:
        return None, None
    relation = match["relation"].split(".")[-1].strip('"')
    known = {where.target, f"{where.target}__new", *_COPY_STEPS}
    column = match["column"].strip()
    return (relation if relation in known else None), (column if column in where.columns else None)


def _named_column(exc: psycopg2.Error, where: Where) -> str | None:
    """The column a server report names in its own field (NOT NULL, undefined column), if known."""
    name = getattr(exc.diag, "column_name", None)
    if name in where.columns:
        return str(name)
    primary = getattr(exc.diag, "message_primary", None) or ""
    match = re.match(r'column "([^"]+)"', primary)
    if match and _IDENTIFIER.fullmatch(match[1]) and exc.pgcode == "42703":
        return match[1]  # an identifier of the load's own SQL, not a value
    return None


def _column(column: str | None, where: Where) -> str:
    if column is None:
        return ""
    source_type, raw_type = where.columns.get(column, (None, None))
    types = []
    if source_type:
        types.append(f"source type {source_type}")
    if raw_type:
        types.append(f"raw type {raw_type}")
    return f", column {column}" + (f" ({', '.join(types)})" if types else "")


def _while(step: str) -> str:
    return f", while {step}" if step else ""
