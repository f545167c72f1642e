"""``pvegit serve``, ``pvegit user ...`` and ``pvegit demo``."""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys

from pvegit.cli.common import actor, open_home
from pvegit.errors import ConfigError, NotFound
from pvegit.home import Home
from pvegit.store import Host, Store


def parse_listen(text: str) -> tuple[str, int]:
    """``127.0.0.1:8080`` or ``[::1]:8080`` into (host, port)."""
    host, separator, port = text.rpartition(":")
    if not separator or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise ConfigError(f"--listen {text!r}: give ADDRESS:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


def _read_password(from_stdin: bool, name: str) -> str:
    from web.security import check_new_password

    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {name}: ")
        if getpass.getpass("again: ") != password:
            raise ConfigError("the two passwords differ; nothing was changed")
    problem = check_new_password(password)
    if problem:
        raise ConfigError(problem)
    return password


def cmd_user_add(arguments: argparse.Namespace) -> int:
    from web.security import hash_password

    _, store = open_home(arguments)
    if not arguments.name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ConfigError(f"user name {arguments.name!r}: use letters, digits, '.', '-', '_'")
    password = _read_password(arguments.password_stdin, arguments.name)
    store.add_user(arguments.name, hash_password(password))
    store.audit(actor(), "user added", None, user=arguments.name)
    print(f"added user {arguments.name}")
    return 0


def cmd_user_passwd(arguments: argparse.Namespace) -> int:
    from web.security import hash_password

    _, store = open_home(arguments)
    if store.password_hash(arguments.name) is None:
        raise NotFound(f"no user {arguments.name!r}; 'pvegit user list' shows the users")
    store.set_password(
        arguments.name, hash_password(_read_password(arguments.password_stdin, arguments.name))
    )
    store.audit(actor(), "password changed", None, user=arguments.name)
    print(f"changed the password of {arguments.name}")
    return 0


def cmd_user_remove(arguments: argparse.Namespace) -> int:
    _, store = open_home(arguments)
    store.remove_user(arguments.name)
    store.audit(actor(), "user removed", None, user=arguments.name)
    print(f"removed user {arguments.name}")
    return 0


def cmd_user_list(arguments: argparse.Namespace) -> int:
    _, store = open_home(arguments)
    users = store.users()
    print("\n".join(users) if users else "no users yet: pvegit user add NAME")
    return 0


def _sync_indexes(home: Home, store: Store) -> None:
    from pvegit.history import sync_index
    from pvegit.repo import HostRepository

    for path in sorted(home.repos_dir.glob("*.git")):
        with HostRepository(path) as repository:
            sync_index(store, repository, path.name.removesuffix(".git"))


def serve(home: Home, store: Store, listen: str, *, behind_proxy: bool, jobs: int) -> None:
    """Run the web UI until interrupted."""
    import uvicorn

    from web.app import create_app
    from web.context import Settings

    address, port = parse_listen(listen)
    if jobs < 1:
        raise ConfigError("--jobs must be at least 1")
    _sync_indexes(home, store)
    app = create_app(home, Settings(secure_cookies=behind_proxy, concurrency=jobs), store=store)
    if not store.users():
        print("no web users yet: create one with 'pvegit user add NAME'", file=sys.stderr)
    print(f"pvegit web UI on http://{listen} (home {home.root})", flush=True)
    uvicorn.run(
        app,
        host=address,
        port=port,
        workers=1,  # one process: the scheduler runs inside it
        proxy_headers=behind_proxy,
        forwarded_allow_ips="127.0.0.1" if behind_proxy else None,
        log_level="warning",
        server_header=False,
    )


def cmd_serve(arguments: argparse.Namespace) -> int:
    home, store = open_home(arguments)
    serve(
        home, store, arguments.listen, behind_proxy=arguments.behind_tls_proxy, jobs=arguments.jobs
    )
    return 0


DEMO_EDITS = 6


def cmd_demo(arguments: argparse.Namespace) -> int:
    """A demo node with some history, an admin with a one-time password, then the UI."""
    from pvegit.cli.snapshots import describe
    from pvegit.demo import DemoNode
    from pvegit.snapshot import SnapshotOptions, take_snapshot
    from web.security import hash_password

    home, store = open_home(arguments)
    node = DemoNode(home.root / "demo-node" / arguments.name, arguments.name)
    created = node.create()
    try:
        host = store.host(arguments.name)
    except NotFound:
        categories = ("cluster", "network", "storage", "system")
        host = store.add_host(
            Host(name=arguments.name, address=f"local:{node.root}", categories=categories)
        )
        store.audit(actor(), "host added", host.name, address=host.address, demo=True)
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
    if store.password_hash("admin") is None:
        store.add_user("admin", hash_password(password))
    else:
        store.set_password("admin", hash_password(password))
    store.audit(actor(), "demo admin password set", None, user="admin")
    print()
    print(f"web UI:   http://{arguments.listen}")
    print("user:     admin")
    print(f"password: {password}   (one-time: a new one each time you run the demo)")
    if arguments.no_serve:
        return 0
    serve(home, store, arguments.listen, behind_proxy=False, jobs=2)
    return 0
