"""Making writes survive a power cut, not only a killed process.

A rename is atomic for other processes at once, but on disk only once the
directory holding it is synced; file data only once the file is. So a new
file is written, synced, renamed into place, and its directory synced,
before anything that points to it is written (see docs/reliability.md).
"""

from __future__ import annotations

import os
from pathlib import Path


def sync_file(path: Path) -> None:
    """Flush ``path``'s data to the disk (any descriptor of the file will do)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def sync_directory(path: Path) -> None:
    """Flush ``path``'s entries (files created, renamed or removed in it) to the disk."""
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_synced(path: Path, content: bytes) -> None:
    """Write a small file whole: a temporary file, synced, renamed, its directory synced."""
    temporary = path.with_name(f".{path.name}.pvegit-tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    sync_directory(path.parent)


def move_aside(root: Path, file: Path, aside: Path) -> Path:
    """Move ``file`` (inside ``root``) to its relative place under ``aside``; return where.

    Never overwrites: a name already taken gets ``.2``, ``.3``, ... Both
    directories are synced, so the move survives a power cut.
    """
    target = aside / file.relative_to(root)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    number = 1
    while target.exists():
        number += 1
        target = target.with_name(f"{file.name}.{number}")
    os.rename(file, target)
    sync_directory(target.parent)
    sync_directory(file.parent)
    return target
