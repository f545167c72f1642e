"""Which paths differ between two snapshots: the git layer's side of a diff.

Only the list of changed paths, with their modes and blob ids. The lines of
a diff, and whether a file may be shown at all, are the content model's
(pvegit.content.filediff): the one diff engine every face renders.
"""

from __future__ import annotations

from collections.abc import Sequence

from pvegit.git.base import UNREADABLE, oid
from pvegit.git.model import ChangeKind, FileChange, decode_path, encode_path
from pvegit.git.read import ReaderMixin


class ChangesMixin(ReaderMixin):
    """Tree comparison for ``HostRepository``."""

    def changes(
        self, old_commit: str | None, new_commit: str, paths: Sequence[str] = ()
    ) -> list[FileChange]:
        """Paths that differ between two commits (None: everything is added)."""
        old_tree = self.tree_id(old_commit)
        new_tree = self.tree_id(new_commit)
        return self.tree_changes(
            old_tree.encode() if old_tree else None,
            new_tree.encode() if new_tree else None,
            paths,
        )

    def tree_changes(
        self,
        old_tree: bytes | None,
        new_tree: bytes | None,
        paths: Sequence[str] = (),
    ) -> list[FileChange]:
        """Paths that differ between two trees, optionally limited to ``paths``
        (a path there also takes everything below it), in git's order."""
        object_store = self._repo.object_store
        out: list[FileChange] = []
        wanted = [encode_path(path) for path in paths]
        try:
            compared = list(
                object_store.tree_changes(
                    oid(old_tree) if old_tree else None, oid(new_tree) if new_tree else None
                )
            )
        except UNREADABLE as err:
            raise self._unreadable("a tree to compare", err) from err
        for (old_path, new_path), (old_mode, new_mode), (old_sha, new_sha) in compared:
            raw = new_path or old_path or b""
            if wanted and not any(raw == item or raw.startswith(item + b"/") for item in wanted):
                continue
            out.append(
                FileChange(
                    decode_path(raw),
                    _kind(old_path, new_path),
                    old_mode,
                    new_mode,
                    old_sha.decode() if old_sha else None,
                    new_sha.decode() if new_sha else None,
                )
            )
        return out


def _kind(old_path: bytes | None, new_path: bytes | None) -> ChangeKind:
    if old_path is None:
        return ChangeKind.ADDED
    if new_path is None:
        return ChangeKind.DELETED
    return ChangeKind.MODIFIED
