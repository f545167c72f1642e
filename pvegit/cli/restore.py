"""``pvegit restore``: put a revision's files back on a node, or into a directory."""

from __future__ import annotations

import argparse
import sys

from pvegit.actions.extract import restore_to_directory
from pvegit.actions.restore import restore_to_node
from pvegit.actions.restore_plan import RestoreOptions, RestorePlan, describe
from pvegit.cli import EXIT_FAILED, EXIT_OK
from pvegit.cli.common import actor, ask_yes, open_home
from pvegit.config.selection import normalize_node_path
from pvegit.errors import ConfigError
from pvegit.git.repo import HostRepository
from pvegit.node.tarstream import display_path


def cmd_restore(arguments: argparse.Namespace) -> int:
    home, store = open_home(arguments)
    paths = [normalize_node_path(path, allow_pvegit=False) for path in arguments.paths]
    if arguments.to_dir is not None:
        with HostRepository(home.repo_path(arguments.name)) as repository:
            count = restore_to_directory(
                repository,
                arguments.revision,
                arguments.to_dir,
                paths,
                keep_special_bits=arguments.keep_setuid,
            )
        store.audit(
            actor(),
            "restore to directory",
            arguments.name,
            revision=arguments.revision,
            directory=str(arguments.to_dir),
            keep_setuid=arguments.keep_setuid,
        )
        print(
            f"wrote {count} files of {arguments.name} at {arguments.revision} to {arguments.to_dir}"
        )
        return EXIT_OK
    if not paths:
        raise ConfigError(
            "name the paths to restore (e.g. /etc/pve/storage.cfg or /etc/pve), "
            "or use --to-dir DIR for the whole revision"
        )
    host = store.host(arguments.name)
    options = RestoreOptions(
        write_interfaces=arguments.write_interfaces,
        keep_corosync_version=arguments.keep_corosync_version,
        delete=arguments.delete,
        accept_deletions=arguments.accept_deletions,
    )

    def confirm(plan: RestorePlan) -> bool:
        if arguments.yes:
            return True
        if not sys.stdin.isatty():
            raise ConfigError("not on a terminal: check the preview and pass --yes to write")
        return ask_yes(f"write {len(plan.writes)} change(s) to {host.name}?")

    from pvegit.cli.restore_key import asker, credential_from, has_restore_key

    credential = None if arguments.dry_run else credential_from(arguments, host.address)
    report = restore_to_node(
        home,
        store,
        host,
        arguments.revision,
        paths,
        options,
        dry_run=arguments.dry_run,
        confirm=confirm,
        actor=actor(),
        credential=credential,
        ask_credential=asker(has_restore_key(home)),
    )
    del credential  # never kept
    print(
        f"restore of {host.name} from {report.plan.revision[:10]}"
        + (" (dry run: nothing written)" if arguments.dry_run else "")
    )
    for line in describe(report.plan):
        print(line)
    if arguments.dry_run or not report.plan.writes:
        if not report.plan.writes:
            print("nothing to write: the node already matches")
        return EXIT_OK
    if report.before is None:
        print("nothing written")
        return EXIT_OK
    print(
        f"before the restore: run {report.before.id}"
        + (
            f", commit {report.before.commit_id[:10]}"
            if report.before.commit_id
            else " (no change)"
        )
        + " — restore that to undo"
    )
    failed = [(path, error) for path, error in report.written if error]
    for path, error in failed:
        print(f"pvegit: /{display_path(path)}: {error}", file=sys.stderr)
    if report.after is not None:
        print(
            f"after the restore: run {report.after.id} {report.after.status}"
            + (f", commit {report.after.commit_id[:10]}" if report.after.commit_id else "")
        )
    if report.differences:
        for line in report.differences:
            print(f"differs: {line}", file=sys.stderr)
    else:
        print("verified: the node now matches the revision for the restored paths")
    return EXIT_FAILED if failed or report.differences else EXIT_OK


def cmd_rescue(arguments: argparse.Namespace) -> int:
    """Snapshot a rescued disk into the host's history (read-only on the disk)."""
    from dataclasses import replace

    from pvegit.actions.hosts import add_host
    from pvegit.cli import runs_exit_code
    from pvegit.cli.snapshots import cli_launcher, describe
    from pvegit.errors import NotFound
    from pvegit.state.store import RunStatus

    home, store = open_home(arguments)
    root = arguments.root.resolve()
    if not root.is_dir():
        raise ConfigError(f"{root} is not a directory: mount the node's disk there first")
    name = arguments.host
    if not name:
        hostname = root / "etc/hostname"
        if not hostname.is_file():
            raise ConfigError(f"{hostname} is missing: give the host's name with --host")
        name = hostname.read_text().split()[0] if hostname.read_text().split() else ""
    try:
        host = replace(store.host(name), address=f"local:{root}")
    except NotFound:
        values = {
            "address": f"local:{root}",
            "categories": ("cluster", "network", "storage", "system"),
        }
        host = add_host(store, name, values, actor=actor(), rescue=True)
    with cli_launcher(home, store) as launcher:  # notified and mirrored like any snapshot
        run = launcher.run(host, launcher.options("rescue", actor())).run
    store.audit(actor(), "rescue", name, root=str(root), run=run.id, status=run.status)
    stream = sys.stdout if run.status in (RunStatus.CHANGED, RunStatus.UNCHANGED) else sys.stderr
    print(describe(run), file=stream)
    for warning in run.warnings:
        if warning.startswith("rescue: "):  # which config.db version, read how
            print(warning)
    return runs_exit_code([run.status])
