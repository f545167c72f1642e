"""The ``verifications`` and ``alerts`` tables: what was last found and last alerted.

A verification is the outcome of the newest ``pvegit verify`` of a host; an
alert state remembers what was last notified for a host (or for the storage),
so a failing host is reported once and its recovery once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from pvegit.state.db import Database


@dataclass(frozen=True)
class Verification:
    """The newest ``pvegit verify`` of one host."""

    host: str
    at: float
    problems: tuple[str, ...]  # empty when it found nothing

    @property
    def ok(self) -> bool:
        """It found no problem."""
        return not self.problems


class CheckTable(Database):
    """Verification outcomes and alert states, one row per host at most."""

    SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    host TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    since REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS verifications (
    host TEXT PRIMARY KEY,
    at REAL NOT NULL,
    ok INTEGER NOT NULL,
    problems TEXT NOT NULL
);
"""

    def record_verification(self, host: str, problems: Sequence[str]) -> None:
        """The outcome of the newest `pvegit verify` of ``host`` (replaces the previous one)."""
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO verifications (host, at, ok, problems) VALUES (?,?,?,?)"
                " ON CONFLICT(host) DO UPDATE SET at=excluded.at, ok=excluded.ok,"
                " problems=excluded.problems",
                (host, self._clock(), 0 if problems else 1, json.dumps(list(problems))),
            )

    def verifications(self) -> dict[str, Verification]:
        """The newest verification of every host verified so far, by host name."""
        rows = self._query("SELECT host, at, problems FROM verifications")
        return {
            str(row["host"]): Verification(
                host=str(row["host"]),
                at=float(row["at"]),
                problems=tuple(json.loads(row["problems"])),
            )
            for row in rows
        }

    def alert_state(self, host: str) -> str | None:
        """What was last alerted for ``host``: "failing", "stale" or None."""
        rows = self._query("SELECT state FROM alerts WHERE host=?", (host,))
        return str(rows[0]["state"]) if rows else None

    def set_alert_state(self, host: str, state: str | None) -> None:
        """Remember what was alerted for ``host`` (None: back to normal, nothing alerted)."""
        with self._transaction() as connection:
            if state is None:
                connection.execute("DELETE FROM alerts WHERE host=?", (host,))
            else:
                connection.execute(
                    "INSERT INTO alerts (host, state, since) VALUES (?,?,?) ON CONFLICT(host)"
                    " DO UPDATE SET state=excluded.state, since=excluded.since",
                    (host, state, self._clock()),
                )
