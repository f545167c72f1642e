"""What state.db knows about a host's history: the run log's commits, the audit's.

The git layer decides whether a repository's files are damaged (git/health.py,
git/check.py). This module adds what only state.db knows: the commits the run
log records (a repository without a main ref is not empty while they exist,
and gc keeps them), the commits restores name, the commits a repair recorded
as lost, and the runs whose record is missing while their commit is on main
(a state.db that lost its newest transactions, or was rebuilt).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pvegit.config.home import Home
from pvegit.git.repo import Commit, HostRepository
from pvegit.layout import METADATA_PATH
from pvegit.state.runs import RecoveredRun, RunStatus
from pvegit.state.store import Store

REPAIR_ACTION = "repair"
_RECOVERED = (
    "recorded from the commit's trailers (the run log had lost this run):"
    " file and byte counts are not known"
)
_COMMIT_ID = re.compile(r"[0-9a-f]{40}")
_ALL = 10_000_000  # "every row": the audit API takes a limit


def lost_commits(store: Store, host: str) -> set[str]:
    """Commits a `pvegit repair` of ``host`` recorded as lost (their objects were gone)."""
    lost: set[str] = set()
    for event in store.audit_events(limit=_ALL, host=host, action=REPAIR_ACTION):
        lost.update(str(item) for item in event.detail.get("lost", ()))
    return lost


def recorded_commits(store: Store, host: str) -> list[str]:
    """The commits the run log records for ``host``, newest run first, less the lost ones."""
    lost = lost_commits(store, host)
    return [commit_id for commit_id in store.run_commits(host) if commit_id not in lost]


def named_commits(store: Store, host: str) -> list[str]:
    """Every commit state.db names for ``host``: the run log's and the audit log's.

    The audit's are any commit id in an entry's details (a restore's revision
    and the "before" snapshot among them), so gc keeps them whatever main says.
    """
    named = dict.fromkeys(recorded_commits(store, host))
    for event in store.audit_events(limit=_ALL, host=host):
        named.update(dict.fromkeys(_commit_ids_in(event.detail)))
    return list(named)


def _commit_ids_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if _COMMIT_ID.fullmatch(value):
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _commit_ids_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _commit_ids_in(item)


def open_repository(home: Home, store: Store, host: str) -> HostRepository:
    """Open ``host``'s repository for reading, with the run log's word on a missing ref."""
    return HostRepository(home.repo_path(host), recorded=lambda: recorded_commits(store, host))


@dataclass(frozen=True)
class UnrecordedCommit:
    """A commit on main whose run the run log does not hold (or holds with another commit)."""

    commit: Commit
    run_id: int


def unrecorded_commits(
    store: Store, repository: HostRepository, host: str
) -> list[UnrecordedCommit]:
    """Commits on main (first parents) whose ``Run-Id`` run is missing from the run log.

    Goes back to the host's oldest run in the log (older runs are pruned on
    purpose) or, when the log holds none, to the first commit. A run still
    ``running`` is not missing: the first look at it settles it with its
    commit (liveness.py). Oldest first.
    """
    extent = store.run_log_extent(host)
    horizon = extent.oldest_start
    found: list[UnrecordedCommit] = []
    cursor = repository.head()
    while cursor is not None:
        commit = repository.commit(cursor)
        if horizon is not None and commit.time < horizon - 1:  # commit times are whole seconds
            break
        run_id = commit.run_id
        if (
            run_id is not None
            and commit.commit_id not in extent.commit_ids
            and run_id not in extent.running_ids
        ):
            found.append(UnrecordedCommit(commit, run_id))
        cursor = commit.parents[0] if commit.parents else None
    found.reverse()
    return found


def record_runs(
    store: Store, repository: HostRepository, host: str, commits: list[UnrecordedCommit]
) -> int:
    """Put runs for ``commits`` into the run log, from their trailers; return how many.

    Each keeps its ``Run-Id`` when that id is free (else it gets a new one):
    status ``changed`` (``partial`` when the message says so), trigger and
    actor from ``Trigger`` and ``Triggered-By``, times from the commit, the
    changed paths counted against its parent. File and byte counts are not in
    git: they stay 0, and a warning on the run says where it came from.
    """
    runs: list[RecoveredRun] = []
    for item in commits:
        commit = item.commit
        trailers = commit.trailers()
        parent = commit.parents[0] if commit.parents else None
        changed = sum(
            1
            for change in repository.changes(parent, commit.commit_id)
            if change.path != METADATA_PATH
        )
        partial = "\nPartial snapshot: " in commit.message
        runs.append(
            RecoveredRun(
                run_id=item.run_id,
                host=host,
                trigger=trailers.get("Trigger", "unknown"),
                actor=trailers.get("Triggered-By"),
                status=RunStatus.PARTIAL if partial else RunStatus.CHANGED,
                time=float(commit.time),
                changed_files=changed,
                commit_id=commit.commit_id,
                warnings=(_RECOVERED,),
            )
        )
    store.record_recovered_runs(runs)
    return len(runs)
