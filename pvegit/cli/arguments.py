"""The argument parser of the ``pvegit`` command line.

The host actions are arguments_hosts.py; serve, user, token, notify and demo
(what cli/web.py runs) are arguments_web.py.

Kept free of heavy imports: building the parser must not load paramiko,
dulwich or sqlite3, so that ``pvegit --help`` starts fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pvegit import __version__
from pvegit.cli.arguments_hosts import add_host_parsers
from pvegit.cli.arguments_web import add_web_parsers

_DESCRIPTION = """\
Git-backed configuration versioning for Proxmox VE hosts.

Each host has a bare git repository under $PVEGIT_HOME/repos/<host>.git;
every snapshot that changes something is a commit.
"""
_EPILOG = """\
REV is a commit id (or a unique prefix of 4+ digits), HEAD or HEAD~N.
PATH is given as on the node, e.g. /etc/pve/storage.cfg.
Home: --home, else $PVEGIT_HOME, else /var/lib/pvegit (root) or
~/.local/share/pvegit.  Exit codes: 0 ok, 1 failed, 2 usage, 3 partial.
"""

REVEAL_HELP = (
    "show secret files and password lines as they are (by default secret files are not "
    "shown and password lines are masked); written to the audit log"
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used by the tests that check the docs)."""
    parser = argparse.ArgumentParser(
        prog="pvegit",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pvegit {__version__}")
    parser.add_argument("--home", type=Path, help="pvegit's data directory ($PVEGIT_HOME)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    def command(name: str, module: str, function: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=(module, function))
        return sub

    command("init", "hosts", "cmd_init", "create the home directory, state and SSH key pair")
    command("key", "hosts", "cmd_key", "print pvegit's public key (for authorized_keys)")
    command("categories", "hosts", "cmd_categories", "list the backup categories and their paths")

    host = commands.add_parser("host", help="add, list, show, edit, remove, trust and test hosts")
    host_commands = host.add_subparsers(dest="host_command", metavar="ACTION")
    host_commands.required = True
    add_host_parsers(host_commands)

    snapshot = command(
        "snapshot",
        "snapshots",
        "cmd_snapshot",
        "take snapshots now, notifying and mirroring like serve (each cut off after "
        "[server] run_timeout in pvegit.toml)",
    )
    snapshot.add_argument("names", nargs="*", metavar="NAME", help="hosts to snapshot")
    snapshot.add_argument("--all", action="store_true", help="snapshot every host")
    snapshot.add_argument("--json", action="store_true", help="print the runs as JSON")
    snapshot.add_argument(
        "--force", action="store_true", help="commit even if most files would be deleted"
    )
    snapshot.add_argument(
        "--jobs", type=int, default=4, metavar="N", help="hosts snapshotted at once (default 4)"
    )
    snapshot.add_argument(
        "--remote",
        metavar="URL",
        help="ask the pvegit server at URL to take the snapshots (needs --token or $PVEGIT_TOKEN)",
    )
    snapshot.add_argument("--token", metavar="T", help="API token for --remote")
    snapshot.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds without an answer before a node counts as stuck (default 60)",
    )

    log = command("log", "history", "cmd_log", "list a host's snapshots, newest first")
    log.add_argument("name", metavar="NAME")
    log.add_argument("-n", type=int, default=20, dest="limit", help="at most N commits")
    log.add_argument("--path", help="only commits that changed PATH")
    log.add_argument("--json", action="store_true")

    diff = command("diff", "history", "cmd_diff", "show what changed between two revisions")
    diff.add_argument("name", metavar="NAME")
    diff.add_argument("rev_a", nargs="?", metavar="REV_A", help="default: HEAD~1")
    diff.add_argument("rev_b", nargs="?", metavar="REV_B", help="default: HEAD")
    diff.add_argument("--path", action="append", default=[], help="limit to PATH (repeatable)")
    diff.add_argument("--stat", action="store_true", help="only count lines per file")
    diff.add_argument("--reveal", action="store_true", help=REVEAL_HELP)

    show = command("show", "history", "cmd_show", "show a commit, or a file at a revision")
    show.add_argument("name", metavar="NAME")
    show.add_argument("revision", metavar="REV[:PATH]")
    show.add_argument("--reveal", action="store_true", help=REVEAL_HELP)

    export = command(
        "export", "history", "cmd_export", "write a revision as a .tar.gz with owners and modes"
    )
    export.add_argument("name", metavar="NAME")
    export.add_argument("revision", nargs="?", default="HEAD", metavar="REV")
    export.add_argument("-o", "--output", required=True, type=Path, metavar="FILE.tar.gz")

    restore = command(
        "restore",
        "restore",
        "cmd_restore",
        "put files of a revision back on the node (preview first), or into a directory",
    )
    restore.add_argument("name", metavar="NAME")
    restore.add_argument("revision", metavar="REV")
    restore.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="as on the node; a directory restores what is under it (needed unless --to-dir)",
    )
    restore.add_argument("--dry-run", action="store_true", help="only show what would change")
    restore.add_argument("--yes", action="store_true", help="do not ask before writing")
    restore.add_argument(
        "--to-dir",
        type=Path,
        metavar="DIR",
        help="write the revision into a new local directory instead of the node (created "
        "0700; an existing one must be empty, yours, and writable by no one else; the way "
        "to it must be changeable only by root and you, /tmp-like sticky directories aside)",
    )
    restore.add_argument(
        "--write-interfaces",
        action="store_true",
        help="write /etc/network/interfaces itself, not interfaces.new",
    )
    restore.add_argument(
        "--keep-corosync-version",
        action="store_true",
        help="do not raise config_version in corosync.conf",
    )
    restore.add_argument(
        "--delete", action="store_true", help="delete files the node has but the revision does not"
    )
    restore.add_argument(
        "--accept-deletions",
        action="store_true",
        help="the node lost most of its files: let the snapshot before the restore record "
        "the deletions (the mass-deletion guard holds it otherwise; audited)",
    )
    restore.add_argument(
        "--keep-setuid",
        action="store_true",
        help="with --to-dir: keep setuid, setgid and sticky bits (dropped by default)",
    )
    credential = restore.add_mutually_exclusive_group()
    credential.add_argument(
        "--passphrase-stdin",
        action="store_true",
        help="read the restore key's passphrase from the first line of stdin (by default "
        "it is asked on the terminal when the node's key only reads); never stored",
    )
    credential.add_argument(
        "--root-password",
        action="store_true",
        help="authorise this one restore with the node's root password (asked, never stored)",
    )
    credential.add_argument(
        "--root-password-stdin",
        action="store_true",
        help="as --root-password, read from the first line of stdin",
    )

    restore_key = command(
        "restore-key",
        "restore_key",
        "cmd_restore_key",
        "the restore key: the second, passphrase-protected credential a restore writes with",
    )
    key_commands = restore_key.add_subparsers(dest="key_command", metavar="ACTION")
    key_commands.required = True
    create = key_commands.add_parser(
        "create", help="make the restore key, encrypted with a passphrase you choose"
    )
    create.add_argument(
        "--passphrase-stdin", action="store_true", help="read the passphrase from stdin"
    )
    key_commands.add_parser("show", help="print the restore key's authorized_keys entry")
    install = key_commands.add_parser(
        "install",
        help="put pvegit-restore and the restore key's restricted entry on a node (over "
        "root's password, or pvegit's key while it is still a root login)",
    )
    install.add_argument("name", metavar="NAME")
    install.add_argument("--root-password", action="store_true", help="log in with root's password")
    install.add_argument(
        "--password-stdin", action="store_true", help="read root's password from stdin"
    )

    rescue = command(
        "rescue",
        "restore",
        "cmd_rescue",
        "snapshot a dead node's disk mounted at ROOT (/etc/pve rebuilt from its config.db)",
    )
    rescue.add_argument("root", type=Path, metavar="ROOT", help="where the node's disk is mounted")
    rescue.add_argument(
        "--host", metavar="NAME", help="the host in pvegit (default: ROOT/etc/hostname)"
    )

    audit = command(
        "audit", "audit", "cmd_audit", "who did what, newest first (restores with their state)"
    )
    audit.add_argument("name", nargs="?", metavar="NAME", help="only this host")
    audit.add_argument("--action", metavar="ACTION", help="only this action, e.g. restore")
    audit.add_argument("-n", type=int, default=50, dest="limit")
    audit.add_argument("--json", action="store_true")

    runs = command("runs", "history", "cmd_runs", "list recent runs (all hosts or one)")
    runs.add_argument("name", nargs="?", metavar="NAME")
    runs.add_argument("-n", type=int, default=20, dest="limit")
    runs.add_argument("--json", action="store_true")

    gc = command(
        "gc", "history", "cmd_gc", "compact repositories: one delta-compressed pack (like git gc)"
    )
    gc.add_argument("names", nargs="*", metavar="NAME", help="hosts (default: all)")

    mirror = command(
        "mirror",
        "history",
        "cmd_mirror",
        "push repositories to the mirror set in pvegit.toml ([server] mirror)",
    )
    mirror.add_argument("names", nargs="*", metavar="NAME", help="hosts (default: all)")
    mirror.add_argument("--config", type=Path, metavar="FILE", help="settings file")

    verify = command(
        "verify",
        "history",
        "cmd_verify",
        "check repositories, the run log, and (with a snapshot) the nodes against them",
    )
    verify.add_argument("names", nargs="*", metavar="NAME", help="hosts (default: all)")
    verify.add_argument("--no-node", action="store_true", help="do not contact the nodes")

    repair = command(
        "repair",
        "repair",
        "cmd_repair",
        "put a damaged repository back on its newest complete snapshot (moves damage aside)",
    )
    repair.add_argument("names", nargs="+", metavar="NAME", help="hosts to repair")
    repair.add_argument(
        "--accept-loss",
        action="store_true",
        help="when nothing complete is left, record the commits as lost and let the next "
        "snapshot start a new history",
    )

    command(
        "rebuild-state",
        "repair",
        "cmd_rebuild_state",
        "rebuild a lost state.db (hosts, runs) from the repositories; moves the old one aside",
    )

    reindex = command(
        "reindex",
        "history",
        "cmd_reindex",
        "rebuild the commit index (timelines, file history) from the repositories",
    )
    reindex.add_argument("names", nargs="*", metavar="NAME", help="hosts (default: all)")

    add_web_parsers(commands)
    return parser
