"""Rebuild /etc/pve from a dead node's ``config.db``, read-only.

When a node's disk is mounted elsewhere, pmxcfs is not running there and
/etc/pve is an empty directory; the truth is the SQLite database pmxcfs keeps
in ``/var/lib/pve-cluster/config.db`` (table ``tree``: inode, parent, version,
writer, mtime, type, name, data; type 4 a directory, 8 a file; inode 0 the
version entry; parent 0 the root). The database is opened immutable and
read-only, so nothing is ever written to the rescued disk (no -wal, no -shm).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pvegit.tarstream import Entry, check_member_name

CONFIG_DB = "var/lib/pve-cluster/config.db"
_DIRECTORY, _FILE = 4, 8
BUILTIN_LINKS = ("local", "qemu-server", "lxc", "openvz")


class ConfigDbError(Exception):
    """config.db is missing or unreadable (corrupt, not pmxcfs's)."""


def read_config_db(path: Path, node_name: str) -> tuple[dict[str, Entry], list[str]]:
    """The /etc/pve tree stored in ``path`` as entries, and what was wrong with it."""
    if not path.is_file():
        raise ConfigDbError(f"{path} does not exist, and pmxcfs does not serve /etc/pve there")
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error as err:
        raise ConfigDbError(f"cannot open {path}: {err}") from err
    try:
        rows = connection.execute(
            "SELECT inode, parent, type, name, data FROM tree ORDER BY inode"
        ).fetchall()
    except sqlite3.Error as err:
        raise ConfigDbError(f"{path} is not a readable pmxcfs database: {err}") from err
    finally:
        connection.close()
    nodes = {inode: (parent, kind, name, data) for inode, parent, kind, name, data in rows}
    entries: dict[str, Entry] = {}
    problems: list[str] = []
    for inode, (_, kind, _, data) in nodes.items():
        if inode == 0:
            continue  # the version entry
        parts: list[str] = []
        cursor, seen = inode, set()
        while cursor != 0:
            if cursor in seen or cursor not in nodes:
                parts = []
                break
            seen.add(cursor)
            parent, _, name, _ = nodes[cursor]
            parts.append(str(name))
            cursor = parent
        if not parts:
            problems.append(f"config.db: inode {inode} is not connected to the root; skipped")
            continue
        relative = "/".join(reversed(parts))
        try:
            path_in_tree = check_member_name(f"etc/pve/{relative}")
        except ValueError as why:
            problems.append(f"config.db: {relative!r} refused: {why}")
            continue
        if kind == _DIRECTORY:
            entries[path_in_tree] = Entry(path_in_tree, "dir", b"", 0o750, "root", "www-data")
        elif kind == _FILE:
            content = bytes(data) if data is not None else b""
            entries[path_in_tree] = Entry(path_in_tree, "file", content, 0o640, "root", "www-data")
        else:
            problems.append(f"config.db: {relative!r} has unknown type {kind}; skipped")
    entries["etc/pve"] = Entry("etc/pve", "dir", b"", 0o755, "root", "www-data")
    targets = {
        "local": f"nodes/{node_name}",
        "qemu-server": f"nodes/{node_name}/qemu-server",
        "lxc": f"nodes/{node_name}/lxc",
        "openvz": f"nodes/{node_name}/openvz",
    }
    for link, target in targets.items():
        entries[f"etc/pve/{link}"] = Entry(
            f"etc/pve/{link}", "symlink", target.encode(), 0o777, "root", "www-data"
        )
    return entries, problems
