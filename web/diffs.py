"""Diffs as the commit and compare pages show them: unified or side by side.

Secret files are summarised (changed, sizes), never shown; binary files too.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from pvegit.categories import is_secret
from pvegit.metadata import METADATA_PATH, PathInfo, owner_mode_changes
from pvegit.repo import SYMLINK_MODE, FileChange, HostRepository, is_binary

CONTEXT_LINES = 3
MAX_DIFF_BYTES = 2 * 1024 * 1024
MAX_ROWS = 4000


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "context", "add", "delete", "hunk"
    old: int | None
    new: int | None
    text: str


@dataclass(frozen=True)
class SplitRow:
    left: DiffLine | None
    right: DiffLine | None
    kind: str  # "context", "change", "hunk"


@dataclass(frozen=True)
class FileDiff:
    """One changed path."""

    path: str
    change: str  # added, modified, deleted
    kind: str  # text, binary, secret, too-large
    added: int
    removed: int
    old_size: int
    new_size: int
    link: bool
    lines: tuple[DiffLine, ...] = ()
    rows: tuple[SplitRow, ...] = ()
    truncated: bool = False

    @property
    def anchor(self) -> str:
        return "file-" + "".join(char if char.isalnum() else "-" for char in self.path)


@dataclass(frozen=True)
class ModeChange:
    """A path whose owner, group or mode changed (recorded in .pvegit/metadata)."""

    path: str
    old: PathInfo
    new: PathInfo

    @staticmethod
    def describe(info: PathInfo) -> str:
        mode = f"{info.mode:04o}" if info.mode is not None else "-"
        return f"{mode} {info.owner or '-'}:{info.group or '-'}"


def _decode(data: bytes) -> list[str]:
    return data.decode("utf-8", "replace").splitlines()


def file_diff(repository: HostRepository, change: FileChange, *, split: bool) -> FileDiff:
    old = repository.read_blob(change.old_id) if change.old_id else b""
    new = repository.read_blob(change.new_id) if change.new_id else b""
    link = SYMLINK_MODE in (change.old_mode, change.new_mode)
    base = {
        "path": change.path,
        "change": change.change,
        "old_size": len(old),
        "new_size": len(new),
        "link": link,
    }
    if is_secret(change.path):
        return FileDiff(kind="secret", added=0, removed=0, **base)  # type: ignore[arg-type]
    if is_binary(old) or is_binary(new):
        return FileDiff(kind="binary", added=0, removed=0, **base)  # type: ignore[arg-type]
    if len(old) + len(new) > MAX_DIFF_BYTES:
        return FileDiff(kind="too-large", added=0, removed=0, **base)  # type: ignore[arg-type]
    old_lines, new_lines = _decode(old), _decode(new)
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    lines: list[DiffLine] = []
    rows: list[SplitRow] = []
    added = removed = 0
    for group in matcher.get_grouped_opcodes(CONTEXT_LINES):
        first, last = group[0], group[-1]
        header = f"@@ -{first[1] + 1},{last[2] - first[1]} +{first[3] + 1},{last[4] - first[3]} @@"
        hunk = DiffLine("hunk", None, None, header)
        lines.append(hunk)
        rows.append(SplitRow(hunk, hunk, "hunk"))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                for offset in range(i2 - i1):
                    line = DiffLine(
                        "context", i1 + offset + 1, j1 + offset + 1, old_lines[i1 + offset]
                    )
                    lines.append(line)
                    rows.append(SplitRow(line, line, "context"))
                continue
            deleted = [DiffLine("delete", i + 1, None, old_lines[i]) for i in range(i1, i2)]
            inserted = [DiffLine("add", None, j + 1, new_lines[j]) for j in range(j1, j2)]
            removed += len(deleted)
            added += len(inserted)
            lines.extend(deleted)
            lines.extend(inserted)
            for index in range(max(len(deleted), len(inserted))):
                rows.append(
                    SplitRow(
                        deleted[index] if index < len(deleted) else None,
                        inserted[index] if index < len(inserted) else None,
                        "change",
                    )
                )
    truncated = len(lines) > MAX_ROWS
    return FileDiff(
        kind="text",
        added=added,
        removed=removed,
        lines=tuple(lines[:MAX_ROWS]) if not split else (),
        rows=tuple(rows[:MAX_ROWS]) if split else (),
        truncated=truncated,
        **base,  # type: ignore[arg-type]
    )


def build_diffs(
    repository: HostRepository, changes: list[FileChange], *, split: bool
) -> tuple[list[FileDiff], list[ModeChange]]:
    """File diffs (pvegit's metadata file apart) and the owner/mode changes it records."""
    diffs = []
    modes: list[ModeChange] = []
    for change in changes:
        if change.path == METADATA_PATH:
            if change.old_id and change.new_id:
                old = repository.read_blob(change.old_id)
                new = repository.read_blob(change.new_id)
                modes = [ModeChange(a.path, a, b) for a, b in owner_mode_changes(old, new)]
            continue
        diffs.append(file_diff(repository, change, split=split))
    return diffs, modes
