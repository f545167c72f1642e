"""A host: how to reach one Proxmox node and what to collect from it.

The record every layer passes around (the node layer connects with it, the
state database stores it, the faces show it), so it lives at the bottom with
the rest of what pvegit is told. ``host_settings`` checks a new or edited
host field by field; this module holds the record, its name rule and the
meaning of a ``local`` address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pvegit.errors import ConfigError

_HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def validate_host_name(name: str) -> str:
    """Return ``name`` if it may name a host, else raise ConfigError.

    Host names become repository names and URL parts: keep them plain.
    """
    if not _HOST_NAME.match(name) or name.endswith((".git", ".lock")) or ".." in name:
        raise ConfigError(
            f"host name {name!r} is not allowed: use letters, digits, '.', '_' and '-' "
            "(at most 63, starting with a letter or digit), e.g. the node's name 'pve1'"
        )
    return name


@dataclass(frozen=True)
class Host:
    """How to reach one Proxmox node and what to collect from it."""

    name: str
    address: str
    port: int = 22
    user: str = "root"
    identity: str | None = None
    categories: tuple[str, ...] = ()
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    schedule: str | None = None
    host_key_type: str | None = None
    host_key: str | None = None  # base64 of the key blob, as in known_hosts
    created_at: float = 0.0
    updated_at: float = 0.0
    # How pvegit's key reached the node on its last connection (node/collector.py's kinds:
    # unrestricted, restricted, restricted-user, local); "" until one found out.
    access: str = ""
    # The sha256 of the node's allow-list as its collector last answered it (node/
    # allowlist.py); "" inline or not known yet, "none" when the node has none.
    allow_list: str = ""

    @property
    def is_local(self) -> bool:
        """True for this machine's own /etc/pve (``local`` or ``local:PATH``), no SSH."""
        return self.address == "local" or self.address.startswith("local:")

    def to_json(self) -> dict[str, Any]:
        """The host as the API shows it: the pinned key is only said to be there."""
        return {
            "name": self.name,
            "address": self.address,
            "port": self.port,
            "user": self.user,
            "identity": self.identity,
            "categories": list(self.categories),
            "includes": list(self.includes),
            "excludes": list(self.excludes),
            "schedule": self.schedule,
            "host_key_type": self.host_key_type,
            "host_key_pinned": self.host_key is not None,
            "access": self.access_kind,
        }

    @property
    def access_kind(self) -> str:
        """The access as shown: ``local`` for a local host, ``unknown`` before a connection."""
        if self.is_local:
            return "local"
        return self.access or "unknown"


def local_root(address: str) -> str | None:
    """The root directory of a ``local`` / ``local:/path`` address, else None."""
    if address == "local":
        return "/"
    if address.startswith("local:"):
        root = address[len("local:") :]
        if not root.startswith("/"):
            raise ConfigError(f"{address!r}: give an absolute path, e.g. local:/mnt/rescue")
        return root
    return None
