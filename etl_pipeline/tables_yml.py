"""The tables a run works from: tables.yml with its overrides, and the source's new tables.

Every nightly step reads tables.yml through `tables_config(settings)`, at run time, so an edit to either
file takes effect on the next run without touching the DAG.

A table at the source that tables.yml does not list yet (an OpenDental upgrade added it) joins the next
nightly: `new_tables(settings)` classifies it with the schema analysis's own code
(`etl_pipeline.schema.analyze.table_config`, then the overrides: `enabled: false` keeps it out) for
this run only. tables.yml is not rewritten; the weekly analysis makes the table permanent. The plan
carries each new table's config in its plan item (`carried_config`), so the extract task, in another
process, loads exactly what was planned without reading information_schema again (`planned_table`).

A new table is loaded only with a primary key: a keyless one would be copied in full every night and
checked by count only, which is for the weekly analysis and its change report to put in front of a
person. A keyless table, a column type with no PostgreSQL mapping or a raw name another table already
has keep a new table out (`NewTables.not_loaded`, with the reason); the night goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from etl_pipeline.errors import ConfigError
from etl_pipeline.schema.overrides import Overrides, apply_overrides, load_overrides
from etl_pipeline.schema.tables_config import (
    TableConfig,
    TablesConfig,
    load_tables_config,
    table_from_dict,
    table_to_dict,
)
from etl_pipeline.settings import Settings

if TYPE_CHECKING:
    from etl_pipeline.schema.introspect import SourceSchema

log = logging.getLogger(__name__)


def tables_config(settings: Settings) -> TablesConfig:
    return load_tables_config(settings.tables_yml, settings.overrides_yml)


@dataclass(frozen=True)
class NewTables:
    """Source tables tables.yml does not list. `tables`: classified, overrides applied (one disabled
    by the overrides has enabled=False); `not_loaded`: name -> why it cannot be loaded tonight."""

    tables: dict[str, TableConfig] = field(default_factory=dict)
    not_loaded: dict[str, str] = field(default_factory=dict)


def new_tables(settings: Settings, config: TablesConfig | None = None) -> NewTables:
    """The source's tables that tables.yml does not list, classified (one information_schema read)."""
    from etl_pipeline.schema.introspect import introspect  # the drivers: seconds to import

    config = config if config is not None else tables_config(settings)
    return classify_new_tables(introspect(settings.source), config, load_overrides(settings.overrides_yml))


def classify_new_tables(source: SourceSchema, config: TablesConfig, overrides: Overrides) -> NewTables:
    """What the schema analysis would write for each source table missing from `config`."""
    from etl_pipeline.schema.analyze import table_config

    raw_names = {t.target_name: t.name for t in config.tables.values()}
    found: dict[str, TableConfig] = {}
    not_loaded: dict[str, str] = {}
    for name in sorted(set(source.tables) - set(config.tables)):
        try:
            table, _why = table_config(source.tables[name], overrides)
        except ConfigError as exc:  # a column type with no PostgreSQL mapping (names table and column)
            not_loaded[name] = str(exc)
            continue
        if not table.primary_key:
            not_loaded[name] = "no primary key (the weekly schema analysis decides how to load it)"
        elif table.target_name in raw_names:
            not_loaded[name] = (
                f"raw table {table.target_name!r} belongs to table {raw_names[table.target_name]!r}"
            )
        else:
            found[name] = _with_overrides(table, overrides)
            raw_names[table.target_name] = name
    return NewTables(found, not_loaded)


def _with_overrides(table: TableConfig, overrides: Overrides) -> TableConfig:
    own = {table.name: overrides.tables[table.name]} if table.name in overrides.tables else {}
    merged, problems = apply_overrides({table.name: table}, replace(overrides, tables=own))
    for problem in problems:
        log.warning("%s: %s", overrides.path, problem)
    return merged[table.name]


def carried_config(table: TableConfig) -> dict[str, Any]:
    """A new table's config as its plan item carries it: names and types, never row values."""
    return {**table_to_dict(table), "lookback_keys": table.lookback_keys, "chunk_rows": table.chunk_rows}


def planned_table(settings: Settings, item: dict[str, Any]) -> TableConfig:
    """The config a planned table loads with: its tables.yml entry, or for a new table the config its
    plan item carries (the weekly analysis may have listed it since: then tables.yml's)."""
    table = tables_config(settings).tables.get(item["table"])
    if table is not None:
        return table
    if item.get("new") and item.get("config"):
        return table_from_dict(item["table"], item["config"])
    raise ConfigError(f"{settings.tables_yml}: table {item['table']!r} is no longer listed")
