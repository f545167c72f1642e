"""Serve's rounds between runs, once a minute: settle runs, stale hosts, storage, verification.

``housekeeping`` is the round the scheduler calls; ``check_storage`` and
``verify_one_due`` are its parts that stand alone. Each tells the notifier
(when there is one) what an admin wants to hear, once per streak: the alert
state lives in the store, so a restart does not repeat it.
"""

from __future__ import annotations

import logging

from pvegit.actions.verify import verify_host
from pvegit.config.file import Config
from pvegit.config.home import Home
from pvegit.service.events import stale_event
from pvegit.service.notify import Event, Notifier
from pvegit.service.status import host_status
from pvegit.state.liveness import settle_runs
from pvegit.state.store import Host, Store
from pvegit.system.diskspace import disk_space, low_space_warning

_log = logging.getLogger(__name__)

STORAGE_ALERT = "*storage"  # the alerts row for the disk (host names cannot start with '*')
VERIFY_EVERY = 7 * 86400


def housekeeping(
    home: Home, store: Store, config: Config, notifier: Notifier | None, *, now: float
) -> None:
    """One round: settle runs nobody runs any more (the scheduler's plan follows), tell
    about hosts that turned stale, forget runs past retention, watch the disk, verify
    the host most overdue for it."""
    settle_runs(home, store)
    latest = store.latest_runs()
    successes = store.latest_successes()
    for host in store.hosts():
        status = host_status(
            host,
            latest.get(host.name),
            successes.get(host.name),
            now=now,
            default_schedule=config.default_schedule,
            stale_factor=config.stale_factor,
        )
        if status.kind == "stale" and notifier is not None:
            event = stale_event(store, host.name, status.reason)
            if event is not None:
                notifier.emit(event)
    store.prune_runs(now - config.run_log_days * 86400)
    check_storage(home, store, config, notifier)
    verify_one_due(home, store, notifier, now=now)


def check_storage(home: Home, store: Store, config: Config, notifier: Notifier | None) -> None:
    """Warn once when the disk holding $PVEGIT_HOME gets full, and once when it has room again."""
    warning = low_space_warning(disk_space(home.root), config.storage_warn_percent)
    alerted = store.alert_state(STORAGE_ALERT) is not None
    if warning and not alerted:
        _log.warning("storage: %s", warning)
        store.set_alert_state(STORAGE_ALERT, "failing")
        if notifier is not None:
            reserve = config.storage_reserve_mb
            notifier.emit(
                Event(
                    "failed",
                    "",
                    "pvegit: storage almost full",
                    f"{warning}. Snapshots stop when less than {reserve} MiB is free.",
                )
            )
    elif not warning and alerted:
        store.set_alert_state(STORAGE_ALERT, None)
        if notifier is not None:
            notifier.emit(Event("recovered", "", "pvegit: storage has room again", ""))


def verify_one_due(home: Home, store: Store, notifier: Notifier | None, *, now: float) -> None:
    """The weekly verification: at most one host per round, the longest-unverified first;
    a failed one is reported as a ``failed`` event."""
    done = store.verifications()
    hosts = [host for host in store.hosts() if host.host_key or host.is_local]

    def verified_at(host: Host) -> float:
        verification = done.get(host.name)
        return verification.at if verification is not None else 0.0

    due = [host for host in hosts if now - verified_at(host) > VERIFY_EVERY]
    if not due:
        return
    host = min(due, key=verified_at)
    result = verify_host(home, store, host)
    if not result.ok and notifier is not None:
        notifier.emit(
            Event(
                "failed",
                host.name,
                f"{host.name}: verification failed",
                "\n".join(result.problems[:20]),
            )
        )
