"""Export a revision as a tar.gz with the owners and modes the node had.

Files under /etc/pve are shown the way pmxcfs shows them (root:www-data,
0640, 0600 under priv/, directories 0750/0700); elsewhere the recorded
owner, group and mode from ``.pvegit/metadata`` apply. pvegit's own folder
(metadata, inventory) is included under ``.pvegit/`` for reference.

Whatever a revision holds, the archive only has members for the revision's
files and links, their parent directories and the directories metadata
records (git cannot keep empty ones), all relative and clean: an old revision
whose metadata a crafted owner name corrupted (``../../x``, ``/etc``) cannot
make ``tar -x`` or ``tarfile.extractall`` write outside the target, nor
through one of the archive's own links.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from pvegit.actions.runbook import recovery_runbook
from pvegit.errors import PvegitError
from pvegit.git.repo import EXECUTABLE_MODE, SYMLINK_MODE, HostRepository
from pvegit.layout import METADATA_PATH, RECOVERY_PATH
from pvegit.node.metadata import PathInfo, is_pmxcfs_path, parse_metadata
from pvegit.node.tarstream import check_relative_path

_WELL_KNOWN_IDS = {"root": 0, "www-data": 33}


def pmxcfs_mode(path: str, is_directory: bool) -> int:
    """The mode pmxcfs shows for a path under /etc/pve (with quorum)."""
    private = "/priv/" in f"/{path}/" or path.endswith("/priv")
    if is_directory:
        return 0o700 if private else 0o750
    return 0o600 if private else 0o640


def export_tarball(
    repository: HostRepository, commit_id: str, output: Path, host_name: str = "node"
) -> int:
    """Write ``commit_id`` to ``output`` (tar.gz) with a RECOVERY.md runbook at its top.

    Returns the number of entries written.
    """
    files = [entry for entry in repository.iter_files(commit_id) if _clean(entry.path)]
    infos: dict[str, PathInfo] = {}
    by_path = {entry.path: entry for entry in files}
    if METADATA_PATH in by_path:
        infos = parse_metadata(repository.read_blob(by_path[METADATA_PATH].blob_id))
    directories: set[str] = set()
    for entry in files:
        parent = entry.path
        while "/" in parent:
            parent = parent.rsplit("/", 1)[0]
            directories.add(parent)
    leaves = set(by_path)  # files and links: nothing may sit at or below them
    for path, recorded in infos.items():
        if recorded.kind == "dir" and _clean(path) and not _at_or_below(path, leaves):
            directories.add(path)
    commit_time = repository.commit(commit_id).time
    temporary = output.with_name(output.name + ".tmp")
    count = 0
    try:
        with tarfile.open(temporary, "w:gz", format=tarfile.PAX_FORMAT) as archive:
            for directory in sorted(directories):
                info = tarfile.TarInfo(directory)
                info.type = tarfile.DIRTYPE
                _apply_owner(info, directory, infos.get(directory), True)
                info.mtime = commit_time
                archive.addfile(info)
                count += 1
            for entry in sorted(files, key=lambda item: item.path):
                data = repository.read_blob(entry.blob_id)
                info = tarfile.TarInfo(entry.path)
                info.mtime = commit_time
                if entry.mode == SYMLINK_MODE:
                    info.type = tarfile.SYMTYPE
                    info.linkname = data.decode("utf-8", "surrogateescape")
                    _apply_owner(info, entry.path, infos.get(entry.path), False)
                    info.mode = 0o777
                    archive.addfile(info)
                else:
                    info.size = len(data)
                    _apply_owner(info, entry.path, infos.get(entry.path), False)
                    if entry.path not in infos and entry.mode == EXECUTABLE_MODE:
                        info.mode = 0o755
                    archive.addfile(info, io.BytesIO(data))
                count += 1
            runbook = recovery_runbook(repository, commit_id, host_name).encode()
            info = tarfile.TarInfo(RECOVERY_PATH)
            info.size, info.mode, info.mtime = len(runbook), 0o644, commit_time
            archive.addfile(info, io.BytesIO(runbook))
            count += 1
        os.replace(temporary, output)
    except OSError as err:
        temporary.unlink(missing_ok=True)
        raise PvegitError(f"cannot write {output}: {err.strerror or err}") from err
    return count


def _clean(path: str) -> bool:
    """True for a relative path without ``..``, ``.``, ``.git`` or empty parts."""
    try:
        return check_relative_path(path) == path
    except ValueError:
        return False


def _at_or_below(path: str, leaves: set[str]) -> bool:
    """True when ``path`` or one of its parents is a file or link of the archive."""
    while True:
        if path in leaves:
            return True
        if "/" not in path:
            return False
        path = path.rsplit("/", 1)[0]


def _apply_owner(
    info: tarfile.TarInfo, path: str, recorded: PathInfo | None, directory: bool
) -> None:
    if is_pmxcfs_path(path):
        info.uname, info.gname = "root", "www-data"
        info.uid, info.gid = 0, 33
        info.mode = 0o755 if path == "etc/pve" else pmxcfs_mode(path, directory)
        return
    owner = (recorded.owner if recorded else None) or "root"
    group = (recorded.group if recorded else None) or "root"
    info.uname, info.gname = owner, group
    info.uid = _numeric(owner)
    info.gid = _numeric(group)
    if recorded and recorded.mode is not None:
        info.mode = recorded.mode
    else:
        info.mode = 0o755 if directory else 0o644


def _numeric(name: str) -> int:
    if name.isdigit():
        return int(name)
    return _WELL_KNOWN_IDS.get(name, 0)
