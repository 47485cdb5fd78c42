"""Clinic hours: a run that would start while the practice is open is refused unless allowed.

A load reads OpenDental's live server, so by default it runs after the practice closes (the nightly
DAG starts at 21:00). Where the guard is on, a run started inside the business hours (a manual
trigger at 10:00, `etl run` from a terminal at lunch) stops before it connects anywhere, unless the
operator says so: the trigger param `allow_business_hours: true` or `etl run --allow-business-hours`.

    BUSINESS_HOURS        HH:MM-HH:MM in the practice's time zone (default 06:00-21:00); the start is
                          inside, the end is not (the 21:00 run passes); 24:00 ends at midnight, and a
                          start later than the end spans midnight (22:00-02:00)
    PRACTICE_TIMEZONE     the practice's IANA time zone (default America/Chicago, the DAGs' zone)
    BUSINESS_HOURS_GUARD  on | off; default on where ETL_ENVIRONMENT=prod, off elsewhere (the demo and
                          the tests run at any hour)

The hours are compared with the local wall time of the instant `now`, so a DST day moves them with
the clocks. `now` is always passed in (the callers use the wall clock; tests a fixed one).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from etl_pipeline.errors import EXIT_CONFIG, ConfigError, EtlError

if TYPE_CHECKING:
    from etl_pipeline.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_HOURS = "06:00-21:00"
DEFAULT_TIMEZONE = "America/Chicago"
GUARD_DEFAULT_ON = ("prod",)  # the ETL_ENVIRONMENT values where the guard is on unless set
_ON, _OFF = ("on", "true", "1", "yes"), ("off", "false", "0", "no")
_WINDOW = re.compile(r"(\d{2}):(\d{2})-(\d{2}):(\d{2})")


class BusinessHoursRefused(EtlError):
    """A run would start inside the practice's business hours and was not allowed to."""

    exit_code = EXIT_CONFIG  # nothing ran: the operator changes the request (or the setting) and reruns


@dataclass(frozen=True)
class BusinessHours:
    """The practice's business hours: [start, end) in minutes after local midnight, in `timezone`."""

    start: int = 6 * 60
    end: int = 21 * 60
    timezone: str = DEFAULT_TIMEZONE
    guard: bool = False

    @property
    def window(self) -> str:
        return f"{_clock(self.start)}-{_clock(self.end)}"

    def local(self, now: datetime) -> datetime:
        if now.tzinfo is None:
            raise ValueError("business hours need an aware datetime (a naive one has no instant)")
        return now.astimezone(ZoneInfo(self.timezone))

    def contains(self, now: datetime) -> bool:
        """Whether the instant `now` falls inside the hours, on the practice's wall clock."""
        local = self.local(now)
        minute = local.hour * 60 + local.minute
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end  # spans midnight


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_window(key: str, raw: str) -> tuple[int, int]:
    """`HH:MM-HH:MM` as (start, end) minutes after midnight; 24:00 only as the end."""
    match = _WINDOW.fullmatch(raw.strip().replace(" ", ""))
    if not match:
        raise ConfigError(f"{key}={raw!r} is not HH:MM-HH:MM (e.g. {DEFAULT_HOURS})")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
        raise ConfigError(f"{key}={raw!r}: not a time of day (00:00-23:59, or 24:00 as the end)")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end:
        raise ConfigError(f"{key}={raw!r}: start and end are the same time (use 00:00-24:00 for all day)")
    return start, end


def parse_timezone(key: str, raw: str) -> str:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{key}={raw!r} is not a time zone name (e.g. {DEFAULT_TIMEZONE})") from None
    return raw


def parse_guard(key: str, raw: str | None, environment: str) -> bool:
    if not raw:
        return environment in GUARD_DEFAULT_ON
    if raw.strip().lower() in _ON:
        return True
    if raw.strip().lower() in _OFF:
        return False
    raise ConfigError(f"{key}={raw!r} is not on or off")


def from_env(env: Mapping[str, str], environment: str) -> BusinessHours:
    """The settings from the environment (settings.load_settings calls this)."""
    start, end = parse_window("BUSINESS_HOURS", env.get("BUSINESS_HOURS") or DEFAULT_HOURS)
    return BusinessHours(
        start=start,
        end=end,
        timezone=parse_timezone("PRACTICE_TIMEZONE", env.get("PRACTICE_TIMEZONE") or DEFAULT_TIMEZONE),
        guard=parse_guard("BUSINESS_HOURS_GUARD", env.get("BUSINESS_HOURS_GUARD"), environment),
    )


def check(settings: Settings, now: datetime, allowed: bool) -> dict[str, object]:
    """Refuse (BusinessHoursRefused) a run starting at `now` inside the hours, unless `allowed` or the
    guard is off. Returns what was decided, for the task's XCom and the log."""
    hours = settings.business_hours
    local = hours.local(now)
    inside = hours.contains(now)
    decision: dict[str, object] = {
        "guard": hours.guard,
        "business_hours": hours.window,
        "timezone": hours.timezone,
        "local_time": local.isoformat(timespec="minutes"),
        "inside": inside,
        "allowed": allowed,
    }
    if not (hours.guard and inside):
        return decision
    if allowed:
        log.warning(
            "starting inside the practice's business hours (%s %s, now %s) as allowed",
            hours.window,
            hours.timezone,
            local.strftime("%H:%M %Z"),
        )
        return decision
    raise BusinessHoursRefused(
        f"refused: {local.strftime('%Y-%m-%d %H:%M %Z')} is inside the practice's business hours "
        f"{hours.window} {hours.timezone} (BUSINESS_HOURS, PRACTICE_TIMEZONE); a load would read the "
        "live OpenDental server while the clinic works. Nothing was loaded. To run now anyway: trigger "
        'with {"allow_business_hours": true} or `etl run --allow-business-hours`; '
        "BUSINESS_HOURS_GUARD=off turns the check off"
    )
