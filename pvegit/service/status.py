"""A host's status as the dashboard, the API and alerts show it.

``ok``: the last run succeeded (changed or unchanged); ``partial``: it
committed what it could read; ``failing``: the last run failed or was
refused; ``stale``: no successful run for twice the schedule's interval, or
the last run went past its deadline while something still held it (state/liveness.py);
``running`` (its progress); ``never``: no successful run yet. The runs given are settled first
(``liveness.settle_runs``): a run nobody runs any more is not ``running``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from pvegit.config.file import Config
from pvegit.config.schedules import Schedule, parse_schedule
from pvegit.errors import ConfigError
from pvegit.service.progress import run_progress
from pvegit.state.liveness import OVERDUE
from pvegit.state.store import Host, Run, RunStatus

# pvegit.toml's defaults (callers pass the configured values).
DEFAULT_SCHEDULE = Config.default_schedule
STALE_FACTOR = Config.stale_factor

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

    if last_run is not None and last_run.is_running:
        return status("running", run_progress(last_run).text)
    if last_run is not None and last_run.status is RunStatus.FAILED and last_run.failure == OVERDUE:
        return status("stale", last_run.error or "the last run is overdue")
    if last_run is not None and last_run.is_failure:
        return status("failing", last_run.error or last_run.status)
    if last_success is None:
        return status("never", "no successful backup yet")
    age = now - (last_success.finished_at or last_success.started_at)
    interval = schedule.interval_seconds if schedule else None
    if interval and age > stale_factor * interval:
        return status("stale", f"last successful backup {describe_age(age)} ago")
    if last_run is not None and last_run.status is RunStatus.PARTIAL:
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
