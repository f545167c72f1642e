"""``pvegit init``, ``key``, ``categories`` and ``host ...``."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from pvegit.actions.connection import (
    AccessChecked,
    Identified,
    LoggedIn,
    PmxcfsChecked,
    Step,
    Stopped,
    VersionRead,
    check_node,
    passed,
)
from pvegit.actions.harden import Hardened
from pvegit.actions.hosts import add_host, edit_host, remove_host
from pvegit.actions.trust import pin_key, pinned_fingerprint, read_offered_key, trust_confirmed_key
from pvegit.cli.common import actor, ask_yes, home_of, open_home, print_json
from pvegit.config import host_settings
from pvegit.config.categories import CATALOGUE
from pvegit.config.home import Home
from pvegit.config.selection import resolve_selection
from pvegit.errors import ConfigError
from pvegit.node.access import access_words
from pvegit.node.allowlist import allow_list_text, list_state, list_words
from pvegit.node.program import INSTALLED_PATH
from pvegit.state.liveness import settle_runs
from pvegit.state.store import Host, Store, validate_host_name


def _checked(arguments: argparse.Namespace) -> dict[str, Any]:
    """The settings that were given, checked; raises the first one's error.

    The CLI is root on this machine: it alone may make and point local hosts.
    """
    given = {name: getattr(arguments, name) for name in host_settings.EDITABLE}
    checked = host_settings.check_settings(given, as_root=True)
    checked.raise_first()
    return checked.values


def cmd_init(arguments: argparse.Namespace) -> int:
    from pvegit.state.opening import open_state

    home = home_of(arguments)
    created = home.initialize()
    open_state(home).close()  # never an empty state over existing history
    print(f"{'initialized' if created else 'already initialized'}: {home.root}")
    print(f"public key: {home.public_key()}")
    return 0


def cmd_key(arguments: argparse.Namespace) -> int:
    home, _ = open_home(arguments)
    print(home.public_key())
    return 0


def cmd_categories(arguments: argparse.Namespace) -> int:
    for item in CATALOGUE:
        marker = "default" if item.default else "opt-in"
        print(f"{item.name} ({marker}): {item.description}")
        for path in item.paths:
            print(f"    /{path}")
        for pattern in item.excludes:
            print(f"    not /{pattern}")
        for name in item.commands:
            print(f"    $ {name}")
    return 0


def cmd_host_add(arguments: argparse.Namespace) -> int:
    home, store = open_home(arguments)
    validate_host_name(arguments.name)
    host = add_host(store, arguments.name, _checked(arguments), actor=actor())
    print(f"added {host.name} ({host.address})")
    if host.is_local:
        return 0
    if arguments.fingerprint:
        host = _trust(home, store, host, arguments.fingerprint)
    if arguments.install_key:
        if host.host_key is None:
            host = _trust(home, store, host, None)
        _install_key(home, store, host, arguments.password_stdin)
    elif host.host_key is None:
        print(f"next: pvegit host trust {host.name}   (pins the node's host key)")
    return 0


def _password(host: Host, from_stdin: bool) -> str:
    """Root's (the login user's) password, for one login: never stored, never logged."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return getpass.getpass(f"password of {host.user}@{host.address}: ")


def _install_key(home: Home, store: Store, host: Host, from_stdin: bool) -> None:
    from pvegit.actions.harden import harden_host

    password = _password(host, from_stdin)
    try:
        done = harden_host(home, store, host, password=password, actor=actor())
    finally:
        del password  # never stored, never logged
    store.audit(actor(), "key installed", host.name, path=done.written)
    print(f"installed pvegit's key in {done.written}")
    _print_hardened(done)
    print("key login works")


def _print_hardened(done: Hardened) -> None:
    print(f"the key is {done.access}: it can only run the read-only collector {INSTALLED_PATH}")
    if done.restore_entry:
        print("the restore key's entry is installed too (restore-only)")
    if done.cluster_wide:
        print(
            "note: this is the cluster-wide authorized_keys (/root/.ssh/authorized_keys links "
            "to it), so every node of this cluster now accepts pvegit's key, restricted: "
            "install the collector on each other node with 'pvegit host harden NODE'"
        )


def cmd_host_harden(arguments: argparse.Namespace) -> int:
    from pvegit.actions.harden import PasswordNeeded, harden_host

    home, store = open_home(arguments)
    host = store.host(arguments.name)
    password = _password(host, True) if arguments.password_stdin else None
    try:
        done = harden_host(home, store, host, password=password, actor=actor())
    except PasswordNeeded as err:
        if not sys.stdin.isatty():
            raise ConfigError(
                f"{err}. pvegit's key cannot install it any more: give root's password "
                "(on a terminal, or --password-stdin)"
            ) from err
        print(err)
        password = _password(host, False)
        done = harden_host(home, store, host, password=password, actor=actor())
    finally:
        del password
    if not done.written:
        print(
            f"{host.name}: already {done.access}; the collector and its allow-list are "
            "the current ones"
        )
        return 0
    print(f"hardened {host.name}: rewrote {done.written}")
    _print_hardened(done)
    return 0


def cmd_host_allow_list(arguments: argparse.Namespace) -> int:
    _, store = open_home(arguments)
    host = store.host(arguments.name)
    selection = resolve_selection(host.categories, host.includes, host.excludes)
    sys.stdout.write(allow_list_text(selection))
    return 0


def _trust(home: Home, store: Store, host: Host, expected: str | None) -> Host:
    """Pin the node's key: the one ``expected`` names, else the one a person accepts here."""
    if expected is not None:
        host = trust_confirmed_key(home, store, host, expected, actor=actor())
    else:
        offered_key = read_offered_key(host)
        print(
            f"{host.name} ({host.address}:{host.port}) offers {offered_key.key_type} "
            f"{offered_key.fingerprint}"
        )
        if offered_key.state_for(host) == "changed":
            print("WARNING: this is NOT the key pinned before: the host key changed")
        print("compare with the node's console: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub")
        if not ask_yes("trust this key?"):
            raise ConfigError(
                "host key not trusted; run again on a terminal, or pass "
                f"--fingerprint {offered_key.fingerprint} once you have checked it"
            )
        host = pin_key(home, store, host, offered_key, actor=actor())
    print(f"trusted {host.host_key_type} {pinned_fingerprint(host)} for {host.name}")
    return host


def cmd_host_trust(arguments: argparse.Namespace) -> int:
    home, store = open_home(arguments)
    _trust(home, store, store.host(arguments.name), arguments.fingerprint)
    return 0


def cmd_host_list(arguments: argparse.Namespace) -> int:
    home, store = open_home(arguments)
    hosts = store.hosts()
    if arguments.json:
        print_json([{**host.to_json(), "allow_list": list_state(host)} for host in hosts])
        return 0
    if not hosts:
        print("no hosts yet: pvegit host add NAME --address ADDRESS")
        return 0
    settle_runs(home, store)
    last = {run.host: run for run in reversed(store.runs(limit=1000))}
    print(f"{'NAME':<16} {'ADDRESS':<24} {'USER':<10} {'KEY':<7} LAST RUN")
    for host in hosts:
        run = last.get(host.name)
        pinned = "local" if host.is_local else ("pinned" if host.host_key else "-")
        address = host.address if host.port == 22 else f"{host.address}:{host.port}"
        print(
            f"{host.name:<16} {address:<24} {host.user:<10} {pinned:<7} "
            f"{run.status if run else 'never'}"
        )
    return 0


def cmd_host_show(arguments: argparse.Namespace) -> int:
    _, store = open_home(arguments)
    host = store.host(arguments.name)
    if arguments.json:
        print_json({**host.to_json(), "allow_list": list_state(host)})
        return 0
    for key, value in host.to_json().items():
        if isinstance(value, list):
            value = ", ".join(value) or "-"
        print(f"{key + ':':<18} {value if value is not None else '-'}")
    if host.host_key:
        print(f"{'fingerprint:':<18} {pinned_fingerprint(host)}")
    print(f"{'access means:':<18} {access_words(host.access_kind, host.name)}")
    listed = list_words(host)
    if listed is not None:
        print(f"{'allow-list:':<18} {listed}")
    return 0


def cmd_host_edit(arguments: argparse.Namespace) -> int:
    home, store = open_home(arguments)
    host = store.host(arguments.name)
    values = _checked(arguments)
    if not values:
        raise ConfigError("nothing to change: give at least one option (see --help)")
    before = host
    host = edit_host(home, store, host, values, actor=actor())
    print(f"updated {host.name}")
    listed = list_words(host)
    if listed is not None and list_words(before) is None:
        print(f"note: {listed}")
    if host.host_key is None and not host.is_local:
        print(f"next: pvegit host trust {host.name}")
    return 0


def cmd_host_remove(arguments: argparse.Namespace) -> int:
    home, store = open_home(arguments)
    remove_host(home, store, arguments.name, actor=actor())
    print(f"removed {arguments.name}; its history stays in {home.repo_path(arguments.name)}")
    return 0


def cmd_host_test(arguments: argparse.Namespace) -> int:
    home, store = open_home(arguments)
    host = store.host(arguments.name)
    steps = check_node(home, host)
    for step in steps:
        print(_step_line(step))
        if isinstance(step, LoggedIn) and host.host_key:
            print(f"ok   host key {host.host_key_type} {pinned_fingerprint(host)} (pinned)")
    return 0 if passed(steps) else 1


def _step_line(step: Step) -> str:
    match step:
        case LoggedIn(user=user, seconds=seconds):
            return f"ok   reach and login as {user} ({seconds:.2f} s)"
        case AccessChecked():
            return f"{'ok  ' if step.ok else 'warn'} access: {step.describe()}"
        case Identified(hostname=hostname, uid=uid):
            return f"ok   node says it is {hostname!r}, uid {uid}"
        case VersionRead(version=version):
            return f"{'ok  ' if version else 'warn'} PVE version: {version or 'unknown'}"
        case PmxcfsChecked(problem=problem):
            return f"FAIL pmxcfs: {problem}" if problem else "ok   pmxcfs: /etc/pve is served"
        case Stopped(problem=problem, connecting=True):
            return f"FAIL connect: {problem}"
        case Stopped(problem=problem):
            return f"FAIL {problem}"
