"""What a changed file, or a file at a revision, may show: the one content model.

Every face that shows content renders from here (the web's commit, compare
and file pages, the API's diffs, the ``changed`` notification, ``pvegit
diff`` and ``show``), so a file is classified once, the same way everywhere:

* ``secret``: a secret file (pvegit.config.selection.is_secret, through the
  built-in links): named and sized, never shown;
* ``binary``: git's rule (a NUL byte in the first 8000 bytes); not shown on a
  page, and where a face writes its bytes (``pvegit show``) they are masked
  like a text file's;
* ``too-large``: more than the cap (a diff: both sides together; a file:
  itself), so a page or a terminal never gets megabytes;
* ``text``: shown, with the secret lines of pvegit.content.masking masked.

``reveal=True`` is the audited step (the caller writes the audit entry):
secret files become text like any other, nothing is masked. ``hidden`` says
whether anything was, or would have been, kept back, so a caller audits a
reveal only when it showed something.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace

from pvegit.config.selection import is_secret
from pvegit.content.masking import mask_lines
from pvegit.git.model import SYMLINK_MODE, ChangeKind, FileChange
from pvegit.git.repo import HostRepository

CONTEXT_LINES = 3
MAX_DIFF_BYTES = 2 * 1024 * 1024  # both sides of one diff together
MAX_SHOWN_BYTES = 1024 * 1024  # one file shown whole (pmxcfs's own limit per file)

# What git quotes in a name (quote.c): control characters, DEL, '"' and '\\'; here also
# C1 controls (a terminal may take U+009B for CSI) and bytes that are not UTF-8.
_GIT_QUOTED = re.compile('[\x00-\x1f"\\\\\x7f-\x9f\udc80-\udcff]')
_GIT_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\v": "\\v",
    "\f": "\\f",
    "\r": "\\r",
    '"': '\\"',
    "\\": "\\\\",
}


def is_binary(data: bytes) -> bool:
    """Git's rule: a NUL byte in the first 8000 bytes makes a file binary."""
    return b"\0" in data[:8000]


def _git_name(prefix: str, path: str) -> str:
    """``prefix + path`` as git writes a name in a diff: as it is, or in double quotes
    with C escapes (``"a/x\\ny"``, a byte that is not UTF-8 as ``\\351``) when it holds a
    control character, a quote, a backslash or bytes that are not UTF-8.

    So a name from the node stays on its header line (a newline in it cannot forge an
    added line), drives no terminal, and ``git apply`` reads the exact name back.
    """
    name = prefix + path
    if not _GIT_QUOTED.search(name):
        return name

    def escape(match: re.Match[str]) -> str:
        character = match.group()
        if character in _GIT_ESCAPES:
            return _GIT_ESCAPES[character]
        return "".join(f"\\{byte:03o}" for byte in character.encode("utf-8", "surrogateescape"))

    return '"' + _GIT_QUOTED.sub(escape, name) + '"'


@dataclass(frozen=True)
class DiffLine:
    """One line of a diff as it may be shown (a masked line has its value hidden)."""

    kind: str  # "context", "add", "delete", "hunk"
    old: int | None
    new: int | None
    text: str
    ending: str = "\n"  # the line's end in the file; "" for a last line without one
    masked: bool = False


@dataclass(frozen=True)
class FileDiff:
    """One changed path, classified, with its lines as they may be shown."""

    path: str
    change: ChangeKind  # ADDED, MODIFIED or DELETED
    kind: str  # text, binary, secret, too-large
    old_size: int
    new_size: int
    old_mode: int | None = None
    new_mode: int | None = None
    added: int = 0
    removed: int = 0
    lines: tuple[DiffLine, ...] = ()
    truncated: bool = False
    masked: int = 0  # lines of the diff whose secret value is masked
    hidden: bool = False  # a secret file or masked lines (whether revealed or not)
    revealed: bool = False

    @property
    def link(self) -> bool:
        return SYMLINK_MODE in (self.old_mode, self.new_mode)

    @property
    def anchor(self) -> str:
        return "file-" + "".join(char if char.isalnum() else "-" for char in self.path)

    def changed_lines(self) -> list[str]:
        """The added and removed lines, ``+text`` and ``-text`` (masked)."""
        return [
            ("+" if line.kind == "add" else "-") + line.text
            for line in self.lines
            if line.kind in ("add", "delete")
        ]

    def unified(self) -> str:
        """The diff as git prints it: ``diff --git`` header, then hunks (masked).

        Names are quoted as git quotes them (``_git_name``): the text stays one line
        per header line whatever the name, and ``git apply`` takes it.
        """
        old, new = _git_name("a/", self.path), _git_name("b/", self.path)
        header = [f"diff --git {old} {new}"]
        if self.change == ChangeKind.ADDED:
            header.append(f"new file mode {self.new_mode or 0:06o}")
        elif self.change == ChangeKind.DELETED:
            header.append(f"deleted file mode {self.old_mode or 0:06o}")
        elif self.old_mode != self.new_mode:
            header += [f"old mode {self.old_mode or 0:06o}", f"new mode {self.new_mode or 0:06o}"]
        sizes = f"{self.old_size} -> {self.new_size} bytes"
        if self.kind == "binary":
            header.append(f"Binary files {old} and {new} differ")
        elif self.kind == "secret":
            header.append(f"Secret files {old} and {new} differ ({sizes}, not shown)")
        elif self.kind == "too-large":
            header.append(f"Files {old} and {new} differ ({sizes}, too large to show)")
        if self.kind != "text" or not self.lines:
            return "\n".join(header) + "\n"
        # As git does: a tab ends a name with a space, for patch(1).
        old, new = (name + "\t" if " " in self.path else name for name in (old, new))
        body = [
            "--- " + ("/dev/null" if self.change == ChangeKind.ADDED else old) + "\n",
            "+++ " + ("/dev/null" if self.change == ChangeKind.DELETED else new) + "\n",
        ]
        signs = {"context": " ", "add": "+", "delete": "-"}
        for line in self.lines:
            if line.kind == "hunk":
                body.append(line.text + "\n")
                continue
            body.append(signs[line.kind] + line.text + line.ending)
            if not line.ending.endswith("\n"):
                body.append("\n\\ No newline at end of file\n")
        return "\n".join(header) + "\n" + "".join(body)


@dataclass(frozen=True)
class FileContent:
    """A file at a revision, classified, with its text (and bytes) as they may be shown."""

    path: str
    kind: str  # text, binary, secret, too-large
    size: int
    text: str | None = None  # for text: masked unless revealed
    # For text and binary (within the cap): the file whole as it may be written out
    # (``pvegit show``), masked unless revealed. A NUL byte makes a file binary, not
    # free of passwords, so a binary file is masked like a text file.
    data: bytes | None = None
    masked: int = 0  # lines masked in text and data
    hidden: bool = False
    revealed: bool = False


def _split(data: bytes, errors: str = "replace") -> tuple[list[str], list[str], list[str]]:
    """The lines with their ends (compared, as git does), without (shown), and the ends.

    ``errors``: how bytes that are not UTF-8 are decoded ("surrogateescape" keeps them).
    """
    # Lines end at "\n" only, as git's do: str.splitlines also breaks at "\r", "\f",
    # "\x1c".."\x1e", "\x85" and "\u2028", which made hunks git cannot apply. A "\r"
    # before the "\n" belongs to the line's end, so a CRLF file reads as lines.
    text = data.decode("utf-8", errors)
    pieces = text.split("\n")
    whole = [piece + "\n" for piece in pieces[:-1]]
    if pieces[-1]:
        whole.append(pieces[-1])
    ends = [
        "\r\n" if line.endswith("\r\n") else "\n" if line.endswith("\n") else "" for line in whole
    ]
    bare = [line[: len(line) - len(end)] for line, end in zip(whole, ends, strict=True)]
    return whole, bare, ends


def _range(start: int, stop: int) -> str:
    """A hunk header's range, as difflib.unified_diff (and git) write it."""
    length = stop - start
    beginning = start + 1 if length else start
    return f"{beginning}" if length == 1 else f"{beginning},{length}"


def diff_contents(
    change: FileChange,
    old: bytes,
    new: bytes,
    *,
    reveal: bool = False,
    max_lines: int | None = None,
    context: int = CONTEXT_LINES,
) -> FileDiff:
    """Classify one change and, for text, diff it line by line, masked unless ``reveal``.

    The lines are compared as they are in the files, then shown masked, so a
    changed password is a changed line whose value is hidden on both sides.
    ``max_lines`` cuts a long diff (``truncated`` says so).
    """
    secret = is_secret(change.path)
    base = FileDiff(
        path=change.path,
        change=change.change,
        kind="text",
        old_size=len(old),
        new_size=len(new),
        old_mode=change.old_mode,
        new_mode=change.new_mode,
        hidden=secret,
        revealed=reveal,
    )
    if secret and not reveal:
        return replace(base, kind="secret")
    if is_binary(old) or is_binary(new):
        return replace(base, kind="binary")
    if len(old) + len(new) > MAX_DIFF_BYTES:
        return replace(base, kind="too-large")
    old_whole, old_lines, old_ends = _split(old)
    new_whole, new_lines, new_ends = _split(new)
    old_shown, old_masked = mask_lines(change.path, old_lines)
    new_shown, new_masked = mask_lines(change.path, new_lines)
    hidden_lines = old_masked + new_masked
    if reveal:
        old_shown, new_shown = tuple(old_lines), tuple(new_lines)

    def line(kind: str, old_number: int | None, new_number: int | None) -> DiffLine:
        if old_number is not None:
            shown, bare, end = old_shown[old_number], old_lines[old_number], old_ends[old_number]
        else:
            assert new_number is not None
            shown, bare, end = new_shown[new_number], new_lines[new_number], new_ends[new_number]
        return DiffLine(
            kind,
            None if old_number is None else old_number + 1,
            None if new_number is None else new_number + 1,
            shown,
            end,
            shown != bare,
        )

    lines: list[DiffLine] = []
    added = removed = 0
    matcher = difflib.SequenceMatcher(None, old_whole, new_whole, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        header = f"@@ -{_range(first[1], last[2])} +{_range(first[3], last[4])} @@"
        lines.append(DiffLine("hunk", None, None, header))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                lines.extend(line("context", i1 + k, j1 + k) for k in range(i2 - i1))
                continue
            lines.extend(line("delete", i, None) for i in range(i1, i2))
            lines.extend(line("add", None, j) for j in range(j1, j2))
            removed += i2 - i1
            added += j2 - j1
    truncated = max_lines is not None and len(lines) > max_lines
    shown_lines = tuple(lines[:max_lines] if truncated else lines)
    return replace(
        base,
        added=added,
        removed=removed,
        lines=shown_lines,
        truncated=truncated,
        masked=sum(line.masked for line in shown_lines),
        hidden=secret or hidden_lines > 0,
    )


def read_diff(
    repository: HostRepository,
    change: FileChange,
    *,
    reveal: bool = False,
    max_lines: int | None = None,
) -> FileDiff:
    """``diff_contents`` of a change read from ``repository``."""
    old = repository.read_blob(change.old_id) if change.old_id else b""
    new = repository.read_blob(change.new_id) if change.new_id else b""
    return diff_contents(change, old, new, reveal=reveal, max_lines=max_lines)


def file_content(
    path: str,
    data: bytes,
    *,
    reveal: bool = False,
    max_bytes: int | None = MAX_SHOWN_BYTES,
) -> FileContent:
    """Classify the file at ``path`` and give its text and bytes, masked unless ``reveal``.

    Whatever its kind, a file's bytes are masked (a binary file's as well), so a
    face that writes them whole never writes a password line the text would mask.
    ``max_bytes=None``: no cap (``pvegit show`` writes any file whole); over the
    cap a file is named and sized only (``too-large``, or ``binary``).
    """
    secret = is_secret(path)
    base = FileContent(path=path, kind="text", size=len(data), hidden=secret, revealed=reveal)
    if secret and not reveal:
        return replace(base, kind="secret")
    kind = "binary" if is_binary(data) else "text"
    if max_bytes is not None and len(data) > max_bytes:
        return replace(base, kind="too-large" if kind == "text" else kind)
    _, lines, ends = _split(data, "surrogateescape")
    shown, masked = mask_lines(path, lines)
    hidden = secret or masked > 0
    if reveal or not masked:
        shown_data = data
    else:
        joined = "".join(line + end for line, end in zip(shown, ends, strict=True))
        shown_data = joined.encode("utf-8", "surrogateescape")
    text = shown_data.decode("utf-8", "replace") if kind == "text" else None
    return replace(
        base,
        kind=kind,
        text=text,
        data=shown_data,
        masked=0 if reveal else masked,
        hidden=hidden,
    )
