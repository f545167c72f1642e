"""The git layer: one bare repository per host, written without a work tree.

``HostRepository`` is the one class callers open; its operations live in one
mixin per concern, each in its own module:

* health.py: ``damage``, ``head`` (main's commit, checked), ``check_objects`` (fsck);
* read.py: revisions, commits, trees, files, history;
* changes.py: which paths differ between two snapshots;
* write.py: ``prepare_tree`` and ``commit_tree`` (one pack, main by compare-and-swap);
* packs.py: folding packs, a killed writer's debris;
* serve.py: the dumb-HTTP info files (web/gitserve.py);
* base.py: the shared state and the host settings in the repository's config.

maintenance.py's ``MaintenanceRepository`` adds gc and repair. Everything
dulwich stays in pvegit.git: callers get the values of model.py. The tree
layout (``.pvegit/``) is pvegit/layout.py's. A repository whose files are damaged
(check.py) is never read as "no history": opening it raises
``RepositoryDamaged`` naming the damage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from dulwich.errors import NotGitRepository
from dulwich.repo import Repo

from pvegit.errors import NotFound, PvegitError, RepositoryDamaged
from pvegit.git.base import BRANCH
from pvegit.git.changes import ChangesMixin
from pvegit.git.model import (
    EXECUTABLE_MODE,
    FILE_MODE,
    SYMLINK_MODE,
    TREE_MODE,
    ChangeKind,
    Commit,
    DirectoryEntry,
    FileChange,
    TreeEntry,
    decode_path,
    encode_path,
)
from pvegit.git.serve import ServeMixin
from pvegit.git.write import PreparedTree, WriterMixin, prepare_tree
from pvegit.system.durable import sync_directory

__all__ = [
    "BRANCH",
    "EXECUTABLE_MODE",
    "FILE_MODE",
    "SYMLINK_MODE",
    "TREE_MODE",
    "ChangeKind",
    "Commit",
    "DirectoryEntry",
    "FileChange",
    "HostRepository",
    "PreparedTree",
    "TreeEntry",
    "decode_path",
    "encode_path",
    "prepare_tree",
]


class HostRepository(ChangesMixin, WriterMixin, ServeMixin):
    """A host's bare repository. Writers must hold the host's lock (see system/locks.py)."""

    def __init__(
        self,
        path: Path,
        *,
        create: bool = False,
        check: bool = True,
        recorded: Callable[[], Sequence[str]] | None = None,
    ) -> None:
        """Open the repository at ``path`` (``create``: make it if it does not exist).

        ``check`` (the default) raises RepositoryDamaged if its files are
        damaged, so no caller reads a damaged ref as an empty history;
        ``verify`` and ``repair`` open with ``check=False`` and call
        ``damage()``. ``recorded`` returns the commit ids the run log records
        for the host: a repository without a main ref is empty only when it
        returns none (called only then). Raises NotFound when there is no
        repository and ``create`` is false.
        """
        self.path = path
        self.name = path.name.removesuffix(".git")
        self._recorded = recorded
        try:
            if path.exists():
                self._repo = Repo(str(path))
            elif create:
                self._refuse_to_create_over_lost_history()
                path.parent.mkdir(parents=True, exist_ok=True)
                self._repo = Repo.init_bare(str(path), mkdir=True, default_branch=b"main")
                _sync_new_repository(path)
                check = False
            else:
                self._refuse_to_create_over_lost_history()
                raise NotFound(f"no repository at {path}: the host has no snapshot yet")
        except NotGitRepository as err:
            raise PvegitError(f"{path} is not a git repository: {err}") from err
        except ValueError as err:  # dulwich's answer to a config file it cannot parse
            raise RepositoryDamaged(
                self.name, [f"config cannot be read ({err}), what a power cut can leave"]
            ) from err
        # Packs and their indexes are synced before they are renamed into place.
        self._repo.object_store.fsync_object_files = True
        if check:
            problems = self.damage()
            if problems:
                self._repo.close()
                raise RepositoryDamaged(self.name, [item.describe(path) for item in problems])

    def _refuse_to_create_over_lost_history(self) -> None:
        recorded = self._recorded() if self._recorded is not None else ()
        if recorded:
            raise RepositoryDamaged(
                self.name,
                [
                    f"{self.path} is missing, but the run log records {len(recorded)} "
                    f"commit(s) of this host (newest {recorded[0][:10]}); put the repository "
                    "back from a backup or the mirror first"
                ],
            )


def _sync_new_repository(path: Path) -> None:
    """A new repository's directories on disk, so a cut cannot leave half of one."""
    for directory in (path / "objects" / "pack", path / "objects", path / "refs" / "heads"):
        if directory.is_dir():
            sync_directory(directory)
    sync_directory(path)
    sync_directory(path.parent)
