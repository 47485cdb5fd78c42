"""Synthetic OpenDental source: `generate()` builds the 36-table database, `mutate()` simulates days of
clinic work on it. See `build`, `simulate` and `timeline` for how data, clock and counts work."""

from etl_pipeline.synthetic.build import generate
from etl_pipeline.synthetic.simulate import mutate

__all__ = ["generate", "mutate"]
