"""Checking a host's settings, field by field (the CLI and the web form share it)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from pvegit.categories import category, validate_exclude, validate_include
from pvegit.errors import ConfigError
from pvegit.schedules import parse_schedule
from pvegit.store import validate_host_name
from pvegit.transport import local_root

_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
_ADDRESS = re.compile(r"^[A-Za-z0-9.:\[\]-]+$")


def check_name(value: str) -> str:
    return validate_host_name(value.strip())


def check_address(value: str) -> str:
    address = value.strip()
    if local_root(address) is not None:
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
