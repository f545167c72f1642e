"""The values the git layer hands out: commits, changes, tree entries, modes.

Bytes and dulwich types stay inside pvegit.git; callers get these small
frozen dataclasses and plain strings. Paths are ``str`` with bytes that are
not UTF-8 kept as surrogates (``encode_path``/``decode_path`` round-trip
them), so a name from a node survives any snapshot exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

FILE_MODE = 0o100644
EXECUTABLE_MODE = 0o100755
SYMLINK_MODE = 0o120000
TREE_MODE = 0o040000

_TRAILER = re.compile(r"^([A-Za-z][A-Za-z0-9-]*): (.*)$")


class ChangeKind(StrEnum):
    """How a path changed: the one vocabulary of a change, everywhere.

    The values are the words every face prints (``pvegit log``'s list, the
    commit message, the pages, the API's ``change`` field) and what the commit
    index stores in ``path_index.change``: never rename a value.
    """

    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"
    # Only owner, group or mode changed: git sees .pvegit/metadata change, the
    # snapshot names the path itself (its commit message lists it so).
    OWNER_MODE = "owner/mode"


@dataclass(frozen=True)
class Commit:
    """One commit of a host's history."""

    commit_id: str
    parents: tuple[str, ...]
    author: str
    time: int  # seconds since the epoch, UTC
    message: str

    @property
    def short_id(self) -> str:
        return self.commit_id[:10]

    @property
    def subject(self) -> str:
        return self.message.split("\n", 1)[0]

    def trailers(self) -> dict[str, str]:
        """Git trailers (``Key: value`` lines of the last paragraph)."""
        paragraphs = self.message.strip().split("\n\n")
        found: dict[str, str] = {}
        if len(paragraphs) < 2:
            return found
        for line in paragraphs[-1].splitlines():
            match = _TRAILER.match(line)
            if match:
                found[match.group(1)] = match.group(2)
        return found

    @property
    def run_id(self) -> int | None:
        """The run that made this commit (its ``Run-Id`` trailer), or None."""
        value = self.trailers().get("Run-Id", "")
        return int(value) if value.isdecimal() else None


@dataclass(frozen=True)
class FileChange:
    """One path that differs between two trees (ids and modes None on the missing side)."""

    path: str
    change: ChangeKind  # ADDED, MODIFIED or DELETED (git sees no OWNER_MODE)
    old_mode: int | None
    new_mode: int | None
    old_id: str | None
    new_id: str | None


@dataclass(frozen=True)
class DirectoryEntry:
    """One entry of a directory listing."""

    name: str
    path: str
    mode: int
    object_id: str


@dataclass(frozen=True)
class TreeEntry:
    """One file or symlink of a snapshot tree."""

    path: str
    mode: int
    blob_id: str


def encode_path(path: str) -> bytes:
    """A tree path as git stores it (surrogates back to the node's bytes)."""
    return path.encode("utf-8", "surrogateescape")


def decode_path(raw: bytes) -> str:
    """A path as git stores it, as ``str`` (bytes that are not UTF-8 as surrogates)."""
    return raw.decode("utf-8", "surrogateescape")
