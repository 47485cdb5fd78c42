"""Which tables get the full deep parity check tonight: each enabled table once every PERIOD nights.

The tables are dealt into PERIOD nights by weight (their estimated rows), heaviest first, each to the
night that carries the least weight so far (ties: the earlier night), so every night checks about the
same number of rows. Night `day % PERIOD` is checked on day number `day` (see `day_number`). The deal depends only on the tables' names and weights, so it is the same on every
worker and every rerun of a night. Adding or removing a table, or a large change of a weight, can move
other tables to another night once; the nightly report names tonight's tables, so that shows.

A table with a single integer key is not dealt: its keys are, so each night checks about a seventh of
every such table (`key_ranges`). Its key line is cut into blocks of BLOCK_KEYS keys; block j is due on
the nights where (j + the table's offset) % PERIOD is the night, so every key, whatever the table's
size and growth, is due exactly once every PERIOD nights. The offset (a checksum of the table's name)
spreads the tables smaller than a few blocks over the nights. The dealt tables are the others
(composite or non-integer keys; `sliced` says which are which).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from datetime import UTC, date, datetime

from etl_pipeline.load.key_summary import BUCKET_KEYS
from etl_pipeline.schema.tables_config import TableConfig

PERIOD = 7  # nights: every enabled table is checked in full at least once in this many
BLOCK_KEYS = 64 * BUCKET_KEYS  # keys per block of the key-range rotation
# Above this many ranges a night, the closest ones are joined (the keys between are checked too).
MAX_RANGES = 256
INTEGER_KEY_TYPES = ("smallint", "integer", "bigint")


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


def sliced(table: TableConfig) -> bool:
    """Whether `table` is deep-checked by key range (a single integer key) rather than dealt whole."""
    if len(table.primary_key) != 1:
        return False
    key = table.primary_key[0].lower()
    return any(c.name.lower() == key and c.target_type in INTEGER_KEY_TYPES for c in table.columns)


def key_ranges(
    table: str, day: int, low: int, high: int, period: int = PERIOD, max_ranges: int = MAX_RANGES
) -> list[tuple[int, int]]:
    """The key ranges within [low, high] of `table` due on day number `day` (see the module), at
    most `max_ranges` of them."""
    offset = zlib.crc32(table.encode()) % period
    first, last = low // BLOCK_KEYS, high // BLOCK_KEYS  # floor: block j holds [j*B, (j+1)*B - 1]
    j = first + (day - first - offset) % period
    ranges = []
    while j <= last:
        ranges.append((max(j * BLOCK_KEYS, low), min((j + 1) * BLOCK_KEYS - 1, high)))
        j += period
    while len(ranges) > max_ranges:  # join the pair with the smallest gap
        i = min(range(len(ranges) - 1), key=lambda n: ranges[n + 1][0] - ranges[n][1])
        ranges[i : i + 2] = [(ranges[i][0], ranges[i + 1][1])]
    return ranges
