"""Names shared across the schema package and the loader: tiers, strategies, their defaults.

A leaf module: it imports nothing from etl_pipeline, so any module (schema, load, nightly, the DAGs)
can import it without creating an import cycle. Each allowed-value set is written once, as a
`Literal` type; the tuple beside it is derived from the type, so the two cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, TypeGuard, get_args

Tier = Literal["large", "medium", "small", "tiny"]
TIERS: Final[tuple[Tier, ...]] = get_args(Tier)  # largest first: the order tiers are planned and shown

Strategy = Literal["incremental", "append_only", "full"]
STRATEGIES: Final[tuple[Strategy, ...]] = get_args(Strategy)
# Strategies that read rows past a high-water mark, so a table using one needs a cursor column.
CURSOR_STRATEGIES: Final[frozenset[Strategy]] = frozenset({"incremental", "append_only"})

DEFAULT_LOOKBACK_MINUTES: Final = 60
# append_only: keys below the saved key read again, for InnoDB transactions that commit a key after
# higher ones were read (thousands of keys allocated meanwhile would be an hours-long transaction)
DEFAULT_LOOKBACK_KEYS: Final = 1000
DEFAULT_MAX_TABLE_LOSS: Final = 0.10  # analyze-schema refuses a tables.yml that lost more tables


@dataclass(frozen=True)
class Thresholds:
    """Row estimates at which a table enters the large, medium and small tiers (tiny below)."""

    large: int = 1_000_000
    medium: int = 100_000
    small: int = 10_000

    def __post_init__(self) -> None:
        if not self.large >= self.medium >= self.small >= 0:
            raise ValueError(f"tier thresholds must satisfy large >= medium >= small >= 0, got {self}")


def is_tier(value: object) -> TypeGuard[Tier]:
    return value in TIERS


def is_strategy(value: object) -> TypeGuard[Strategy]:
    return value in STRATEGIES
