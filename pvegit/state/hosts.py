"""The ``hosts`` table: how to reach each Proxmox node and what to collect from it."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from pvegit.config.host import Host, validate_host_name
from pvegit.errors import ConfigError, NotFound
from pvegit.state.db import Database, columns_of

_LISTS = ("categories", "includes", "excludes")  # stored as JSON arrays
_CHANGEABLE = frozenset(
    {
        "address",
        "port",
        "user",
        "identity",
        *_LISTS,
        "schedule",
        "host_key_type",
        "host_key",
    }
)


class HostTable(Database):
    """The hosts: added, edited, removed and read by name."""

    SCHEMA = """
CREATE TABLE IF NOT EXISTS hosts (
    name TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    port INTEGER NOT NULL DEFAULT 22,
    user TEXT NOT NULL DEFAULT 'root',
    identity TEXT,
    categories TEXT NOT NULL,
    includes TEXT NOT NULL DEFAULT '[]',
    excludes TEXT NOT NULL DEFAULT '[]',
    schedule TEXT,
    host_key_type TEXT,
    host_key TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
"""

    @staticmethod
    def upgrade_schema(connection: sqlite3.Connection) -> None:
        """Added after the first release: how pvegit's key reaches the node (``access``:
        unrestricted, restricted, restricted-user, local; '' until a run found out), and
        the sha256 of the node's allow-list its collector answered (``allow_list``: ''
        inline or not known, ``none`` for no list)."""
        columns = columns_of(connection, "hosts")
        if "access" not in columns:
            connection.execute("ALTER TABLE hosts ADD COLUMN access TEXT NOT NULL DEFAULT ''")
        if "allow_list" not in columns:
            connection.execute("ALTER TABLE hosts ADD COLUMN allow_list TEXT NOT NULL DEFAULT ''")

    def record_access(self, name: str, access: str, allow_list: str | None = None) -> None:
        """Remember how pvegit's key reached ``name`` on its last connection, and the
        node's allow-list then (not an edit: ``updated_at`` stays); a host removed
        meanwhile is left alone."""
        with self._transaction() as connection:
            connection.execute(
                "UPDATE hosts SET access=?, allow_list=? WHERE name=?",
                (access, allow_list or "", name),
            )

    def add_host(self, host: Host) -> Host:
        """Insert a new host and return it as stored; ConfigError if the name is taken
        or not allowed."""
        validate_host_name(host.name)
        now = self._clock()
        with self._transaction() as connection:
            if connection.execute("SELECT 1 FROM hosts WHERE name=?", (host.name,)).fetchone():
                raise ConfigError(f"host {host.name!r} exists already; use 'pvegit host edit'")
            connection.execute(
                "INSERT INTO hosts (name, address, port, user, identity, categories, includes,"
                " excludes, schedule, host_key_type, host_key, created_at, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    host.name,
                    host.address,
                    host.port,
                    host.user,
                    host.identity,
                    json.dumps(list(host.categories)),
                    json.dumps(list(host.includes)),
                    json.dumps(list(host.excludes)),
                    host.schedule,
                    host.host_key_type,
                    host.host_key,
                    now,
                    now,
                ),
            )
        return self.host(host.name)

    def update_host(self, name: str, **changes: Any) -> Host:
        """Change some fields of a host and return it; NotFound if it does not exist,
        ConfigError for a field that cannot be changed (its name, its times)."""
        unknown = set(changes) - _CHANGEABLE
        if unknown:
            raise ConfigError(f"cannot change {', '.join(sorted(unknown))} of a host")
        columns = []
        values: list[Any] = []
        for key, value in changes.items():
            columns.append(f"{key}=?")
            values.append(json.dumps(list(value)) if key in _LISTS else value)
        with self._transaction() as connection:
            cursor = connection.execute(
                f"UPDATE hosts SET {', '.join(columns)}, updated_at=? WHERE name=?",
                (*values, self._clock(), name),
            )
            if cursor.rowcount == 0:
                raise NotFound(f"no host {name!r}; 'pvegit host list' shows the hosts")
        return self.host(name)

    def remove_host(self, name: str) -> None:
        """Forget a host (its repository and runs stay); NotFound if there is none."""
        with self._transaction() as connection:
            cursor = connection.execute("DELETE FROM hosts WHERE name=?", (name,))
            if cursor.rowcount == 0:
                raise NotFound(f"no host {name!r}; 'pvegit host list' shows the hosts")

    def host(self, name: str) -> Host:
        """The host called ``name``; NotFound if there is none."""
        rows = self._query("SELECT * FROM hosts WHERE name=?", (name,))
        if not rows:
            raise NotFound(f"no host {name!r}; 'pvegit host list' shows the hosts")
        return _row_to_host(rows[0])

    def hosts(self) -> list[Host]:
        """Every host, by name."""
        return [_row_to_host(row) for row in self._query("SELECT * FROM hosts ORDER BY name")]


def _row_to_host(row: sqlite3.Row) -> Host:
    return Host(
        name=row["name"],
        address=row["address"],
        port=row["port"],
        user=row["user"],
        identity=row["identity"],
        categories=tuple(json.loads(row["categories"])),
        includes=tuple(json.loads(row["includes"])),
        excludes=tuple(json.loads(row["excludes"])),
        schedule=row["schedule"],
        host_key_type=row["host_key_type"],
        host_key=row["host_key"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        access=row["access"],
        allow_list=row["allow_list"],
    )
