"""Rebuild /etc/pve from a dead node's ``config.db``, without writing to its disk.

When a node's disk is mounted elsewhere, pmxcfs is not running there and
/etc/pve is an empty directory; the truth is the SQLite database pmxcfs keeps
in ``/var/lib/pve-cluster/config.db`` (table ``tree``: inode, parent, version,
writer, mtime, type, name, data; type 4 a directory, 8 a file; inode 0 the
``__version__`` entry with the newest change's version and time; parent 0 the
root).

pmxcfs keeps the database in WAL mode: on a node that died, the newest writes
(often everything since pmxcfs last started) are only in ``config.db-wal``.
Opening the file ``immutable=1`` ignores the WAL, and opening it normally would
write to the rescued disk (a -shm file, a checkpoint) or fail on a read-only
one. So the database and its WAL are copied into a private temporary directory
and the copy is opened there: SQLite replays the WAL into the copy, and the
rescued disk is only ever read.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pvegit.config.categories import PMXCFS_LINKS
from pvegit.node.tarstream import Entry, check_member_name

CONFIG_DB = "var/lib/pve-cluster/config.db"
_DIRECTORY, _FILE = 4, 8
# pmxcfs's own limit is 128 MiB; a bigger file on a rescued disk is not its database.
_MAX_DATABASE_BYTES = 512 * 1024 * 1024


class ConfigDbError(Exception):
    """config.db is missing or unreadable (corrupt, not pmxcfs's)."""


@dataclass
class RescuedTree:
    """/etc/pve as a config.db holds it, and how it was read."""

    entries: dict[str, Entry]
    problems: list[str] = field(default_factory=list)
    version: int = 0  # pmxcfs's version counter at the newest change
    changed_at: int = 0  # the newest change's time (seconds since the epoch)
    with_wal: bool = False  # a config.db-wal was there and was read with it

    def describe(self) -> str:
        """One line for the run's output: which version was found, read how."""
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.changed_at))
        how = (
            "config.db and its write-ahead log (config.db-wal) copied to a private "
            "temporary directory and read there"
            if self.with_wal
            else "config.db copied to a private temporary directory and read there (no WAL)"
        )
        return (
            f"rescue: /etc/pve rebuilt from config.db version {self.version} "
            f"(its newest change, {when}); {how}; nothing was written to the rescued disk"
        )


def _copy_regular(source: Path, target: Path) -> bool:
    """Copy ``source`` if it is a regular file (never through a link); False if absent."""
    try:
        handle = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError as err:
        raise ConfigDbError(f"cannot open {source}: {err.strerror}") from err
    with os.fdopen(handle, "rb") as reading:
        info = os.fstat(reading.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ConfigDbError(f"{source} is not a regular file")
        if info.st_size > _MAX_DATABASE_BYTES:
            raise ConfigDbError(f"{source} is {info.st_size} bytes: not a pmxcfs database")
        with open(target, "xb") as writing:
            shutil.copyfileobj(reading, writing)
    return True


def read_config_db(path: Path, node_name: str) -> RescuedTree:
    """The /etc/pve tree stored in ``path`` (with its WAL), read from a private copy."""
    if path.is_symlink() or not path.is_file():
        raise ConfigDbError(f"{path} does not exist, and pmxcfs does not serve /etc/pve there")
    with tempfile.TemporaryDirectory(prefix="pvegit-rescue-") as private:
        copy = Path(private) / "config.db"
        _copy_regular(path, copy)
        with_wal = _copy_regular(path.with_name("config.db-wal"), copy.with_name("config.db-wal"))
        try:
            connection = sqlite3.connect(f"file:{copy}?mode=rw", uri=True)
        except sqlite3.Error as err:
            raise ConfigDbError(f"cannot open {path}: {err}") from err
        try:
            rows = connection.execute(
                "SELECT inode, parent, version, mtime, type, name, data FROM tree ORDER BY inode"
            ).fetchall()
        except sqlite3.Error as err:
            raise ConfigDbError(f"{path} is not a readable pmxcfs database: {err}") from err
        finally:
            connection.close()
    tree = _build_tree(rows, node_name)
    tree.with_wal = with_wal
    return tree


def _build_tree(rows: list[tuple[object, ...]], node_name: str) -> RescuedTree:
    nodes = {inode: (parent, kind, name, data) for inode, parent, _, _, kind, name, data in rows}
    tree = RescuedTree({})
    for inode, _, version, mtime, _, name, _ in rows:
        if inode == 0 and name == "__version__":
            tree.version, tree.changed_at = int(version), int(mtime)  # type: ignore[call-overload]
    entries, problems = tree.entries, tree.problems
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
            if isinstance(data, str):
                content = data.encode("utf-8", "surrogateescape")
            else:
                content = bytes(data) if isinstance(data, bytes | memoryview) else b""
            entries[path_in_tree] = Entry(path_in_tree, "file", content, 0o640, "root", "www-data")
        else:
            problems.append(f"config.db: {relative!r} has unknown type {kind}; skipped")
    entries["etc/pve"] = Entry("etc/pve", "dir", b"", 0o755, "root", "www-data")
    # pmxcfs's built-in links, as it shows them on this node.
    for link, inside in PMXCFS_LINKS.items():
        target = f"nodes/{node_name}/{inside}".rstrip("/")
        entries[link] = Entry(link, "symlink", target.encode(), 0o777, "root", "www-data")
    return tree
