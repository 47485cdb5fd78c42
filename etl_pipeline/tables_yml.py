"""The tables.yml a run works from: the file named by the settings with its overrides applied.

Every nightly step reads it through `tables_config(settings)`, at run time, so an edit to either file
takes effect on the next run without touching the DAG.
"""

from __future__ import annotations

from etl_pipeline.schema.tables_config import TablesConfig, load_tables_config
from etl_pipeline.settings import Settings


def tables_config(settings: Settings) -> TablesConfig:
    return load_tables_config(settings.tables_yml, settings.overrides_yml)
