"""The scheduler inside ``pvegit serve``: when each host is due, retries, catch-up.

Due times are computed from the run log on every tick, so the scheduler keeps
no state of its own and survives restarts: a host whose slot passed while
pvegit was down is due at once (catch-up), once. The ``schedule`` library
drives the tick; the clock is injected so the logic is tested without
waiting for real minutes.

Rules (times in the configured time zone):

* ``every N …`` / ``hourly`` / ``daily`` / ``weekly``: due ``interval`` after
  the start of the host's last run.
* ``daily at HH:MM`` / ``weekly on DAY at HH:MM``: due at the most recent slot
  if the last run started before it. A slot in the hour skipped when summer
  time starts runs an hour later; a slot in the hour repeated when it ends
  runs once, at its first occurrence.
* Every slot is delayed by a random 0…``jitter`` seconds, fixed per host and
  slot, to spread hosts that share a schedule.
* A transient failure (unreachable, timeout, connection dropped, busy) is
  retried after each of ``retry_delays``; a permanent one (auth refused, host
  key changed, pmxcfs down) waits for the next slot.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from pvegit.config.file import Config
from pvegit.config.schedules import DAYS, Schedule, parse_schedule
from pvegit.errors import ConfigError
from pvegit.state.store import Host, Run, RunStatus, Store

_log = logging.getLogger(__name__)

Clock = Callable[[], float]
Launch = Callable[[Host, str], int]  # (host, trigger) -> run id


@dataclass(frozen=True)
class Due:
    """A host and the moment its next run is due."""

    host: Host
    at: float
    reason: str  # "schedule", "catch-up", "retry"


def previous_slot(schedule: Schedule, now: float, zone: ZoneInfo) -> float:
    """The latest ``at`` time (daily or weekly) not after ``now``, in epoch seconds."""
    assert schedule.at is not None
    hour, minute = (int(part) for part in schedule.at.split(":"))
    local = dt.datetime.fromtimestamp(now, zone)
    day = local.date()
    for back in range(0, 8 if schedule.day else 2):
        candidate_day = day - dt.timedelta(days=back)
        if schedule.day is not None and candidate_day.weekday() != DAYS.index(schedule.day):
            continue
        slot = dt.datetime(
            candidate_day.year, candidate_day.month, candidate_day.day, hour, minute, tzinfo=zone
        ).timestamp()
        if slot <= now:
            return slot
    # Only reached for a slot later today with no earlier candidate in range.
    return previous_slot(schedule, now - 86400, zone)


def jitter_of(host: str, slot: float, jitter: float) -> float:
    """A random delay, the same for the same host and slot."""
    if jitter <= 0:
        return 0.0
    return random.Random(f"{host}:{int(slot)}").uniform(0, jitter)


def next_due(host: Host, runs: list[Run], now: float, config: Config) -> Due | None:
    """When ``host`` should run next, from its newest runs (newest first); None: not due."""
    try:
        schedule = parse_schedule(host.schedule or config.default_schedule)
    except ConfigError:
        return None
    if schedule.interval_seconds is None:
        return None
    last = runs[0] if runs else None
    if last is not None and last.is_running:
        return None
    if last is not None and last.status is RunStatus.FAILED and last.failure == "transient":
        failures = 0
        for run in runs:
            if run.status is RunStatus.FAILED and run.failure == "transient":
                failures += 1
            else:
                break
        if failures <= len(config.retry_delays):
            finished = last.finished_at or last.started_at
            return Due(host, finished + config.retry_delays[failures - 1], "retry")
    last_start = last.started_at if last is not None else None
    if schedule.at is not None:
        slot = previous_slot(schedule, now, config.zone)
        if last_start is not None and last_start >= slot:
            slot = _next_slot(schedule, slot, config.zone)
        reason = "catch-up" if slot < now - 60 else "schedule"
        return Due(host, slot + jitter_of(host.name, slot, config.jitter), reason)
    if last_start is None:
        # Anchored to when the host was added, not to "now": a due time that
        # moved with every look would never arrive.
        base = host.created_at
        return Due(host, base + jitter_of(host.name, base, config.jitter), "catch-up")
    due = last_start + schedule.interval_seconds
    return Due(host, due + jitter_of(host.name, due, config.jitter), "schedule")


def _next_slot(schedule: Schedule, slot: float, zone: ZoneInfo) -> float:
    step = 7 if schedule.day else 1
    local = dt.datetime.fromtimestamp(slot, zone)
    day = local.date() + dt.timedelta(days=step)
    assert schedule.at is not None
    hour, minute = (int(part) for part in schedule.at.split(":"))
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).timestamp()


class Scheduler:
    """Starts due runs through ``launch``; at most ``config.concurrency`` at once."""

    def __init__(
        self,
        store: Store,
        config: Config,
        launch: Launch,
        *,
        clock: Clock = time.time,
        running: Callable[[], int] | None = None,
    ) -> None:
        self._store = store
        self._config = config
        self._launch = launch
        self._clock = clock
        self._running = running or (lambda: len(store.running_runs()))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._plan: list[Due] = []
        self._marker: tuple[object, ...] | None = None
        self.lateness: list[float] = []  # seconds between due time and start, per started run

    def plan(self) -> list[Due]:
        """Every host's next due time, earliest first; recomputed only when runs or hosts change.

        An idle tick is then one small query: the scheduler costs next to nothing
        between runs, even with hundreds of hosts.
        """
        marker = self._store.change_marker()
        if marker != self._marker:
            now = self._clock()
            recent = self._store.recent_runs(len(self._config.retry_delays) + 2)
            plan = []
            for host in self._store.hosts():
                due = next_due(host, recent.get(host.name, []), now, self._config)
                if due is not None:
                    plan.append(due)
            self._plan = sorted(plan, key=lambda item: item.at)
            self._marker = marker
        return self._plan

    def due(self) -> list[Due]:
        """Hosts whose next run is due now, earliest first."""
        now = self._clock()
        return [item for item in self.plan() if item.at <= now]

    def tick(self) -> list[int]:
        """Start what is due, within the concurrency limit; return the new run ids.

        A failure to start one host is logged and does not stop the others.
        """
        started = []
        free = self._config.concurrency - self._running()
        for due in self.due():
            if free <= 0:
                break
            try:
                run_id = self._launch(due.host, "retry" if due.reason == "retry" else "schedule")
            except Exception:
                _log.exception("could not start a run of %s", due.host.name)
                continue
            late = self._clock() - due.at
            self.lateness.append(late)
            _log.info(
                "run started host=%s run=%s reason=%s late=%.1fs",
                due.host.name,
                run_id,
                due.reason,
                late,
            )
            started.append(run_id)
            free -= 1
        return started

    def start(self, interval: int = 1, *, housekeeping: Callable[[], None] | None = None) -> None:
        """Tick every ``interval`` seconds in a background thread (driven by ``schedule``).

        ``housekeeping`` (stale checks, run log retention) runs once a minute.
        """
        import schedule

        jobs = schedule.Scheduler()
        jobs.every(interval).seconds.do(self._safe_tick)
        if housekeeping is not None:
            jobs.every(60).seconds.do(self._guarded(housekeeping))

        def loop() -> None:
            self._safe_tick()
            while not self._stop.wait(interval / 2):
                jobs.run_pending()

        self._thread = threading.Thread(target=loop, name="pvegit-scheduler", daemon=True)
        self._thread.start()

    def _safe_tick(self) -> None:
        try:
            self.tick()
        except Exception:  # the scheduler must outlive any one bad tick
            _log.exception("scheduler tick failed")

    @staticmethod
    def _guarded(job: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                job()
            except Exception:
                _log.exception("scheduler housekeeping failed")

        return run

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
