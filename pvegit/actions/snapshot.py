"""Take a snapshot: collect from a node, guard, commit, record the run.

``take_snapshot`` is the one place a snapshot is made, for the CLI, the
scheduler and the web UI alike. It never raises for a failed run: the
outcome is the returned Run (status changed, unchanged, partial, failed or
refused), which is also in the run log. This module is the run's life (the
lock, the disk space, the time limit, the record); the tree it commits is
built in snapshot_tree.py, its change list, mass-deletion guard and commit
message are decided in snapshot_changes.py.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from pvegit.actions.snapshot_changes import commit_message, describe_changes, guard_mass_deletion
from pvegit.actions.snapshot_tree import carry_over, snapshot_files
from pvegit.config.home import Home
from pvegit.config.limits import InventoryLimits
from pvegit.config.selection import resolve_selection
from pvegit.errors import (
    CollectError,
    ConnectError,
    LockTimeout,
    PvegitError,
    RefusedError,
    StorageError,
)
from pvegit.git.model import ChangeKind
from pvegit.git.repo import HostRepository, prepare_tree
from pvegit.layout import inventory_path, is_pvegit_path
from pvegit.node.collect import collect
from pvegit.node.tarstream import display_path
from pvegit.node.transport import DEFAULT_IO_TIMEOUT, Transport, open_transport
from pvegit.state.index import sync_index
from pvegit.state.liveness import settle_runs
from pvegit.state.opening import settings_of
from pvegit.state.runlog import recorded_commits
from pvegit.state.store import Host, Run, RunStatus, Store
from pvegit.system.diskspace import (
    DEFAULT_RESERVE,
    DEFAULT_WARN_PERCENT,
    disk_space,
    full_message,
    human,
    is_disk_full,
    low_space_warning,
)
from pvegit.system.locks import exclusive
from pvegit.textsafe import printable

LOCK_TIMEOUT = 600.0
# After its time limit a run still has to connect (before the watchdog starts,
# up to its I/O timeout) and to commit: past all that it counts as failed.
FINISH_GRACE = 300.0

_log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
TransportFactory = Callable[[Home, Host], Transport]


@dataclass(frozen=True)
class SnapshotOptions:
    """How one snapshot run behaves."""

    trigger: str = "manual"
    actor: str | None = None
    force: bool = False
    io_timeout: float = DEFAULT_IO_TIMEOUT
    lock_timeout: float = LOCK_TIMEOUT
    time_limit: float | None = None  # seconds for the whole run; the connection is cut after
    reserve_bytes: int = DEFAULT_RESERVE  # refuse to start with less free on $PVEGIT_HOME's disk
    warn_percent: float = DEFAULT_WARN_PERCENT  # warn below this share free
    trailers: tuple[tuple[str, str], ...] = ()  # extra commit trailers (a restore's details)
    # inventory output read per command and per run
    inventory_limits: InventoryLimits = field(default_factory=InventoryLimits)


def take_snapshot(
    home: Home,
    store: Store,
    host: Host,
    options: SnapshotOptions | None = None,
    *,
    progress: Progress | None = None,
    transport_factory: TransportFactory | None = None,
    run_id: int | None = None,
) -> Run:
    """Snapshot ``host`` and return its finished Run (never raises for run failures).

    ``run_id`` is a run already recorded with ``store.start_run`` (the web UI
    records it first, to show its page at once); otherwise one is recorded.
    """
    options = options or SnapshotOptions()
    if run_id is None:
        run_id = store.start_run(host.name, options.trigger, options.actor)

    def report(stage: str, done: int = 0, total: int = 0) -> None:
        store.update_progress(run_id, stage, done, total)
        if progress is not None:
            progress(stage, done, total)

    # Seconds the run may take once it holds the host's lock; past that (and the
    # wait for the lock) its record counts as failed whatever holds it (state/liveness.py).
    budget = None
    if options.time_limit is not None:
        budget = options.io_timeout + options.time_limit + FINISH_GRACE
    try:
        if budget is not None:
            store.set_deadline(run_id, options.lock_timeout + budget)
        with exclusive(home.lock_path(host.name), timeout=options.lock_timeout, what=host.name):
            if budget is not None:
                store.set_deadline(run_id, budget)
            # Runs nobody runs any more are closed (changed with their commit
            # if it landed); a run of another process waiting for this lock is not.
            settle_runs(home, store, host.name, holding_lock=True)
            return _locked_snapshot(home, store, host, run_id, options, report, transport_factory)
    except RefusedError as err:
        return store.finish_run(
            run_id, status=RunStatus.REFUSED, error=printable(str(err)), failure="permanent"
        )
    except Exception as err:
        if is_disk_full(err):
            return _finish_on_full_disk(home, store, run_id)
        if isinstance(err, PvegitError):
            return store.finish_run(
                run_id,
                status=RunStatus.FAILED,
                error=printable(str(err)),
                failure=failure_kind(err),
            )
        # a bug must not stop the other hosts or lose the run
        _log.exception("snapshot of %s failed unexpectedly", host.name)
        return store.finish_run(
            run_id,
            status=RunStatus.FAILED,
            error=printable(f"internal error: {type(err).__name__}: {err}"),
            failure="permanent",
        )
    finally:
        # A record left 'running' (it could not be written) is then interrupted.
        store.release_run(run_id)


def _finish_on_full_disk(home: Home, store: Store, run_id: int) -> Run:
    """Record a run the full disk stopped; if even that cannot be written, say so."""
    message = full_message(home.root)
    try:
        return store.finish_run(run_id, status=RunStatus.FAILED, error=message, failure="permanent")
    except PvegitError as err:
        # The record stays 'running'; the next run on this host closes it as interrupted.
        raise StorageError(message) from err


def failure_kind(error: PvegitError) -> str:
    """Transient failures are retried (unreachable, timeout, dropped, busy); the rest are not."""
    if isinstance(error, (ConnectError, CollectError, LockTimeout)):
        return "transient"
    return "permanent"


def _locked_snapshot(
    home: Home,
    store: Store,
    host: Host,
    run_id: int,
    options: SnapshotOptions,
    report: Progress,
    transport_factory: TransportFactory | None,
) -> Run:
    selection = resolve_selection(host.categories, host.includes, host.excludes)
    space = disk_space(home.root)
    if space.free < options.reserve_bytes:
        raise StorageError(
            f"only {human(space.free)} free on the disk holding {home.root}; pvegit keeps "
            f"{human(options.reserve_bytes)} free so its records stay writable: free some space "
            "(old exports, `pvegit gc` to compact the repositories) and run again"
        )
    low_space = low_space_warning(space, options.warn_percent)
    # A damaged repository raises RepositoryDamaged here, before the node is
    # contacted: nothing is written until `pvegit repair` has put it back.
    with HostRepository(
        home.repo_path(host.name), create=True, recorded=lambda: recorded_commits(store, host.name)
    ) as repository:
        repository.remove_stale_temporaries()
        parent = repository.head()
        parent_files = repository.file_ids(parent)
        report("connect", 0, 0)
        if transport_factory is not None:
            transport = transport_factory(home, host)
        else:
            transport = open_transport(home, host, io_timeout=options.io_timeout)
        watchdog = _Watchdog(transport, options.time_limit)
        try:
            collection = collect(
                transport,
                selection,
                progress=report,
                expected_files=sum(1 for path in parent_files if not is_pvegit_path(path)),
                inventory_limits=options.inventory_limits,
            )
        except PvegitError as err:
            if watchdog.fired:
                raise ConnectError(
                    f"cut off after its time limit of {options.time_limit:.0f} s ({err})"
                ) from err
            raise
        finally:
            watchdog.cancel()
            transport.close()
            access, allow_list = transport.access, transport.allow_list or ""
            if access is not None and (access, allow_list) != (host.access, host.allow_list):
                store.record_access(host.name, access, allow_list)  # shown on every face
        if watchdog.fired:  # whatever was read before the cut is not a whole snapshot
            raise ConnectError(f"cut off after its time limit of {options.time_limit:.0f} s")

        report("commit", len(collection.entries), len(collection.entries))
        carried = carry_over(repository, parent, parent_files, collection)
        files = snapshot_files(collection)
        prepared = prepare_tree(files)
        changes = describe_changes(repository, parent, parent_files, prepared.files, files)
        deleted = [
            path
            for path, kind in changes
            if kind == ChangeKind.DELETED and not is_pvegit_path(path)
        ]
        forced = guard_mass_deletion(parent_files, deleted, options.force)

        warnings = list(collection.warnings)
        if forced:
            warnings.append(forced)
        if low_space:
            warnings.append(low_space)
        warnings += [
            f"could not read /{display_path(path)}; kept as it was in the last snapshot"
            for path in collection.unreadable
        ]
        warnings += collection.problems
        warnings += [
            f"inventory command {name} failed; kept its previous output"
            for name in collection.failed_commands
        ]
        warnings += [
            f"inventory command {name} {why}; "
            + (
                "kept its previous output"
                if inventory_path(name) in parent_files
                else "nothing stored for it"
            )
            for name, why in collection.over_limit_commands.items()
        ]
        if carried:
            warnings.append(f"kept {carried} unreadable file(s) as they were in the last snapshot")
        # Many of these quote the node (tar's messages, names): stored and shown escaped.
        warnings = [printable(warning) for warning in warnings]
        partial = bool(collection.unreadable or collection.problems)

        message = commit_message(
            host.name, changes, parent is None, len(files), run_id, options, partial, collection
        )
        commit_id = repository.commit_tree(
            prepared,
            message=message,
            author=f"pvegit <pvegit@{socket.gethostname()}>",
            parent=parent,
        )
        try:
            # what `pvegit rebuild-state` reads back if state.db is ever lost
            repository.write_settings(settings_of(host))
        except (OSError, PvegitError) as err:  # the commit stands; say so on the run
            warnings.append(f"the host settings were not written to its repository ({err})")
        try:
            sync_index(store, repository, host.name)
        except Exception as err:  # the index is a cache: the commit stands
            _log.exception("commit index of %s not updated", host.name)
            warnings.append(f"the commit index was not updated ({err}): run `pvegit reindex`")
    status = (
        RunStatus.PARTIAL if partial else (RunStatus.CHANGED if commit_id else RunStatus.UNCHANGED)
    )
    return store.finish_run(
        run_id,
        status=status,
        files=sum(1 for entry in collection.entries.values() if entry.kind != "dir"),
        bytes_total=collection.bytes_read,
        changed_files=len(changes) if commit_id else 0,
        commit_id=commit_id,
        warnings=warnings,
        error=("; ".join(warnings[:3]) if partial else None),
    )


class _Watchdog:
    """Closes a run's connection when the run outlives its time limit."""

    def __init__(self, transport: Transport, limit: float | None) -> None:
        self.fired = False
        self._timer: threading.Timer | None = None
        if limit is not None:

            def cut() -> None:
                self.fired = True
                transport.close()

            self._timer = threading.Timer(limit, cut)
            self._timer.daemon = True
            self._timer.start()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
