"""Restore files of a revision onto a live node, or into a local directory.

A restore to a node is planned against what the node has **now** (read live
through the same tar stream a snapshot uses), shown as a preview, preceded by
a snapshot (so every restore can be undone by restoring that commit), written
file by file to a temp file in the same directory and renamed into place (so
an interrupted restore leaves each file old or new, never cut), and followed
by a snapshot that proves the node now matches the revision.

Safety rails, each named in the preview and overridable:

* ``/etc/network/interfaces`` is written as ``interfaces.new`` (Proxmox applies
  it on reboot or ``ifreload -a``) unless ``write_interfaces``;
* ``corosync.conf`` gets its ``config_version`` raised above the running one
  (pmxcfs ignores a file that does not raise it) unless ``keep_corosync_version``;
* hardware-bound files (NIC .link files included) and secrets are restored only
  when named exactly;
* what Proxmox VE 8 and 9 read differently (HA groups onto a PVE 9 node, PVE 9's
  files onto a PVE 8 node, APT sources of another Debian release) is written
  with a warning in the preview (``release.restore_note``);
* files the node has but the revision does not are deleted only with ``delete``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pvegit.config.categories import (
    HARDWARE_BOUND,
    Selection,
    is_runtime,
    is_secret,
    matches_any,
    resolve_selection,
)
from pvegit.config.home import Home
from pvegit.errors import ConfigError, OutputTooLarge, RefusedError
from pvegit.git.repo import SYMLINK_MODE, HostRepository
from pvegit.node.collect import tar_script
from pvegit.node.metadata import METADATA_PATH, PathInfo, is_pmxcfs_path, parse_metadata
from pvegit.node.release import release_of_commit, restore_note
from pvegit.node.tarstream import display_path, read_tar_stream
from pvegit.node.transport import MiB, OutputLimit, Transport
from pvegit.state.restorelog import RestoreEntry, restore_entry
from pvegit.state.store import Host, Run, Store

INTERFACES = "etc/network/interfaces"
COROSYNC = ("etc/pve/corosync.conf", "etc/corosync/corosync.conf")
# Its stdout stays empty: the answer is the exit code.
_PMXCFS_CHECK = OutputLimit(MiB, "the restore's check that pmxcfs runs")
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
    revision: str
    steps: list[Step] = field(default_factory=list)

    @property
    def writes(self) -> list[Step]:
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


def read_live(transport: Transport, paths: Sequence[str]) -> dict[str, tuple[bytes, bool]]:
    """What the node has now at ``paths``: path -> (content or link target, is a link).

    Read within the tar stream's limits (tarstream.py: 16 MiB a file, 256 MiB in all),
    so memory stays bounded whatever the node sends: a file over 16 MiB is left out (the
    preview shows it as created), a stream over 256 MiB raises CollectError.
    """
    selection = Selection(paths=tuple(paths), excludes=(), commands=(), include_secrets=True)
    with transport.stream(tar_script(transport.root, selection, live=False)) as (stream, _):
        result = read_tar_stream(stream, requested=selection.paths)
    return {
        path: (entry.data, entry.kind == "symlink")
        for path, entry in result.entries.items()
        if entry.kind != "dir"
    }


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
        if source.startswith(".pvegit/") or is_runtime(source):
            continue
        mode, blob = files[source]
        if mode == SYMLINK_MODE and is_pmxcfs_path(source):
            plan.steps.append(
                Step(
                    source, source, "skip", note="pmxcfs makes its own links (local, qemu-server…)"
                )
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
    if is_runtime(path) or path.startswith(".pvegit/"):
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


def write_script(plan: RestorePlan, root: str = "/") -> str:
    """The shell script that writes the plan on the node, one file at a time."""
    lines = [
        "export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        f"cd {shlex.quote(root)} || exit 98",
        "failed=0",
        'report() { printf "pvegit-restore %s %s\\n" "$1" "$2"; }',
    ]
    # Temporary files an interrupted restore left (never renamed into place): an
    # hour old means no restore is still writing them.
    for directory in sorted({os.path.dirname(step.path) or "." for step in plan.writes}):
        lines.append(
            f"find {shlex.quote('./' + directory)} -maxdepth 1 -type f -name '.pvegit-restore.*' "
            "-mmin +60 -exec rm -f -- {} + 2>/dev/null"
        )
    for number, step in enumerate(plan.writes):
        path = step.path  # relative to the root the script changed into
        quoted = shlex.quote(path)
        if step.action == "delete":
            lines.append(
                f"if rm -f -- {quoted}; then report ok {number}; "
                f"else report error {number}; failed=1; fi"
            )
            continue
        directory = shlex.quote(os.path.dirname(path) or ".")
        lines.append(f"mkdir -p -- {directory} 2>/dev/null")
        lines.append(
            f"t=$(mktemp -p {directory} .pvegit-restore.XXXXXX 2>&1) || "
            f'{{ report error {number}; echo "$t" >&2; failed=1; t=; }}'
        )
        lines.append('if [ -n "$t" ]; then')
        if step.symlink:
            target = shlex.quote(step.data.decode("utf-8", "surrogateescape"))
            lines.append(f'  rm -f "$t" && ln -s -- {target} "$t" && ok=1 || ok=0')
        else:
            payload = base64.b64encode(step.data).decode()
            lines.append(f'  echo {payload} | base64 -d > "$t" && ok=1 || ok=0')
            if not is_pmxcfs_path(step.path) and step.info and step.info.mode is not None:
                owner = shlex.quote(f"{step.info.owner or 'root'}:{step.info.group or 'root'}")
                lines.append(
                    f'  [ "$ok" = 1 ] && {{ chown -- {owner} "$t" 2>/dev/null; '
                    f'chmod -- {step.info.mode:o} "$t"; }}'
                )
        lines.append(
            f'  if [ "$ok" = 1 ] && mv -f "$t" {quoted}; then report ok {number}; '
            f'else rm -f "$t"; report error {number}; failed=1; fi'
        )
        lines.append("fi")
    lines.append("exit $failed")
    return "\n".join(lines) + "\n"


_PMXCFS_ERRORS = (
    (
        "Permission denied",
        "pmxcfs refused the write: no quorum? (/etc/pve is read-only "
        "without quorum: check 'pvecm status')",
    ),
    ("File too large", "pmxcfs refuses files over 1 MiB"),
    ("File exists", "pmxcfs refused: a guest with this id exists on another node"),
    ("Read-only file system", "the file system is read-only"),
)


def explain(stderr: str, path: str) -> str:
    """A node's error message in plain words."""
    for needle, words in _PMXCFS_ERRORS:
        if needle in stderr:
            return words if is_pmxcfs_path(path) or needle != "Permission denied" else needle
    return stderr.strip().splitlines()[-1] if stderr.strip() else "failed"


def apply_plan(transport: Transport, plan: RestorePlan) -> list[tuple[str, str | None]]:
    """Write the plan on the node; (path, error or None) for every write."""
    if not plan.writes:
        return []
    if any(is_pmxcfs_path(step.path) for step in plan.writes):
        mounted = '[ "$(stat -c %d etc/pve)" != "$(stat -c %d etc)" ] && ' if transport.live else ""
        try:
            probe = transport.run(
                f"cd {shlex.quote(transport.root)} && {mounted}[ -r etc/pve/.version ]",
                limit=_PMXCFS_CHECK,
            )
        except OutputTooLarge as err:
            raise RefusedError(f"{err}. Nothing was written") from err
        if probe.exit_code != 0:
            raise RefusedError(
                "pmxcfs is not running (/etc/pve is not mounted): nothing was "
                "written. On the node: systemctl status pve-cluster"
            )
    script = write_script(plan, transport.root).encode("utf-8", "surrogateescape")
    # One "pvegit-restore ok N" line a write; nothing else goes to stdout.
    limit = OutputLimit(64 * len(plan.writes) + MiB, "the restore's report of its writes")
    try:
        result = transport.run("sh -s", stdin=script, limit=limit)
    except OutputTooLarge as err:
        # The writes may have run (each file old or new): the snapshot after the
        # restore records what the node has, and its check names what differs.
        return [(step.path, f"not known whether written: {err}") for step in plan.writes]
    stderr = result.stderr.decode("utf-8", "replace")
    outcome: dict[int, str | None] = {}  # by the step's number in the script
    for line in result.stdout.decode("utf-8", "replace").splitlines():
        parts = line.split(" ")
        if len(parts) == 3 and parts[0] == "pvegit-restore" and parts[2].isdigit():
            number = int(parts[2])
            if number < len(plan.writes):
                path = plan.writes[number].path
                outcome[number] = None if parts[1] == "ok" else explain(stderr, path)
    return [
        (step.path, outcome.get(number, "not written (the connection ended?)"))
        for number, step in enumerate(plan.writes)
    ]


def verify(repository: HostRepository, commit_id: str, plan: RestorePlan) -> list[str]:
    """Differences between the node's new snapshot and the plan, by content hash."""
    files = repository.file_ids(commit_id)
    problems = []
    for step in plan.steps:
        if step.action in ("skip",):
            continue
        have = files.get(step.path)
        if step.action == "delete":
            if have is not None:
                problems.append(f"/{display_path(step.path)} is still there")
            continue
        if have is None:
            problems.append(f"/{display_path(step.path)} is missing after the restore")
            continue
        expected = hashlib.sha1(b"blob %d\0" % len(step.data) + step.data).hexdigest()
        if have[1] != expected:
            problems.append(f"/{display_path(step.path)} differs from the revision")
    return problems


def describe(plan: RestorePlan) -> list[str]:
    """The preview: one line per path."""
    lines = []
    for step in plan.steps:
        shown = f"/{display_path(step.path)}"
        if step.path != step.source:
            shown += f" (from /{display_path(step.source)})"
        lines.append(f"{step.action:>9}  {shown}" + (f"  [{step.note}]" if step.note else ""))
    return lines


@dataclass
class RestoreReport:
    """What a restore to a node did."""

    plan: RestorePlan
    written: list[tuple[str, str | None]] = field(default_factory=list)
    before: Run | None = None  # the snapshot taken before writing: restore it to undo
    after: Run | None = None
    differences: list[str] = field(default_factory=list)


def restore_to_node(
    home: Home,
    store: Store,
    host: Host,
    revision: str,
    paths: Sequence[str],
    options: RestoreOptions,
    *,
    dry_run: bool,
    confirm: Callable[[RestorePlan], bool],
    actor: str,
) -> RestoreReport:
    """Preview, then (if confirmed) snapshot, write, snapshot again and verify.

    Before anything is written the restore's audit entry is (who, revision,
    paths, options; then the pre-restore snapshot), and it is finished with the
    outcome (see ``restorelog``). Raises RefusedError when nothing was written
    (the pre-restore snapshot failed or was held, pmxcfs is down, another
    restore of the host is running), PvegitError for other failures.
    """
    from pvegit.node.transport import open_transport

    wanted = list(dict.fromkeys(paths))
    transport = open_transport(home, host)
    try:
        with HostRepository(home.repo_path(host.name)) as repository:
            commit_id = repository.resolve(revision)
            live = read_live(transport, [*wanted, INTERFACES + ".new"])
            selection = resolve_selection(host.categories, host.includes, host.excludes)
            plan = plan_restore(repository, commit_id, wanted, live, options, selection)
        report = RestoreReport(plan)
        if dry_run or not plan.writes or not confirm(plan):
            return report
        chosen = [name for name, value in vars(options).items() if value]
        with restore_entry(
            home,
            store,
            host.name,
            actor,
            revision=commit_id,
            paths=restored_paths(plan),
            options=chosen,
            stage="pre-restore snapshot",
        ) as entry:
            _restore_and_verify(home, store, host, transport, report, options, actor, entry)
        return report
    finally:
        transport.close()


def restored_paths(plan: RestorePlan) -> str:
    """The paths ``plan`` writes, as one line (names shown as display_path shows them):
    for the audit entry, the commit trailer and the notification."""
    return ", ".join("/" + display_path(step.source) for step in plan.writes)


def _restore_and_verify(
    home: Home,
    store: Store,
    host: Host,
    transport: Transport,
    report: RestoreReport,
    options: RestoreOptions,
    actor: str,
    entry: RestoreEntry,
) -> None:
    """The writing part of ``restore_to_node``, inside its audit entry."""
    from pvegit.actions.snapshot import (
        MASS_DELETION_FORCED,
        SnapshotOptions,
        held_deletions,
        take_snapshot,
    )

    plan = report.plan
    report.before = before = take_snapshot(
        home,
        store,
        host,
        SnapshotOptions(trigger="pre-restore", actor=actor, force=options.accept_deletions),
    )
    held = held_deletions(before)
    if held is not None:
        raise RefusedError(
            f"the node lost most of its files: the snapshot before the restore would delete "
            f"{held}, so the mass-deletion guard held it and nothing was written. If the node "
            "really lost them, restore again with --accept-deletions (in the web UI: tick "
            '"accept the deletions"): the pre-restore snapshot then records them, so '
            "restoring it still undoes the restore exactly, and the audit log names you"
        )
    if not before.succeeded:
        raise RefusedError(
            f"the snapshot before the restore did not succeed "
            f"({before.status}: {before.error}); nothing was written"
        )
    forced = [warning for warning in before.warnings if warning.startswith(MASS_DELETION_FORCED)]
    # Synced before the first write: the undo point, and who let the deletions through.
    entry.add(
        before=before.commit_id or _head(home, host),
        before_run=before.id,
        guard_passed=forced[0] if forced else None,
        stage="writing",
    )
    report.written = apply_plan(transport, plan)
    errors = [f"/{display_path(path)}: {error}" for path, error in report.written if error]
    entry.add(errors=errors, stage="snapshot after the restore")
    trailers = (
        ("Restored-From", plan.revision),
        ("Restored-Paths", restored_paths(plan)),
        ("Restored-By", actor),
    )
    report.after = take_snapshot(
        home,
        store,
        host,
        SnapshotOptions(trigger="restore", actor=actor, trailers=trailers, force=True),
    )
    head = _head(home, host)
    if head is not None:
        with HostRepository(home.repo_path(host.name)) as repository:
            report.differences = verify(repository, head, plan)
    entry.finish(
        "failed" if errors or report.differences else "completed",
        after=report.after.commit_id,
        after_run=report.after.id,
        differences=report.differences,
        verified=not report.differences,
        stage="done",
    )


def _head(home: Home, host: Host) -> str | None:
    with HostRepository(home.repo_path(host.name)) as repository:
        return repository.head()
