"""The arguments of ``pvegit serve``, ``user``, ``token``, ``notify`` and ``demo``.

What cli/web.py runs. Kept free of heavy imports, like arguments.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pvegit.config.roles import ROLES


def add_web_parsers(commands: Any) -> None:
    """Register the web UI's commands and the users, tokens and notifications it serves
    on ``commands`` (the top-level subparsers), in the order ``pvegit --help`` lists them."""

    def command(name: str, module: str, function: str, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = commands.add_parser(
            name, help=help_text, description=help_text
        )
        sub.set_defaults(handler=(module, function))
        return sub

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
