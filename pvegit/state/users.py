"""The ``users`` table: web users, their roles and what ends their sessions.

There is always an admin: the first user is one, and the last one can be
neither demoted nor removed.
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass

from pvegit.config.names import is_plain_name
from pvegit.config.roles import ADMIN, ROLES, VIEWER, check_role
from pvegit.errors import ConfigError, NotFound
from pvegit.state.db import Database, columns_of


def validate_user_name(name: str) -> str:
    """Return ``name`` if it may name a web user, else raise ConfigError.

    User names appear in URLs and the audit log: keep them plain.
    """
    if not is_plain_name(name):
        raise ConfigError(
            f"user name {name!r} is not allowed: use letters, digits, '.', '-' and '_' "
            "(at most 64, starting with a letter or digit)"
        )
    return name


@dataclass(frozen=True)
class User:
    """A web user: its role, and what its session cookies must carry.

    ``incarnation`` is random, made with the account and never changed: a
    cookie of a removed user does not fit an account made later under the same
    name. ``sessions_epoch`` moves on to end the account's sessions.
    """

    name: str
    role: str
    sessions_epoch: int
    password_hash: str
    created_at: float
    incarnation: str


def _no_user(name: str) -> NotFound:
    return NotFound(f"no user {name!r}; 'pvegit user list' shows the users")


class UserTable(Database):
    """Web users: added, their password and role changed, logged out, removed."""

    SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
"""

    @staticmethod
    def upgrade_schema(connection: sqlite3.Connection) -> None:
        """Roles, session epochs and incarnations. Users made before roles existed
        keep what they could do: every user was an admin."""
        columns = columns_of(connection, "users")
        for column, kind in (
            ("role", "TEXT NOT NULL DEFAULT 'admin'"),
            ("sessions_epoch", "INTEGER NOT NULL DEFAULT 0"),
            ("incarnation", "TEXT NOT NULL DEFAULT ''"),
        ):
            if column not in columns:
                connection.execute(f"ALTER TABLE users ADD COLUMN {column} {kind}")
        # Users made before incarnations existed get one each (their sessions
        # end: a cookie without it is refused); also those an interrupted
        # migration left without one.
        unset = connection.execute("SELECT name FROM users WHERE incarnation=''")
        for (name,) in unset.fetchall():
            connection.execute(
                "UPDATE users SET incarnation=? WHERE name=?", (_new_incarnation(), name)
            )

    def add_user(self, name: str, password_hash: str, role: str | None = None) -> str:
        """Insert a web user and return its role; raise ConfigError if the name is taken.

        The first user is an admin (someone must be able to manage the rest);
        later ones are viewers unless ``role`` says otherwise.
        """
        validate_user_name(name)
        now = self._clock()
        with self._transaction() as connection:
            if connection.execute("SELECT 1 FROM users WHERE name=?", (name,)).fetchone():
                raise ConfigError(f"user {name!r} exists already; use 'pvegit user passwd'")
            first = connection.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 0
            chosen = check_role(role) if role is not None else (ADMIN if first else VIEWER)
            if first and chosen != ADMIN:
                raise ConfigError(
                    f"the first user must be an admin (someone has to manage the others): "
                    f"add {name!r} without --role, or with --role admin"
                )
            connection.execute(
                "INSERT INTO users (name, password_hash, role, created_at, updated_at,"
                " incarnation) VALUES (?,?,?,?,?,?)",
                (name, password_hash, chosen, now, now, _new_incarnation()),
            )
        return chosen

    def set_password(self, name: str, password_hash: str) -> None:
        """Change a password; every session of the user ends with it. NotFound if no user."""
        with self._transaction() as connection:
            cursor = connection.execute(
                "UPDATE users SET password_hash=?, sessions_epoch=sessions_epoch+1, updated_at=?"
                " WHERE name=?",
                (password_hash, self._clock(), name),
            )
            if cursor.rowcount == 0:
                raise _no_user(name)

    def set_role(self, name: str, role: str) -> str:
        """Give a user another role; return the previous one.

        A lower role ends the user's sessions at once; the last admin cannot be
        demoted (ConfigError). NotFound if there is no such user.
        """
        check_role(role)
        with self._transaction() as connection:
            previous = _user_role(connection, name)
            if previous == ADMIN and role != ADMIN:
                _keep_an_admin(connection, name, "demote")
            downgrade = ROLES.index(role) < ROLES.index(previous)
            connection.execute(
                "UPDATE users SET role=?, sessions_epoch=sessions_epoch+?, updated_at=?"
                " WHERE name=?",
                (role, 1 if downgrade else 0, self._clock(), name),
            )
        return previous

    def end_sessions(self, name: str) -> None:
        """Log the user out everywhere: every session cookie issued so far stops working."""
        with self._transaction() as connection:
            cursor = connection.execute(
                "UPDATE users SET sessions_epoch=sessions_epoch+1 WHERE name=?", (name,)
            )
            if cursor.rowcount == 0:
                raise _no_user(name)

    def remove_user(self, name: str) -> None:
        """Delete a user (its sessions end with it, also if the name is added again: the
        new account has another incarnation); the last admin stays (ConfigError)."""
        with self._transaction() as connection:
            if _user_role(connection, name) == ADMIN:
                _keep_an_admin(connection, name, "remove")
            connection.execute("DELETE FROM users WHERE name=?", (name,))

    def password_hash(self, name: str) -> str | None:
        """The stored hash of ``name``'s password, or None if there is no such user."""
        rows = self._query("SELECT password_hash FROM users WHERE name=?", (name,))
        return str(rows[0]["password_hash"]) if rows else None

    def user(self, name: str) -> User | None:
        """The user called ``name``, or None."""
        rows = self._query("SELECT * FROM users WHERE name=?", (name,))
        return _row_to_user(rows[0]) if rows else None

    def users(self) -> list[User]:
        """Every user, by name."""
        return [_row_to_user(row) for row in self._query("SELECT * FROM users ORDER BY name")]


def _user_role(connection: sqlite3.Connection, name: str) -> str:
    row = connection.execute("SELECT role FROM users WHERE name=?", (name,)).fetchone()
    if row is None:
        raise _no_user(name)
    return str(row[0])


def _keep_an_admin(connection: sqlite3.Connection, name: str, what: str) -> None:
    others = connection.execute(
        "SELECT COUNT(*) FROM users WHERE role=? AND name<>?", (ADMIN, name)
    ).fetchone()[0]
    if others == 0:
        raise ConfigError(
            f"cannot {what} {name!r}: it is the last admin. Make another user an admin "
            "first (pvegit user role NAME admin)"
        )


def _row_to_user(row: sqlite3.Row) -> User:
    return User(
        name=row["name"],
        role=row["role"],
        sessions_epoch=row["sessions_epoch"],
        password_hash=row["password_hash"],
        created_at=row["created_at"],
        incarnation=row["incarnation"],
    )


def _new_incarnation() -> str:
    """A user account's incarnation: 128 random bits, never the same twice."""
    return secrets.token_hex(16)
