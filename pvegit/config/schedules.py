"""Schedules in plain words: ``hourly``, ``every 6 hours``, ``daily at 02:30``,
``weekly on sunday at 03:00``, ``manual``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pvegit.errors import ConfigError

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_EXAMPLES = "'hourly', 'every 6 hours', 'daily at 02:30', 'weekly on sunday at 03:00' or 'manual'"


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule; ``interval_seconds`` is None for manual."""

    spec: str
    kind: str  # "manual", "every", "daily", "weekly"
    interval_seconds: int | None
    at: str | None = None  # HH:MM
    day: str | None = None


def _time_of_day(text: str, spec: str) -> str:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ConfigError(f"schedule {spec!r}: {text!r} is not a time of day like 02:30")
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def parse_schedule(spec: str) -> Schedule:
    """Parse a schedule; raise ConfigError with examples when it is not understood."""
    text = " ".join(spec.lower().split())
    if text == "manual":
        return Schedule(text, "manual", None)
    if text in ("hourly", "daily", "weekly"):
        seconds = {"hourly": 3600, "daily": 86400, "weekly": 604800}[text]
        return Schedule(text, "every", seconds)
    match = re.fullmatch(r"every (\d+) (minute|minutes|hour|hours|day|days)", text)
    if match:
        count = int(match.group(1))
        unit = {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]
        if count < 1 or count * unit < 300:
            raise ConfigError(f"schedule {spec!r}: the shortest interval is 5 minutes")
        return Schedule(text, "every", count * unit)
    match = re.fullmatch(r"daily at (\S+)", text)
    if match:
        at = _time_of_day(match.group(1), spec)
        return Schedule(f"daily at {at}", "daily", 86400, at=at)
    match = re.fullmatch(r"weekly on (\w+) at (\S+)", text)
    if match:
        if match.group(1) not in DAYS:
            raise ConfigError(f"schedule {spec!r}: {match.group(1)!r} is not a day of the week")
        at = _time_of_day(match.group(2), spec)
        day = match.group(1)
        return Schedule(f"weekly on {day} at {at}", "weekly", 604800, at=at, day=day)
    raise ConfigError(f"schedule {spec!r} is not understood; use {_EXAMPLES}")
