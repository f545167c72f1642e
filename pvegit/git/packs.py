"""The packs of a host's repository: folding them, and clearing a killed writer's debris.

Every commit writes one pack (write.py); past ``REPACK_THRESHOLD`` packs every
lookup slows down, so they are folded. A fold writes and syncs the new pack
before it removes any source, and removes an index before its pack (git
ignores a pack without an index, not an index without its pack), so a cut at
any point leaves a valid repository. ``compact`` (maintenance.py) is the
delta-compressed rewrite behind ``pvegit gc``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

from pvegit.git.base import RepositoryBase
from pvegit.system.durable import sync_directory

_log = logging.getLogger(__name__)

REPACK_THRESHOLD = 64
"""More packs than this slow every lookup down: a commit folds them."""


class PackMixin(RepositoryBase):
    """Pack housekeeping of ``HostRepository``. Hold the host's lock."""

    def pack(self) -> None:
        """Fold loose objects and the smaller half of the packs into one pack.

        Quick (no deltas, no pruning) and cheap over time: folded packs grow
        geometrically, so an object is rewritten about log(history) times, not
        once per fold. ``compact`` makes one delta-compressed pack.
        """
        store = self._repo.object_store
        store.pack_loose_objects()
        packs = sorted(store.packs, key=len)
        if len(packs) < 2:
            return
        small = packs[: max(2, min(len(packs) - 1, REPACK_THRESHOLD // 2))]
        objects: list[tuple[Any, None]] = [
            (obj, None) for pack in small for obj in pack.iterobjects()
        ]
        folded = store.add_objects(objects)
        keep = f"pack-{folded.name().decode()}" if folded is not None else None
        names = {f"pack-{pack.name().decode()}" for pack in small} - {keep}
        self._repo.close()
        pack_dir = self.path / "objects" / "pack"
        sync_directory(pack_dir)  # the folded pack is on disk before its sources go
        for name in names:
            # the index first: a pack without one is ignored, an index without its pack is not
            for suffix in (".idx", ".bitmap", ".rev", ".pack"):
                (pack_dir / f"{name}{suffix}").unlink(missing_ok=True)
        sync_directory(pack_dir)
        self._open_repo()
        self._tighten_packs()

    def remove_stale_temporaries(self) -> int:
        """Delete what a killed writer left: temporary packs and ref lock files; return how many.

        Call only with the host's lock held: then no other writer is alive, and a
        ``refs/heads/main.lock`` is debris that would otherwise fail every later
        commit (found by bench/kill_loop.py).
        """
        directory = self.path / "objects" / "pack"
        debris = [directory / name for name in self._pack_dir_names() if name.startswith("tmp")]
        debris += [path for path in (self.path / "refs").rglob("*.lock") if path.is_file()]
        # an index being written when the writer died (``pack-*.idx.lock``): left
        # there, it fails the next commit that writes the same pack
        debris += [directory / name for name in self._pack_dir_names() if name.endswith(".lock")]
        debris += [
            self.path / name
            for name in ("packed-refs.lock", "HEAD.lock", "config.lock")
            if (self.path / name).is_file()
        ]
        removed = 0
        for path in debris:
            with contextlib.suppress(OSError):
                path.unlink()
                removed += 1
        if removed:
            _log.warning("%s: removed %d file(s) a killed run left", self.path.name, removed)
        return removed

    def _pack_dir_names(self) -> set[str]:
        directory = self.path / "objects" / "pack"
        return set(os.listdir(directory)) if directory.is_dir() else set()

    def _remove_unfinished_packs(self, before: set[str]) -> None:
        """After a failed pack write (a full disk): drop its temporary file and any
        pack left without its index, so the space is free again and git sees no debris."""
        directory = self.path / "objects" / "pack"
        names = self._pack_dir_names()
        for name in names - before:
            stem = name.rsplit(".", 1)[0]
            if name.startswith("tmp") or not {f"{stem}.pack", f"{stem}.idx"} <= names:
                with contextlib.suppress(OSError):
                    (directory / name).unlink()

    def _tighten_packs(self) -> None:
        """dulwich makes packs 0444 whatever the umask; this history is for pvegit only."""
        for path in (self.path / "objects" / "pack").iterdir():
            if path.stat().st_mode & 0o077:
                path.chmod(0o400)
