"""The ``runs`` table: every snapshot attempt, whatever its outcome, and its status.

A run is started as ``running`` by the process that runs it, moves through
its stages, and is finished with one of the other statuses by that process
(``finish_run``) or, if it stopped, settled by whoever looks next
(liveness.py decides; ``settle_run`` records). The log's questions (the newest
run of each host, a page of runs, counts) are in run_queries.py.
"""

from __future__ import annotations

import enum
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pvegit.errors import NotFound
from pvegit.state.db import Database, columns_of
from pvegit.system.processes import claim, release, this_process


class RunStatus(enum.StrEnum):
    """Where a run stands; the values are what state.db and the JSON API hold."""

    RUNNING = "running"
    CHANGED = "changed"  # committed a new snapshot
    UNCHANGED = "unchanged"  # nothing differed from the last snapshot
    PARTIAL = "partial"  # committed, but some paths could not be read
    FAILED = "failed"
    REFUSED = "refused"  # not tried: a guard said no (a changed host key, a held lock...)

    @property
    def succeeded(self) -> bool:
        """True for the statuses that leave a usable snapshot (changed, unchanged, partial)."""
        return self in SUCCESSES

    @property
    def is_failure(self) -> bool:
        """True for failed and refused: the statuses that alert."""
        return self in (RunStatus.FAILED, RunStatus.REFUSED)

    @classmethod
    def parse(cls, text: str | None) -> RunStatus | None:
        """The status spelled ``text``, or None for anything else (a query parameter)."""
        return next((status for status in cls if status.value == text), None)


SUCCESSES = frozenset({RunStatus.CHANGED, RunStatus.UNCHANGED, RunStatus.PARTIAL})


@dataclass(frozen=True)
class Run:
    """One snapshot attempt, whatever its outcome."""

    id: int
    host: str
    trigger: str
    actor: str | None
    status: RunStatus
    stage: str | None
    progress_done: int
    progress_total: int
    started_at: float
    finished_at: float | None
    duration: float | None
    files: int
    bytes: int
    changed_files: int
    commit_id: str | None
    warnings: tuple[str, ...] = field(default_factory=tuple)
    error: str | None = None
    pid: int | None = None
    failure: str | None = None  # "transient", "permanent" or "overdue" for failed/refused runs
    boot_id: str | None = None  # with process_start: the process running it (system/processes.py)
    process_start: int | None = None
    deadline: float | None = None  # past this, a run still 'running' counts as failed

    def __post_init__(self) -> None:
        # A status given as its word (a test, an old caller) becomes the member, so
        # comparing with ``is`` holds; an unknown word raises ValueError here.
        object.__setattr__(self, "status", RunStatus(self.status))

    @property
    def is_running(self) -> bool:
        """Recorded as running (liveness.py says whether it still is)."""
        return self.status is RunStatus.RUNNING

    @property
    def succeeded(self) -> bool:
        """Ended with a usable snapshot: changed, unchanged or partial."""
        return self.status.succeeded

    @property
    def is_failure(self) -> bool:
        """Ended failed or refused."""
        return self.status.is_failure

    def to_json(self) -> dict[str, Any]:
        """The run as the API and ``--json`` show it."""
        return {
            "id": self.id,
            "host": self.host,
            "trigger": self.trigger,
            "actor": self.actor,
            "status": self.status.value,
            "stage": self.stage,
            "progress": {"done": self.progress_done, "total": self.progress_total},
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration": self.duration,
            "files": self.files,
            "bytes": self.bytes,
            "changed_files": self.changed_files,
            "commit": self.commit_id,
            "warnings": list(self.warnings),
            "error": self.error,
            "failure": self.failure,
        }


@dataclass(frozen=True)
class RecoveredRun:
    """A run written back from its commit (runlog.record_runs), with what git knows of it."""

    run_id: int  # its Run-Id; a new id is given when that one is taken
    host: str
    trigger: str
    actor: str | None
    status: RunStatus
    time: float
    changed_files: int
    commit_id: str
    warnings: tuple[str, ...]


class RunTable(Database):
    """A run's life: started, its progress, finished or settled; and pruning."""

    SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    host TEXT NOT NULL,
    trigger TEXT NOT NULL,
    actor TEXT,
    status TEXT NOT NULL,
    stage TEXT,
    progress_done INTEGER NOT NULL DEFAULT 0,
    progress_total INTEGER NOT NULL DEFAULT 0,
    started_at REAL NOT NULL,
    finished_at REAL,
    duration REAL,
    files INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    changed_files INTEGER NOT NULL DEFAULT 0,
    commit_id TEXT,
    warnings TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    pid INTEGER,
    failure TEXT,
    boot_id TEXT,
    process_start INTEGER,
    deadline REAL
);
CREATE INDEX IF NOT EXISTS runs_by_host ON runs (host, id);
CREATE INDEX IF NOT EXISTS runs_running ON runs (host) WHERE status='running';
"""

    @staticmethod
    def upgrade_schema(connection: sqlite3.Connection) -> None:
        """Columns added after the first release: the failure kind, and who runs a
        run beyond its pid (system/processes.py); older rows have NULL there and are
        judged by their host's lock instead."""
        columns = columns_of(connection, "runs")
        for column, kind in (
            ("failure", "TEXT"),
            ("boot_id", "TEXT"),
            ("process_start", "INTEGER"),
            ("deadline", "REAL"),
        ):
            if column not in columns:
                connection.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")

    def start_run(self, host: str, trigger: str, actor: str | None = None) -> int:
        """Record a run of ``host`` as 'running' by this process; return its id.

        The record names this process beyond its pid (boot id, start time), and
        this process claims the run until ``finish_run`` or ``release_run``.
        """
        owner = this_process()
        with self._transaction() as connection:
            cursor = connection.execute(
                "INSERT INTO runs (host, trigger, actor, status, stage, started_at, pid,"
                " boot_id, process_start) VALUES (?,?,?,?,'queued',?,?,?,?)",
                (
                    host,
                    trigger,
                    actor,
                    RunStatus.RUNNING.value,
                    self._clock(),
                    owner.pid,
                    owner.boot_id,
                    owner.start_time,
                ),
            )
            run_id = int(cursor.lastrowid or 0)
            # Claimed before the row is committed: no one sees it unclaimed meanwhile.
            claim(self.owner_key, run_id)
            return run_id

    def release_run(self, run_id: int) -> None:
        """This process no longer runs ``run_id`` (a record still 'running' is then interrupted)."""
        release(self.owner_key, run_id)

    def set_deadline(self, run_id: int, seconds: float) -> None:
        """Past ``seconds`` from now, ``run_id`` counts as failed if it is still 'running'."""
        with self._transaction(durable=False) as connection:
            connection.execute(
                "UPDATE runs SET deadline=? WHERE id=?", (self._clock() + seconds, run_id)
            )

    def update_progress(self, run_id: int, stage: str, done: int = 0, total: int = 0) -> None:
        """Note a running run's stage and file counts (not synced: worthless after a cut)."""
        with self._transaction(durable=False) as connection:
            connection.execute(
                "UPDATE runs SET stage=?, progress_done=?, progress_total=? WHERE id=?",
                (stage, done, total, run_id),
            )

    def finish_run(
        self,
        run_id: int,
        *,
        status: RunStatus,
        files: int = 0,
        bytes_total: int = 0,
        changed_files: int = 0,
        commit_id: str | None = None,
        warnings: Sequence[str] = (),
        error: str | None = None,
        failure: str | None = None,
    ) -> Run:
        """Record a run's outcome and return the run; this process lets go of it.

        ``failure`` is "transient" (worth retrying) or "permanent". ValueError
        for ``running`` (a run is finished with its outcome).
        """
        status = RunStatus(status)
        if status is RunStatus.RUNNING:
            raise ValueError(status)
        now = self._clock()
        with self._transaction() as connection:
            connection.execute(
                "UPDATE runs SET status=?, stage='done', finished_at=?, duration=?-started_at,"
                " files=?, bytes=?, changed_files=?, commit_id=?, warnings=?, error=?, failure=?"
                " WHERE id=?",
                (
                    status.value,
                    now,
                    now,
                    files,
                    bytes_total,
                    changed_files,
                    commit_id,
                    json.dumps(list(warnings)),
                    error,
                    failure,
                    run_id,
                ),
            )
        release(self.owner_key, run_id)
        return self.run(run_id)

    def settle_run(
        self,
        run_id: int,
        *,
        error: str | None,
        failure: str | None,
        commit_id: str | None = None,
        warnings: Sequence[str] = (),
    ) -> bool:
        """Record a run nobody runs any more: failed, or ``changed`` with ``commit_id``
        when its commit landed before it stopped. False if it was no longer 'running'.

        Only liveness.py decides that a run is not being run: call it, not this.
        """
        status = RunStatus.CHANGED if commit_id else RunStatus.FAILED
        with self._transaction() as connection:
            cursor = connection.execute(
                "UPDATE runs SET status=?, stage='done', finished_at=?, error=?, failure=?,"
                " commit_id=?, warnings=? WHERE id=? AND status=?",
                (
                    status.value,
                    self._clock(),
                    error,
                    failure,
                    commit_id,
                    json.dumps(list(warnings)),
                    run_id,
                    RunStatus.RUNNING.value,
                ),
            )
            return cursor.rowcount > 0

    def record_recovered_runs(self, runs: Sequence[RecoveredRun]) -> None:
        """Put runs rebuilt from their commits into the log, in one transaction.

        Each keeps its id when that id is free, else it gets a new one. Its
        stage is ``done`` and its start and finish are the commit's time.
        """
        with self._transaction() as connection:
            for run in runs:
                taken = connection.execute("SELECT 1 FROM runs WHERE id=?", (run.run_id,))
                connection.execute(
                    "INSERT INTO runs (id, host, trigger, actor, status, stage, started_at,"
                    " finished_at, duration, changed_files, commit_id, warnings)"
                    " VALUES (?,?,?,?,?,'done',?,?,0,?,?,?)",
                    (
                        None if taken.fetchone() else run.run_id,
                        run.host,
                        run.trigger,
                        run.actor,
                        run.status.value,
                        run.time,
                        run.time,
                        run.changed_files,
                        run.commit_id,
                        json.dumps(list(run.warnings)),
                    ),
                )

    def prune_runs(self, older_than: float) -> int:
        """Forget finished runs that started before ``older_than`` (the run log's retention);
        return how many."""
        with self._transaction() as connection:
            cursor = connection.execute(
                "DELETE FROM runs WHERE started_at < ? AND status <> ?",
                (older_than, RunStatus.RUNNING.value),
            )
            return cursor.rowcount

    def run(self, run_id: int) -> Run:
        """Run ``run_id`` as recorded; NotFound if the log holds no such run."""
        rows = self._query("SELECT * FROM runs WHERE id=?", (run_id,))
        if not rows:
            raise NotFound(f"no run {run_id}")
        return row_to_run(rows[0])


def row_to_run(row: sqlite3.Row) -> Run:
    """A ``runs`` row (``SELECT *``) as a Run."""
    return Run(
        id=row["id"],
        host=row["host"],
        trigger=row["trigger"],
        actor=row["actor"],
        status=RunStatus(row["status"]),
        stage=row["stage"],
        progress_done=row["progress_done"],
        progress_total=row["progress_total"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        duration=row["duration"],
        files=row["files"],
        bytes=row["bytes"],
        changed_files=row["changed_files"],
        commit_id=row["commit_id"],
        warnings=tuple(json.loads(row["warnings"])),
        error=row["error"],
        pid=row["pid"],
        failure=row["failure"],
        boot_id=row["boot_id"],
        process_start=row["process_start"],
        deadline=row["deadline"],
    )
