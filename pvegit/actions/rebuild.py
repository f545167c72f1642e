"""``pvegit rebuild-state``: a new state.db from what the repositories hold.

For when state.db is missing, empty, unreadable or blank and no copy of it is
at hand. What was there is moved aside (``state.db.damaged-<time>``, with its
``-wal`` and ``-shm``: never overwritten), then for every repository with
history: the host, with the settings its repository's config keeps
(``[pvegit]``, written at each snapshot) or, for a repository from before
that, an address found in its newest snapshot (the node's ``etc/hosts`` entry
for its ``etc/hostname``), else its name; its runs from the commits'
trailers (``Run-Id``, ``Trigger``, ``Triggered-By``, the commit time; status
``changed``); its commit index. Pinned host keys are not rebuilt: trusting a
host is a decision (``pvegit host trust NAME``). Web users, API tokens,
notification targets made in the UI and the old audit log cannot be derived.
"""

from __future__ import annotations

import ipaddress
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from pvegit.actions.trust import write_known_hosts
from pvegit.config import host_settings
from pvegit.config.categories import DEFAULT_CATEGORIES
from pvegit.config.home import Home
from pvegit.errors import ConfigError, NotFound, RepositoryDamaged, StateDamaged
from pvegit.git.repo import HostRepository
from pvegit.state.index import rebuild_index
from pvegit.state.opening import is_blank, repositories_with_history, state_problem
from pvegit.state.runlog import record_runs, unrecorded_commits
from pvegit.state.store import Host, Store, validate_host_name
from pvegit.system.durable import sync_directory


@dataclass(frozen=True)
class RebuiltHost:
    """One host put back into the new state.db."""

    name: str
    settings_from: str  # where its settings came from
    runs: int  # runs recorded from its commits' trailers
    needs_trust: bool  # reached over SSH: its host key must be pinned again
    problem: str | None = None  # what kept it from being rebuilt in full


@dataclass(frozen=True)
class Rebuild:
    """What ``rebuild_state`` did; ``reason`` None: state.db was fine, nothing was done."""

    reason: str | None
    moved: tuple[tuple[Path, Path], ...] = ()  # (from, to)
    hosts: tuple[RebuiltHost, ...] = ()


def rebuild_state(home: Home, *, actor: str) -> Rebuild:
    """Rebuild state.db from the repositories when it is missing, empty, unreadable or blank.

    Stop ``pvegit serve`` first: it would keep writing to the file moved aside.
    """
    home.initialize()
    reason = state_condition(home)
    if reason is None:
        return Rebuild(None)
    moved = _move_state_aside(home)
    store = Store(home.state_path)
    try:
        hosts = tuple(_rebuild_host(store, path) for path in repositories_with_history(home))
        store.audit(
            actor,
            "state rebuilt",
            None,
            reason=reason,
            moved={str(source): str(target) for source, target in moved},
            hosts=[host.name for host in hosts if host.problem is None],
            runs=sum(host.runs for host in hosts),
        )
        # The rebuilt hosts have no pinned key: plain ssh with pvegit's known_hosts must
        # not go on trusting keys pvegit itself no longer does.
        write_known_hosts(home, store)
    finally:
        store.close()
    return Rebuild(reason, moved, hosts)


def state_condition(home: Home) -> str | None:
    """What is wrong with state.db (missing, empty, unreadable, blank), or None."""
    problem = state_problem(home)
    if problem or not home.state_path.exists() or not home.state_path.stat().st_size:
        return problem
    try:
        store = Store(home.state_path)
    except StateDamaged as err:
        return str(err)
    try:
        check = store.quick_check()
        if check != ["ok"]:
            return f"{home.state_path} is damaged (SQLite's check: {'; '.join(check[:3])})"
        if repositories_with_history(home) and is_blank(store):
            return f"{home.state_path} holds no host, run or audit entry"
    except StateDamaged as err:
        return str(err)
    finally:
        store.close()
    return None


def _move_state_aside(home: Home) -> tuple[tuple[Path, Path], ...]:
    """state.db and its -wal and -shm to state.db.damaged-<time>[-wal|-shm], never overwriting."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{home.state_path.name}.damaged-{stamp}"
    number = 1
    while any((home.root / f"{name}{suffix}").exists() for suffix in ("", "-wal", "-shm")):
        number += 1
        name = f"{home.state_path.name}.damaged-{stamp}.{number}"
    moved: list[tuple[Path, Path]] = []
    # SQLite pairs a database with "<name>-wal": the moved copy keeps its WAL.
    for suffix in ("", "-wal", "-shm"):
        source = home.root / f"{home.state_path.name}{suffix}"
        if source.exists():
            target = home.root / f"{name}{suffix}"
            os.rename(source, target)
            moved.append((source, target))
    sync_directory(home.root)
    return tuple(moved)


def _rebuild_host(store: Store, path: Path) -> RebuiltHost:
    name = path.name.removesuffix(".git")
    try:
        validate_host_name(name)
    except ConfigError as err:
        return RebuiltHost(name, "", 0, False, f"skipped: {err}")
    damaged: RepositoryDamaged | None = None
    try:
        repository = HostRepository(path)
    except RepositoryDamaged as err:
        damaged = err
        try:
            repository = HostRepository(path, check=False)
        except RepositoryDamaged:
            store.add_host(_fallback_host(name))
            return RebuiltHost(
                name, "its name (the repository cannot be opened)", 0, True, _repair_first(err)
            )
    with repository:
        host, source = _host_from(repository, name, readable=damaged is None)
        store.add_host(host)
        if damaged is not None:
            return RebuiltHost(name, source, 0, not host.is_local, _repair_first(damaged))
        runs = record_runs(store, repository, name, unrecorded_commits(store, repository, name))
        rebuild_index(store, repository, name)
    return RebuiltHost(name, source, runs, not host.is_local)


def _repair_first(error: RepositoryDamaged) -> str:
    return (
        f"{error}; its runs were not rebuilt: `pvegit repair {error.host_name}` records them "
        "once the repository is whole"
    )


def _fallback_host(name: str) -> Host:
    return Host(name=name, address=name, categories=DEFAULT_CATEGORIES)


def _host_from(repository: HostRepository, name: str, *, readable: bool) -> tuple[Host, str]:
    """The host and where its settings came from: the repository's config, else its tree."""
    stored = repository.settings()
    note = ""
    if stored:
        try:
            return _parse_settings(name, stored), "the [pvegit] section of its repository's config"
        except (ConfigError, ValueError, TypeError) as err:
            note = f" (the config's settings were unusable: {err})"
    if readable:
        address = _address_in_snapshot(repository)
        if address:
            return (
                Host(name=name, address=address, categories=DEFAULT_CATEGORIES),
                f"its newest snapshot's etc/hosts and etc/hostname; default categories{note}",
            )
    return _fallback_host(name), f"its name, default categories (nothing better found){note}"


def _parse_settings(name: str, stored: dict[str, str]) -> Host:
    """The ``[pvegit]`` section back into a Host, every field checked (it comes from disk)."""

    def listed(key: str) -> list[str]:
        value = json.loads(stored.get(key, "[]"))
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ConfigError(f"{key} is not a list of strings")
        return value

    return Host(
        name=name,
        # Written by pvegit itself from the host's settings (a local host came from the
        # CLI); rebuild-state is root's command on this machine, like `host add`.
        address=(
            host_settings.check_address(stored["address"], local_allowed=True)
            if "address" in stored
            else name
        ),
        port=host_settings.check_port(stored.get("port", "22")),
        user=host_settings.check_user(stored.get("user", "root")),
        identity=stored.get("identity") or None,
        categories=host_settings.check_categories(listed("categories") or DEFAULT_CATEGORIES),
        includes=host_settings.check_includes(listed("includes")),
        excludes=host_settings.check_excludes(listed("excludes")),
        schedule=host_settings.check_schedule(stored.get("schedule")),
    )


def _address_in_snapshot(repository: HostRepository) -> str | None:
    """The node's own non-loopback address from its etc/hosts (what pmxcfs needs there too)."""
    head = repository.head()
    if head is None:
        return None
    try:
        hostname = repository.read_file(head, "etc/hostname")[1].decode().strip()
        hosts = repository.read_file(head, "etc/hosts")[1].decode("utf-8", "replace")
    except (NotFound, UnicodeDecodeError):
        return None
    short = hostname.split(".", 1)[0]
    for line in hosts.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2 or fields[0].startswith("127.") or fields[0] == "::1":
            continue
        if hostname in fields[1:] or short in fields[1:]:
            # The node's file is input: only an IP address will do (never 'local:...').
            try:
                return str(ipaddress.ip_address(fields[0]))
            except ValueError:
                continue
    return None
