"""Committing a snapshot: a tree built in memory, one pack, main moved by compare-and-swap.

Trees are built in memory (``prepare_tree``) and compared by id: a snapshot
equal to its parent makes no commit. The new objects go into one pack per
commit and main moves only if it still points at the parent, so a crash at
any point leaves the repository valid (at worst with an unreferenced pack,
which git ignores). Each step is synced before the next one points to it
(pack and index, their directory, then the ref and its directory), so a
power cut does too (docs/reliability.md).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dulwich.objects import Blob, ObjectID, Tree
from dulwich.objects import Commit as GitCommit

from pvegit.errors import PvegitError
from pvegit.git.base import BRANCH, oid
from pvegit.git.check import MAIN_REF
from pvegit.git.model import TREE_MODE, encode_path
from pvegit.git.packs import REPACK_THRESHOLD, PackMixin
from pvegit.git.read import ReaderMixin
from pvegit.system.durable import sync_directory


@dataclass(frozen=True)
class PreparedTree:
    """A snapshot's tree built in memory, not yet written."""

    tree_id: str
    files: dict[str, tuple[int, str]]  # path -> (mode, blob id)
    objects: tuple[Blob | Tree, ...]


def prepare_tree(files: Mapping[str, tuple[int, bytes]]) -> PreparedTree:
    """Build the nested trees for ``files`` (path -> (git mode, content)) in memory.

    Raises PvegitError if a path is both a file and the parent of another.
    """
    objects: list[Blob | Tree] = []
    file_ids: dict[str, tuple[int, str]] = {}
    root: dict[bytes, Any] = {}
    for path, (mode, data) in files.items():
        parts = encode_path(path).split(b"/")
        node = root
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise PvegitError(f"{path}: a parent directory is also a file")
            node = child
        blob = Blob.from_string(data)
        objects.append(blob)
        node[parts[-1]] = (mode, blob.id)
        file_ids[path] = (mode, blob.id.decode())

    def write(node: dict[bytes, Any]) -> ObjectID:
        tree = Tree()
        for name, value in node.items():
            if isinstance(value, dict):
                tree.add(name, TREE_MODE, write(value))
            else:
                mode, sha = value
                tree.add(name, mode, sha)
        objects.append(tree)
        return tree.id

    tree_id = write(root).decode()
    return PreparedTree(tree_id, file_ids, tuple(objects))


class WriterMixin(ReaderMixin, PackMixin):
    """The writing half of ``HostRepository``. Writers hold the host's lock (system/locks.py)."""

    def commit_tree(
        self,
        prepared: PreparedTree,
        *,
        message: str,
        author: str,
        parent: str | None,
        timestamp: int | None = None,
    ) -> str | None:
        """Commit a prepared tree on top of ``parent``.

        Returns the new commit id, or None when the tree equals the parent's.
        Raises PvegitError if main moved away from ``parent`` meanwhile.
        """
        store = self._repo.object_store
        if parent is not None and self.tree_id(parent) == prepared.tree_id:
            return None
        missing: list[Blob | Tree | GitCommit] = list(self._new_objects(prepared, parent))
        commit = GitCommit()
        commit.tree = oid(prepared.tree_id)
        commit.parents = [oid(parent)] if parent else []
        identity = author.encode()
        commit.author = commit.committer = identity
        commit.author_time = commit.commit_time = timestamp or int(time.time())
        commit.author_timezone = commit.commit_timezone = 0
        commit.encoding = b"UTF-8"
        commit.message = message.encode("utf-8", "surrogateescape")
        missing.append(commit)
        # One pack for the whole snapshot: a few files on disk instead of hundreds.
        before = self._pack_dir_names()
        try:
            store.add_objects([(obj, None) for obj in missing])
        except BaseException:
            self._remove_unfinished_packs(before)
            raise
        self._tighten_packs()
        # The pack and its index are synced (fsync_object_files); their names in
        # the directory must be on disk too before main points at the commit.
        sync_directory(self.path / "objects" / "pack")
        if parent is None:
            # Only onto a ref that does not exist: dulwich's set_if_equals with no
            # old value would overwrite whatever is there (a damaged ref included).
            moved = self._repo.refs.add_if_new(
                BRANCH, commit.id, committer=identity, message=b"pvegit: first snapshot"
            )
        else:
            moved = self._repo.refs.set_if_equals(
                BRANCH, oid(parent), commit.id, committer=identity, message=b"pvegit: snapshot"
            )
        if not moved:
            raise PvegitError(
                f"{self.path.name}: main moved while committing; another writer "
                "ignored the host lock. Run the snapshot again."
            )
        # dulwich syncs the ref's content before its rename; the rename itself
        # is durable once its directory is synced.
        sync_directory((self.path / MAIN_REF).parent)
        self._verified_head = commit.id.decode()
        if store.count_pack_files() > REPACK_THRESHOLD:
            self.pack()
        return commit.id.decode()

    def _new_objects(self, prepared: PreparedTree, parent: str | None) -> list[Blob | Tree]:
        """The objects of ``prepared`` that the repository lacks.

        Walks the new tree against the parent's and descends only where tree
        ids differ, so a one-file change reads a handful of the parent's trees
        instead of looking every object up in every pack (that lookup was most
        of a commit's time with a long history).
        """
        store = self._repo.object_store
        by_id: dict[bytes, Blob | Tree] = {bytes(obj.id): obj for obj in prepared.objects}
        if parent is None:
            return [obj for obj in prepared.objects if obj.id not in store]
        candidates: set[bytes] = set()

        def walk(new_id: bytes, old_id: bytes | None) -> None:
            if new_id == old_id:
                return
            candidates.add(new_id)
            old_entries: dict[bytes, tuple[int, bytes]] = {}
            if old_id is not None:
                old_tree = store[oid(old_id)]
                assert isinstance(old_tree, Tree)
                old_entries = {item.path: (item.mode, item.sha) for item in old_tree.iteritems()}
            new_tree = by_id[new_id]
            assert isinstance(new_tree, Tree)
            for item in new_tree.iteritems():
                old_entry = old_entries.get(item.path)
                if item.mode == TREE_MODE:
                    old_tree_id = old_entry[1] if old_entry and old_entry[0] == TREE_MODE else None
                    walk(item.sha, old_tree_id)
                elif old_entry is None or old_entry[1] != item.sha:
                    candidates.add(item.sha)

        walk(prepared.tree_id.encode(), self._git_commit(parent).tree)
        return [by_id[sha] for sha in candidates if sha in by_id and oid(sha) not in store]
