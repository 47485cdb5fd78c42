"""The allowed tiers and strategies are written once, as Literal types, and their tuples follow them."""

from __future__ import annotations

from typing import get_args

import pytest

from etl_pipeline.schema import constants
from etl_pipeline.schema.constants import STRATEGIES, TIERS, Strategy, Thresholds, Tier


def test_tuples_follow_the_literal_types():
    assert TIERS == get_args(Tier) == ("large", "medium", "small", "tiny")
    assert STRATEGIES == get_args(Strategy) == ("incremental", "append_only", "full")
    assert set(constants.CURSOR_STRATEGIES) == {"incremental", "append_only"}


def test_type_guards():
    assert constants.is_tier("tiny") and not constants.is_tier("Tiny")
    assert constants.is_strategy("append_only") and not constants.is_strategy("cdc")


def test_thresholds_must_be_ordered():
    assert Thresholds() == Thresholds(1_000_000, 100_000, 10_000)
    with pytest.raises(ValueError, match="large >= medium >= small >= 0"):
        Thresholds(large=10, medium=100)


def test_old_homes_still_export_the_shared_names():
    from etl_pipeline.schema import classify, tables_config

    assert tables_config.TIERS is TIERS
    assert classify.Thresholds is Thresholds
    assert classify.DEFAULT_LOOKBACK_MINUTES == constants.DEFAULT_LOOKBACK_MINUTES == 60
