"""One load of a table at a time: a PostgreSQL advisory lock per table, held by the load's transaction.

A CLI run during the nightly DAG's load of the same table, or an Airflow retry beside a zombie attempt
that still runs, would otherwise merge the same window twice at once and read each other's half-done
state. `acquire` takes a transaction-level advisory lock keyed by the table's name in the load's
own transaction, so it is released exactly when that transaction commits or rolls back (also when the
process dies: its session ends; and a session left idle in its transaction is ended by the server's
idle_in_transaction_session_timeout, TARGET_IDLE_TIMEOUT). A second load waits for the lock up to
TARGET_TABLE_LOCK_WAIT seconds, then refuses with `TableBusy`, naming the session that holds it.

    state.ensure_state_tables(pg)          # commits: take the lock after it
    table_lock.acquire(pg, table.name)     # held until the load's commit or rollback
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from psycopg2.extensions import connection

from etl_pipeline.errors import EtlError

# First key of the two-int4 advisory locks that stand for table loads (the second: hashtext(table)).
# The single-bigint locks (such as state's DDL lock) live in a key space of their own.
LOCK_CLASS = 80418
POLL_SECONDS = 0.25

TRY_SQL = "SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))"
HOLDER_SQL = """
SELECT a.pid, a.application_name, a.client_addr::text, a.xact_start, a.state
  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
   AND l.classid::bigint = %s AND l.objid::bigint = (hashtext(%s)::bigint & 4294967295)
"""


class TableBusy(EtlError):
    """Another load of the same table holds its lock."""


def acquire(pg: connection, table: str, wait_seconds: float | None = None) -> None:
    """Take `table`'s load lock in `pg`'s current transaction, waiting up to `wait_seconds` (default:
    the connection's TARGET_TABLE_LOCK_WAIT); raises TableBusy when another load keeps it longer."""
    if pg.autocommit:
        raise ValueError("a table's load lock lives in a transaction: the connection must not autocommit")
    if wait_seconds is None:
        settings = getattr(pg, "settings", None)
        wait_seconds = settings.table_lock_wait if settings is not None else 0.0
    deadline = time.monotonic() + wait_seconds
    with pg.cursor() as cur:
        while True:
            cur.execute(TRY_SQL, (LOCK_CLASS, table))
            row = cur.fetchone()
            if row is not None and row[0]:
                if hasattr(pg, "loading"):
                    pg.loading = table  # named in a hung target's error (db.TargetStalled)
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TableBusy(_busy_message(cur, table, wait_seconds))
            time.sleep(min(POLL_SECONDS, remaining))


@contextmanager
def held(pg: connection, table: str, wait_seconds: float | None = None) -> Iterator[None]:
    """`acquire` as a context manager: the block runs holding the lock; the lock itself lasts until the
    transaction ends (commit or roll back inside the block, or after it)."""
    acquire(pg, table, wait_seconds)
    try:
        yield
    finally:
        if hasattr(pg, "loading"):
            pg.loading = None


def holder(pg: connection, table: str) -> dict[str, Any] | None:
    """The session holding `table`'s load lock (pid, application, client, transaction start, state)."""
    with pg.cursor() as cur:
        return _holder(cur, table)


def _holder(cur: Any, table: str) -> dict[str, Any] | None:
    cur.execute(HOLDER_SQL, (LOCK_CLASS, table))
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip(("pid", "application", "client", "since", "state"), row, strict=True))


def _busy_message(cur: Any, table: str, waited: float) -> str:
    who = _holder(cur, table)
    if who is None:  # it was released just now
        session = "another session"
    else:
        since = who["since"].strftime("%Y-%m-%d %H:%M:%S %Z") if who["since"] else "?"
        session = (
            f"PostgreSQL session {who['pid']} ({who['application'] or 'no application name'}"
            f"{', from ' + who['client'] if who['client'] else ''}, {who['state']}, in its transaction since {since})"
        )
        session += (
            f"; if that is a leftover of a killed run, end it: SELECT pg_terminate_backend({who['pid']})"
        )
    return (
        f"{table}: another load of this table is running ({session}). Waited {waited:g} s "
        "(TARGET_TABLE_LOCK_WAIT); nothing was read. Re-run when it has finished."
    )
