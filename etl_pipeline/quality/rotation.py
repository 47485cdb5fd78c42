"""Which tables get the full deep parity check tonight: each enabled table once every PERIOD nights.

The tables are dealt into PERIOD nights by weight (their estimated rows), heaviest first, each to the
night that carries the least weight so far (ties: the earlier night), so every night checks about the
same number of rows. Night `day % PERIOD` is checked on day number `day` (see `day_number`). The deal depends only on the tables' names and weights, so it is the same on every
worker and every rerun of a night. Adding or removing a table, or a large change of a weight, can move
other tables to another night once; the nightly report names tonight's tables, so that shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime

PERIOD = 7  # nights: every enabled table is checked in full at least once in this many


def nights(weights: Mapping[str, int], period: int = PERIOD) -> list[list[str]]:
    """The tables of each of the `period` nights (each list sorted by name)."""
    if period < 1:
        raise ValueError(f"a rotation period is at least one night, not {period}")
    load = [0] * period
    dealt: list[list[str]] = [[] for _ in range(period)]
    for name in sorted(weights, key=lambda n: (-max(int(weights[n]), 0), n)):
        night = min(range(period), key=lambda i: (load[i], i))
        dealt[night].append(name)
        # a table of unknown (zero) weight still counts as one row, so empty tables spread out too
        load[night] += max(int(weights[name]), 1)
    return [sorted(names) for names in dealt]


def deep_tonight(weights: Mapping[str, int], day: int, period: int = PERIOD) -> list[str]:
    """The tables whose full deep check is due on day number `day`."""
    return nights(weights, period)[day % period]


def day_number(today: date | None = None) -> int:
    """Today's day number (the proleptic Gregorian ordinal of the UTC date): the nightly at 21:00
    America/Chicago verifies at 02:00-04:00 UTC, far from the date's change, so each night gets its own."""
    return (today or datetime.now(UTC).date()).toordinal()
