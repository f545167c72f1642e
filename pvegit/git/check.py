"""Are a repository's files whole? The file checks behind ``RepositoryDamaged``.

A power cut (or a disk that lies about what it wrote) leaves a file
half-written: a ref of 0 bytes, a pack without its tail, an index of zeros.
git and dulwich then fail with a dozen different errors, or worse, read a
missing ref as "no commits yet". These checks read only the small files and
the ends of each pack (a few reads per pack), so every open of a repository
can afford them; ``deep`` also hashes every pack and index, as
``pvegit verify`` and ``pvegit repair`` do. The checks that need objects
(does main point at a commit?) are in ``HostRepository`` (repo.py).
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass
from pathlib import Path

MAIN_REF = "refs/heads/main"
HEAD_TEXT = b"ref: refs/heads/main"
_COMMIT_ID = re.compile(rb"[0-9a-f]{40}")
_PACK_HEADER = struct.Struct(">4sLL")  # b"PACK", version, object count
_INDEX_MAGIC = b"\377tOc"
_FANOUT_BYTES = 256 * 4
_TRAILER_BYTES = 40  # the pack's checksum, then the index's own
_HASH_BYTES = 20


@dataclass(frozen=True)
class Damage:
    """One damaged file of a repository and what is wrong with it."""

    path: Path  # the file, inside the repository
    problem: str

    def describe(self, root: Path) -> str:
        """``refs/heads/main is empty (0 bytes) ...``: the file relative to ``root``."""
        try:
            name = self.path.relative_to(root).as_posix()
        except ValueError:
            name = str(self.path)
        return f"{name} {self.problem}"


@dataclass(frozen=True)
class MainRef:
    """What refs/heads/main holds: a commit id, nothing, or damage."""

    commit_id: str | None
    damage: tuple[Damage, ...] = ()


def read_main(root: Path) -> MainRef:
    """Read refs/heads/main (loose, else packed-refs) without trusting its content."""
    loose = root / MAIN_REF
    try:
        raw = loose.read_bytes()
    except FileNotFoundError:
        raw = None
    except OSError as err:
        return MainRef(None, (Damage(loose, f"cannot be read ({err.strerror})"),))
    if raw is not None:
        value = raw.strip()
        if _COMMIT_ID.fullmatch(value):
            return MainRef(value.decode())
        return MainRef(None, (Damage(loose, _describe_garbage(raw)),))
    return _read_packed_main(root / "packed-refs")


def _describe_garbage(raw: bytes) -> str:
    if not raw:
        return "is empty (0 bytes, what a power cut during a write leaves)"
    if not raw.strip(b"\0"):
        return f"holds only zero bytes ({len(raw)}), what a power cut can leave"
    if raw.startswith(b"ref: "):
        return "is a symbolic ref, not a commit id"
    return f"holds {len(raw)} bytes that are not a commit id"


def _read_packed_main(packed: Path) -> MainRef:
    try:
        raw = packed.read_bytes()
    except FileNotFoundError:
        return MainRef(None)
    except OSError as err:
        return MainRef(None, (Damage(packed, f"cannot be read ({err.strerror})"),))
    found: str | None = None
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line or line.startswith((b"#", b"^")):
            continue
        commit_id, _, name = line.partition(b" ")
        if not _COMMIT_ID.fullmatch(commit_id) or not name.startswith(b"refs/"):
            return MainRef(None, (Damage(packed, f"line {number} is not '<commit id> <ref>'"),))
        if name == MAIN_REF.encode():
            found = commit_id.decode()
    return MainRef(found)


def check_head(root: Path) -> list[Damage]:
    """HEAD must name main: git (a clone, ``git log``) reads the branch through it."""
    head = root / "HEAD"
    try:
        raw = head.read_bytes()
    except FileNotFoundError:
        return [Damage(head, "is missing (git no longer sees a repository here)")]
    except OSError as err:
        return [Damage(head, f"cannot be read ({err.strerror})")]
    if raw.strip() != HEAD_TEXT:
        return [Damage(head, f"does not say '{HEAD_TEXT.decode()}' ({_describe_garbage(raw)})")]
    return []


def pack_files(root: Path) -> list[Path]:
    """The repository's ``pack-*.pack`` files (temporary packs are not packs yet)."""
    directory = root / "objects" / "pack"
    if not directory.is_dir():
        return []
    return sorted(directory.glob("pack-*.pack"))


def check_packs(root: Path, *, deep: bool = False) -> list[Damage]:
    """Every pack against its index: header, object count, the pack checksum both record.

    A pack without an index is not damage: git ignores it, and it is what a
    crash between writing a pack and its index leaves (its commit never
    reached main). An index without its pack is: its objects are gone.
    """
    found: list[Damage] = []
    directory = root / "objects" / "pack"
    for pack in pack_files(root):
        index = pack.with_suffix(".idx")
        if index.exists():
            found += check_pack(pack, index, deep=deep)
    if directory.is_dir():
        for index in sorted(directory.glob("pack-*.idx")):
            # (a writer renames a pack in before its index and removes an index
            # before its pack, so this is never a writer at work)
            if not index.with_suffix(".pack").exists() and index.exists():
                found.append(Damage(index, "has lost its pack (the objects it lists are gone)"))
    return found


def check_pack(pack: Path, index: Path, *, deep: bool = False) -> list[Damage]:
    """One pack and its index; empty when both are whole."""
    try:
        index_problem, count, recorded = _read_index(index, deep=deep)
        if index_problem:
            return [Damage(index, index_problem)]
        pack_problem = _check_pack_data(pack, count, recorded, deep=deep)
    except FileNotFoundError:
        return []  # removed since it was listed: gc or a fold replaced it (indexes go first)
    except OSError as err:
        return [Damage(pack, f"cannot be read ({err.strerror})")]
    return [Damage(pack, pack_problem)] if pack_problem else []


def pack_is_whole(pack: Path) -> bool:
    """True when the pack's own trailing checksum matches its content (read in full)."""
    try:
        with pack.open("rb") as handle:
            header = handle.read(_PACK_HEADER.size)
            if len(header) < _PACK_HEADER.size or not _valid_header(header):
                return False
            size = pack.stat().st_size
            if size < _PACK_HEADER.size + _HASH_BYTES:
                return False
            digest = hashlib.sha1(header)
            remaining = size - _PACK_HEADER.size - _HASH_BYTES
            while remaining:
                chunk = handle.read(min(remaining, 1 << 20))
                if not chunk:
                    return False
                digest.update(chunk)
                remaining -= len(chunk)
            return digest.digest() == handle.read(_HASH_BYTES)
    except OSError:
        return False


def _valid_header(header: bytes) -> bool:
    magic, version, _ = _PACK_HEADER.unpack(header)
    return bool(magic == b"PACK" and version in (2, 3))


def _read_index(index: Path, *, deep: bool) -> tuple[str | None, int, bytes]:
    """(problem, object count, the pack checksum the index records).

    Reads the header, the fan-out table and the trailer (the whole file when ``deep``).
    """
    size = index.stat().st_size
    with index.open("rb") as handle:
        head = handle.read(8 + _FANOUT_BYTES)
        handle.seek(max(size - _TRAILER_BYTES, 0))
        trailer = handle.read(_TRAILER_BYTES)
    if not size:
        return "is empty (0 bytes, what a power cut during a write leaves)", 0, b""
    if head[:4] == _INDEX_MAGIC:
        if size < 8 + _FANOUT_BYTES + _TRAILER_BYTES:
            return f"is cut short ({size} bytes)", 0, b""
        if struct.unpack(">L", head[4:8])[0] != 2:
            return "has an unknown version", 0, b""
        count = struct.unpack(">L", head[8 + _FANOUT_BYTES - 4 :])[0]
        # ids, CRCs and offsets per object; 8-byte offsets only past 2 GiB
        minimum = 8 + _FANOUT_BYTES + count * (_HASH_BYTES + 8) + _TRAILER_BYTES
        if size < minimum or (size - minimum) % 8:
            return f"is cut short or padded ({size} bytes for {count} objects)", 0, b""
    else:
        # version 1 has no magic: 256 counts, then (offset, id) pairs
        if size < _FANOUT_BYTES + _TRAILER_BYTES:
            return f"is cut short ({size} bytes)", 0, b""
        count = struct.unpack(">L", head[_FANOUT_BYTES - 4 : _FANOUT_BYTES])[0]
        if size != _FANOUT_BYTES + count * (_HASH_BYTES + 4) + _TRAILER_BYTES:
            zeros = not (head + trailer).strip(b"\0")
            what = "holds only zero bytes" if zeros else "is not a pack index"
            return f"{what} ({size} bytes), what a power cut can leave", 0, b""
    if deep:
        raw = index.read_bytes()
        if hashlib.sha1(raw[:-_HASH_BYTES]).digest() != raw[-_HASH_BYTES:]:
            return "does not match its own checksum (damaged on disk)", 0, b""
    return None, count, trailer[:_HASH_BYTES]


def _check_pack_data(pack: Path, count: int, recorded: bytes, *, deep: bool) -> str | None:
    size = pack.stat().st_size
    if size < _PACK_HEADER.size + _HASH_BYTES:
        return f"is too short to be a pack ({size} bytes), what a power cut can leave"
    with pack.open("rb") as handle:
        header = handle.read(_PACK_HEADER.size)
        handle.seek(size - _HASH_BYTES)
        trailer = handle.read(_HASH_BYTES)
    if not _valid_header(header):
        zeros = " (zero bytes)" if not header.strip(b"\0") else ""
        return f"does not start with a pack header{zeros}, what a power cut can leave"
    if _PACK_HEADER.unpack(header)[2] != count:
        return "holds another number of objects than its index lists"
    if trailer != recorded:
        return "is cut short or changed: its checksum is not the one its index records"
    if deep and not pack_is_whole(pack):
        return "does not match its own checksum (damaged on disk)"
    return None
