"""Scale test (slow, left out of the default run): the mid-size clinic builds within the 5-minute
target and still hangs together."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from etl_pipeline.db import connect_source
from etl_pipeline.synthetic import generate, mutate
from etl_pipeline.synthetic.integrity import broken_money_rules, dangling_foreign_keys

TARGET_SECONDS = 300


@pytest.mark.slow
def test_scale_one_builds_within_target_and_hangs_together(settings):
    cfg = replace(settings.source_admin, database="opendental_scale")
    conn = connect_source(settings.source_admin)
    cur = conn.cursor()
    try:
        started = time.monotonic()
        counts = generate(cfg, 1.0, seed=42)
        assert time.monotonic() - started < TARGET_SECONDS
        assert 9_000_000 < sum(counts.values()) < 10_000_000
        assert counts["patient"] == 35135 and max(counts, key=counts.get) == "securitylog"
        assert dangling_foreign_keys(cur, "opendental_scale") == {}
        assert broken_money_rules(cur, "opendental_scale") == {}
        changes = mutate(cfg, 2, seed=7, quiet=True)
        assert changes["patient"]["updated"] > 100  # the aging run touches many guarantors
        assert dangling_foreign_keys(cur, "opendental_scale") == {}
        assert broken_money_rules(cur, "opendental_scale") == {}
    finally:
        cur.execute("DROP DATABASE IF EXISTS opendental_scale")
        conn.close()
