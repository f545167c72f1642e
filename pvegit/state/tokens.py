"""The ``tokens`` table: API tokens, stored as hashes, with their roles."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from pvegit.config.roles import VIEWER, check_role
from pvegit.errors import ConfigError, NotFound
from pvegit.state.db import Database, columns_of


@dataclass(frozen=True)
class Token:
    """An active API token: its name (``token:NAME`` in the audit log) and role."""

    name: str
    role: str


@dataclass(frozen=True)
class TokenRecord:
    """An API token as listed, active or revoked (never its secret or hash)."""

    name: str
    role: str
    created_at: float
    created_by: str | None
    revoked_at: float | None  # None while the token is active
    last_used: float | None  # None: never used

    @property
    def active(self) -> bool:
        """Not revoked."""
        return self.revoked_at is None


class TokenTable(Database):
    """API tokens: made, revoked, looked up by hash, listed."""

    SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    created_by TEXT,
    revoked_at REAL,
    last_used REAL
);
"""

    @staticmethod
    def upgrade_schema(connection: sqlite3.Connection) -> None:
        """Roles: tokens made before roles existed could also clone, so they are admins."""
        if "role" not in columns_of(connection, "tokens"):
            connection.execute("ALTER TABLE tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'admin'")

    def add_token(
        self, name: str, token_hash: str, created_by: str | None, role: str = VIEWER
    ) -> None:
        """Store a new API token's hash with its role; ConfigError if the name is taken."""
        check_role(role)
        with self._transaction() as connection:
            if connection.execute("SELECT 1 FROM tokens WHERE name=?", (name,)).fetchone():
                raise ConfigError(
                    f"a token named {name!r} exists already; revoke it or pick another name"
                )
            connection.execute(
                "INSERT INTO tokens (name, token_hash, created_at, created_by, role)"
                " VALUES (?,?,?,?,?)",
                (name, token_hash, self._clock(), created_by, role),
            )

    def revoke_token(self, name: str) -> None:
        """Revoke an active token (it stays listed); NotFound if there is no active one."""
        with self._transaction() as connection:
            cursor = connection.execute(
                "UPDATE tokens SET revoked_at=? WHERE name=? AND revoked_at IS NULL",
                (self._clock(), name),
            )
            if cursor.rowcount == 0:
                raise NotFound(f"no active token {name!r}; 'pvegit token list' shows them")

    def active_token(self, token_hash: str) -> Token | None:
        """The active token with this hash (and note its use), or None."""
        rows = self._query(
            "SELECT name, role FROM tokens WHERE token_hash=? AND revoked_at IS NULL",
            (token_hash,),
        )
        if not rows:
            return None
        with self._transaction(durable=False) as connection:
            connection.execute(
                "UPDATE tokens SET last_used=? WHERE token_hash=?", (self._clock(), token_hash)
            )
        return Token(str(rows[0]["name"]), str(rows[0]["role"]))

    def tokens(self) -> list[TokenRecord]:
        """Every token, active or revoked, by name."""
        rows = self._query(
            "SELECT name, role, created_at, created_by, revoked_at, last_used FROM tokens"
            " ORDER BY name"
        )
        return [
            TokenRecord(
                name=str(row["name"]),
                role=str(row["role"]),
                created_at=float(row["created_at"]),
                created_by=row["created_by"],
                revoked_at=row["revoked_at"],
                last_used=row["last_used"],
            )
            for row in rows
        ]
