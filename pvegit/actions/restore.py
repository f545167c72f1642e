"""Restore files of a revision onto a live node: preview, snapshot, write, snapshot, verify.

A restore to a node is planned against what the node has **now** (read live
through the same tar stream a snapshot uses; restore_plan.py holds the plan and
its safety rails), shown as a preview, preceded by a snapshot (so every restore
can be undone by restoring that commit), written file by file through the node's
restore-only program with the second credential (restore_write.py,
restore_access.py) and followed by a snapshot that proves the node now matches the revision.
A restore into a local directory is extract.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pvegit.actions.restore_access import RestoreCredential, open_restore_channel
from pvegit.actions.restore_plan import (
    INTERFACES,
    RestoreOptions,
    RestorePlan,
    plan_restore,
    restored_paths,
)
from pvegit.actions.restore_write import apply_plan, read_live
from pvegit.config.home import Home
from pvegit.config.selection import resolve_selection
from pvegit.errors import RefusedError
from pvegit.git.repo import HostRepository
from pvegit.node.restore_program import RestoreChannel
from pvegit.node.tarstream import display_path
from pvegit.state.restorelog import RestoreEntry, restore_entry
from pvegit.state.store import Host, Run, Store


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
    credential: RestoreCredential | None = None,
    ask_credential: Callable[[str], RestoreCredential | None] | None = None,
) -> RestoreReport:
    """Preview, then (if confirmed) snapshot, write, snapshot again and verify.

    The reads use pvegit's key; the writes the second credential (restore_access.py):
    ``credential``, else pvegit's key where it is still a root login, else what
    ``ask_credential`` answers (asked only then, with the reason); without one it
    raises RefusedError naming what is needed, before anything is written.
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
            selection = resolve_selection(host.categories, host.includes, host.excludes)
            live = read_live(transport, [*wanted, INTERFACES + ".new"], selection)
            plan = plan_restore(repository, commit_id, wanted, live, options, selection)
        report = RestoreReport(plan)
        if dry_run or not plan.writes or not confirm(plan):
            return report
        channel = open_restore_channel(home, host, transport, credential, ask_credential)
        try:
            chosen = [name for name, value in vars(options).items() if value]
            with restore_entry(
                home,
                store,
                host.name,
                actor,
                revision=commit_id,
                paths=restored_paths(plan),
                options=chosen,
                access=channel.how,
                stage="pre-restore snapshot",
            ) as entry:
                _restore_and_verify(home, store, host, channel, report, options, actor, entry)
        finally:
            channel.close()
        return report
    finally:
        transport.close()


def verify(repository: HostRepository, commit_id: str, plan: RestorePlan) -> list[str]:
    """Differences between the node's snapshot ``commit_id`` and the plan, by content hash,
    one sentence each (empty: the node has what the plan wrote)."""
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


def _restore_and_verify(
    home: Home,
    store: Store,
    host: Host,
    channel: RestoreChannel,
    report: RestoreReport,
    options: RestoreOptions,
    actor: str,
    entry: RestoreEntry,
) -> None:
    """The writing part of ``restore_to_node``, inside its audit entry."""
    from pvegit.actions.snapshot import SnapshotOptions, take_snapshot
    from pvegit.actions.snapshot_changes import MASS_DELETION_FORCED, held_deletions

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
    report.written = apply_plan(channel, plan)
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
