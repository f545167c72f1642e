"""Diffs as the commit and compare pages show them: unified or side by side.

The engine's content model (pvegit.content.filediff) classifies each file (text,
binary, secret, too large) and masks secret lines; this module only lays its
lines out for a page: the side-by-side rows and the owner/mode table.
"""

from __future__ import annotations

from dataclasses import dataclass

from pvegit.content.filediff import DiffLine, FileDiff, read_diff
from pvegit.git.repo import FileChange, HostRepository
from pvegit.layout import METADATA_PATH
from pvegit.node.metadata import PathInfo, owner_mode_changes

MAX_ROWS = 4000


@dataclass(frozen=True)
class SplitRow:
    left: DiffLine | None
    right: DiffLine | None
    kind: str  # "context", "change", "hunk"


@dataclass(frozen=True)
class ShownDiff:
    """One changed path on a page: the engine's diff and, side by side, its rows."""

    file: FileDiff
    rows: tuple[SplitRow, ...] = ()


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


def split_rows(lines: tuple[DiffLine, ...]) -> tuple[SplitRow, ...]:
    """Pair each run of removed lines with the added lines that follow it."""
    rows: list[SplitRow] = []
    deleted: list[DiffLine] = []
    inserted: list[DiffLine] = []

    def flush() -> None:
        for index in range(max(len(deleted), len(inserted))):
            rows.append(
                SplitRow(
                    deleted[index] if index < len(deleted) else None,
                    inserted[index] if index < len(inserted) else None,
                    "change",
                )
            )
        deleted.clear()
        inserted.clear()

    for line in lines:
        if line.kind == "delete":
            if inserted:  # a removal after additions starts a new run
                flush()
            deleted.append(line)
        elif line.kind == "add":
            inserted.append(line)
        else:
            flush()
            rows.append(SplitRow(line, line, line.kind))
    flush()
    return tuple(rows)


def shown_diff(repository: HostRepository, change: FileChange, *, split: bool) -> ShownDiff:
    """One change as a page shows it (masked, cut at MAX_ROWS lines)."""
    diff = read_diff(repository, change, max_lines=MAX_ROWS)
    return ShownDiff(diff, split_rows(diff.lines) if split else ())


def build_diffs(
    repository: HostRepository, changes: list[FileChange], *, split: bool
) -> tuple[list[ShownDiff], list[ModeChange]]:
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
        diffs.append(shown_diff(repository, change, split=split))
    return diffs, modes
