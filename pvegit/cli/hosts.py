"""``pvegit init``, ``key``, ``categories`` and ``host ...``."""

from __future__ import annotations

import argparse
import functools
import getpass
import sys
import time
from collections.abc import Callable
from typing import Any

from pvegit.cli.common import actor, ask_yes, home_of, open_home, print_json
from pvegit.config import host_settings
from pvegit.config.categories import CATALOGUE, DEFAULT_CATEGORIES
from pvegit.config.home import Home
from pvegit.errors import ConfigError, HostKeyError, PvegitError
from pvegit.state.liveness import settle_runs
from pvegit.state.store import Host, Store, validate_host_name


def _validated(arguments: argparse.Namespace) -> dict[str, Any]:
    """The connection options that were given, checked."""
    checks: dict[str, Callable[[Any], Any]] = {
        # The CLI is root on this machine: it alone may make local hosts.
        "address": functools.partial(host_settings.check_address, local_allowed=True),
        "port": host_settings.check_port,
        "user": host_settings.check_user,
        "identity": str,
        "categories": host_settings.check_categories,
        "includes": host_settings.check_includes,
        "excludes": host_settings.check_excludes,
        "schedule": host_settings.check_schedule,
    }
    return {
        key: check(getattr(arguments, key))
        for key, check in checks.items()
        if getattr(arguments, key) is not None
    }


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
    values = _validated(arguments)
    values.setdefault("categories", DEFAULT_CATEGORIES)
    host = store.add_host(Host(name=arguments.name, **values))
    store.audit(actor(), "host added", host.name, address=host.address)
    print(f"added {host.name} ({host.address})")
    if host.is_local:
        return 0
    if arguments.fingerprint:
        host = _trust(store, host, arguments.fingerprint)
    if arguments.install_key:
        if host.host_key is None:
            host = _trust(store, host, None)
        _install_key(home, store, host, arguments.password_stdin)
    elif host.host_key is None:
        print(f"next: pvegit host trust {host.name}   (pins the node's host key)")
    return 0


def _install_key(home: Home, store: Store, host: Host, from_stdin: bool) -> None:
    from pvegit.node.ssh import SshTransport, install_key

    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password of {host.user}@{host.address}: ")
    try:
        transport = SshTransport.connect(home, host, password=password)
    finally:
        del password  # never stored, never logged
    try:
        written = install_key(transport, home.public_key())
    finally:
        transport.close()
    store.audit(actor(), "key installed", host.name, path=written)
    print(f"installed pvegit's key in {written}")
    if written.startswith("/etc/pve/"):
        print(
            "note: this is the cluster-wide authorized_keys (/root/.ssh/authorized_keys links "
            "to it), so every node of this cluster now accepts pvegit's key"
        )
    SshTransport.connect(home, host).close()
    print("key login works")


def _trust(store: Store, host: Host, expected: str | None) -> Host:
    from pvegit.node.ssh import fingerprint, scan_host_key

    if host.is_local:
        raise ConfigError(f"{host.name} is reached locally: there is no host key to trust")
    key_type, key_blob = scan_host_key(host.address, host.port)
    offered = fingerprint(key_blob)
    if expected is not None:
        if expected.strip() != offered:
            raise HostKeyError(
                f"{host.name} offers {key_type} {offered}, not {expected.strip()}; "
                "nothing was trusted. Check the fingerprint on the node's console",
                fingerprint=offered,
                key_type=key_type,
                changed=host.host_key is not None,
            )
    else:
        print(f"{host.name} ({host.address}:{host.port}) offers {key_type} {offered}")
        if host.host_key and host.host_key != key_blob:
            print("WARNING: this is NOT the key pinned before: the host key changed")
        print("compare with the node's console: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub")
        if not ask_yes("trust this key?"):
            raise ConfigError(
                "host key not trusted; run again on a terminal, or pass "
                f"--fingerprint {offered} once you have checked it"
            )
    previous = host.host_key
    host = store.update_host(host.name, host_key_type=key_type, host_key=key_blob)
    store.audit(
        actor(),
        "host key trusted",
        host.name,
        fingerprint=offered,
        replaced=fingerprint(previous) if previous and previous != key_blob else None,
    )
    _write_known_hosts(store)
    print(f"trusted {key_type} {offered} for {host.name}")
    return host


def _write_known_hosts(store: Store) -> None:
    """Mirror the pinned keys as an OpenSSH known_hosts file (for ssh -o UserKnownHostsFile)."""
    home_path = store.path.parent / "known_hosts"
    lines = []
    for host in store.hosts():
        if host.host_key and host.host_key_type:
            name = host.address if host.port == 22 else f"[{host.address}]:{host.port}"
            lines.append(f"{name} {host.host_key_type} {host.host_key}\n")
    temporary = home_path.with_suffix(".tmp")
    temporary.write_text("".join(lines))
    temporary.replace(home_path)


def cmd_host_trust(arguments: argparse.Namespace) -> int:
    _, store = open_home(arguments)
    _trust(store, store.host(arguments.name), arguments.fingerprint)
    return 0


def cmd_host_list(arguments: argparse.Namespace) -> int:
    home, store = open_home(arguments)
    hosts = store.hosts()
    if arguments.json:
        print_json([host.to_json() for host in hosts])
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
        print_json(host.to_json())
        return 0
    for key, value in host.to_json().items():
        if isinstance(value, list):
            value = ", ".join(value) or "-"
        print(f"{key + ':':<18} {value if value is not None else '-'}")
    if host.host_key:
        from pvegit.node.ssh import fingerprint

        print(f"{'fingerprint:':<18} {fingerprint(host.host_key)}")
    return 0


def cmd_host_edit(arguments: argparse.Namespace) -> int:
    _, store = open_home(arguments)
    store.host(arguments.name)
    values = _validated(arguments)
    if not values:
        raise ConfigError("nothing to change: give at least one option (see --help)")
    if "address" in values or "port" in values:
        # Another address is another machine until its key is checked again.
        values["host_key"] = None
        values["host_key_type"] = None
    host = store.update_host(arguments.name, **values)
    store.audit(actor(), "host edited", host.name, changed=sorted(values))
    print(f"updated {host.name}")
    if host.host_key is None and not host.is_local:
        print(f"next: pvegit host trust {host.name}")
    return 0


def cmd_host_remove(arguments: argparse.Namespace) -> int:
    home, store = open_home(arguments)
    store.remove_host(arguments.name)
    store.audit(actor(), "host removed", arguments.name)
    _write_known_hosts(store)
    print(f"removed {arguments.name}; its history stays in {home.repo_path(arguments.name)}")
    return 0


def cmd_host_test(arguments: argparse.Namespace) -> int:
    from pvegit.node.collect import probe_node, pve_version
    from pvegit.node.transport import open_transport

    home, store = open_home(arguments)
    host = store.host(arguments.name)
    started = time.monotonic()
    try:
        transport = open_transport(home, host)
    except PvegitError as err:
        print(f"FAIL connect: {err}")
        return 1
    try:
        print(f"ok   reach and login as {host.user} ({time.monotonic() - started:.2f} s)")
        if host.host_key:
            from pvegit.node.ssh import fingerprint

            print(f"ok   host key {host.host_key_type} {fingerprint(host.host_key)} (pinned)")
        probe = probe_node(transport)
        print(f"ok   node says it is {probe.hostname!r}, uid {probe.uid}")
        version = pve_version(transport)
        print(f"{'ok  ' if version else 'warn'} PVE version: {version or 'unknown'}")
        problem = probe.pmxcfs_problem(live=transport.live)
        print(f"FAIL pmxcfs: {problem}" if problem else "ok   pmxcfs: /etc/pve is served")
        return 1 if problem else 0
    except PvegitError as err:  # the node answered wrongly, or stopped answering
        print(f"FAIL {err}")
        return 1
    finally:
        transport.close()
