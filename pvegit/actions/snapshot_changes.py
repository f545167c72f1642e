"""What a snapshot changes: the change list, the mass-deletion guard, the commit message.

Pure decisions on the trees before and after (no node, no state): which paths
were added, modified, deleted or only changed owner or mode; whether the
deletions are so many that the snapshot is held; what the commit says.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pvegit.errors import RefusedError
from pvegit.git.model import ChangeKind
from pvegit.git.repo import HostRepository
from pvegit.layout import METADATA_PATH, inventory_name, is_pvegit_path
from pvegit.node.collect import Collection
from pvegit.node.metadata import owner_mode_changes
from pvegit.node.tarstream import display_path
from pvegit.state.store import Run, RunStatus
from pvegit.textsafe import printable

if TYPE_CHECKING:
    from pvegit.actions.snapshot import SnapshotOptions

# A snapshot that deletes more than this share of at least this many files is held.
MASS_DELETION_SHARE = 0.5
MASS_DELETION_MINIMUM = 10
# How a run's error or warning starts when the guard held it, or was forced past it.
MASS_DELETION_HELD = "held: "
MASS_DELETION_FORCED = "forced past the mass-deletion guard: "
_SUBJECT_NAMES = 4


def describe_changes(
    repository: HostRepository,
    parent: str | None,
    parent_files: dict[str, tuple[int, str]],
    new_files: dict[str, tuple[int, str]],
    contents: dict[str, tuple[int, bytes]],
) -> list[tuple[str, ChangeKind]]:
    """(path, how it changed) for each changed path, sorted by path; OWNER_MODE: only
    owner/group/mode changed (read from the two metadata files, listed after the others)."""
    changes: list[tuple[str, ChangeKind]] = []
    for path in sorted(set(parent_files) | set(new_files)):
        if path == METADATA_PATH:
            continue
        old, new = parent_files.get(path), new_files.get(path)
        if old == new:
            continue
        if old is None:
            changes.append((path, ChangeKind.ADDED))
        elif new is None:
            changes.append((path, ChangeKind.DELETED))
        else:
            changes.append((path, ChangeKind.MODIFIED))
    if (
        parent is not None
        and METADATA_PATH in parent_files
        and (parent_files[METADATA_PATH] != new_files.get(METADATA_PATH))
    ):
        touched = {path for path, _ in changes}
        old_metadata = repository.read_blob(parent_files[METADATA_PATH][1])
        for _, info in owner_mode_changes(old_metadata, contents[METADATA_PATH][1]):
            if info.path not in touched:
                changes.append((info.path, ChangeKind.OWNER_MODE))
    return changes


def guard_mass_deletion(
    parent_files: dict[str, tuple[int, str]], deleted: list[str], force: bool
) -> str | None:
    """Hold a snapshot that deletes most files: raises RefusedError (its message starts
    with MASS_DELETION_HELD) unless ``force``; forced past it, returns the warning to
    record (starting with MASS_DELETION_FORCED); None when the guard has nothing to say."""
    existing = sum(1 for path in parent_files if not is_pvegit_path(path))
    if existing < MASS_DELETION_MINIMUM or len(deleted) <= existing * MASS_DELETION_SHARE:
        return None
    count = f"{len(deleted)} of {existing} files (e.g. /{display_path(deleted[0])})"
    if force:
        return f"{MASS_DELETION_FORCED}this snapshot deletes {count}"
    raise RefusedError(
        f"{MASS_DELETION_HELD}this snapshot would delete {count}. Nothing was committed. "
        "If the node really lost them, run the snapshot again with --force"
    )


def held_deletions(run: Run) -> str | None:
    """What the mass-deletion guard held ``run`` for ("40 of 60 files (e.g. /etc/x)"), or None."""
    match = _HELD.match(run.error or "") if run.status is RunStatus.REFUSED else None
    return match.group(1) if match else None


_HELD = re.compile(
    re.escape(MASS_DELETION_HELD) + r"this snapshot would delete (.+?)\. Nothing was committed",
    re.DOTALL,
)


def commit_message(
    host_name: str,
    changes: list[tuple[str, ChangeKind]],
    first: bool,
    file_count: int,
    run_id: int,
    options: SnapshotOptions,
    partial: bool,
    collection: Collection,
) -> str:
    """The commit message of a snapshot: a subject naming the changes, one line per
    change, what a partial run could not read, then the trailers (Run-Id, Trigger,
    Triggered-By, ``options.trailers``). Every line is made printable."""
    if first:
        subject = f"{host_name}: first snapshot, {file_count} files"
    else:
        names = [_short_name(path) for path, _ in changes]
        shown = ", ".join(names[:_SUBJECT_NAMES])
        if len(names) > _SUBJECT_NAMES:
            shown += f" and {len(names) - _SUBJECT_NAMES} more"
        noun = "file" if len(changes) == 1 else "files"
        subject = f"{host_name}: {len(changes)} {noun} changed: {shown}"
    lines = [subject, ""]
    if not first:
        lines += [f"{kind.value:>10}  /{display_path(path)}" for path, kind in changes]
        lines.append("")
    if partial:
        lines.append("Partial snapshot: some paths could not be read.")
        lines += [f"  unreadable: /{display_path(path)}" for path in collection.unreadable[:50]]
        lines += [f"  problem: {problem}" for problem in collection.problems[:50]]
        lines.append("")
    lines.append(f"Run-Id: {run_id}")
    lines.append(f"Trigger: {options.trigger}")
    if options.actor:
        lines.append(f"Triggered-By: {options.actor}")
    lines += [f"{key}: {value}" for key, value in options.trailers]
    # One line each: nothing from the node may add a line (a forged trailer) or drive a
    # terminal that shows the message (git log, pvegit show).
    return "\n".join(printable(line) for line in lines) + "\n"


def _short_name(path: str) -> str:
    name = inventory_name(path)
    if name is not None:
        return "inventory/" + name
    return display_path(path.rsplit("/", 1)[-1])
