"""Notification targets: listed, made in the web UI, removed, sent a test.

For the web UI's notifications page and ``pvegit notify test`` alike: the
checks, the change in state.db and its audit entry together. A target made in
the web UI is checked exactly like a ``[[notify]]`` table of pvegit.toml
(``config.file.check_target``); ``actor`` is who acts, for the audit log. It
lives beside the notifier (``service/notify.py``) because a test is a delivery.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pvegit.config.file import Config, Target, check_target
from pvegit.config.names import is_plain_name
from pvegit.errors import ConfigError
from pvegit.service.notify import all_targets, send_test, target_location
from pvegit.state.store import Store


@dataclass(frozen=True)
class ListedTarget:
    """A target as listed: where it delivers (safe to show) and whether it was made in
    the web UI (only those can be removed there; the others are pvegit.toml's)."""

    target: Target
    location: str
    made_in_web: bool


@dataclass(frozen=True)
class TargetTest:
    """A test notification's outcome at one target: ``problem`` is None when it was sent."""

    target: Target
    problem: str | None


def list_targets(config: Config, store: Store) -> list[ListedTarget]:
    """Every target: pvegit.toml's first, then those made in the web UI (a stored one
    that no longer passes the checks is left out and logged, as when notifying)."""
    configured = len(config.targets)
    return [
        ListedTarget(target, target_location(target), made_in_web=position >= configured)
        for position, target in enumerate(all_targets(config, store))
    ]


def add_target(store: Store, settings: Mapping[str, Any], *, actor: str) -> Target:
    """Store a target with ``settings`` (a ``[[notify]]`` table, its name included).

    Raises ConfigError for a name not allowed (``config/names.py``) or taken, or
    settings that pvegit.toml would refuse.
    """
    name = str(settings.get("name", ""))
    if not is_plain_name(name):
        raise ConfigError("name the target with letters, digits, '.', '_' or '-'")
    target = check_target(dict(settings), "the new target")
    store.add_notify_target(name, settings)
    store.audit(actor, "notification target added", None, target=name, kind=target.kind)
    return target


def remove_target(store: Store, name: str, *, actor: str) -> None:
    """Remove a target made in the web UI; NotFound if there is none of that name
    (pvegit.toml's are changed in the file)."""
    store.remove_notify_target(name)
    store.audit(actor, "notification target removed", None, target=name)


def send_test_notification(config: Config, store: Store, *, actor: str) -> list[TargetTest]:
    """Send a test notification to every target now; one outcome each, in list order.

    Raises ConfigError when there is no target at all (nothing to test).
    """
    targets = all_targets(config, store)
    if not targets:
        raise ConfigError(
            "no notification targets: add [[notify]] tables to pvegit.toml "
            "or make one in the web UI (Settings)"
        )
    results = [TargetTest(target, problem) for target, problem in send_test(targets)]
    store.audit(actor, "test notification", None, targets=len(results))
    return results
