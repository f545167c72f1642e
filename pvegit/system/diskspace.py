"""The disk holding $PVEGIT_HOME: how full it is, and what a full disk looks like.

pvegit refuses to start a snapshot when less than a reserve is free, so the
state database always has room to record why; it warns (run warnings, the
dashboard, /metrics, an alert from serve) well before that. When the disk
fills anyway in the middle of a run, the errors git and SQLite raise are
turned into one message that says what happened and what to do.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

DEFAULT_RESERVE = 64 * 1024 * 1024  # bytes kept free: below this, runs are refused
DEFAULT_WARN_PERCENT = 10.0  # warn when less than this share of the disk is free

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


@dataclass(frozen=True)
class Space:
    path: Path
    total: int
    free: int  # available to pvegit (not counting blocks reserved for root)

    @property
    def free_percent(self) -> float:
        return 100.0 * self.free / self.total if self.total else 0.0


def disk_space(path: Path) -> Space:
    """Size and free space of the filesystem holding ``path``."""
    stats = os.statvfs(path)
    return Space(path, stats.f_blocks * stats.f_frsize, stats.f_bavail * stats.f_frsize)


def human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def low_space_warning(space: Space, warn_percent: float = DEFAULT_WARN_PERCENT) -> str | None:
    """A warning when the disk is getting full, or None."""
    if space.free_percent >= warn_percent:
        return None
    return (
        f"the disk holding {space.path} has only {human(space.free)} free "
        f"({space.free_percent:.1f} % of {human(space.total)}): free some space or grow it"
    )


def is_disk_full(error: BaseException) -> bool:
    """True when ``error`` (or what caused it) is the disk running out of space."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _FULL_ERRNOS:
            return True
        if isinstance(current, sqlite3.Error) and "full" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def full_message(path: Path) -> str:
    try:
        space = disk_space(path)
        state = f"{human(space.free)} free of {human(space.total)}"
    except OSError:
        state = "free space unknown"
    return (
        f"the disk holding {path} is full ({state}): nothing already stored was changed; "
        "free some space (old exports, `pvegit gc` to compact the repositories) and run again"
    )
