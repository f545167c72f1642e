"""Checking a host's settings, field by field (the CLI and the web form share it).

A ``local`` / ``local:/path`` host is collected on the pvegit machine itself,
as the user pvegit runs as (root): only root on that machine, at the command
line, may make one, point one somewhere or change what it reads. The web UI
and the API (any role) may not, and may not restore onto one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pvegit.config.categories import category
from pvegit.config.host import Host, local_root, validate_host_name
from pvegit.config.schedules import parse_schedule
from pvegit.config.selection import validate_exclude, validate_include
from pvegit.errors import ConfigError

_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
_ADDRESS = re.compile(r"^[A-Za-z0-9.:\[\]-]+$")


def check_name(value: str) -> str:
    return validate_host_name(value.strip())


def check_address(value: str, *, local_allowed: bool) -> str:
    """The address as stored; ``local`` addresses only where ``local_allowed`` (the CLI)."""
    address = value.strip()
    if local_root(address) is not None:
        if not local_allowed:
            raise ConfigError(
                f"address {address!r} is this machine: a local host reads and writes the "
                "pvegit machine itself as root, so only root can add one here, with "
                "'pvegit host add NAME --address local'"
            )
        return address
    if not address or not _ADDRESS.match(address):
        raise ConfigError(
            f"address {value!r} is not a host name or IP address; use e.g. 192.0.2.11, "
            "pve1.example.org, 'local' or 'local:/mnt/rescue'"
        )
    return address


def check_port(value: str | int) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"port {value!r} is not a number") from err
    if not 0 < port < 65536:
        raise ConfigError(f"port {port} is out of range (1-65535)")
    return port


def check_user(value: str) -> str:
    user = value.strip()
    if not _USER.match(user):
        raise ConfigError(f"user {value!r} is not a valid login name (e.g. root, pvebackup)")
    return user


def check_categories(names: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(category(name.strip()).name for name in names if name.strip())
    if not chosen:
        raise ConfigError("choose at least one category")
    return chosen


def check_includes(paths: Iterable[str]) -> tuple[str, ...]:
    return tuple(validate_include(path) for path in paths if path.strip())


def check_excludes(patterns: Iterable[str]) -> tuple[str, ...]:
    return tuple(validate_exclude(pattern) for pattern in patterns if pattern.strip())


def check_schedule(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    return parse_schedule(value).spec


# What the web UI and the API may change on a local host: when it runs and what
# it leaves out. Where it reads and what it reads stay root's decision.
LOCAL_CHANGEABLE_FROM_WEB = ("schedule", "excludes")


def check_web_edit(host: Host, changes: Mapping[str, Any]) -> None:
    """Refuse a change from the web UI or the API that a local host only takes from root.

    ``changes`` are checked values as ``Host`` fields; unchanged values pass.
    Raises ConfigError naming the fields and the command that changes them.
    """
    if not host.is_local:
        return
    changed = [
        name
        for name, value in changes.items()
        if name not in LOCAL_CHANGEABLE_FROM_WEB and not _same(name, getattr(host, name), value)
    ]
    if changed:
        raise ConfigError(
            f"{host.name} is this machine ({host.address}): its {', '.join(sorted(changed))} "
            f"can only be changed by root here: pvegit host edit {host.name} ..."
        )


def _same(name: str, old: Any, new: Any) -> bool:
    if name == "categories":
        return set(old) == set(new)
    return bool(old == new)


def check_web_restore(host: Host) -> None:
    """Refuse a restore from the web UI or the API onto a local host (ConfigError)."""
    if host.is_local:
        raise ConfigError(
            f"{host.name} is this machine ({host.address}): a restore onto it writes files "
            "as root on the pvegit machine, so the web UI does not do it. As root here: "
            f"pvegit restore {host.name} REV PATH..."
        )


# The settings a person sets, in the order they are checked (and reported).
EDITABLE = ("address", "port", "user", "identity", "categories", "includes", "excludes", "schedule")
# Those the web UI offers: a key file (identity) is a path on this machine, root's to name.
WEB_EDITABLE = tuple(name for name in EDITABLE if name != "identity")


def locked_from_web(host: Host | None) -> tuple[str, ...]:
    """The settings the web UI shows but may not change: a local host's where and what."""
    if host is None or not host.is_local:
        return ()
    return tuple(name for name in WEB_EDITABLE if name not in LOCAL_CHANGEABLE_FROM_WEB)


@dataclass(frozen=True)
class CheckedSettings:
    """Host settings checked field by field: the values that passed and what is wrong
    with the others (field name -> message)."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def raise_first(self) -> None:
        """Raise the first field's error as a ConfigError (the CLI stops at one)."""
        for message in self.errors.values():
            raise ConfigError(message)


def check_settings(
    given: Mapping[str, Any], *, current: Host | None = None, as_root: bool
) -> CheckedSettings:
    """Check each setting in ``given`` (``name`` and the EDITABLE fields; others ignored).

    Values come as typed: strings, a port as int or text, lists of strings for
    categories, includes and excludes. ``current`` is the host being edited
    (None for a new one). ``as_root`` is the CLI, root on this machine, which
    alone may make or point a local host; otherwise (web UI, API) an edit may
    keep a local address as it is and change only what LOCAL_CHANGEABLE_FROM_WEB
    names, which is reported on ``address``. Never raises for a bad value: every
    error is collected.
    """
    keeps_local = current is not None and str(given.get("address", "")).strip() == current.address
    checks: dict[str, Callable[[Any], Any]] = {
        "name": check_name,
        "address": functools.partial(check_address, local_allowed=as_root or keeps_local),
        "port": check_port,
        "user": check_user,
        "identity": str,
        "categories": check_categories,
        "includes": check_includes,
        "excludes": check_excludes,
        "schedule": check_schedule,
    }
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, check in checks.items():
        if name in given and given[name] is not None:
            try:
                values[name] = check(given[name])
            except ConfigError as err:
                errors[name] = str(err)
    if current is not None and not as_root and not errors:
        try:
            check_web_edit(current, values)
        except ConfigError as err:
            errors["address"] = str(err)
    return CheckedSettings(values, errors)
