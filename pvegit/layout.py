"""Where pvegit keeps its own files inside a host's snapshot tree.

Beside the host's files, every snapshot holds a ``.pvegit/`` folder that
pvegit writes itself (docs/repository-layout.md): ``metadata`` (owner, group
and mode of each path, see pvegit.node.metadata) and ``inventory/<name>.txt``
(one file per inventory command, see pvegit.node.inventory). An export puts
its runbook, ``RECOVERY.md``, at the top of the archive. These names are part
of the repository layout users and their tools read: change them never.

A leaf module (no imports), so every layer may name the layout from here.
"""

from __future__ import annotations

PVEGIT_DIR = ".pvegit"
"""pvegit's own folder at the top of every snapshot tree."""

METADATA_PATH = f"{PVEGIT_DIR}/metadata"
"""Owner, group and mode of each collected path."""

INVENTORY_DIR = f"{PVEGIT_DIR}/inventory"
"""One ``<name>.txt`` per inventory command."""

RECOVERY_PATH = "RECOVERY.md"
"""The runbook at the top of an export archive (not stored in the repository)."""

_PREFIX = PVEGIT_DIR + "/"
_INVENTORY_PREFIX = INVENTORY_DIR + "/"
_INVENTORY_SUFFIX = ".txt"


def is_pvegit_path(path: str) -> bool:
    """True for a tree path inside ``.pvegit/`` (pvegit's files, not the host's)."""
    return path.startswith(_PREFIX)


def inventory_path(name: str) -> str:
    """The tree path of inventory command ``name``'s output."""
    return f"{_INVENTORY_PREFIX}{name}{_INVENTORY_SUFFIX}"


def inventory_name(path: str) -> str | None:
    """The inventory command whose output ``path`` holds, or None for any other path."""
    if not path.startswith(_INVENTORY_PREFIX):
        return None
    return path[len(_INVENTORY_PREFIX) :].removesuffix(_INVENTORY_SUFFIX)
