"""Business hours: a run starting while the practice is open is refused where the guard is on, unless
allowed. Fixed clocks at the edges and on DST days, the settings and their bad values, the defaults per
ETL_ENVIRONMENT, the nightly check_params (the DAG's path) and `etl run` (the CLI's path)."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import yaml
from test_cli_support import etl
from test_load_support import admin_exec, drop_everywhere, pg_rows, table_config

from etl_pipeline import business_hours, nightly_checks
from etl_pipeline.business_hours import BusinessHoursRefused
from etl_pipeline.errors import EXIT_CONFIG, ConfigError
from etl_pipeline.schema.tables_config import table_to_dict
from etl_pipeline.settings import load_settings

CHICAGO = ZoneInfo("America/Chicago")


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Settings from the environment only (no .env file), as a local run with no business-hours settings."""
    monkeypatch.setenv("ETL_ENV_FILE", str(tmp_path / "none.env"))
    monkeypatch.setenv("ETL_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("ETL_ENVIRONMENT", "local")
    for key in ("BUSINESS_HOURS", "PRACTICE_TIMEZONE", "BUSINESS_HOURS_GUARD"):
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


@pytest.fixture
def guarded(env):
    env.setenv("ETL_ENVIRONMENT", "prod")
    return load_settings()


def _chicago(day: str, hhmm: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=CHICAGO)


@pytest.mark.parametrize(
    "hhmm, inside",
    [("05:59", False), ("06:00", True), ("12:30", True), ("20:59", True), ("21:00", False), ("23:59", False)],
)
def test_the_edges_start_inside_end_outside(guarded, hhmm, inside):
    now = _chicago("2026-06-15", hhmm).astimezone(UTC)  # the callers pass UTC instants
    if inside:
        with pytest.raises(BusinessHoursRefused):
            business_hours.check(guarded, now, allowed=False)
    else:
        decision = business_hours.check(guarded, now, allowed=False)
        assert (decision["inside"], decision["guard"]) == (False, True)


def test_the_refusal_names_the_hours_the_zone_the_local_time_and_the_overrides(guarded):
    with pytest.raises(BusinessHoursRefused) as refused:
        business_hours.check(guarded, datetime(2026, 6, 15, 15, 7, tzinfo=UTC), allowed=False)
    message = str(refused.value)
    for part in ("06:00-21:00", "America/Chicago", "2026-06-15 10:07 CDT", "Nothing was loaded"):
        assert part in message
    assert '{"allow_business_hours": true}' in message and "--allow-business-hours" in message
    assert refused.value.exit_code == EXIT_CONFIG


def test_allowed_inside_the_hours_runs_and_says_so(guarded, caplog):
    with caplog.at_level(logging.WARNING, logger="etl_pipeline.business_hours"):
        decision = business_hours.check(guarded, _chicago("2026-06-15", "10:00"), allowed=True)
    assert (decision["inside"], decision["allowed"]) == (True, True)
    assert "as allowed" in caplog.text and "10:00 CDT" in caplog.text


@pytest.mark.parametrize(
    "instant, local, inside",
    [
        # spring forward, 2026-03-08: 11:30 UTC is 05:30 CST the day before, 06:30 CDT that day
        ("2026-03-07T11:30Z", "05:30", False),
        ("2026-03-08T11:30Z", "06:30", True),
        ("2026-03-09T02:00Z", "21:00", False),  # the 21:00 run on the first CDT evening
        ("2026-03-09T01:59Z", "20:59", True),
        # fall back, 2026-11-01: 11:30 UTC is 06:30 CDT the day before, 05:30 CST that day
        ("2026-10-31T11:30Z", "06:30", True),
        ("2026-11-01T11:30Z", "05:30", False),
        ("2026-11-01T12:00Z", "06:00", True),
        ("2026-11-02T03:00Z", "21:00", False),  # the 21:00 run on the first CST evening
    ],
)
def test_dst_days_move_the_hours_with_the_clocks(guarded, instant, local, inside):
    now = datetime.fromisoformat(instant)
    assert guarded.business_hours.local(now).strftime("%H:%M") == local
    assert guarded.business_hours.contains(now) is inside


def test_the_repeated_hour_of_the_fall_back_is_inside_twice(env):
    env.setenv("BUSINESS_HOURS", "01:30-02:00")
    hours = load_settings().business_hours
    assert hours.contains(datetime.fromisoformat("2026-11-01T06:45Z"))  # 01:45 CDT
    assert hours.contains(datetime.fromisoformat("2026-11-01T07:45Z"))  # 01:45 CST, an hour later
    assert not hours.contains(datetime.fromisoformat("2026-11-01T08:00Z"))  # 02:00 CST


@pytest.mark.parametrize(
    "window, inside, outside",
    [
        ("00:00-24:00", ["00:00", "12:00", "23:59"], []),
        ("22:00-02:00", ["22:00", "23:59", "00:00", "01:59"], ["02:00", "12:00", "21:59"]),
        ("07:30-18:15", ["07:30", "18:14"], ["07:29", "18:15"]),
    ],
)
def test_other_windows_all_day_and_across_midnight(env, window, inside, outside):
    env.setenv("BUSINESS_HOURS", window)
    hours = load_settings().business_hours
    assert hours.window == window
    assert [t for t in inside if not hours.contains(_chicago("2026-06-15", t))] == []
    assert [t for t in outside if hours.contains(_chicago("2026-06-15", t))] == []


def test_practice_timezone_is_the_wall_clock_compared(env):
    env.setenv("ETL_ENVIRONMENT", "prod")
    env.setenv("PRACTICE_TIMEZONE", "America/New_York")
    settings = load_settings()
    now = datetime(2026, 6, 15, 10, 30, tzinfo=UTC)  # 06:30 in New York, 05:30 in Chicago
    with pytest.raises(BusinessHoursRefused, match="06:30 EDT.*America/New_York"):
        business_hours.check(settings, now, allowed=False)


@pytest.mark.parametrize(
    "environment, guard, expected",
    [
        ("prod", None, True),
        ("local", None, False),
        ("staging", None, False),
        ("prod", "off", False),
        ("local", "on", True),
        ("prod", "OFF", False),
    ],
)
def test_guard_is_on_by_default_for_prod_only(env, environment, guard, expected):
    env.setenv("ETL_ENVIRONMENT", environment)
    if guard:
        env.setenv("BUSINESS_HOURS_GUARD", guard)
    hours = load_settings().business_hours
    assert hours.guard is expected
    assert (hours.window, hours.timezone) == ("06:00-21:00", "America/Chicago")


@pytest.mark.parametrize(
    "key, value",
    [
        ("BUSINESS_HOURS", "6-21"),
        ("BUSINESS_HOURS", "06:00"),
        ("BUSINESS_HOURS", "06:00-25:00"),
        ("BUSINESS_HOURS", "06:60-21:00"),
        ("BUSINESS_HOURS", "24:00-06:00"),
        ("BUSINESS_HOURS", "24:30-06:00"),
        ("BUSINESS_HOURS", "06:00-24:01"),
        ("BUSINESS_HOURS", "09:00-09:00"),
        ("PRACTICE_TIMEZONE", "Central"),
        ("PRACTICE_TIMEZONE", "America/Nowhere"),
        ("BUSINESS_HOURS_GUARD", "maybe"),
    ],
)
def test_a_bad_value_is_a_config_error_naming_the_variable_and_the_value(env, key, value):
    env.setenv(key, value)
    with pytest.raises(ConfigError, match=rf"^{key}={value!r}"):
        load_settings()


def test_a_naive_clock_is_refused(guarded):
    with pytest.raises(ValueError, match="aware"):
        business_hours.check(guarded, datetime(2026, 6, 15, 10, 0), allowed=False)


# --- the DAG's path: validate.check_params --------------------------------------------------------------


def test_check_params_refuses_a_manual_run_at_ten_and_passes_the_nine_pm_run(guarded):
    with pytest.raises(BusinessHoursRefused, match="10:00 CDT"):
        nightly_checks.check_params({}, guarded, now=_chicago("2026-06-15", "10:00"))
    options = nightly_checks.check_params({}, guarded, now=_chicago("2026-06-15", "21:00"))
    assert options["force_full_refresh"] is False
    allowed = {"allow_business_hours": True}
    assert nightly_checks.check_params(allowed, guarded, now=_chicago("2026-06-15", "10:00"))
    with pytest.raises(ConfigError, match="params.allow_business_hours"):
        nightly_checks.check_params({"allow_business_hours": "yes"}, guarded)


def test_check_params_reads_the_wall_clock_when_not_given_one(guarded):
    all_day = replace(guarded, business_hours=replace(guarded.business_hours, start=0, end=24 * 60))
    with pytest.raises(BusinessHoursRefused):
        nightly_checks.check_params({}, all_day)
    assert nightly_checks.check_params({"allow_business_hours": True}, all_day)
    local = replace(all_day, business_hours=replace(all_day.business_hours, guard=False))
    assert nightly_checks.check_params({}, local)


# --- the CLI's path: `etl run`, against the test stack ----------------------------------------------------

ROWS = 7
ALL_DAY = {"BUSINESS_HOURS_GUARD": "on", "BUSINESS_HOURS": "00:00-24:00"}  # whatever the wall clock says


@pytest.fixture(scope="module")
def config(settings, tmp_path_factory):
    drop_everywhere(settings, "bh_guard")
    admin_exec(
        settings,
        "CREATE TABLE bh_guard (id int NOT NULL PRIMARY KEY, note varchar(20), "
        "ts timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP)",
        f"INSERT INTO bh_guard (id, note) SELECT seq, 'x' FROM seq_1_to_{ROWS}",
    )
    config_dir = tmp_path_factory.mktemp("bh-guard")
    (config_dir / "tables.yml").write_text(
        yaml.safe_dump({"tables": {"bh_guard": table_to_dict(table_config(settings, "bh_guard"))}})
    )
    yield {"ETL_CONFIG_DIR": str(config_dir)}
    drop_everywhere(settings, "bh_guard")


def _loaded(settings) -> tuple[bool, int]:
    """Whether raw.bh_guard exists, and the load_runs rows of bh_guard."""
    exists = pg_rows(settings, "SELECT to_regclass('raw.bh_guard') IS NOT NULL")[0][0]
    if not pg_rows(settings, "SELECT to_regclass('etl.load_runs') IS NOT NULL")[0][0]:
        return exists, 0
    return exists, pg_rows(settings, "SELECT count(*) FROM etl.load_runs WHERE table_name = 'bh_guard'")[0][0]


def test_cli_run_inside_the_hours_is_refused_and_loads_nothing(settings, config):
    for args in (("run",), ("run", "--json")):
        done = etl(*args, "--tables", "bh_guard", **config, **ALL_DAY)
        assert (done.returncode, done.stdout) == (EXIT_CONFIG, ""), done.stderr[-2000:]
        assert done.stderr.startswith("error: refused: ") and "00:00-24:00 America/Chicago" in done.stderr
        assert "--allow-business-hours" in done.stderr
    assert _loaded(settings) == (False, 0)
    # a dry run reads nothing: never refused
    assert etl("run", "--dry-run", **config, **ALL_DAY).returncode == 0


def test_cli_run_with_the_flag_loads(settings, config):
    done = etl("run", "--tables", "bh_guard", "--allow-business-hours", **config, **ALL_DAY)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "inside the practice's business hours" in done.stderr and "as allowed" in done.stderr
    assert pg_rows(settings, "SELECT count(*) FROM raw.bh_guard") == [(ROWS,)]
    assert _loaded(settings) == (True, 1)
