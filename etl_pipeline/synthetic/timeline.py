"""The simulated clock.

generate(): the source's "now" is a fixed instant derived from the seed (`generation_now`); history spans
the 8 years before it and every cursor value (DateTStamp, SecDateTEdit, LogDateTime, ...) is at or before
it. The session's `timestamp` variable is pinned to it, so even values MariaDB fills in itself
(CURRENT_TIMESTAMP) are deterministic. The real wall clock is never read.

mutate(): day 1 starts at 08:00 on the calendar day after the latest cursor value found in the source
(`mutation_start`), so every row it writes sorts after everything already there; each further day
advances the clock by one day. Again the wall clock never matters.
"""

from __future__ import annotations

from datetime import datetime, timedelta

HISTORY_DAYS = 2922  # 8 years


def generation_now(seed: int) -> datetime:
    return datetime(2026, 1, 1, 6, 0, 0) + timedelta(minutes=int(seed) % 997)


def history_start(seed: int) -> datetime:
    return (generation_now(seed) - timedelta(days=HISTORY_DAYS)).replace(hour=0, minute=0)


def mutation_start(latest_cursor: datetime) -> datetime:
    return datetime.combine(latest_cursor.date() + timedelta(days=1), datetime.min.time()) + timedelta(
        hours=8
    )


def sql_dt(value: datetime) -> str:
    return "'" + value.strftime("%Y-%m-%d %H:%M:%S") + "'"


def epoch(value: datetime) -> int:
    """Seconds since 1970 for `SET timestamp` (sessions run in UTC, so naive values are UTC)."""
    return int((value - datetime(1970, 1, 1)).total_seconds())
