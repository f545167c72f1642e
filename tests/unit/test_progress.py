"""pvegit.service.progress: the one computation of a run's progress every face shows."""

from __future__ import annotations

from typing import Any

import pytest

from pvegit.cli import runs_exit_code
from pvegit.service.progress import SHOWN_STAGES, describe_progress, run_progress
from pvegit.state.store import Run


def run(status: str = "running", **fields: Any) -> Run:
    values: dict[str, Any] = {
        "id": 7,
        "host": "pve1",
        "trigger": "web",
        "actor": "admin",
        "status": status,
        "stage": None,
        "progress_done": 0,
        "progress_total": 0,
        "started_at": 1.0,
        "finished_at": None,
        "duration": None,
        "files": 0,
        "bytes": 0,
        "changed_files": 0,
        "commit_id": None,
    }
    values.update(fields)
    return Run(**values)


@pytest.mark.parametrize(
    ("stage", "done", "total", "percent", "text"),
    [
        (None, 0, 0, 0, "queued"),
        ("connect", 0, 0, 5, "connect"),
        ("collect", 0, 0, 10, "collect"),
        ("collect", 12, 0, 10, "collect 12 files"),
        ("collect", 20, 40, 45, "collect 20/40 files"),
        ("collect", 50, 40, 80, "collect 50/40 files"),  # a total that grew: capped
        ("inventory", 40, 40, 85, "inventory 40/40 files"),
        ("commit", 0, 0, 92, "commit"),
        ("mystery", 0, 0, 0, "mystery"),
    ],
)
def test_a_running_run(stage: str | None, done: int, total: int, percent: int, text: str) -> None:
    progress = run_progress(run(stage=stage, progress_done=done, progress_total=total))
    assert (progress.percent, progress.text) == (percent, text)
    assert progress.text == describe_progress(stage, done, total)  # what the CLI prints


def test_the_stages_of_a_running_run() -> None:
    progress = run_progress(run(stage="collect"))
    assert progress.stage_index == 2
    assert [progress.stage_state(n) for n in range(1, len(SHOWN_STAGES) + 1)] == [
        "done",
        "current",
        "",
        "",
    ]
    assert progress.to_json()["stages"] == ["done", "current", "", ""]


@pytest.mark.parametrize(
    ("status", "states"),
    [("changed", ["done"] * 4), ("partial", ["done"] * 4), ("failed", [""] * 4)],
)
def test_an_ended_run_is_at_100_percent(status: str, states: list[str]) -> None:
    progress = run_progress(run(status, stage="collect", commit_id="abc", files=3, duration=1.5))
    assert progress.percent == 100 and not progress.running
    shown = progress.to_json()
    assert shown["stages"] == states
    assert (shown["commit"], shown["files"], shown["duration"]) == ("abc", 3, 1.5)


def test_one_exit_code_rule_for_local_and_remote_runs() -> None:
    assert runs_exit_code(["changed", "unchanged"]) == 0
    assert runs_exit_code(["changed", "partial"]) == 3
    assert runs_exit_code(["partial", "refused"]) == 1
    assert runs_exit_code(["failed"]) == 1
    assert runs_exit_code([]) == 0
