"""A host's status as the dashboard, the API and alerts show it.

``ok``: the last run succeeded (changed or unchanged); ``partial``: it
committed what it could read; ``failing``: the last run failed or was
refused; ``stale``: no successful run for twice the schedule's interval;
``running``; ``never``: no successful run yet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from pvegit.errors import ConfigError
from pvegit.schedules import Schedule, parse_schedule
from pvegit.store import Host, Run

DEFAULT_SCHEDULE = "daily"
STALE_FACTOR = 2.0

LABELS = {
    "ok": "OK",
    "partial": "Partial",
    "failing": "Failing",
    "stale": "Stale",
    "running": "Running",
    "never": "Never",
}


@dataclass(frozen=True)
class HostStatus:
    """What the fleet views say about one host."""

    kind: str  # ok, partial, failing, stale, running, never
    reason: str  # one line: why (the error of a failed run, how old the last backup is)
    last_run: Run | None
    last_success: Run | None
    schedule: Schedule | None

    @property
    def label(self) -> str:
        return LABELS[self.kind]


def host_schedule(host: Host, default: str = DEFAULT_SCHEDULE) -> Schedule | None:
    """The host's schedule, the default when it has none; None if it is unparsable."""
    try:
        return parse_schedule(host.schedule or default)
    except ConfigError:
        return None


def host_status(
    host: Host,
    last_run: Run | None,
    last_success: Run | None,
    *,
    now: float | None = None,
    default_schedule: str = DEFAULT_SCHEDULE,
    stale_factor: float = STALE_FACTOR,
) -> HostStatus:
    """Classify a host from its newest run and its newest successful run."""
    now = time.time() if now is None else now
    schedule = host_schedule(host, default_schedule)

    def status(kind: str, reason: str) -> HostStatus:
        return HostStatus(kind, reason, last_run, last_success, schedule)

    if last_run is not None and last_run.status == "running":
        return status("running", f"{last_run.stage or 'starting'}")
    if last_run is not None and last_run.status in ("failed", "refused"):
        return status("failing", last_run.error or last_run.status)
    if last_success is None:
        return status("never", "no successful backup yet")
    age = now - (last_success.finished_at or last_success.started_at)
    interval = schedule.interval_seconds if schedule else None
    if interval and age > stale_factor * interval:
        return status("stale", f"last successful backup {describe_age(age)} ago")
    if last_run is not None and last_run.status == "partial":
        return status("partial", last_run.error or "some paths could not be read")
    return status("ok", f"last backup {describe_age(age)} ago")


def describe_age(seconds: float) -> str:
    """'45 s', '12 min', '3 h', '2 d'."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def next_run(
    schedule: Schedule | None, last_success: Run | None, now: float | None = None
) -> float | None:
    """When the scheduler will run this host next (None: manual), in epoch seconds.

    Local time of day for ``daily at`` and ``weekly on``; otherwise the last
    success plus the interval (or now when it is overdue).
    """
    now = time.time() if now is None else now
    if schedule is None or schedule.interval_seconds is None:
        return None
    if schedule.at is not None:
        hour, minute = (int(part) for part in schedule.at.split(":"))
        local = time.localtime(now)
        candidate = time.mktime(
            (local.tm_year, local.tm_mon, local.tm_mday, hour, minute, 0, 0, 0, -1)
        )
        days_ahead = 0
        if schedule.day is not None:
            from pvegit.schedules import DAYS

            days_ahead = (DAYS.index(schedule.day) - local.tm_wday) % 7
        candidate += days_ahead * 86400
        while candidate <= now:
            candidate += 7 * 86400 if schedule.day is not None else 86400
        return candidate
    if last_success is None:
        return now
    due = (last_success.finished_at or last_success.started_at) + schedule.interval_seconds
    return max(due, now)
