"""The arguments of ``pvegit host add|list|show|edit|remove|trust|harden|test``.

Kept free of heavy imports, like arguments.py.
"""

from __future__ import annotations

import argparse
from typing import Any

from pvegit.config.categories import DEFAULT_CATEGORIES


def add_host_parsers(actions: Any) -> None:
    """Register ``host add|list|show|edit|remove|trust|harden|test``."""

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
        help="log in once with the node's password (asked, or --password-stdin), install the "
        "read-only collector and pvegit's key restricted to it; the password is never stored",
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

    harden = action(
        "harden",
        "cmd_host_harden",
        "make pvegit's key read-only on the node: install or update the collector and the "
        "node's allow-list (what the key may read: the host's selection) and restrict the "
        "key's entry to the collector (over the key while it opens a shell, else root's "
        "password, asked once)",
    )
    harden.add_argument("name", metavar="NAME")
    harden.add_argument(
        "--password-stdin", action="store_true", help="log in with root's password from stdin"
    )

    allow_list = action(
        "allow-list",
        "cmd_host_allow_list",
        "print the node's allow-list for the host's selection, as harden writes it to "
        "/etc/pvegit-collect.allow (for a node set up by hand)",
    )
    allow_list.add_argument("name", metavar="NAME")

    test = action(
        "test", "cmd_host_test", "check reach, login, access, host key, PVE version, pmxcfs"
    )
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
