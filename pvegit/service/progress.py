"""A run's progress, computed once for every face (run page, dashboard, API, SSE, CLI).

A run goes through the stages of ``STAGES``; while it collects, the files
read out of the node's total move the bar. The percentages are a guess at
where the time goes: connecting is quick, collecting is most of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pvegit.state.store import Run, RunStatus

STAGES = ("queued", "connect", "collect", "inventory", "commit", "done")
SHOWN_STAGES = STAGES[1:-1]  # what a run page lists
_STAGE_PERCENT = {0: 0, 1: 5, 2: 10, 3: 85, 4: 92}
_COLLECT_FROM, _COLLECT_SPAN = 10, 70


def describe_progress(stage: str | None, done: int, total: int) -> str:
    """'collect 12/40 files', 'collect 12 files' (no total yet), 'connect'."""
    shown = stage or "queued"
    if total:
        return f"{shown} {done}/{total} files"
    return f"{shown} {done} files" if done else shown


@dataclass(frozen=True)
class RunProgress:
    """Where a run stands: its stage, its file counts and a percentage for a bar."""

    id: int
    host: str
    status: RunStatus
    stage: str
    stage_index: int  # in STAGES; a stage pvegit does not know counts as queued
    done: int
    total: int
    percent: int  # 100 once the run ended, whatever its outcome
    files: int
    commit: str | None
    error: str | None
    duration: float | None

    @property
    def running(self) -> bool:
        return self.status is RunStatus.RUNNING

    @property
    def text(self) -> str:
        """The stage with its counts, e.g. 'collect 12/40 files'."""
        return describe_progress(self.stage, self.done, self.total)

    def stage_state(self, number: int) -> str:
        """'done', 'current' or '' for the ``number``-th (from 1) of SHOWN_STAGES."""
        if self.status.succeeded:
            return "done"
        if self.running and self.stage_index > number:
            return "done"
        if self.running and self.stage_index == number:
            return "current"
        return ""

    def to_json(self) -> dict[str, Any]:
        """The API's ``progress`` and the live view's event."""
        return {
            "id": self.id,
            "status": self.status,
            "stage": self.stage,
            "stage_index": self.stage_index,
            "done": self.done,
            "total": self.total,
            "percent": self.percent,
            "text": self.text,
            "stages": [self.stage_state(number) for number in range(1, len(SHOWN_STAGES) + 1)],
            "files": self.files,
            "commit": self.commit,
            "error": self.error,
            "duration": self.duration,
        }


def run_progress(run: Run) -> RunProgress:
    """The progress of ``run`` as its record has it now."""
    stage = run.stage or "queued"
    index = STAGES.index(stage) if stage in STAGES else 0
    if not run.is_running:
        percent = 100
    elif stage == "collect" and run.progress_total:
        share = min(1.0, run.progress_done / run.progress_total)
        percent = _COLLECT_FROM + int(_COLLECT_SPAN * share)
    else:
        percent = _STAGE_PERCENT.get(index, 0)
    return RunProgress(
        id=run.id,
        host=run.host,
        status=run.status,
        stage=stage,
        stage_index=index,
        done=run.progress_done,
        total=run.progress_total,
        percent=percent,
        files=run.files,
        commit=run.commit_id,
        error=run.error,
        duration=run.duration,
    )
