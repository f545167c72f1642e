"""The ``hosts`` table: how to reach each Proxmox node and what to collect from it."""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from typing import Any

from pvegit.errors import ConfigError, NotFound
from pvegit.state.db import Database

_HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
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


def validate_host_name(name: str) -> str:
    """Return ``name`` if it may name a host, else raise ConfigError.

    Host names become repository names and URL parts: keep them plain.
    """
    if not _HOST_NAME.match(name) or name.endswith((".git", ".lock")) or ".." in name:
        raise ConfigError(
            f"host name {name!r} is not allowed: use letters, digits, '.', '_' and '-' "
            "(at most 63, starting with a letter or digit), e.g. the node's name 'pve1'"
        )
    return name


@dataclass(frozen=True)
class Host:
    """How to reach one Proxmox node and what to collect from it."""

    name: str
    address: str
    port: int = 22
    user: str = "root"
    identity: str | None = None
    categories: tuple[str, ...] = ()
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    schedule: str | None = None
    host_key_type: str | None = None
    host_key: str | None = None  # base64 of the key blob, as in known_hosts
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def is_local(self) -> bool:
        """True for this machine's own /etc/pve (``local`` or ``local:PATH``), no SSH."""
        return self.address == "local" or self.address.startswith("local:")

    def to_json(self) -> dict[str, Any]:
        """The host as the API shows it: the pinned key is only said to be there."""
        return {
            "name": self.name,
            "address": self.address,
            "port": self.port,
            "user": self.user,
            "identity": self.identity,
            "categories": list(self.categories),
            "includes": list(self.includes),
            "excludes": list(self.excludes),
            "schedule": self.schedule,
            "host_key_type": self.host_key_type,
            "host_key_pinned": self.host_key is not None,
        }


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
    )
