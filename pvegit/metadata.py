"""The metadata file: owner, group and mode of every collected path.

Git keeps only 644/755 and links, so ``.pvegit/metadata`` records the rest
as plain text, one line per path, sorted::

    # type mode owner group path
    d 0700 root root root/.ssh
    f 0600 root root root/.ssh/config
    l - root root root/.ssh/authorized_keys
    f - - - etc/pve/storage.cfg

Under /etc/pve pmxcfs forces owner and mode (and they read differently
without quorum), so they are recorded as ``-``. No mtimes: they change
without the content changing. Paths with control characters, quotes,
backslashes, bytes that are not UTF-8, or leading/trailing blanks are
written in double quotes with C-style escapes, as git itself quotes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pvegit.errors import CollectError
from pvegit.tarstream import Entry

METADATA_PATH = ".pvegit/metadata"
_HEADER = (
    "# pvegit metadata v1: owner, group and mode of each collected path (no mtimes).\n"
    "# Under etc/pve pmxcfs forces owner and mode, so they are shown as '-'.\n"
    "# type mode owner group path   (type: f file, d directory, l symlink)\n"
)
_KIND_LETTER = {"file": "f", "dir": "d", "symlink": "l"}
_LETTER_KIND = {letter: kind for kind, letter in _KIND_LETTER.items()}
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_UNESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "r": "\r"}


@dataclass(frozen=True)
class PathInfo:
    """Recorded owner, group and mode of one path (None where pmxcfs decides)."""

    path: str
    kind: str
    mode: int | None
    owner: str | None
    group: str | None


def is_pmxcfs_path(path: str) -> bool:
    """True for paths under /etc/pve, whose owner and mode pmxcfs forces."""
    return path == "etc/pve" or path.startswith("etc/pve/")


def quote_path(path: str) -> str:
    """Quote a path the way git does when it has unusual characters."""
    raw = path.encode("utf-8", "surrogateescape")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    needs_quotes = text is None or text != text.strip() or text.startswith('"')
    out: list[str] = []
    if text is not None:
        for char in text:
            if char in _ESCAPES:
                needs_quotes = True
                out.append(_ESCAPES[char])
            elif ord(char) < 0x20 or ord(char) == 0x7F:
                needs_quotes = True
                out.append(f"\\x{ord(char):02x}")
            else:
                out.append(char)
    else:
        for byte in raw:
            char = chr(byte)
            if char in _ESCAPES:
                out.append(_ESCAPES[char])
            elif byte < 0x20 or byte >= 0x7F:
                out.append(f"\\x{byte:02x}")
            else:
                out.append(char)
    joined = "".join(out)
    return f'"{joined}"' if needs_quotes else joined


def unquote_path(text: str) -> str:
    """Inverse of quote_path."""
    if not (text.startswith('"') and text.endswith('"') and len(text) >= 2):
        return text
    body = text[1:-1]
    raw = bytearray()
    index = 0
    while index < len(body):
        char = body[index]
        if char != "\\":
            raw += char.encode("utf-8")
            index += 1
            continue
        following = body[index + 1 : index + 2]
        if following == "x":
            raw.append(int(body[index + 2 : index + 4], 16))
            index += 4
        elif following in _UNESCAPES:
            raw += _UNESCAPES[following].encode()
            index += 2
        else:
            raise ValueError(f"bad escape in {text!r}")
    return bytes(raw).decode("utf-8", "surrogateescape")


def render_metadata(entries: Iterable[Entry]) -> bytes:
    """Render the metadata file for a snapshot's entries."""
    lines = []
    for entry in sorted(entries, key=lambda item: item.path.encode("utf-8", "surrogateescape")):
        letter = _KIND_LETTER[entry.kind]
        if is_pmxcfs_path(entry.path):
            fields = [letter, "-", "-", "-"]
        elif entry.kind == "symlink":
            fields = [letter, "-", entry.owner, entry.group]
        else:
            fields = [letter, f"{entry.mode:04o}", entry.owner, entry.group]
        lines.append(" ".join([*fields, quote_path(entry.path)]) + "\n")
    return (_HEADER + "".join(lines)).encode("utf-8", "surrogateescape")


def parse_metadata(data: bytes) -> dict[str, PathInfo]:
    """Parse a metadata file; raise CollectError on a malformed line."""
    infos: dict[str, PathInfo] = {}
    for number, line in enumerate(data.decode("utf-8", "surrogateescape").splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        fields = line.split(" ", 4)
        if len(fields) != 5 or fields[0] not in _LETTER_KIND:
            raise CollectError(f"{METADATA_PATH} line {number} is malformed: {line[:80]!r}")
        letter, mode, owner, group, quoted = fields
        try:
            path = unquote_path(quoted)
            mode_value = None if mode == "-" else int(mode, 8)
        except ValueError as err:
            raise CollectError(f"{METADATA_PATH} line {number} is malformed: {err}") from err
        infos[path] = PathInfo(
            path,
            _LETTER_KIND[letter],
            mode_value,
            None if owner == "-" else owner,
            None if group == "-" else group,
        )
    return infos


def owner_mode_changes(old: bytes, new: bytes) -> list[tuple[PathInfo, PathInfo]]:
    """Paths present in both metadata files whose type, owner, group or mode differ."""
    old_info = parse_metadata(old)
    new_info = parse_metadata(new)
    return [
        (old_info[path], new_info[path])
        for path in sorted(set(old_info) & set(new_info))
        if old_info[path] != new_info[path]
    ]
