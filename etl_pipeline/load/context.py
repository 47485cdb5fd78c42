"""What the steps of one table's load share: settings, the table, the open target connection, the
load's timestamp, the source's key columns and the progress callback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from psycopg2.extensions import connection

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

    @property
    def source_cfg(self) -> MySQLSettings:
        return self.settings.source

    @property
    def pk_targets(self) -> tuple[str, ...]:
        return tuple(c.target_name for c in self.pk_live)
