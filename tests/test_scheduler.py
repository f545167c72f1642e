"""Scheduler logic with an injected clock: no waiting for real minutes."""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

import pytest

from pvegit.config.file import Config
from pvegit.config.schedules import parse_schedule
from pvegit.service.scheduler import Scheduler, jitter_of, next_due, previous_slot
from pvegit.state.store import Host, Run, Store

VIENNA = ZoneInfo("Europe/Vienna")


def at(*parts: int, zone: ZoneInfo = VIENNA) -> float:
    return dt.datetime(*parts, tzinfo=zone).timestamp()  # type: ignore[misc]


def run(
    started: float, status: str = "changed", failure: str | None = None, number: int = 1
) -> Run:
    return Run(
        id=number,
        host="pve1",
        trigger="schedule",
        actor=None,
        status=status,
        stage="done",
        progress_done=0,
        progress_total=0,
        started_at=started,
        finished_at=started + 5,
        duration=5,
        files=1,
        bytes=1,
        changed_files=0,
        commit_id=None,
        failure=failure,
    )


def config(**values: object) -> Config:
    base: dict[str, object] = {
        "timezone": "Europe/Vienna",
        "jitter": 0,
        "retry_delays": (60, 300, 900),
    }
    base.update(values)
    return Config(**base)  # type: ignore[arg-type]


def test_interval_schedule_is_due_an_interval_after_the_last_start() -> None:
    now = at(2026, 5, 1, 12, 0)
    host = Host("pve1", "10.0.0.1", schedule="every 6 hours", created_at=now - 30)
    first = next_due(host, [], now, config())
    assert first is not None and first.at == now - 30 and first.reason == "catch-up"
    # The due time of a host that never ran stays put however often it is asked.
    later = next_due(host, [], now + 5, config(jitter=60))
    assert later == next_due(host, [], now + 50, config(jitter=60))
    due = next_due(host, [run(now - 3600)], now, config())
    assert due is not None and due.at == now - 3600 + 6 * 3600 and due.reason == "schedule"


def test_daily_slot_catch_up_runs_once() -> None:
    host = Host("pve1", "10.0.0.1", schedule="daily at 02:30")
    now = at(2026, 5, 1, 10, 0)
    # pvegit was down at 02:30: the missed slot is due at once...
    missed = next_due(host, [run(at(2026, 4, 28, 2, 30))], now, config())
    assert missed is not None and missed.at == at(2026, 5, 1, 2, 30) and missed.reason == "catch-up"
    # ...and once it ran, the next one is tomorrow's.
    done = next_due(host, [run(now)], now, config())
    assert done is not None and done.at == at(2026, 5, 2, 2, 30)


def test_weekly_slot() -> None:
    schedule = parse_schedule("weekly on sunday at 03:00")
    now = at(2026, 5, 6, 12, 0)  # a Wednesday
    assert previous_slot(schedule, now, VIENNA) == at(2026, 5, 3, 3, 0)
    host = Host("pve1", "10.0.0.1", schedule="weekly on sunday at 03:00")
    due = next_due(host, [run(at(2026, 5, 3, 3, 1))], now, config())
    assert due is not None and due.at == at(2026, 5, 10, 3, 0)


def test_dst_spring_forward_slot_runs_an_hour_later_once() -> None:
    schedule = parse_schedule("daily at 02:30")
    # 2026-03-29: clocks jump from 02:00 to 03:00 in Vienna; 02:30 does not exist.
    slot = previous_slot(schedule, at(2026, 3, 29, 12, 0), VIENNA)
    assert slot == dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC).timestamp()  # 03:30 CEST
    host = Host("pve1", "10.0.0.1", schedule="daily at 02:30")
    after = next_due(host, [run(slot + 1)], slot + 7200, config())
    assert after is not None and after.at == at(2026, 3, 30, 2, 30)


def test_dst_fall_back_slot_runs_once_at_its_first_occurrence() -> None:
    schedule = parse_schedule("daily at 02:30")
    # 2026-10-25: 02:00-03:00 happens twice in Vienna.
    first = dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC).timestamp()  # 02:30 CEST
    assert previous_slot(schedule, first + 1800, VIENNA) == first
    host = Host("pve1", "10.0.0.1", schedule="daily at 02:30")
    second_occurrence = first + 3600
    due = next_due(host, [run(first + 10)], second_occurrence + 60, config())
    assert due is not None and due.at == at(2026, 10, 26, 2, 30)


def test_transient_failures_retry_with_backoff_then_wait_for_the_schedule() -> None:
    host = Host("pve1", "10.0.0.1", schedule="daily at 02:30")
    start = at(2026, 5, 1, 2, 30)
    failures: list[Run] = []
    for number, delay in enumerate((60, 300, 900), 1):
        failures.insert(0, run(start + number * 1000, "failed", "transient", number))
        due = next_due(host, failures, start + number * 1000 + 10, config())
        assert due is not None and due.reason == "retry"
        assert due.at == failures[0].finished_at + delay  # type: ignore[operator]
    failures.insert(0, run(start + 5000, "failed", "transient", 4))
    after = next_due(host, failures, start + 5100, config())
    assert after is not None and after.reason == "schedule" and after.at == at(2026, 5, 2, 2, 30)


def test_permanent_failures_do_not_retry() -> None:
    host = Host("pve1", "10.0.0.1", schedule="every 1 hours")
    now = at(2026, 5, 1, 12, 0)
    due = next_due(host, [run(now - 60, "failed", "permanent")], now, config())
    assert due is not None and due.reason == "schedule" and due.at == now - 60 + 3600


def test_manual_and_running_hosts_are_never_due() -> None:
    now = at(2026, 5, 1, 12, 0)
    assert next_due(Host("a", "x", schedule="manual"), [], now, config()) is None
    assert next_due(Host("a", "x"), [run(now - 99999, "running")], now, config()) is None


def test_default_schedule_applies_to_hosts_without_one() -> None:
    now = at(2026, 5, 1, 12, 0)
    due = next_due(Host("a", "x"), [run(now - 60)], now, config(default_schedule="hourly"))
    assert due is not None and due.at == now - 60 + 3600


def test_jitter_spreads_hosts_and_is_stable() -> None:
    slot = at(2026, 5, 1, 2, 30)
    delays = {jitter_of(f"pve{number}", slot, 120) for number in range(20)}
    assert len(delays) == 20 and all(0 <= delay <= 120 for delay in delays)
    assert jitter_of("pve1", slot, 120) == jitter_of("pve1", slot, 120)
    assert jitter_of("pve1", slot, 0) == 0


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_tick_respects_the_concurrency_limit_and_never_overlaps(store: Store) -> None:
    for number in range(5):
        store.add_host(Host(f"pve{number}", "10.0.0.1", schedule="hourly"))
    clock = FakeClock(time.time())  # the store stamps runs with the real time
    started: list[str] = []

    def launch(host: Host, trigger: str) -> int:
        started.append(host.name)
        return store.start_run(host.name, trigger)  # 'running' until finished

    scheduler = Scheduler(store, config(concurrency=2), launch, clock=clock)
    assert len(scheduler.tick()) == 2
    assert len(scheduler.tick()) == 0  # both slots busy, nothing twice
    for item in store.running_runs():
        store.finish_run(item.id, status="unchanged")
    assert len(scheduler.tick()) == 2
    for item in store.running_runs():
        store.finish_run(item.id, status="unchanged")
    assert len(scheduler.tick()) == 1
    assert sorted(started) == [f"pve{number}" for number in range(5)]
    for item in store.running_runs():
        store.finish_run(item.id, status="unchanged")
    assert scheduler.tick() == []  # all ran; next due in an hour
    clock.now += 3601
    assert len(scheduler.tick()) == 2


def test_a_failing_launch_does_not_stop_the_others(store: Store) -> None:
    for name in ("bad", "good"):
        store.add_host(Host(name, "10.0.0.1", schedule="hourly"))
    started: list[str] = []

    def launch(host: Host, trigger: str) -> int:
        if host.name == "bad":
            raise RuntimeError("boom")
        started.append(host.name)
        return 1

    scheduler = Scheduler(store, config(), launch, clock=FakeClock(time.time()), running=lambda: 0)
    scheduler.tick()
    assert started == ["good"]


@pytest.mark.parametrize("spec", ["hourly", "daily at 02:30", "weekly on monday at 01:00"])
def test_due_times_are_never_in_the_past_after_a_run(spec: str) -> None:
    host = Host("pve1", "10.0.0.1", schedule=spec)
    now = at(2026, 5, 1, 12, 0)
    due = next_due(host, [run(now)], now, config())
    assert due is not None and due.at > now
