"""The ``notify_targets`` table: notification targets made in the web UI.

Each holds the settings of one ``[[notify]]`` table of pvegit.toml, checked by
the caller (notify.all_targets reads them back through config.check_target).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pvegit.errors import ConfigError, NotFound
from pvegit.state.db import Database


@dataclass(frozen=True)
class NotifyTargetRecord:
    """A stored target: its name, its ``[[notify]]`` settings (with the name) and birth."""

    name: str
    settings: Mapping[str, Any]
    created_at: float


class NotifyTargetTable(Database):
    """Notification targets made in the web UI: added, removed, listed."""

    SCHEMA = """
CREATE TABLE IF NOT EXISTS notify_targets (
    name TEXT PRIMARY KEY,
    settings TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""

    def add_notify_target(self, name: str, settings: Mapping[str, Any]) -> None:
        """Store a target (a [[notify]] table, checked by the caller); ConfigError if the
        name is taken."""
        with self._transaction() as connection:
            if connection.execute("SELECT 1 FROM notify_targets WHERE name=?", (name,)).fetchone():
                raise ConfigError(f"a notification target named {name!r} exists already")
            connection.execute(
                "INSERT INTO notify_targets (name, settings, created_at) VALUES (?,?,?)",
                (name, json.dumps(dict(settings)), self._clock()),
            )

    def remove_notify_target(self, name: str) -> None:
        """Delete a target made in the web UI; NotFound if there is none of that name."""
        with self._transaction() as connection:
            cursor = connection.execute("DELETE FROM notify_targets WHERE name=?", (name,))
            if cursor.rowcount == 0:
                raise NotFound(f"no notification target {name!r} made in the web UI")

    def notify_targets(self) -> list[NotifyTargetRecord]:
        """Every target made in the web UI, by name."""
        rows = self._query("SELECT * FROM notify_targets ORDER BY name")
        return [
            NotifyTargetRecord(
                name=str(row["name"]),
                settings=json.loads(row["settings"]),
                created_at=float(row["created_at"]),
            )
            for row in rows
        ]
