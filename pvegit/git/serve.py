"""What a dumb-HTTP git client reads beside the objects (web/gitserve.py serves it).

``git update-server-info`` would write these files into the repository; pvegit
computes them on each request instead, so nothing in the repository goes
stale and nothing is written by a read.
"""

from __future__ import annotations

from pvegit.git.base import RepositoryBase


class ServeMixin(RepositoryBase):
    """The dumb-HTTP info files of ``HostRepository``, computed, never stored."""

    def info_refs(self) -> bytes:
        """What ``git update-server-info`` would write to info/refs (HEAD left out)."""
        lines = []
        for name, sha in sorted(self._repo.refs.as_dict().items()):
            if name != b"HEAD":
                lines.append(sha + b"\t" + name + b"\n")
        return b"".join(lines)

    def info_packs(self) -> bytes:
        """What ``git update-server-info`` would write to objects/info/packs
        (the packs that have their index; one still being written has none)."""
        pack_dir = self.path / "objects" / "pack"
        names = sorted(
            path.name for path in pack_dir.glob("pack-*.pack") if path.with_suffix(".idx").exists()
        )
        return b"".join(b"P " + name.encode() + b"\n" for name in names) + b"\n"
