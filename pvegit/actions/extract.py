"""``restore --to-dir``: a revision written into a local directory, safely.

pvegit runs as root, so a link another local user puts in its way must never
carry a root-owned file elsewhere:

* the way to the target is walked from / by ``pathwalk.open_parent``: every
  directory on it opened with ``O_NOFOLLOW``, and only when no one but root
  and the running user can change it (sticky directories like /tmp aside), a
  link followed only when it is theirs in such a directory;
* the target is created by pvegit (mode 0700), or is an empty directory owned
  by the user running pvegit that no one else can write to; it is opened once
  (``O_NOFOLLOW``, ``O_DIRECTORY``) and checked on that descriptor;
* every directory, file and link below it is made relative to a directory
  descriptor: directories opened with ``O_NOFOLLOW``, files created with
  ``O_EXCL`` (never written through an existing entry), owner and mode set on
  the descriptor (``fchown``, then ``fchmod``);
* setuid, setgid and sticky bits are dropped unless asked for: a root-owned
  setuid copy of a node's program has no business in a scratch directory.
"""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Sequence
from pathlib import Path

from pvegit.actions.export import pmxcfs_mode
from pvegit.actions.restore_plan import wanted_paths
from pvegit.errors import ConfigError, PvegitError
from pvegit.git.repo import EXECUTABLE_MODE, SYMLINK_MODE, HostRepository
from pvegit.layout import METADATA_PATH, is_pvegit_path
from pvegit.node.metadata import PathInfo, is_pmxcfs_path, parse_metadata
from pvegit.node.tarstream import display_path
from pvegit.system.pathwalk import open_parent, user_name

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_PERMISSIONS = 0o777
_SPECIAL = 0o7000  # setuid, setgid, sticky


def restore_to_directory(
    repository: HostRepository,
    revision: str,
    directory: Path,
    paths: Sequence[str] = (),
    *,
    keep_special_bits: bool = False,
) -> int:
    """Write a revision (or some paths of it) below ``directory``; return the files written.

    ``directory`` must not exist (it is created, mode 0700), or be an empty
    directory owned by the user running pvegit and writable by no one else.
    Owners apply when running as root; modes are the recorded ones (pmxcfs's
    under /etc/pve) without setuid, setgid and sticky bits unless
    ``keep_special_bits``. Raises ConfigError for an unusable directory or
    path (one on a way another user could change included: see
    ``pathwalk.open_parent``), PvegitError when a write fails (what was
    written stays there).
    """
    commit_id = repository.resolve(revision)
    files = repository.file_ids(commit_id)
    infos = (
        parse_metadata(repository.read_blob(files[METADATA_PATH][1]))
        if METADATA_PATH in files
        else {}
    )
    chosen = [path for path, _ in wanted_paths(paths, files)] if paths else sorted(files)
    chosen = [path for path in chosen if not is_pvegit_path(path)]
    for path in chosen:
        if path.startswith("/") or {"", ".", ".."} & set(path.split("/")):
            raise ConfigError(f"/{display_path(path)} would land outside {directory}")
    writer = _Writer(_open_target(directory), infos, keep_special_bits)
    path = ""
    try:
        for path in chosen:
            mode, blob = files[path]
            writer.write(path, mode, repository.read_blob(blob))
        path = ""
        writer.set_directory_modes()
    except (OSError, ValueError) as err:  # ValueError: a NUL in a link target
        where = f" at /{display_path(path)}" if path else ""
        reason = getattr(err, "strerror", None) or err
        raise PvegitError(
            f"writing into {directory} failed{where}: {reason}; what was "
            "written so far stays there (nothing outside it was touched)"
        ) from err
    finally:
        writer.close()
    return len(chosen)


def _open_target(directory: Path) -> int:
    """Create (or accept) the target directory and return a descriptor of it."""
    parent, name = open_parent(directory)
    try:
        try:
            os.mkdir(name, 0o700, dir_fd=parent)
        except FileExistsError:
            pass  # checked below, on the descriptor
        except OSError as err:
            raise ConfigError(f"cannot make {directory}: {err.strerror or err}") from err
        try:
            descriptor = os.open(name, _DIRECTORY, dir_fd=parent)
        except OSError as err:
            raise ConfigError(
                f"{directory} is a link or not a directory ({err.strerror}): name a new "
                "directory, pvegit creates it"
            ) from err
    finally:
        os.close(parent)
    problem = _unusable(descriptor)
    if problem is not None:
        os.close(descriptor)
        raise ConfigError(
            f"{directory} {problem}: name a directory that does not exist yet (pvegit "
            "creates it, mode 0700), or an empty one of your own that no one else can write to"
        )
    return descriptor


def _unusable(descriptor: int) -> str | None:
    """Why the opened target directory may not be written into, or None."""
    status = os.fstat(descriptor)
    if status.st_uid != os.geteuid():
        return (
            f"belongs to {user_name(status.st_uid)}, not to the user running pvegit "
            "(its owner could swap links into it)"
        )
    if status.st_mode & 0o022:
        return f"is writable by others (mode {status.st_mode & 0o7777:04o})"
    if os.listdir(descriptor):
        return "is not an empty directory (a link already in it would carry the files away)"
    return None


class _Writer:
    """Writes entries below one directory descriptor, never following a link."""

    def __init__(self, root: int, infos: dict[str, PathInfo], keep_special_bits: bool) -> None:
        self._root = root
        self._infos = infos
        self._kept_bits = _PERMISSIONS | (_SPECIAL if keep_special_bits else 0)
        self._as_root = os.geteuid() == 0
        self._open: list[tuple[str, int]] = []  # the directories along the last path
        self._created: list[str] = []  # directories made, for their modes at the end

    def write(self, path: str, git_mode: int, data: bytes) -> None:
        *parents, name = path.split("/")
        directory = self._directory(parents)
        info = self._infos.get(path)
        if git_mode == SYMLINK_MODE:
            os.symlink(data.decode("utf-8", "surrogateescape"), name, dir_fd=directory)
            owner = self._owner(path, info)
            if owner is not None:
                os.chown(name, *owner, dir_fd=directory, follow_symlinks=False)
            return
        descriptor = os.open(name, _NEW_FILE, 0o600, dir_fd=directory)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
            owner = self._owner(path, info)
            if owner is not None:  # before fchmod: a chown clears setuid and setgid
                os.fchown(descriptor, *owner)
            if is_pmxcfs_path(path):
                mode = pmxcfs_mode(path, False)
            elif info is not None and info.mode is not None:
                mode = info.mode
            else:
                mode = 0o755 if git_mode == EXECUTABLE_MODE else 0o644
            os.fchmod(descriptor, mode & self._kept_bits)
        finally:
            os.close(descriptor)

    def set_directory_modes(self) -> None:
        """The recorded owner and mode of each directory made (after its content is in).

        Deepest first: a parent's mode may take away what opening its children needs.
        """
        for path in sorted(self._created, key=lambda item: item.count("/"), reverse=True):
            descriptor = self._directory(path.split("/"))
            info = self._infos.get(path)
            owner = self._owner(path, info)
            if owner is not None:
                os.fchown(descriptor, *owner)
            if path == "etc/pve":
                mode = 0o755
            elif is_pmxcfs_path(path):
                mode = pmxcfs_mode(path, True)
            elif info is not None and info.kind == "dir" and info.mode is not None:
                mode = info.mode
            else:
                mode = 0o755
            os.fchmod(descriptor, mode & self._kept_bits)

    def _directory(self, parts: list[str]) -> int:
        """A descriptor of the directory ``parts`` below the root, made if missing."""
        shared = 0
        while (
            shared < len(self._open)
            and shared < len(parts)
            and self._open[shared][0] == parts[shared]
        ):
            shared += 1
        for _, descriptor in self._open[shared:]:
            os.close(descriptor)
        del self._open[shared:]
        for part in parts[shared:]:
            parent = self._open[-1][1] if self._open else self._root
            try:
                os.mkdir(part, 0o700, dir_fd=parent)
                self._created.append("/".join(parts[: len(self._open) + 1]))
            except FileExistsError:
                pass
            self._open.append((part, os.open(part, _DIRECTORY, dir_fd=parent)))
        return self._open[-1][1] if self._open else self._root

    def _owner(self, path: str, info: PathInfo | None) -> tuple[int, int] | None:
        """The uid and gid to give ``path`` (as root only), or None to leave root's."""
        if not self._as_root:
            return None
        if is_pmxcfs_path(path):
            owner, group = "root", "www-data"
        elif info is not None:
            owner, group = info.owner or "root", info.group or "root"
        else:
            owner, group = "root", "root"
        try:
            uid = int(owner) if owner.isdigit() else pwd.getpwnam(owner).pw_uid
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
        except KeyError:
            return None  # an owner this machine does not know: leave root's
        return uid, gid

    def close(self) -> None:
        for _, descriptor in self._open:
            os.close(descriptor)
        self._open.clear()
        os.close(self._root)
