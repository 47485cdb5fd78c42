"""What one table's load did: its counts as the read and the write report them, and the result
the CLI prints, the nightly DAG returns and `etl.load_runs` records (counts and identifiers only)."""

from __future__ import annotations

import builtins
from dataclasses import asdict, dataclass
from typing import Any, Literal

from etl_pipeline.schema.constants import Strategy

Status = Literal["success", "failed", "skipped"]


@dataclass
class LoadCounts:
    """Counts of a full or incremental load. `raw_rows`: raw's rows after it, when known (a full
    load counts them); `max_cursor`: the newest time cursor read, as text bytes (None: not tracked
    or no row read)."""

    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    bytes: int = 0
    raw_rows: int | None = None
    max_cursor: builtins.bytes | None = None


@dataclass
class TableLoadResult:
    table: str
    strategy: Strategy  # what was done: the table's strategy, or full when it was refreshed in full
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    bytes: int = 0
    seconds: float = 0.0
    status: Status = "success"  # skipped: a dry run
    error_class: str | None = None
    target_name: str = ""
    message: str = ""
    reason: str = ""  # why full, incremental or skipped (decide.Reason; empty when failed before deciding)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def set_counts(self, counts: LoadCounts) -> None:
        for key in ("rows_read", "inserted", "updated", "deleted", "bytes"):
            setattr(self, key, int(getattr(counts, key)))
