"""Adding, editing and removing a host: the store, the audit log and known_hosts together.

The settings come checked (``pvegit.config.host_settings.check_settings``);
``actor`` is who acts, for the audit log, and ``via`` names the face when it
is not the CLI ("web"), as the audit entries always did.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pvegit.actions.trust import write_known_hosts
from pvegit.config.categories import DEFAULT_CATEGORIES
from pvegit.config.home import Home
from pvegit.state.store import Host, Store


def _audit(
    store: Store, actor: str, action: str, host_name: str, via: str | None, **detail: Any
) -> None:
    if via is not None:
        detail["via"] = via
    store.audit(actor, action, host_name, **detail)


def add_host(
    store: Store,
    name: str,
    values: Mapping[str, Any],
    *,
    actor: str,
    via: str | None = None,
    **why: Any,
) -> Host:
    """Add the host ``name`` with checked ``values`` (default categories unless given).

    ``why`` goes into the audit entry (``demo=True``, ``rescue=True``: who made it).
    No key is pinned yet (trust it next). Raises ConfigError for a name taken or invalid.
    """
    settings = {"categories": DEFAULT_CATEGORIES, **values}
    settings.pop("name", None)
    host = store.add_host(Host(name=name, **settings))
    _audit(store, actor, "host added", host.name, via, address=host.address, **why)
    return host


def edit_host(
    home: Home,
    store: Store,
    host: Host,
    values: Mapping[str, Any],
    *,
    actor: str,
    via: str | None = None,
) -> Host:
    """Change the host's settings to the checked ``values``; return the updated host.

    A new address or port is another machine until its key is checked again:
    the pinned key is dropped (and known_hosts rewritten without it).
    """
    changes = dict(values)
    changes.pop("name", None)
    moved = changes.get("address", host.address) != host.address or (
        changes.get("port", host.port) != host.port
    )
    if moved:
        changes.update(host_key=None, host_key_type=None)
    updated = store.update_host(host.name, **changes)
    _audit(store, actor, "host edited", host.name, via, changed=sorted(changes))
    if moved and host.host_key is not None:
        write_known_hosts(home, store)
    return updated


def remove_host(
    home: Home, store: Store, host_name: str, *, actor: str, via: str | None = None
) -> None:
    """Forget the host (its repository stays) and its pinned key. Raises NotFound."""
    store.remove_host(host_name)
    _audit(store, actor, "host removed", host_name, via)
    write_known_hosts(home, store)
