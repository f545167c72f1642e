"""The run log's questions: pages of runs, each host's newest, counts, recorded commits.

Reads only; a run's life (start, progress, finish, settle) is in runs.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from pvegit.state.db import Database, where
from pvegit.state.runs import SUCCESSES, Run, RunStatus, row_to_run

# The successful statuses as SQL literals (fixed values, not user input).
_SUCCESS_SQL = ", ".join(f"'{status.value}'" for status in sorted(SUCCESSES))


@dataclass(frozen=True)
class RunLogExtent:
    """What the run log holds of one host, in brief (runlog.unrecorded_commits)."""

    commit_ids: frozenset[str]  # every commit a run of the host records
    running_ids: frozenset[int]  # its runs recorded as running
    oldest_start: float | None  # when its oldest run in the log started; None: no run


class RunQueries(Database):
    """Reading the ``runs`` table (its schema is RunTable's)."""

    def runs(
        self,
        host: str | None = None,
        limit: int = 50,
        status: RunStatus | None = None,
        before: int | None = None,
    ) -> list[Run]:
        """Newest first, optionally one host's, one status's, or older than run ``before``."""
        clauses, values = where(
            host=host, status=None if status is None else RunStatus(status).value
        )
        if before is not None:
            clauses += (" AND" if clauses else "WHERE") + " id < ?"
            values.append(before)
        rows = self._query(
            f"SELECT * FROM runs {clauses} ORDER BY id DESC LIMIT ?", (*values, limit)
        )
        return [row_to_run(row) for row in rows]

    def latest_runs(self) -> dict[str, Run]:
        """The newest run of every host, by host name."""
        rows = self._query(
            "SELECT * FROM runs WHERE id IN (SELECT MAX(id) FROM runs GROUP BY host)"
        )
        return {row["host"]: row_to_run(row) for row in rows}

    def latest_successes(self) -> dict[str, Run]:
        """The newest successful (changed, unchanged or partial) run of every host."""
        rows = self._query(
            "SELECT * FROM runs WHERE id IN (SELECT MAX(id) FROM runs WHERE status IN"
            f" ({_SUCCESS_SQL}) GROUP BY host)"
        )
        return {row["host"]: row_to_run(row) for row in rows}

    def last_success(self, host: str) -> Run | None:
        """The newest changed, unchanged or partial run of ``host``, or None."""
        rows = self._query(
            f"SELECT * FROM runs WHERE host=? AND status IN ({_SUCCESS_SQL})"
            " ORDER BY id DESC LIMIT 1",
            (host,),
        )
        return row_to_run(rows[0]) if rows else None

    def recent_runs(self, per_host: int) -> dict[str, list[Run]]:
        """The newest ``per_host`` runs of every host, newest first, in one query."""
        rows = self._query(
            "SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY host ORDER BY id DESC)"
            " AS recent FROM runs) WHERE recent <= ? ORDER BY host, id DESC",
            (per_host,),
        )
        found: dict[str, list[Run]] = {}
        for row in rows:
            found.setdefault(row["host"], []).append(row_to_run(row))
        return found

    def run_counts(self) -> dict[RunStatus, int]:
        """How many runs the log holds, by status (statuses without a run are absent)."""
        rows = self._query("SELECT status, COUNT(*) AS n FROM runs GROUP BY status")
        return {RunStatus(row["status"]): int(row["n"]) for row in rows}

    def running_runs(self, host: str | None = None) -> list[Run]:
        """The runs recorded as 'running', oldest first (liveness.py says which still are)."""
        clauses, values = where(host=host)
        # A literal, not a parameter: so SQLite may use the partial index runs_running.
        clauses += (" AND" if clauses else "WHERE") + f" status='{RunStatus.RUNNING.value}'"
        rows = self._query(f"SELECT * FROM runs {clauses} ORDER BY id", values)
        return [row_to_run(row) for row in rows]

    def run_commits(self, host: str) -> list[str]:
        """The commits ``host``'s runs record, newest run first, each once."""
        rows = self._query(
            "SELECT commit_id FROM runs WHERE host=? AND commit_id IS NOT NULL ORDER BY id DESC",
            (host,),
        )
        return list(dict.fromkeys(str(row["commit_id"]) for row in rows))

    def newest_run_with_commit(self, host: str, commit_id: str) -> int | None:
        """The id of ``host``'s newest run that recorded ``commit_id``, or None."""
        rows = self._query(
            "SELECT MAX(id) AS id FROM runs WHERE host=? AND commit_id=?", (host, commit_id)
        )
        found = rows[0]["id"]
        return None if found is None else int(found)

    def run_log_extent(self, host: str) -> RunLogExtent:
        """The commits, running runs and oldest start the log holds for ``host``."""
        rows = self._query(
            "SELECT id, status, commit_id, started_at FROM runs WHERE host=?", (host,)
        )
        return RunLogExtent(
            commit_ids=frozenset(str(row["commit_id"]) for row in rows if row["commit_id"]),
            running_ids=frozenset(
                int(row["id"]) for row in rows if row["status"] == RunStatus.RUNNING
            ),
            oldest_start=min((float(row["started_at"]) for row in rows), default=None),
        )
