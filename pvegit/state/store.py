"""SQLite state in ``$PVEGIT_HOME/state.db``: the ``Store`` every part of pvegit holds.

Git is the source of truth for configuration content; this database holds
what git cannot: how to reach each host, the log of every run (including the
ones that committed nothing or failed), who may log in and who did what.

``Store`` is composed of one mixin per table, each in its own module with its
dataclasses (hosts.py, runs.py and run_queries.py, users.py, tokens.py,
notify_targets.py, checks.py, audit.py, and the commit index's tables in
index.py), on the core in db.py (connection, tables, transactions, waiting
for a locked database, damage). The names most callers need are re-exported
here.
"""

from __future__ import annotations

from typing import Any

from pvegit.config.host import Host, validate_host_name
from pvegit.state.audit import AUDIT_STATES, AuditEvent, AuditTable
from pvegit.state.checks import CheckTable, Verification
from pvegit.state.hosts import HostTable
from pvegit.state.index import CommitIndexTables
from pvegit.state.notify_targets import NotifyTargetRecord, NotifyTargetTable
from pvegit.state.run_queries import RunQueries
from pvegit.state.runs import Run, RunStatus, RunTable
from pvegit.state.tokens import Token, TokenRecord, TokenTable
from pvegit.state.users import User, UserTable, validate_user_name

__all__ = [
    "AUDIT_STATES",
    "AuditEvent",
    "Host",
    "NotifyTargetRecord",
    "Run",
    "RunStatus",
    "Store",
    "Token",
    "TokenRecord",
    "User",
    "Verification",
    "validate_host_name",
    "validate_user_name",
]


class Store(
    HostTable,
    RunTable,
    RunQueries,
    UserTable,
    TokenTable,
    NotifyTargetTable,
    CheckTable,
    AuditTable,
    CommitIndexTables,
):
    """Access to state.db. Safe to share between threads; one writer at a time.

    Open it with ``Store(path)`` (see ``db.Database``); commands open it with
    ``opening.open_state``, which first makes sure it is not a silent blank.
    """

    def change_marker(self) -> tuple[Any, ...]:
        """Changes whenever a run starts or ends or a host changes (cheap to ask every second)."""
        rows = self._query(
            "SELECT (SELECT MAX(id) FROM runs), (SELECT MAX(finished_at) FROM runs),"
            " (SELECT COUNT(*) FROM hosts), (SELECT MAX(updated_at) FROM hosts)"
        )
        return tuple(rows[0])

    def records_anything(self) -> bool:
        """False for a state that never recorded anything: no host, no run, no audit entry."""
        row = self._query(
            "SELECT EXISTS(SELECT 1 FROM hosts) OR EXISTS(SELECT 1 FROM runs)"
            " OR EXISTS(SELECT 1 FROM audit) AS anything"
        )[0]
        return bool(row["anything"])
