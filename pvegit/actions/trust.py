"""Trusting a node's SSH host key: read what it offers, pin it, mirror it in known_hosts.

The pinned keys live in state.db (the SSH transport checks them there); the
home's ``known_hosts`` is an OpenSSH copy of them, so that a sysadmin can reach
the same nodes with ``ssh -o UserKnownHostsFile=$PVEGIT_HOME/known_hosts``.
Every change to a pinned key (trust, a host removed, an address changed) goes
through here and rewrites that copy, whichever face made it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pvegit.config.home import Home
from pvegit.errors import ConfigError, HostKeyMismatch
from pvegit.state.store import Host, Store
from pvegit.system.durable import write_synced
from pvegit.system.locks import exclusive

# How a node's offered key compares with the host's pinned one.
KeyState = Literal["new", "changed", "trusted"]

# Writers of known_hosts (the CLI and `serve` at once) take turns; each writes it whole.
_LOCK_SECONDS = 30


@dataclass(frozen=True)
class OfferedKey:
    """The host key a node offers, read without logging in."""

    key_type: str
    key_blob: str  # base64, as in known_hosts
    fingerprint: str  # SHA256:..., as ssh-keygen -l shows it

    def state_for(self, host: Host) -> KeyState:
        """ "new" when nothing is pinned, "trusted" when this is the pinned key, else "changed"."""
        if host.host_key is None:
            return "new"
        if host.host_key != self.key_blob or host.host_key_type != self.key_type:
            return "changed"
        return "trusted"


def pinned_fingerprint(host: Host) -> str | None:
    """The fingerprint of the host's pinned key, or None when none is pinned."""
    from pvegit.node.ssh import fingerprint

    return fingerprint(host.host_key) if host.host_key else None


def read_offered_key(host: Host) -> OfferedKey:
    """Connect to the node and read the host key it offers (no login).

    Raises ConfigError for a local host (no SSH, no key) and ConnectError when
    the node cannot be reached.
    """
    from pvegit.node.ssh import fingerprint, scan_host_key

    if host.is_local:
        raise ConfigError(f"{host.name} is reached locally: there is no host key to trust")
    key_type, key_blob = scan_host_key(host.address, host.port)
    return OfferedKey(key_type, key_blob, fingerprint(key_blob))


def trust_confirmed_key(
    home: Home, store: Store, host: Host, expected: str, *, actor: str, via: str | None = None
) -> Host:
    """Read the node's key again and pin it if its fingerprint is ``expected``.

    ``expected`` is the fingerprint a person checked (on the node's console, or
    on the test-connection page). Returns the updated host. Raises
    HostKeyMismatch (nothing pinned) when the node now offers another key,
    ConfigError for a local host, ConnectError when the node cannot be reached.
    """
    offered = read_offered_key(host)
    wanted = expected.strip()
    if offered.fingerprint != wanted:
        raise HostKeyMismatch(
            f"{host.name} offers {offered.key_type} {offered.fingerprint}, not {wanted}; "
            "nothing was trusted. Check the fingerprint on the node's console",
            fingerprint=offered.fingerprint,
            key_type=offered.key_type,
            changed=host.host_key is not None,
            expected=wanted,
        )
    return pin_key(home, store, host, offered, actor=actor, via=via)


def pin_key(
    home: Home, store: Store, host: Host, offered: OfferedKey, *, actor: str, via: str | None = None
) -> Host:
    """Pin ``offered`` as the host's key (a person has checked it); return the updated host.

    Audits "host key trusted" (with the fingerprint it replaced, if any) and
    rewrites known_hosts.
    """
    previous = host.host_key
    updated = store.update_host(
        host.name, host_key_type=offered.key_type, host_key=offered.key_blob
    )
    replaced = pinned_fingerprint(host) if previous and previous != offered.key_blob else None
    detail: dict[str, str | None] = {"fingerprint": offered.fingerprint, "replaced": replaced}
    if via is not None:
        detail["via"] = via
    store.audit(actor, "host key trusted", host.name, **detail)
    write_known_hosts(home, store)
    return updated


def known_hosts_text(hosts: list[Host]) -> str:
    """The pinned keys of ``hosts`` as OpenSSH known_hosts lines (hosts without one left out)."""
    lines = []
    for host in hosts:
        if host.host_key and host.host_key_type:
            name = host.address if host.port == 22 else f"[{host.address}]:{host.port}"
            lines.append(f"{name} {host.host_key_type} {host.host_key}\n")
    return "".join(lines)


def write_known_hosts(home: Home, store: Store) -> None:
    """Rewrite ``home.known_hosts_path`` from the keys pinned in ``store``.

    Written whole and atomically (a reader sees the old file or the new one),
    synced, one writer at a time.
    """
    with exclusive(home.known_hosts_lock_path, timeout=_LOCK_SECONDS, what="known_hosts"):
        text = known_hosts_text(store.hosts())
        write_synced(home.known_hosts_path, text.encode())
