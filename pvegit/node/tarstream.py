"""Read a node's tar stream into memory, safely.

The stream comes from a node, and a node is not trusted: it is parsed in
stream mode (``r|``), never extracted, with every member name checked and
every size capped. What is wrong with a member is reported as a problem and
the member is skipped; a stream that is broken or cut off raises CollectError.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Literal

from pvegit.config.selection import matches_any
from pvegit.errors import CollectError
from pvegit.layout import PVEGIT_DIR
from pvegit.textsafe import printable

EntryKind = Literal["file", "dir", "symlink"]

DEFAULT_MAX_FILE_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_TOTAL_BYTES = 256 * 1024 * 1024
# Names git fsck --strict refuses as tree entries.
_FORBIDDEN_COMPONENTS = {".git", "git~1", ".", ".."}


@dataclass(frozen=True)
class Entry:
    """One collected filesystem object, path relative to the node's root."""

    path: str  # str with surrogate escapes for bytes that are not UTF-8
    kind: EntryKind
    data: bytes = b""  # file content, or the target of a symlink
    mode: int = 0o644  # permission bits
    owner: str = "root"
    group: str = "root"

    @property
    def executable(self) -> bool:
        return self.kind == "file" and bool(self.mode & 0o111)


@dataclass
class StreamResult:
    """Entries read from one stream and what was wrong with the rest."""

    entries: dict[str, Entry] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    bytes_read: int = 0  # file content, without tar headers


_TAIL_BYTES = 64 * 1024
_END_OF_ARCHIVE = 1024  # two zero blocks


_READS_AT_END = 64  # reads after the end before a stream counts as lying about sizes


class _CappedReader:
    """A read-only file object that refuses to read past a limit and keeps its tail."""

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self.count = 0
        self.tail = bytearray()
        self._reads_at_end = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._limit + 1 - self.count
        chunk = self._stream.read(max(0, min(size, self._limit + 1 - self.count)))
        if not chunk and size:
            # tarfile skips a member by reading its claimed size block by block, even
            # past the end: a header claiming terabytes would spin here for hours.
            self._reads_at_end += 1
            if self._reads_at_end > _READS_AT_END:
                raise CollectError(
                    "the node's tar stream ended inside a member whose header claims "
                    "more data: a corrupt or hostile stream; nothing was committed"
                )
        self.count += len(chunk)
        if self.count > self._limit:
            raise CollectError(
                f"the node sent more than {self._limit // (1024 * 1024)} MiB; "
                "exclude large paths or raise the limit"
            )
        self.tail += chunk
        del self.tail[:-_TAIL_BYTES]
        return chunk

    def drain(self) -> None:
        while self.read(65536):
            pass


def _check_end_of_archive(reader: _CappedReader, offset: int) -> None:
    """tarfile takes a stream cut between two members for a clean end: check the zero blocks."""
    reader.drain()
    trailer = reader.count - offset
    if trailer < _END_OF_ARCHIVE or trailer > len(reader.tail) or any(reader.tail[-trailer:]):
        raise CollectError(
            "the node's tar stream broke off (no end-of-archive marker after "
            f"{offset} bytes); nothing from this run was committed"
        )


_ESCAPE = re.compile(r"\\x([0-1][0-9a-fA-F]|7[fF]|[89a-fA-F][0-9a-fA-F])")


def escape_undecodable(path: str) -> str:
    """``path`` as valid UTF-8: the bytes that are not UTF-8 (held as surrogate escapes)
    written as \\xNN."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def display_path(path: str) -> str:
    """A path fit for messages, logs and URLs: one line, valid UTF-8, no control characters.

    Control characters (a newline or an escape sequence in a name) and bytes
    that are not UTF-8 are shown as \\xNN (pvegit.textsafe.printable);
    parse_display_path turns them back.
    """
    return printable(path)


def parse_display_path(text: str) -> str:
    """The inverse of display_path (a name written with a literal \\xNN is taken as escaped)."""

    def byte(match: re.Match[str]) -> str:
        value = int(match.group(1), 16)
        return chr(0xDC00 + value) if value >= 0x80 else chr(value)

    # A C1 character was shown as its two UTF-8 bytes: decode them back into it.
    raw = _ESCAPE.sub(byte, text).encode("utf-8", "surrogateescape")
    return raw.decode("utf-8", "surrogateescape")


def check_member_name(name: str) -> str:
    """Return the normalized relative name, or raise ValueError saying what is wrong."""
    name = check_relative_path(name)
    if name.split("/", 1)[0] == PVEGIT_DIR:
        raise ValueError("name inside pvegit's own folder")
    return name


def check_relative_path(name: str) -> str:
    """The normalized form of a relative path with no ``..``, ``.git`` or empty parts;
    ValueError saying what is wrong with any other."""
    if name.startswith("/"):
        raise ValueError("absolute name")
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/")
    if not name:
        raise ValueError("empty name")
    parts = name.split("/")
    for part in parts:
        if part == "":
            raise ValueError("empty path component")
        if part.lower() in _FORBIDDEN_COMPONENTS:
            raise ValueError(f"forbidden path component {part!r}")
    return name


def read_tar_stream(
    stream: IO[bytes],
    *,
    requested: Iterable[str],
    excludes: Iterable[str] = (),
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    on_member: Callable[[int], None] | None = None,
) -> StreamResult:
    """Parse a tar stream into entries.

    ``requested`` are the patterns that were asked for: members outside them
    are refused, as are excluded ones. Raises CollectError when the stream is
    broken, cut off or larger than ``max_total_bytes``. ``on_member`` is called with
    the number of members read so far, every 25 members.
    """
    requested = tuple(requested)
    excludes = tuple(excludes)
    result = StreamResult()
    # Headers, padding and pax records come on top of file data.
    reader = _CappedReader(stream, max_total_bytes + 4 * 1024 * 1024)
    try:
        archive = tarfile.open(  # type: ignore[call-overload]  # noqa: SIM115
            fileobj=reader,
            mode="r|",
            encoding="utf-8",
            errors="surrogateescape",
        )
    except tarfile.ReadError as err:
        if reader.count == 0:
            return result  # nothing matched on the node: an empty stream
        raise CollectError(f"the node's tar stream is not a tar archive ({err})") from err
    except (ValueError, OverflowError) as err:  # tarfile decoding a damaged first header
        raise CollectError(f"the node's tar stream is corrupt ({err})") from err
    try:
        with archive:
            for count, member in enumerate(archive, 1):
                _read_member(archive, member, result, requested, excludes, max_file_bytes)
                if result.bytes_read > max_total_bytes:
                    raise CollectError(
                        f"the node sent more than {max_total_bytes // (1024 * 1024)} MiB of "
                        "files; exclude large paths or raise the limit"
                    )
                if on_member is not None and count % 25 == 0:
                    on_member(count)
            _check_end_of_archive(reader, archive.offset)
    except (tarfile.TarError, EOFError, OSError, ValueError, OverflowError) as err:
        # ValueError: tarfile decoding a damaged pax record (found by bench/fuzz_tar.py)
        raise CollectError(f"the node's tar stream broke off or is corrupt ({err})") from err
    _drop_conflicts(result)
    return result


def _read_member(
    archive: tarfile.TarFile,
    member: tarfile.TarInfo,
    result: StreamResult,
    requested: tuple[str, ...],
    excludes: tuple[str, ...],
    max_file_bytes: int,
) -> None:
    shown = display_path(member.name)
    try:
        name = check_member_name(member.name)
    except ValueError as why:
        result.problems.append(f"refused {shown!r}: {why}")
        return
    if requested and not matches_any(requested, name):
        result.problems.append(f"refused {shown!r}: not a requested path")
        return
    if excludes and matches_any(excludes, name):
        return
    owner = member.uname or str(member.uid)
    group = member.gname or str(member.gid)
    mode = member.mode & 0o7777
    if member.isdir():
        result.entries[name] = Entry(name, "dir", b"", mode, owner, group)
    elif member.issym():
        target = member.linkname.encode("utf-8", "surrogateescape")
        result.entries[name] = Entry(name, "symlink", target, 0o777, owner, group)
    elif member.isreg():
        if member.size > max_file_bytes:
            result.problems.append(
                f"skipped {shown!r}: {member.size} bytes is over the "
                f"{max_file_bytes // (1024 * 1024)} MiB per-file limit"
            )
            return
        handle = archive.extractfile(member)
        data = handle.read() if handle is not None else b""
        if len(data) != member.size:
            raise CollectError(f"the node's tar stream broke off inside {shown!r}")
        result.bytes_read += len(data)
        result.entries[name] = Entry(name, "file", data, mode, owner, group)
    else:
        kind = "hard link" if member.islnk() else "device, fifo or other special file"
        result.problems.append(f"skipped {shown!r}: {kind}, not a regular file or link")


def _drop_conflicts(result: StreamResult) -> None:
    """Refuse entries below a file or symlink (a tree cannot hold both)."""
    leaves = {path for path, entry in result.entries.items() if entry.kind != "dir"}
    for path in list(result.entries):
        parent = path
        while "/" in parent:
            parent = parent.rsplit("/", 1)[0]
            if parent in leaves:
                del result.entries[path]
                result.problems.append(
                    f"refused {display_path(path)!r}: below {display_path(parent)!r}, "
                    "which is not a directory"
                )
                break
