"""The ``pvegit`` command line.

The parser is built here; each group of commands lives in its own module
(hosts.py, snapshots.py, history.py) and is imported only when it runs, so
``pvegit --help`` and ``pvegit log`` never pay for paramiko.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from pvegit import __version__
from pvegit.errors import PvegitError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3

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
    from pvegit.cli import hosts

    hosts.add_host_parsers(host_commands)

    snapshot = command("snapshot", "snapshots", "cmd_snapshot", "take snapshots now")
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
        "--timeout", type=float, default=60.0, metavar="S",
        help="seconds without an answer before a node counts as stuck (default 60)",
    )  # fmt: skip

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

    show = command("show", "history", "cmd_show", "show a commit, or a file at a revision")
    show.add_argument("name", metavar="NAME")
    show.add_argument("revision", metavar="REV[:PATH]")

    export = command(
        "export", "history", "cmd_export", "write a revision as a .tar.gz with owners and modes"
    )
    export.add_argument("name", metavar="NAME")
    export.add_argument("revision", nargs="?", default="HEAD", metavar="REV")
    export.add_argument("-o", "--output", required=True, type=Path, metavar="FILE.tar.gz")

    runs = command("runs", "history", "cmd_runs", "list recent runs (all hosts or one)")
    runs.add_argument("name", nargs="?", metavar="NAME")
    runs.add_argument("-n", type=int, default=20, dest="limit")
    runs.add_argument("--json", action="store_true")

    demo = command(
        "demo", "snapshots", "cmd_demo",
        "create a simulated Proxmox node in the home directory and snapshot it",
    )  # fmt: skip
    demo.add_argument("--name", default="pve-demo", help="host name of the demo node")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    arguments = parser.parse_args(argv)
    module_name, function_name = arguments.handler
    module = importlib.import_module(f"pvegit.cli.{module_name}")
    try:
        return int(getattr(module, function_name)(arguments))
    except PvegitError as err:
        print(f"pvegit: {err}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("pvegit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
