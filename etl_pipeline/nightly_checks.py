"""The `validate` group of the nightly run: what must hold before anything is loaded.

    check_params(params, settings, conf)    trigger conf normalised; a key that is no param (a misspelling)
                                            and unknown table names refused by name; a run inside
                                            business hours refused unless allow_business_hours
    check_tables_config(settings, options)  tables.yml present, valid, same environment, fresh enough
    check_connections(settings)             source (read-only user) and target answer
    drift_check(settings, options)          live schema against tables.yml (reported, never fatal)

`skip_validation` in the options skips the tables.yml and drift checks, never the connection check.

The database drivers, the schema analysis and the validator are imported inside the steps that use them:
the DAG file imports this module every time it is parsed, and they take seconds to import.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from etl_pipeline import business_hours
from etl_pipeline.errors import ConfigError
from etl_pipeline.schema.tables_config import TableConfig
from etl_pipeline.settings import Settings
from etl_pipeline.tables_yml import classify_new_tables, tables_config

if TYPE_CHECKING:
    from etl_pipeline.schema.introspect import SourceTable

log = logging.getLogger(__name__)

STALE_WARN_DAYS = 30
STALE_FAIL_DAYS = 90
MAX_WORKERS = (1, 16)  # the trigger form's limits for `max_workers`
DEFAULT_MAX_WORKERS = 5
# the nightly DAG's params (its trigger form); a contract test holds the DAG to them
PARAM_NAMES = ("allow_business_hours", "force_full_refresh", "max_workers", "skip_validation", "tables")


def check_params(
    params: dict, settings: Settings, now: datetime | None = None, conf: Mapping | None = None
) -> dict:
    """The run's options, normalised. Airflow's Param schema already checked the types and ranges of
    the known keys; a key of the trigger's `conf` (or of `params`) that is none of them is refused
    by name, since Airflow would carry it along unread (`force_full_refesh`: no full refresh). Table
    names can only be checked against tables.yml, at run time. A run starting inside the practice's
    business hours is refused (`now`: the wall clock when the check runs)."""
    _refuse_unknown_keys([*params, *(conf or {})])
    allowed = params.get("allow_business_hours", False)
    if not isinstance(allowed, bool):
        raise ConfigError(f"params.allow_business_hours: expected true or false, got {allowed!r}")
    business_hours.check(settings, now or datetime.now(UTC), allowed)
    tables = params.get("tables") or None
    if tables is not None:
        if not isinstance(tables, list) or not all(isinstance(t, str) and t for t in tables):
            raise ConfigError('params.tables: expected a list of table names, e.g. ["patient"]')
        unknown = sorted(set(tables) - set(tables_config(settings).tables))
        if unknown:  # a new source table the nightly can load is known too (nightly_plan)
            loadable, why = _loadable_new_tables(settings)
            unknown = sorted(set(unknown) - loadable)
        if unknown:
            raise ConfigError(
                f"params.tables: unknown table(s) {', '.join(unknown)} (not in {settings.tables_yml}, "
                f"nor a new source table that can be loaded{why})"
            )
    workers = params.get("max_workers", DEFAULT_MAX_WORKERS)
    low, high = MAX_WORKERS
    if not isinstance(workers, int) or isinstance(workers, bool) or not low <= workers <= high:
        raise ConfigError(f"params.max_workers: expected an integer {low}-{high}, got {workers!r}")
    return {
        "tables": sorted(set(tables)) if tables else None,
        "force_full_refresh": bool(params.get("force_full_refresh")),
        "skip_validation": bool(params.get("skip_validation")),
        "max_workers": workers,
    }


def _refuse_unknown_keys(keys: Iterable[str]) -> None:
    unknown = sorted(set(keys) - set(PARAM_NAMES))
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(str(key), PARAM_NAMES, n=1)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise ConfigError(
        f"params: unknown option(s) {', '.join(hints)}; the nightly's options are {', '.join(PARAM_NAMES)}"
    )


def _loadable_new_tables(settings: Settings) -> tuple[set[str], str]:
    """Names of the source's new tables the nightly can load, and a note when the source did not answer."""
    from etl_pipeline.db import SOURCE_OPERATIONAL_ERRORS
    from etl_pipeline.errors import ConnectionFailed
    from etl_pipeline.tables_yml import new_tables

    try:
        return set(new_tables(settings).tables), ""
    except (ConnectionFailed, *SOURCE_OPERATIONAL_ERRORS) as exc:
        return set(), f"; the source could not be asked: {type(exc).__name__}"


def check_tables_config(settings: Settings, options: dict | None = None, now: datetime | None = None) -> dict:
    """tables.yml is there, valid, generated for this environment, and not older than 90 days."""
    from etl_pipeline.schema.validate import validate_tables_config

    if options and options.get("skip_validation"):
        return {"skipped": True, "warnings": []}
    errors = validate_tables_config(settings.tables_yml, settings.overrides_yml)
    if errors:
        more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
        raise ConfigError("; ".join(str(e) for e in errors[:3]) + more)
    config = tables_config(settings)
    environment = config.metadata.get("environment")
    if environment and environment != settings.environment:
        raise ConfigError(
            f"{settings.tables_yml}: metadata.environment is {environment!r} but this is "
            f"{settings.environment!r} (ETL_ENVIRONMENT); run analyze-schema here"
        )
    age_days = _age_days(config.metadata.get("generated_at"), now or datetime.now(UTC), settings)
    if age_days is not None and age_days >= STALE_FAIL_DAYS:
        raise ConfigError(
            f"{settings.tables_yml}: generated {age_days} days ago (limit {STALE_FAIL_DAYS}); "
            "run analyze-schema (or the schema_analysis DAG)"
        )
    warnings = []
    if age_days is not None and age_days >= STALE_WARN_DAYS:
        warnings.append(f"tables.yml is {age_days} days old (fails at {STALE_FAIL_DAYS})")
    for text in warnings:
        log.warning(text)
    return {"tables": len(config.enabled_tables()), "age_days": age_days, "warnings": warnings}


def _age_days(generated_at: object, now: datetime, settings: Settings) -> int | None:
    if not generated_at:
        return None
    try:
        stamp = datetime.fromisoformat(str(generated_at))
    except ValueError:
        raise ConfigError(
            f"{settings.tables_yml}: metadata.generated_at {generated_at!r} is not an ISO timestamp"
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return max(0, (now - stamp).days)


def check_connections(settings: Settings) -> dict:
    """Both ends answer (raises ConnectionFailed naming host/port/user otherwise)."""
    from etl_pipeline.db import connect_target
    from etl_pipeline.schema.workflow import check_source

    source = check_source(settings)
    pg = connect_target(settings.target)
    try:
        with pg.cursor() as cur:
            cur.execute("SELECT current_setting('server_version')")
            target_version = cur.fetchone()[0]
    finally:
        pg.close()
    for end, db in (("source", settings.source), ("target", settings.target)):
        log.info("%s %s, defined by %s", end, db.display, db.defined_by)
    return {
        "source_tables": source["tables"],
        "source_version": source["server_version"],
        "target_version": target_version,
        "source_defined_by": settings.source.defined_by,
        "target_defined_by": settings.target.defined_by,
    }


def drift_check(settings: Settings, options: dict | None = None) -> dict:
    """Compare the live source structure with tables.yml. Drift is reported, not fatal: new tables
    join tonight's load (`nightly_plan`; the ones that cannot be loaded are listed with the reason),
    changed ones are handled by the loader's rules (widen, full refresh)."""
    from etl_pipeline.schema.introspect import introspect
    from etl_pipeline.schema.overrides import load_overrides

    if options and options.get("skip_validation"):
        return {"drift": False, "skipped": True}
    config = tables_config(settings)
    live = introspect(settings.source)
    new = sorted(set(live.tables) - set(config.tables))
    missing = sorted(set(config.tables) - set(live.tables))
    changed = sorted(
        name
        for name in set(live.tables) & set(config.tables)
        if _live_shape(live.tables[name]) != _shape(config.tables[name])
    )
    not_loaded = classify_new_tables(live, config, load_overrides(settings.overrides_yml)).not_loaded
    drift = bool(new or missing or changed)
    if drift:
        log.warning(
            "schema drift against tables.yml: %d new (%d not loadable), %d missing, %d changed table(s)",
            len(new),
            len(not_loaded),
            len(missing),
            len(changed),
        )
    return {
        "drift": drift,
        "new_tables": new,
        "new_tables_not_loaded": not_loaded,
        "missing_tables": missing,
        "changed_tables": changed,
    }


def _live_shape(table: SourceTable) -> tuple:
    return tuple((c.name, c.column_type, c.nullable) for c in table.columns), tuple(table.primary_key)


def _shape(table: TableConfig) -> tuple:
    return tuple((c.name, c.source_type, c.nullable) for c in table.columns), tuple(table.primary_key)
