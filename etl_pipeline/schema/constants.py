"""Names shared across the schema package and the loader: tiers, strategies, defaults.

A leaf module: it imports nothing from etl_pipeline, so any module (schema, load, nightly, the DAGs)
can import it without creating an import cycle. Each allowed-value set is written once, as a
`Literal` type; the tuple beside it is derived from the type, so the two cannot disagree.
"""

from __future__ import annotations

from typing import Final, Literal, TypeGuard, get_args

Tier = Literal["large", "medium", "small", "tiny"]
TIERS: Final[tuple[Tier, ...]] = get_args(Tier)  # largest first: the order tiers are planned and shown

Strategy = Literal["incremental", "append_only", "full"]
STRATEGIES: Final[tuple[Strategy, ...]] = get_args(Strategy)
# Strategies that read rows past a high-water mark, so a table using one needs a cursor column.
CURSOR_STRATEGIES: Final[frozenset[Strategy]] = frozenset({"incremental", "append_only"})

DEFAULT_LOOKBACK_MINUTES: Final = 60
DEFAULT_MAX_TABLE_LOSS: Final = 0.10


def is_tier(value: object) -> TypeGuard[Tier]:
    return value in TIERS


def is_strategy(value: object) -> TypeGuard[Strategy]:
    return value in STRATEGIES
