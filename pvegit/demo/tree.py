"""A simulated node's tree as data: its items, and writing them into a directory.

Each ``TreeItem`` is one file, directory or symlink with its owner and mode;
pve8.py and pve9.py list them, the demo and the test bed write them.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

# The group www-data, which owns /etc/pve on a node.
WWW_DATA_GID = 33


@dataclass
class TreeItem:
    """One file (``content``), directory (``content`` None) or symlink (``link``) of a tree."""

    path: str
    content: str | bytes | None  # None: a directory
    mode: int
    uid: int = 0
    gid: int = 0
    link: str | None = None


def fake_key(label: str, lines: int = 4) -> str:
    """A PEM block that looks like a private key, always the same for the same ``label``."""
    digest = hashlib.sha512(label.encode()).hexdigest()
    body = "\n".join((digest * 2)[i * 64 : (i + 1) * 64] for i in range(lines))
    return f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"


def write_items(root: Path, items: list[TreeItem], *, chown: bool | None = None) -> None:
    """Write ``items`` below ``root``; set owners when running as root (or ``chown``)."""
    use_chown = os.geteuid() == 0 if chown is None else chown
    for item in items:
        target = root / item.path if item.path else root
        target.parent.mkdir(parents=True, exist_ok=True)
        if item.link is not None:
            if target.is_symlink() or target.exists():
                target.unlink()
            os.symlink(item.link, target)
            if use_chown:
                os.lchown(target, item.uid, item.gid)
            continue
        if item.content is None:
            target.mkdir(parents=True, exist_ok=True)
        else:
            data = item.content.encode() if isinstance(item.content, str) else item.content
            target.write_bytes(data)
        if use_chown:
            os.chown(target, item.uid, item.gid)
        os.chmod(target, item.mode)
    # Parent directories created along the way keep default modes; fix the
    # ones listed afterwards so children could be written first.
    for item in items:
        if item.content is None and item.link is None:
            os.chmod(root / item.path if item.path else root, item.mode)
