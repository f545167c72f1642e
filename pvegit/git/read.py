"""Reading a host's history: revisions, commits, trees, files.

Every read of an object that dulwich cannot do (missing, a pack damaged
inside) raises RepositoryDamaged naming what could not be read, never a
dulwich error or a traceback; a path or revision that is not there raises
NotFound, a revision that is not one ConfigError.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from dulwich.errors import NotTreeError
from dulwich.object_store import tree_lookup_path
from dulwich.objects import Blob, Tree
from dulwich.objects import Commit as GitCommit

from pvegit.errors import ConfigError, NotFound
from pvegit.git.base import UNREADABLE, oid, to_commit
from pvegit.git.health import HealthMixin
from pvegit.git.model import TREE_MODE, Commit, DirectoryEntry, TreeEntry, decode_path, encode_path

_SYMBOLIC = re.compile(r"(HEAD|main|@)((?:~\d*|\^)*)")
_STEP = re.compile(r"~\d*|\^")
_HEX_PREFIX = re.compile(r"[0-9a-fA-F]{4,40}")


class ReaderMixin(HealthMixin):
    """The reading half of ``HostRepository``."""

    def resolve(self, revision: str) -> str:
        """Resolve ``HEAD``, ``HEAD~N``, ``main``, a full id or a unique prefix to a commit id.

        Raises NotFound (no such commit, or back past the first), ConfigError
        (not a revision, or an ambiguous prefix).
        """
        revision = revision.strip()
        match = _SYMBOLIC.fullmatch(revision)
        if match:
            commit_id = self.head()
            if commit_id is None:
                raise NotFound("the repository has no commits yet: take a snapshot first")
            steps = 0
            for step in _STEP.findall(match.group(2)):
                steps += int(step[1:] or 1) if step.startswith("~") else 1
            for _ in range(steps):
                parents = self._git_commit(commit_id).parents
                if not parents:
                    raise NotFound(f"{revision} goes back past the first snapshot")
                commit_id = parents[0].decode()
            return commit_id
        if not _HEX_PREFIX.fullmatch(revision):
            raise ConfigError(
                f"{revision!r} is not a revision: use a commit id (or a prefix of 4+ "
                "hex digits), HEAD or HEAD~N"
            )
        prefix = revision.lower()
        store = self._repo.object_store
        if len(prefix) == 40:
            if oid(prefix) in store and isinstance(store[oid(prefix)], GitCommit):
                return prefix
            raise NotFound(f"no commit {prefix} in {self.path.name}")
        candidates = {
            sha.decode()
            for sha in store.iter_prefix(prefix.encode())
            if isinstance(store[oid(sha)], GitCommit)
        }
        if not candidates:
            raise NotFound(f"no commit starting with {prefix} in {self.path.name}")
        if len(candidates) > 1:
            raise ConfigError(f"{prefix} is ambiguous: give more digits of the commit id")
        return candidates.pop()

    def commit(self, commit_id: str) -> Commit:
        """The commit ``commit_id`` as a Commit."""
        return to_commit(self._git_commit(commit_id))

    def tree_id(self, commit_id: str | None) -> str | None:
        """The id of ``commit_id``'s root tree (None for None: no commit, no tree)."""
        if commit_id is None:
            return None
        return str(self._git_commit(commit_id).tree.decode())

    def log(self, *, limit: int | None = None, path: str | None = None) -> list[Commit]:
        """Commits from newest to oldest, optionally only those touching ``path``."""
        head = self.head()
        if head is None:
            return []
        walker = self._repo.get_walker(
            include=[oid(head)],
            max_entries=limit,
            paths=[encode_path(path)] if path else None,
        )
        try:
            return [to_commit(entry.commit) for entry in walker]
        except UNREADABLE as err:
            raise self._unreadable("the history of main", err) from err

    def iter_files(self, commit_id: str) -> Iterator[TreeEntry]:
        """Every file and symlink of a commit's tree."""
        store = self._repo.object_store
        tree = self._git_commit(commit_id).tree
        try:
            items = list(store.iter_tree_contents(tree))
        except UNREADABLE as err:
            raise self._unreadable(f"the tree of commit {commit_id[:10]}", err) from err
        for item in items:
            if item.path is None or item.mode is None or item.sha is None:
                continue
            yield TreeEntry(decode_path(item.path), item.mode, item.sha.decode())

    def file_ids(self, commit_id: str | None) -> dict[str, tuple[int, str]]:
        """Path -> (mode, blob id) of every file and symlink at ``commit_id`` ({} for None)."""
        if commit_id is None:
            return {}
        return {entry.path: (entry.mode, entry.blob_id) for entry in self.iter_files(commit_id)}

    def read_blob(self, blob_id: str) -> bytes:
        """The content of blob ``blob_id``; NotFound if it is another object."""
        try:
            obj = self._repo.object_store[oid(blob_id)]
        except UNREADABLE as err:
            raise self._unreadable(f"file {blob_id[:10]}", err) from err
        if not isinstance(obj, Blob):
            raise NotFound(f"{blob_id} is not a file")
        return obj.as_raw_string()

    def read_file(self, commit_id: str, path: str) -> tuple[int, bytes]:
        """Mode and content of ``path`` at ``commit_id``; raises NotFound."""
        store = self._repo.object_store
        try:
            mode, sha = tree_lookup_path(
                store.__getitem__, self._git_commit(commit_id).tree, encode_path(path)
            )
        except KeyError as err:
            raise NotFound(f"/{path} is not in snapshot {commit_id[:10]}") from err
        if mode == TREE_MODE:
            raise NotFound(f"/{path} is a directory in snapshot {commit_id[:10]}")
        return mode, self.read_blob(sha.decode())

    def lookup(self, commit_id: str, path: str) -> tuple[str, tuple[int, str]]:
        """("tree", (mode, id)) or ("blob", (mode, id)) for ``path`` ("" is the root)."""
        tree = self._git_commit(commit_id).tree
        if not path:
            return "tree", (TREE_MODE, tree.decode())
        store = self._repo.object_store
        try:
            mode, sha = tree_lookup_path(store.__getitem__, tree, encode_path(path))
        except (KeyError, NotTreeError) as err:
            raise NotFound(f"/{path} is not in snapshot {commit_id[:10]}") from err
        return ("tree" if mode == TREE_MODE else "blob"), (mode, sha.decode())

    def list_directory(self, commit_id: str, path: str) -> list[DirectoryEntry]:
        """The entries of a directory at ``commit_id``; raises NotFound."""
        kind, (_, tree_id) = self.lookup(commit_id, path)
        if kind != "tree":
            raise NotFound(f"/{path} is a file, not a directory")
        tree = self._repo.object_store[oid(tree_id)]
        assert isinstance(tree, Tree)
        prefix = f"{path}/" if path else ""
        return [
            DirectoryEntry(
                decode_path(item.path),
                prefix + decode_path(item.path),
                item.mode,
                item.sha.decode(),
            )
            for item in tree.iteritems()
        ]
