"""The argument parser of the ``pvegit`` command line.

Kept free of heavy imports: building the parser must not load paramiko,
dulwich or sqlite3, so that ``pvegit --help`` starts fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pvegit import __version__
from pvegit.config.categories import DEFAULT_CATEGORIES
from pvegit.config.roles import ROLES

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

    serve = command(
        "serve", "web", "cmd_serve", "run the web UI and the scheduler (one process, one worker)"
    )
    serve.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="settings file (default: $PVEGIT_HOME/pvegit.toml, else /etc/pvegit/pvegit.toml)",
    )
    serve.add_argument(
        "--listen",
        metavar="ADDR:PORT",
        help="where to listen (default 127.0.0.1:8080; keep it local and put a TLS proxy in front)",
    )
    serve.add_argument(
        "--behind-tls-proxy",
        action="store_true",
        help="mark session cookies Secure and trust X-Forwarded-* from 127.0.0.1",
    )
    serve.add_argument("--jobs", type=int, metavar="N", help="runs at once (default 4)")
    serve.add_argument(
        "--no-scheduler", action="store_true", help="serve the UI only; no scheduled runs"
    )

    user = commands.add_parser("user", help="manage the web UI's users and their roles")
    user_commands = user.add_subparsers(dest="user_command", metavar="ACTION")
    user_commands.required = True
    for name, function, text in (
        ("add", "cmd_user_add", "add a user (asks for the password, or --password-stdin)"),
        ("passwd", "cmd_user_passwd", "set a user's password (ends the user's sessions)"),
        ("remove", "cmd_user_remove", "remove a user (not the last admin)"),
        ("logout", "cmd_user_logout", "end every web session of a user (log out everywhere)"),
    ):
        sub = user_commands.add_parser(name, help=text, description=text)
        sub.set_defaults(handler=("web", function))
        sub.add_argument("name", metavar="NAME")
        if name in ("add", "passwd"):
            sub.add_argument(
                "--password-stdin", action="store_true", help="read the password from stdin"
            )
        if name == "add":
            sub.add_argument(
                "--role",
                choices=ROLES,
                help="viewer, operator or admin (default: admin for the first user, viewer after)",
            )
    role = user_commands.add_parser(
        "role",
        help="give a user another role (a lower one ends its sessions)",
        description="give a user another role (a lower one ends its sessions)",
    )
    role.set_defaults(handler=("web", "cmd_user_role"))
    role.add_argument("name", metavar="NAME")
    role.add_argument("role", choices=ROLES, metavar="ROLE", help="viewer, operator or admin")
    listing = user_commands.add_parser(
        "list", help="list the users and their roles", description="list the users and roles"
    )
    listing.set_defaults(handler=("web", "cmd_user_list"))

    token = commands.add_parser("token", help="manage API tokens (for /api/v1/, /metrics, git)")
    token_commands = token.add_subparsers(dest="token_command", metavar="ACTION")
    token_commands.required = True
    for name, function, text in (
        ("add", "cmd_token_add", "create a token; it is printed once, as the last word"),
        ("revoke", "cmd_token_revoke", "revoke a token"),
    ):
        sub = token_commands.add_parser(name, help=text, description=text)
        sub.set_defaults(handler=("web", function))
        sub.add_argument("name", metavar="NAME")
        if name == "add":
            sub.add_argument(
                "--role",
                choices=ROLES,
                default="viewer",
                help="viewer (read; default), operator (also start backups) or admin "
                "(also git clone)",
            )
    token_list = token_commands.add_parser(
        "list", help="list tokens and their roles", description="list tokens and their roles"
    )
    token_list.set_defaults(handler=("web", "cmd_token_list"))

    notify = commands.add_parser("notify", help="notification targets")
    notify_commands = notify.add_subparsers(dest="notify_command", metavar="ACTION")
    notify_commands.required = True
    notify_test = notify_commands.add_parser(
        "test",
        help="send a test notification to every target",
        description="send a test notification to every target",
    )
    notify_test.set_defaults(handler=("web", "cmd_notify_test"))
    notify_test.add_argument("--config", type=Path, metavar="FILE", help="settings file")

    demo = command(
        "demo",
        "web",
        "cmd_demo",
        "set up a simulated Proxmox node with some history, an admin user, and serve the UI",
    )
    demo.add_argument(
        "--name",
        default="pve-demo",
        help="host name of the demo node (pve9, pve10, pve11: a Proxmox VE 9 node; "
        "pve1, pve2, pve3 and any other name: Proxmox VE 8)",
    )
    demo.add_argument("--listen", default="127.0.0.1:8080", metavar="ADDR:PORT")
    demo.add_argument(
        "--no-serve", action="store_true", help="only set up (and print the admin password)"
    )
    return parser


def add_host_parsers(actions: Any) -> None:
    """Register ``host add|list|show|edit|remove|trust|test``."""

    def action(name: str, function: str, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = actions.add_parser(
            name, help=help_text, description=help_text
        )
        sub.set_defaults(handler=("hosts", function))
        return sub

    add = action("add", "cmd_host_add", "add a Proxmox node")
    add.add_argument("name", metavar="NAME", help="a short name, usually the node's hostname")
    _connection_options(add, required=True)
    add.add_argument(
        "--install-key",
        action="store_true",
        help="log in once with the node's password (asked, or --password-stdin) and install "
        "pvegit's public key; the password is never stored",
    )
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.add_argument(
        "--fingerprint", metavar="SHA256:...", help="trust this host key fingerprint right away"
    )

    listing = action("list", "cmd_host_list", "list the hosts")
    listing.add_argument("--json", action="store_true")

    show = action("show", "cmd_host_show", "show one host's settings")
    show.add_argument("name", metavar="NAME")
    show.add_argument("--json", action="store_true")

    edit = action("edit", "cmd_host_edit", "change a host's settings (given options replace)")
    edit.add_argument("name", metavar="NAME")
    _connection_options(edit, required=False)

    remove = action("remove", "cmd_host_remove", "forget a host (its repository is kept)")
    remove.add_argument("name", metavar="NAME")

    trust = action("trust", "cmd_host_trust", "pin the node's SSH host key")
    trust.add_argument("name", metavar="NAME")
    trust.add_argument(
        "--fingerprint",
        metavar="SHA256:...",
        help="the fingerprint you checked on the node's console; without it pvegit shows the "
        "key and asks",
    )

    test = action("test", "cmd_host_test", "check reach, login, host key, PVE version, pmxcfs")
    test.add_argument("name", metavar="NAME")


def _connection_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "--address",
        required=required,
        help="IP or DNS name; 'local' for this machine; 'local:/mnt/x' for a mounted disk",
    )
    parser.add_argument("--port", type=int, help="SSH port (default 22)")
    parser.add_argument("--user", help="SSH user (default root)")
    parser.add_argument("--identity", help="private key file (default: pvegit's own key)")
    parser.add_argument(
        "--category",
        action="append",
        dest="categories",
        metavar="C",
        help=f"backup category, repeatable (default: {', '.join(DEFAULT_CATEGORIES)})",
    )
    parser.add_argument(
        "--include", action="append", dest="includes", metavar="PATH", help="extra path or glob"
    )
    parser.add_argument(
        "--exclude", action="append", dest="excludes", metavar="GLOB", help="path glob to skip"
    )
    parser.add_argument("--schedule", help="e.g. 'daily at 02:30', 'every 6 hours', 'manual'")
