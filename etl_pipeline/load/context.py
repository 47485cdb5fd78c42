"""What the steps of one table's load share: settings, the table, the open target connection, the
load's timestamp, the source's key columns, the progress callback, and what a failure message may
name (the columns and their types, the step the load is at)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from psycopg2.extensions import connection

from etl_pipeline.load.failure import Where
from etl_pipeline.load.source import LiveColumn
from etl_pipeline.schema.tables_config import TableConfig
from etl_pipeline.settings import MySQLSettings, Settings

Progress = Callable[[int], None]  # called with the rows read so far


@dataclass
class LoadContext:
    settings: Settings
    table: TableConfig
    pg: connection
    load_ts: datetime  # the load's start: `_loaded_at` and `_deleted_at` of the rows it writes
    pk_live: list[LiveColumn] = field(default_factory=list)
    progress: Progress | None = None
    live: list[LiveColumn] = field(default_factory=list)  # the source's columns, once read
    raw_types: dict[str, str] = field(default_factory=dict)  # raw's columns before the load
    step: str = ""  # what the load is doing, for a failure's message

    def where(self) -> Where:
        """Names and types a failure's message may use (see `failure`)."""
        columns: dict[str, tuple[str | None, str | None]] = {n: (None, t) for n, t in self.raw_types.items()}
        columns.update({c.target_name: (c.source_type, c.pg_type) for c in self.live})
        return Where(self.table.name, self.table.target_name, columns, self.pk_targets, self.step)

    @property
    def source_cfg(self) -> MySQLSettings:
        return self.settings.source

    @property
    def pk_targets(self) -> tuple[str, ...]:
        return tuple(c.target_name for c in self.pk_live)
