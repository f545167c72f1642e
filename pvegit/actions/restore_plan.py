"""Plan a restore and preview it: what each path would become, and the safety rails.

A plan is made against what the node has now (``read_live`` in restore_write.py)
and writes nothing. The rails, each named in the preview and overridable:

* ``/etc/network/interfaces`` is written as ``interfaces.new`` (Proxmox applies
  it on reboot or ``ifreload -a``) unless ``write_interfaces``;
* ``corosync.conf`` gets its ``config_version`` raised above the running one
  (pmxcfs ignores a file that does not raise it) unless ``keep_corosync_version``;
* hardware-bound files (NIC .link files included) and secrets are restored only
  when named exactly;
* what Proxmox VE 8 and 9 read differently (HA groups onto a PVE 9 node, PVE 9's
  files onto a PVE 8 node, APT sources of another Debian release) is written
  with a warning in the preview (``release.restore_note``);
* files the node has but the revision does not are deleted only with ``delete``;
* pvegit's own access on the node (authorized_keys, its programs) is never restored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from pvegit.actions.release import release_of_commit, restore_note
from pvegit.config.categories import HARDWARE_BOUND
from pvegit.config.selection import Selection, is_runtime, is_secret, matches_any
from pvegit.errors import ConfigError
from pvegit.git.repo import SYMLINK_MODE, HostRepository
from pvegit.layout import METADATA_PATH, is_pvegit_path
from pvegit.node.metadata import PathInfo, is_pmxcfs_path, parse_metadata
from pvegit.node.restore_program import is_access_path
from pvegit.node.tarstream import display_path

INTERFACES = "etc/network/interfaces"
COROSYNC = ("etc/pve/corosync.conf", "etc/corosync/corosync.conf")
_VERSION = re.compile(r"^(\s*config_version\s*:\s*)(\d+)", re.MULTILINE)


@dataclass(frozen=True)
class RestoreOptions:
    """What the user allowed beyond the safe defaults."""

    write_interfaces: bool = False
    keep_corosync_version: bool = False
    delete: bool = False
    # The pre-restore snapshot may record a mass deletion (the node lost most of
    # its files): the mass-deletion guard would hold it, and the restore with it.
    accept_deletions: bool = False


@dataclass(frozen=True)
class Step:
    """One path of a restore plan."""

    path: str  # where it is written on the node (tree form)
    source: str  # the path in the revision
    action: str  # create, change, delete, unchanged, skip
    data: bytes = b""
    symlink: bool = False
    info: PathInfo | None = None
    note: str = ""  # why it is skipped or altered


@dataclass
class RestorePlan:
    """What a restore of ``revision`` (a full commit id) does, path by path."""

    revision: str
    steps: list[Step] = field(default_factory=list)

    @property
    def writes(self) -> list[Step]:
        """The steps that change the node (create, change, delete), in plan order."""
        return [step for step in self.steps if step.action in ("create", "change", "delete")]


def wanted_paths(paths: Sequence[str], files: dict[str, tuple[int, str]]) -> list[tuple[str, bool]]:
    """(path in the revision, named exactly) for every file under ``paths``, sorted.

    Raises ConfigError for a path the revision does not hold.
    """
    found: dict[str, bool] = {}
    for wanted in paths:
        if wanted in files:
            found[wanted] = True
            continue
        below = [path for path in files if path.startswith(wanted + "/")]
        if not below:
            raise ConfigError(f"/{wanted} is not in this revision (nothing to restore)")
        for path in below:
            found.setdefault(path, False)
    return sorted(found.items())


def plan_restore(
    repository: HostRepository,
    revision: str,
    paths: Sequence[str],
    live: dict[str, tuple[bytes, bool]],
    options: RestoreOptions,
    selection: Selection | None = None,
) -> RestorePlan:
    """Decide, path by path, what a restore would do (nothing is written).

    ``selection`` is what the host's snapshots collect: ``delete`` only removes
    files a snapshot would have recorded (never an excluded file, a secret the
    host does not collect, or pmxcfs's status and runtime files, which no
    revision holds).
    """
    commit_id = repository.resolve(revision)
    files = repository.file_ids(commit_id)
    infos: dict[str, PathInfo] = {}
    if METADATA_PATH in files:
        infos = parse_metadata(repository.read_blob(files[METADATA_PATH][1]))
    plan = RestorePlan(commit_id)
    # The node's major version as its newest snapshot shows it.
    node_release = release_of_commit(repository, repository.head())
    for source, named in wanted_paths(paths, files):
        if is_pvegit_path(source) or is_runtime(source):
            continue
        mode, blob = files[source]
        if mode == SYMLINK_MODE and is_pmxcfs_path(source):
            plan.steps.append(
                Step(
                    source, source, "skip", note="pmxcfs makes its own links (local, qemu-server…)"
                )
            )
            continue
        if is_access_path(source):
            plan.steps.append(
                Step(source, source, "skip", note="pvegit's own access on the node: not restored")
            )
            continue
        data = repository.read_blob(blob)
        target, note = source, ""
        if is_secret(source) and not named:
            plan.steps.append(Step(source, source, "skip", note="secret: name it to restore it"))
            continue
        if matches_any(HARDWARE_BOUND, source) and not named:
            plan.steps.append(
                Step(
                    source, source, "skip", note="bound to the old hardware: name it to restore it"
                )
            )
            continue
        if source == INTERFACES and not options.write_interfaces:
            target = INTERFACES + ".new"
            note = "written as interfaces.new: applied on reboot or with 'ifreload -a'"
        if (
            source in COROSYNC
            and not options.keep_corosync_version
            and live.get(source) != (data, False)  # unchanged: no write, no reload
        ):
            running = live.get(source, (b"", False))[0]
            data, note = _raise_corosync_version(data, running)
        warning = restore_note(source, data, node_release)
        note = "; ".join(part for part in (note, warning) if part)
        current = live.get(target)
        symlink = mode == SYMLINK_MODE
        if current is None:
            action = "create"
        elif current == (data, symlink):
            action = "unchanged"
        else:
            action = "change"
        plan.steps.append(Step(target, source, action, data, symlink, infos.get(source), note))
    restored = {step.path for step in plan.steps}
    collects_secrets = any(is_secret(path) for path in files)
    for wanted in paths:
        for path in sorted(live):
            if (
                (path == wanted or path.startswith(wanted + "/"))
                and path not in restored
                and (path not in files)
                and not is_access_path(path)
                and _recorded_if_there(path, selection, collects_secrets)
            ):
                if options.delete:
                    plan.steps.append(Step(path, path, "delete", note="not in this revision"))
                else:
                    plan.steps.append(
                        Step(
                            path, path, "skip", note="not in this revision: kept (--delete removes)"
                        )
                    )
    return plan


def _recorded_if_there(path: str, selection: Selection | None, collects_secrets: bool) -> bool:
    """Would a snapshot have recorded ``path``? Only then does its absence from a
    revision mean it was not there (and ``delete`` may remove it)."""
    if is_runtime(path) or is_pvegit_path(path):
        return False
    if selection is not None:
        return matches_any(selection.paths, path) and not matches_any(selection.excludes, path)
    return collects_secrets or not is_secret(path)


def _raise_corosync_version(data: bytes, running: bytes) -> tuple[bytes, str]:
    text = data.decode("utf-8", "replace")
    ours = _VERSION.search(text)
    theirs = _VERSION.search(running.decode("utf-8", "replace"))
    if ours is None:
        return data, ""
    current = int(theirs.group(2)) if theirs else 0
    wanted = max(int(ours.group(2)), current + 1)
    if wanted == int(ours.group(2)):
        return data, ""
    text = _VERSION.sub(lambda match: f"{match.group(1)}{wanted}", text, count=1)
    return text.encode(), (
        f"config_version raised from {ours.group(2)} to {wanted} "
        f"(the running one is {current}), or pmxcfs would ignore it"
    )


def describe(plan: RestorePlan) -> list[str]:
    """The preview: one line per path."""
    lines = []
    for step in plan.steps:
        shown = f"/{display_path(step.path)}"
        if step.path != step.source:
            shown += f" (from /{display_path(step.source)})"
        lines.append(f"{step.action:>9}  {shown}" + (f"  [{step.note}]" if step.note else ""))
    return lines


def restored_paths(plan: RestorePlan) -> str:
    """The paths ``plan`` writes, as one line (names shown as display_path shows them):
    for the audit entry, the commit trailer and the notification."""
    return ", ".join("/" + display_path(step.source) for step in plan.writes)
