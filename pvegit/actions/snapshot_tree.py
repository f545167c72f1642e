"""The git tree of a snapshot, built from what was collected.

Files, symlinks, the owners-and-modes metadata and the inventory outputs
become one tree; what the node did not let a run read is carried over from
the previous snapshot rather than recorded as deleted.
"""

from __future__ import annotations

from pvegit.git.repo import EXECUTABLE_MODE, FILE_MODE, SYMLINK_MODE, HostRepository
from pvegit.layout import METADATA_PATH, inventory_path
from pvegit.node.collect import Collection
from pvegit.node.metadata import parse_metadata, render_metadata
from pvegit.node.tarstream import Entry


def snapshot_files(collection: Collection) -> dict[str, tuple[int, bytes]]:
    """The git tree of a snapshot, path -> (git mode, content): files, symlinks, metadata
    (``.pvegit/metadata``) and inventory (``.pvegit/inventory/*``)."""
    files: dict[str, tuple[int, bytes]] = {}
    for path, entry in collection.entries.items():
        if entry.kind == "file":
            files[path] = (EXECUTABLE_MODE if entry.executable else FILE_MODE, entry.data)
        elif entry.kind == "symlink":
            files[path] = (SYMLINK_MODE, entry.data)
    files[METADATA_PATH] = (FILE_MODE, render_metadata(collection.entries.values()))
    for name, output in collection.inventory.items():
        files[inventory_path(name)] = (FILE_MODE, output)
    return files


def carry_over(
    repository: HostRepository,
    parent: str | None,
    parent_files: dict[str, tuple[int, str]],
    collection: Collection,
) -> int:
    """Keep what the node did not let us read as it was, instead of recording a deletion.

    Applies to paths tar could not read and to inventory commands that failed or
    printed more than their limit: their previous content is put into ``collection``
    (changed in place). Returns the number of files carried over.
    """
    if parent is None:
        return 0
    for name in [*collection.failed_commands, *collection.over_limit_commands]:
        path = inventory_path(name)
        if path in parent_files:
            collection.inventory[name] = repository.read_blob(parent_files[path][1])
    if not collection.unreadable:
        return 0
    infos = (
        parse_metadata(repository.read_file(parent, METADATA_PATH)[1])
        if (METADATA_PATH in parent_files)
        else {}
    )
    prefixes = tuple(collection.unreadable)
    carried = 0
    for path, info in infos.items():
        if path in collection.entries:
            continue
        if not any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes):
            continue
        data = b""
        if path in parent_files:
            data = repository.read_blob(parent_files[path][1])
            carried += 1
        elif info.kind != "dir":
            continue
        collection.entries[path] = Entry(
            path,
            info.kind,  # type: ignore[arg-type]
            data,
            info.mode if info.mode is not None else 0o644,
            info.owner or "root",
            info.group or "root",
        )
    return carried
