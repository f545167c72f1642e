"""``pvegit serve``, ``pvegit user ...`` and ``pvegit demo``."""

from __future__ import annotations

import argparse
import getpass
import logging
import secrets
import sys
from typing import IO

from pvegit.actions.tokens import create_token, list_tokens, revoke_token
from pvegit.actions.users import (
    add_user,
    end_sessions,
    make_demo_admin,
    remove_user,
    set_password,
    set_role,
)
from pvegit.cli.common import actor, open_home
from pvegit.config.file import Config
from pvegit.config.home import Home
from pvegit.config.roles import check_role
from pvegit.errors import ConfigError, NotFound
from pvegit.state.store import Store, validate_user_name


def parse_listen(text: str) -> tuple[str, int]:
    """``127.0.0.1:8080`` or ``[::1]:8080`` into (host, port)."""
    host, separator, port = text.rpartition(":")
    if not separator or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise ConfigError(f"--listen {text!r}: give ADDRESS:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


def _read_password(from_stdin: bool, name: str) -> str:
    """The new password: a line of stdin, else asked twice on the terminal."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass(f"password for {name}: ")
    if getpass.getpass("again: ") != password:
        raise ConfigError("the two passwords differ; nothing was changed")
    return password


def cmd_user_add(arguments: argparse.Namespace) -> int:
    _, store = open_home(arguments)
    # Checked before the password is asked for; add_user checks them again.
    validate_user_name(arguments.name)
    if arguments.role is not None:
        check_role(arguments.role)
    password = _read_password(arguments.password_stdin, arguments.name)
    added = add_user(store, arguments.name, password, arguments.role, actor=actor())
    print(f"added user {added.name} ({added.role})")
    return 0


def cmd_user_role(arguments: argparse.Namespace) -> int:
    _, store = open_home(arguments)
    change = set_role(store, arguments.name, arguments.role, actor=actor())
    print(f"{change.name}: {change.previous} -> {change.role}")
    return 0


def cmd_user_logout(arguments: argparse.Namespace) -> int:
    _, store = open_home(arguments)
    end_sessions(store, arguments.name, actor=actor())
    print(f"ended every web session of {arguments.name}")
    return 0


def cmd_user_passwd(arguments: argparse.Namespace) -> int:
    _, store = open_home(arguments)
    if store.user(arguments.name) is None:  # before asking for a password in vain
        raise NotFound(f"no user {arguments.name!r}; 'pvegit user list' shows the users")
    password = _read_password(arguments.password_stdin, arguments.name)
    set_password(store, arguments.name, password, actor=actor())
    print(f"changed the password of {arguments.name}")
    return 0


def cmd_user_remove(arguments: argparse.Namespace) -> int:
    _, store = open_home(arguments)
    remove_user(store, arguments.name, actor=actor())
    print(f"removed user {arguments.name}")
    return 0


def cmd_user_list(arguments: argparse.Namespace) -> int:
    _, store = open_home(arguments)
    users = store.users()
    if not users:
        print("no users yet: pvegit user add NAME")
    for user in users:
        print(f"{user.name:<24} {user.role}")
    return 0


def _sync_indexes(home: Home, store: Store) -> None:
    from pvegit.errors import RepositoryDamaged
    from pvegit.git.repo import HostRepository
    from pvegit.state.index import sync_index

    for path in sorted(home.repos_dir.glob("*.git")):
        try:
            with HostRepository(path) as repository:
                sync_index(store, repository, path.name.removesuffix(".git"))
        except RepositoryDamaged as err:  # serve the others; its pages say the same
            print(f"pvegit: {err}", file=sys.stderr)


def serve(home: Home, store: Store, config: Config, *, scheduler: bool = True) -> None:
    """Run the web UI (and the scheduler) until interrupted."""
    import uvicorn

    from web.app import create_app

    address, port = parse_listen(config.listen)
    setup_logging()
    _sync_indexes(home, store)
    app = create_app(home, store=store, config=config, run_scheduler=scheduler)
    if not store.users():
        print("no web users yet: create one with 'pvegit user add NAME'", file=sys.stderr)
    where = f" (settings {config.path})" if config.path else ""
    print(f"pvegit web UI on http://{config.listen}, home {home.root}{where}", flush=True)
    uvicorn.run(
        app,
        host=address,
        port=port,
        workers=1,  # one process: the scheduler runs inside it
        proxy_headers=config.behind_tls_proxy,
        forwarded_allow_ips="127.0.0.1" if config.behind_tls_proxy else None,
        log_level="warning",
        server_header=False,
        timeout_graceful_shutdown=30,
    )


def setup_logging() -> None:
    """One line per event, key=value, with host and run id where there is one."""
    logging.basicConfig(level=logging.INFO, handlers=[log_handler()])


def log_handler(stream: IO[str] | None = None) -> logging.Handler:
    """The handler of ``pvegit serve``'s log (stderr by default): control characters (a
    node's names and messages) escaped, so nothing drives a terminal and no event spans
    two lines."""
    from pvegit.textsafe import EscapingFormatter

    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        EscapingFormatter(
            "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )
    )
    return handler


def cmd_serve(arguments: argparse.Namespace) -> int:
    from dataclasses import replace

    from pvegit.config.file import load_config

    home, store = open_home(arguments)
    config = load_config(home.root, arguments.config)
    overrides: dict[str, object] = {}
    if arguments.listen:
        parse_listen(arguments.listen)
        overrides["listen"] = arguments.listen
    if arguments.behind_tls_proxy:
        overrides["behind_tls_proxy"] = True
    if arguments.jobs is not None:
        if arguments.jobs < 1:
            raise ConfigError("--jobs must be at least 1")
        overrides["concurrency"] = arguments.jobs
    serve(home, store, replace(config, **overrides), scheduler=not arguments.no_scheduler)  # type: ignore[arg-type]
    return 0


def cmd_token_add(arguments: argparse.Namespace) -> int:
    _, store = open_home(arguments)
    token = create_token(store, arguments.name, arguments.role, actor=actor())
    print(f"created {token.role} token {token.name}; it is shown only now: {token.secret}")
    return 0


def cmd_token_revoke(arguments: argparse.Namespace) -> int:
    _, store = open_home(arguments)
    revoke_token(store, arguments.name, actor=actor())
    print(f"revoked token {arguments.name}")
    return 0


def cmd_token_list(arguments: argparse.Namespace) -> int:
    import time

    _, store = open_home(arguments)
    tokens = list_tokens(store)
    if not tokens:
        print("no tokens yet: pvegit token add NAME")
    for token in tokens:
        state = "active" if token.active else "revoked"
        used = (
            time.strftime("%Y-%m-%d %H:%M", time.localtime(token.last_used))
            if token.last_used
            else "never"
        )
        print(f"{token.name:<24} {token.role:<9} {state:<8} last used {used}")
    return 0


def cmd_notify_test(arguments: argparse.Namespace) -> int:
    from pvegit.config.file import load_config
    from pvegit.service.notify_targets import send_test_notification

    home, store = open_home(arguments)
    config = load_config(home.root, arguments.config)
    results = send_test_notification(config, store, actor=actor())
    for result in results:
        print(f"{result.target.name}: {result.problem or 'sent'}")
    return 1 if any(result.problem is not None for result in results) else 0


DEMO_EDITS = 6


def cmd_demo(arguments: argparse.Namespace) -> int:
    """A demo node with some history, an admin with a one-time password, then the UI."""
    from pvegit.actions.hosts import add_host
    from pvegit.actions.snapshot import SnapshotOptions, take_snapshot
    from pvegit.cli.snapshots import describe
    from pvegit.demo.node import DemoNode

    home, store = open_home(arguments)
    node = DemoNode(home.demo_nodes_dir / arguments.name, arguments.name)
    created = node.create()
    try:
        host = store.host(arguments.name)
    except NotFound:
        values = {
            "address": f"local:{node.root}",
            "categories": ("cluster", "network", "storage", "system"),
        }
        host = add_host(store, arguments.name, values, actor=actor(), demo=True)
    print(f"demo node {arguments.name}: files at {node.root}" + (" (created)" if created else ""))
    options = SnapshotOptions(trigger="demo", actor=actor())
    run = take_snapshot(home, store, host, options)
    print(describe(run))
    if created:
        for _ in range(DEMO_EDITS):
            edited = node.edit_something()
            run = take_snapshot(home, store, host, options)
            print(f"edited {edited}: {describe(run)}")
    password = secrets.token_urlsafe(12)
    make_demo_admin(store, password, actor=actor())
    print()
    print(f"web UI:   http://{arguments.listen}")
    print("user:     admin")
    print(f"password: {password}   (one-time: a new one each time you run the demo)")
    if arguments.no_serve:
        return 0
    # The demo node is reached locally; its schedule stays manual so the demo is calm.
    serve(home, store, Config(listen=arguments.listen, concurrency=2, default_schedule="manual"))
    return 0
