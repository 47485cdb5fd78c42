"""Synthetic OpenDental source: `generate()` builds the 36-table database, `mutate()` simulates days of
clinic work on it. See `generate`, `mutate` and `timeline` for how data, clock and counts work."""

from etl_pipeline.synthetic.generate import generate

__all__ = ["generate"]
