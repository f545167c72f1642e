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
Owner and group names come from the node too: they are quoted the same way,
and also when they hold a space, are empty or are a lone ``-``, so a name can
never end its field or its line early. A line that does not parse (written
before names were quoted) or names a path that is not clean and relative is
skipped, never an error: old revisions stay readable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pvegit.layout import METADATA_PATH
from pvegit.node.tarstream import Entry, check_member_name

_HEADER = (
    "# pvegit metadata v1: owner, group and mode of each collected path (no mtimes).\n"
    "# Under etc/pve pmxcfs forces owner and mode, so they are shown as '-'.\n"
    "# type mode owner group path   (type: f file, d directory, l symlink)\n"
)
_KIND_LETTER = {"file": "f", "dir": "d", "symlink": "l"}
_LETTER_KIND = {letter: kind for kind, letter in _KIND_LETTER.items()}
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_MODE = re.compile(r"[0-7]{3,4}")
# Printable ASCII but the quote and the backslash: a name made of these alone is
# written as it is (the common case, answered without the loop below).
_PLAIN = re.compile(r"[ !#-\[\]-~]*")
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
    """True for /etc/pve and the paths below it: pmxcfs's mount, which forces owner
    and mode, needs quorum to write and is shared by every node of a cluster.

    Takes a path as in the tree (``etc/pve/storage.cfg``) or as on the node
    (``/etc/pve/storage.cfg``); ``etc/pvefoo`` is not below it.
    """
    relative = path.removeprefix("/")
    return relative == "etc/pve" or relative.startswith("etc/pve/")


def quote_path(path: str) -> str:
    """Quote a path the way git does when it has unusual characters."""
    return _quote(path, force=False)


def quote_name(name: str) -> str:
    """An owner or group name as one metadata field: quoted like a path, and also
    when it holds a space, is empty or is ``-`` (which means "not recorded")."""
    return _quote(name, force=" " in name or name in ("", "-"))


def _quote(path: str, *, force: bool) -> str:
    if not force and _PLAIN.fullmatch(path) and path == path.strip():
        return path
    raw = path.encode("utf-8", "surrogateescape")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    needs_quotes = force or text is None or text != text.strip() or text.startswith('"')
    out: list[str] = []
    if text is not None:
        for char in text:
            if char in _ESCAPES:
                needs_quotes = True
                out.append(_ESCAPES[char])
            elif ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F:  # C0, DEL and C1 controls
                needs_quotes = True
                out.append("".join(f"\\x{byte:02x}" for byte in char.encode()))
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
            raw += char.encode("utf-8", "surrogateescape")
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
            fields = [letter, "-", quote_name(entry.owner), quote_name(entry.group)]
        else:
            fields = [letter, f"{entry.mode:04o}", quote_name(entry.owner), quote_name(entry.group)]
        lines.append(" ".join([*fields, quote_path(entry.path)]) + "\n")
    return (_HEADER + "".join(lines)).encode("utf-8", "surrogateescape")


def parse_metadata(data: bytes, problems: list[str] | None = None) -> dict[str, PathInfo]:
    """Parse a metadata file, skipping what cannot be trusted (never raises).

    A malformed line (an old revision's unquoted owner with a newline or a
    space in it), a path that is not clean and relative (``../x``, ``/x``),
    and a path listed twice (a crafted name adding a line of its own) are
    left out; what was left out is added to ``problems`` when it is given.
    """
    infos: dict[str, PathInfo] = {}
    repeated: set[str] = set()
    skipped = problems if problems is not None else []
    # Lines end at "\n" only: splitlines() would also cut at U+0085, U+2028 and others.
    for number, line in enumerate(data.decode("utf-8", "surrogateescape").split("\n"), 1):
        if not line or line.startswith("#"):
            continue
        try:
            info = _parse_line(line)
        except ValueError as why:
            skipped.append(f"{METADATA_PATH} line {number} skipped: {why}")
            continue
        if info.path in infos:
            repeated.add(info.path)
        infos[info.path] = info
    for path in repeated:
        skipped.append(f"{METADATA_PATH}: {quote_path(path)} is listed twice; both lines skipped")
        del infos[path]
    return infos


def _parse_line(line: str) -> PathInfo:
    """One ``type mode owner group path`` line; ValueError saying what is wrong."""
    fields: list[str | None] = []  # None: "-", not recorded (a quoted "-" is a name)
    rest = line
    for _ in range(4):
        if rest.startswith('"'):
            end = _closing_quote(rest)
            fields.append(unquote_path(rest[: end + 1]))
            rest = rest[end + 1 :]
            if not rest.startswith(" "):
                raise ValueError("a quoted field runs into the next")
            rest = rest[1:]
        else:
            field, separator, rest = rest.partition(" ")
            if not separator:
                raise ValueError("fewer than 5 fields")
            fields.append(None if field == "-" else field)
    letter, mode, owner, group = fields
    if letter not in _LETTER_KIND:
        raise ValueError(f"unknown type {letter!r}")
    if mode is not None and not _MODE.fullmatch(mode):
        raise ValueError(f"mode {mode!r} is not octal permission bits")
    path = unquote_path(rest)
    if not path or check_member_name(path) != path:
        raise ValueError(f"path {quote_path(path)} is not clean and relative")
    permissions = None if mode is None else int(mode, 8)
    return PathInfo(path, _LETTER_KIND[letter], permissions, owner, group)


def _closing_quote(text: str) -> int:
    """Where the quoted field at the start of ``text`` ends; ValueError if it does not."""
    index = 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
        elif text[index] == '"':
            return index
        else:
            index += 1
    raise ValueError("an unclosed quote")


def owner_mode_changes(old: bytes, new: bytes) -> list[tuple[PathInfo, PathInfo]]:
    """Paths present in both metadata files whose type, owner, group or mode differ."""
    old_info = parse_metadata(old)
    new_info = parse_metadata(new)
    return [
        (old_info[path], new_info[path])
        for path in sorted(set(old_info) & set(new_info))
        if old_info[path] != new_info[path]
    ]
