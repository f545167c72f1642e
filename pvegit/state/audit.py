"""The ``audit`` table: who did what, from the CLI, the web UI, the API and git.

Most entries are written once, after the fact. An action that writes to a
node (a restore) is written before it acts, ``started``, and finished after
with its outcome, so an action cut short still leaves its trace
(restorelog.py).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pvegit.errors import ConfigError, NotFound
from pvegit.state.db import Database, columns_of, where

# An audit entry's state: None for a one-shot entry (complete when written); an
# action written before it acts (a restore) is 'started', then one of the others.
AUDIT_STATES = ("started", "completed", "failed", "refused", "interrupted")


@dataclass(frozen=True)
class AuditEvent:
    """One audit entry. ``detail`` holds the action's facts (JSON values)."""

    id: int
    at: float
    actor: str
    action: str
    host: str | None
    detail: Mapping[str, Any]
    state: str | None  # see AUDIT_STATES; restorelog shows 'started' as 'running'

    def with_state(self, state: str | None) -> AuditEvent:
        """The same entry shown with another state."""
        return replace(self, state=state)

    def to_json(self) -> dict[str, Any]:
        """The entry as ``pvegit audit --json`` prints it."""
        return {
            "id": self.id,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "host": self.host,
            "detail": dict(self.detail),
            "state": self.state,
        }


class AuditTable(Database):
    """Audit entries: written (synced before returning), finished, read newest first."""

    SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    host TEXT,
    detail TEXT NOT NULL DEFAULT '{}',
    state TEXT
);
"""

    @staticmethod
    def upgrade_schema(connection: sqlite3.Connection) -> None:
        """The state column: audit entries written before an action and completed after."""
        if "state" not in columns_of(connection, "audit"):
            connection.execute("ALTER TABLE audit ADD COLUMN state TEXT")

    def audit(self, actor: str, action: str, host: str | None = None, **detail: Any) -> int:
        """Record who did what (synced before it returns); returns the entry's id."""
        return self._insert_audit(actor, action, host, None, detail)

    def start_audit(self, actor: str, action: str, host: str | None = None, **detail: Any) -> int:
        """Record an action before it acts (state 'started', synced); returns the entry's id.

        Finish it with ``update_audit``. An entry left 'started' by a process that
        died is closed with ``interrupt_audits``.
        """
        return self._insert_audit(actor, action, host, "started", detail)

    def _insert_audit(
        self, actor: str, action: str, host: str | None, state: str | None, detail: dict[str, Any]
    ) -> int:
        with self._transaction() as connection:
            cursor = connection.execute(
                "INSERT INTO audit (at, actor, action, host, detail, state) VALUES (?,?,?,?,?,?)",
                (self._clock(), actor, action, host, json.dumps(detail, sort_keys=True), state),
            )
            return int(cursor.lastrowid or 0)

    def update_audit(self, entry_id: int, state: str | None = None, **detail: Any) -> None:
        """Add ``detail`` to a started entry (synced); ``state`` finishes it.

        Raises NotFound for an unknown entry, ConfigError for an unknown state.
        """
        if state is not None and state not in AUDIT_STATES:
            raise ConfigError(f"unknown audit state {state!r}")
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT detail, state FROM audit WHERE id=?", (entry_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"no audit entry {entry_id}")
            merged = {**json.loads(row["detail"]), **detail}
            connection.execute(
                "UPDATE audit SET detail=?, state=? WHERE id=?",
                (json.dumps(merged, sort_keys=True), state or row["state"], entry_id),
            )

    def started_audits(self, action: str) -> list[AuditEvent]:
        """Entries of ``action`` still 'started': running now, or left by a process that died."""
        rows = self._query(
            "SELECT * FROM audit WHERE action=? AND state='started' ORDER BY id", (action,)
        )
        return [_row_to_event(row) for row in rows]

    def interrupt_audits(self, action: str, host: str) -> int:
        """Mark ``host``'s entries of ``action`` still 'started' as interrupted.

        Call only while holding the lock that the action holds while it runs:
        none of them can then be live. Returns how many were marked.
        """
        with self._transaction() as connection:
            cursor = connection.execute(
                "UPDATE audit SET state='interrupted'"
                " WHERE action=? AND host=? AND state='started'",
                (action, host),
            )
            return cursor.rowcount

    def audit_events(
        self, limit: int = 100, host: str | None = None, action: str | None = None
    ) -> list[AuditEvent]:
        """The newest ``limit`` entries, newest first, optionally one host's or one action's."""
        clauses, values = where(host=host, action=action)
        rows = self._query(
            f"SELECT * FROM audit {clauses} ORDER BY id DESC LIMIT ?", (*values, limit)
        )
        return [_row_to_event(row) for row in rows]

    def audit_actions(self, limit: int = 1000) -> list[str]:
        """The actions among the newest ``limit`` entries, sorted (the audit page's filter)."""
        rows = self._query(
            "SELECT DISTINCT action FROM (SELECT action FROM audit ORDER BY id DESC LIMIT ?)"
            " ORDER BY action",
            (limit,),
        )
        return [str(row["action"]) for row in rows]


def _row_to_event(row: sqlite3.Row) -> AuditEvent:
    return AuditEvent(
        id=int(row["id"]),
        at=float(row["at"]),
        actor=str(row["actor"]),
        action=str(row["action"]),
        host=row["host"],
        detail=json.loads(row["detail"]),
        state=row["state"],
    )
