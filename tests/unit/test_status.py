"""pvegit.service.status: how a host's runs make its status (no node, no database)."""

from __future__ import annotations

from typing import Any

import pytest

from pvegit.service.status import describe_age, host_schedule, host_status
from pvegit.state.liveness import OVERDUE
from pvegit.state.store import Host, Run

NOW = 1_800_000_000.0
HOUR = 3600.0
DAY = 24 * HOUR
HOST = Host("pve1", "192.0.2.10")  # no schedule of its own: the default applies


def run(status: str, *, ago: float = HOUR, **fields: Any) -> Run:
    """A run that ended ``ago`` seconds before NOW (a running one only started then)."""
    values: dict[str, Any] = {
        "id": 1,
        "host": "pve1",
        "trigger": "schedule",
        "actor": None,
        "status": status,
        "stage": None,
        "progress_done": 0,
        "progress_total": 0,
        "started_at": NOW - ago - 5,
        "finished_at": None if status == "running" else NOW - ago,
        "duration": None if status == "running" else 5.0,
        "files": 10,
        "bytes": 1000,
        "changed_files": 0,
        "commit_id": None,
    }
    values.update(fields)
    return Run(**values)


def status_of(last: Run | None, success: Run | None, host: Host = HOST, **options: Any) -> Any:
    return host_status(host, last, success, now=NOW, **options)


def test_a_host_without_a_successful_run_was_never_backed_up() -> None:
    never = status_of(None, None)
    assert (never.kind, never.label, never.reason) == ("never", "Never", "no successful backup yet")


@pytest.mark.parametrize("outcome", ["changed", "unchanged"])
def test_a_recent_success_is_ok(outcome: str) -> None:
    last = run(outcome, ago=2 * HOUR)
    ok = status_of(last, last)
    assert (ok.kind, ok.reason) == ("ok", "last backup 2 h ago")
    assert ok.last_run is last and ok.last_success is last


def test_a_running_run_shows_its_stage_before_anything_else() -> None:
    old_success = run("changed", ago=30 * DAY)  # stale by age, yet running wins
    collecting = run("running", stage="collect", progress_done=12, progress_total=40)
    assert status_of(collecting, old_success).reason == "collect 12/40 files"  # its progress
    queued = status_of(run("running"), None)
    assert (queued.kind, queued.reason) == ("running", "queued")


@pytest.mark.parametrize("outcome", ["failed", "refused"])
def test_a_failed_or_refused_last_run_is_failing_with_its_error(outcome: str) -> None:
    success = run("changed", ago=DAY)
    failing = status_of(run(outcome, error="host key changed"), success)
    assert (failing.kind, failing.reason) == ("failing", "host key changed")
    assert status_of(run(outcome), success).reason == outcome  # no error recorded


def test_a_run_settled_past_its_deadline_makes_the_host_stale() -> None:
    overdue = run("failed", failure=OVERDUE, error="past its deadline")
    stale = status_of(overdue, run("changed", ago=DAY))
    assert (stale.kind, stale.reason) == ("stale", "past its deadline")
    assert status_of(run("failed", failure=OVERDUE), None).reason == "the last run is overdue"


def test_a_success_older_than_the_stale_factor_times_the_interval_is_stale() -> None:
    daily = Host("pve1", "192.0.2.10", schedule="daily at 02:30")
    fresh = run("unchanged", ago=2 * DAY - 60)
    assert status_of(fresh, fresh, daily).kind == "ok"
    old = run("unchanged", ago=2 * DAY + 60)
    stale = status_of(old, old, daily)
    assert (stale.kind, stale.reason) == ("stale", "last successful backup 2 d ago")
    # The factor and the default schedule come from the configuration.
    assert status_of(old, old, daily, stale_factor=3.0).kind == "ok"
    assert status_of(old, old, default_schedule="hourly").kind == "stale"
    assert status_of(old, old, default_schedule="weekly on sunday at 03:00").kind == "ok"


def test_a_manual_or_unparsable_schedule_never_goes_stale() -> None:
    ancient = run("changed", ago=365 * DAY)
    manual = Host("pve1", "192.0.2.10", schedule="manual")
    assert status_of(ancient, ancient, manual).kind == "ok"
    garbled = Host("pve1", "192.0.2.10", schedule="whenever it suits")
    assert host_schedule(garbled) is None
    assert status_of(ancient, ancient, garbled).kind == "ok"


def test_a_partial_last_run_is_partial_unless_stale() -> None:
    success = run("changed", ago=DAY)
    partial = status_of(run("partial", error="2 paths unreadable"), success)
    assert (partial.kind, partial.label, partial.reason) == (
        "partial",
        "Partial",
        "2 paths unreadable",
    )
    assert status_of(run("partial"), success).reason == "some paths could not be read"
    old = run("partial", ago=10 * DAY)
    assert status_of(old, old).kind == "stale"


def test_the_age_uses_the_start_when_a_success_has_no_end() -> None:
    unfinished = run("changed", ago=HOUR, finished_at=None, started_at=NOW - 3 * DAY)
    assert status_of(unfinished, unfinished).kind == "stale"


def test_the_now_default_is_the_clock() -> None:
    import time

    just = run("changed", finished_at=time.time() - 60)
    assert host_status(HOST, just, just).kind == "ok"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "0 s"),
        (45, "45 s"),
        (89, "89 s"),
        (90, "2 min"),
        (5399, "90 min"),
        (5400, "2 h"),
        (36 * HOUR - 1, "36 h"),
        (36 * HOUR, "2 d"),
        (10 * DAY, "10 d"),
    ],
)
def test_ages_are_said_in_one_unit(seconds: float, text: str) -> None:
    assert describe_age(seconds) == text
