"""A restore onto a node in the audit log: written before the first write, finished after.

A restore holds its host's restore lock (``locks/restore/<host>.lock``: a
thread lock plus an flock, which the kernel drops when the process dies) from
before its audit entry is written until the entry is finished. So an entry
still ``started`` whose host's restore lock is free was left by a process that
stopped half way (killed, a power cut): it is marked ``interrupted`` by the
next restore of that host and whenever the audit log is read
(``read_audit_log``), and never shown as still running.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from pvegit.config.home import Home
from pvegit.errors import LockTimeout, RefusedError
from pvegit.state.audit import AuditEvent
from pvegit.state.store import Store
from pvegit.system.locks import exclusive

RESTORE_ACTION = "restore"
_WAIT = 5.0  # seconds a restore waits for its host's restore lock


class RestoreEntry:
    """The audit entry of one restore while it runs (see ``restore_entry``)."""

    def __init__(self, store: Store, entry_id: int) -> None:
        self.store = store
        self.entry_id = entry_id
        self.state: str | None = None  # set once finished

    def add(self, **detail: Any) -> None:
        """Add facts to the entry as they become known (synced before it returns)."""
        self.store.update_audit(self.entry_id, **detail)

    def finish(self, state: str, **detail: Any) -> None:
        """Close the entry: ``completed``, ``failed``, ``refused`` or ``interrupted``."""
        self.store.update_audit(self.entry_id, state, **detail)
        self.state = state


@contextmanager
def restore_entry(
    home: Home, store: Store, host_name: str, actor: str, **detail: Any
) -> Iterator[RestoreEntry]:
    """Hold ``host_name``'s restore lock and a started audit entry for the block.

    The entry (who, the host, ``detail``) is written and synced before the
    block runs, so it is there before anything is written to the node; earlier
    entries of the host left ``started`` are marked interrupted first. A block
    that ends without calling ``finish`` completes the entry; an exception
    leaving it finishes the entry as ``refused`` (RefusedError), ``failed``
    (any other error) or ``interrupted`` (Ctrl-C, SystemExit), with its message.
    Raises RefusedError while another restore of the host is running.
    """
    held = ExitStack()
    try:
        # A few seconds: the audit page holds the lock for a moment when it settles.
        held.enter_context(
            exclusive(home.restore_lock_path(host_name), timeout=_WAIT, what=host_name)
        )
    except LockTimeout as err:
        raise RefusedError(
            f"another restore of {host_name} is running (see the audit log): nothing was "
            "written; try again when it has finished"
        ) from err
    with held:
        store.interrupt_audits(RESTORE_ACTION, host_name)
        entry = RestoreEntry(store, store.start_audit(actor, RESTORE_ACTION, host_name, **detail))
        try:
            yield entry
        except RefusedError as err:
            entry.finish("refused", error=str(err))
            raise
        except Exception as err:
            entry.finish("failed", error=str(err))
            raise
        except BaseException as err:
            entry.finish("interrupted", error=f"stopped ({type(err).__name__})")
            raise
        if entry.state is None:
            entry.finish("completed")


def settle_interrupted_restores(home: Home, store: Store) -> None:
    """Mark restores left ``started`` by a process that stopped as ``interrupted``.

    A host whose restore lock is held has a restore running now: its entry is
    left alone (an older one was settled when that restore started).
    """
    hosts = {event.host for event in store.started_audits(RESTORE_ACTION) if event.host}
    for host_name in sorted(hosts):
        try:
            with exclusive(home.restore_lock_path(host_name), timeout=0, what=host_name):
                store.interrupt_audits(RESTORE_ACTION, host_name)
        except LockTimeout:
            continue


def read_audit_log(
    home: Home,
    store: Store,
    *,
    limit: int = 100,
    host: str | None = None,
    action: str | None = None,
) -> list[AuditEvent]:
    """The audit log as every face shows it, newest first.

    An entry's ``state`` is None for a one-shot entry; for a restore it is
    ``running``, ``completed``, ``failed``, ``refused`` or ``interrupted``
    (settled first: a restore whose process stopped is never shown as running).
    """
    settle_interrupted_restores(home, store)
    return [
        event.with_state("running") if event.state == "started" else event
        for event in store.audit_events(limit=limit, host=host, action=action)
    ]
