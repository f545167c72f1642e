"""The dashboard: the fleet at a glance."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from pvegit.config.home import Home
from pvegit.node.access import needs_hardening
from pvegit.node.allowlist import list_words
from pvegit.service.progress import run_progress
from pvegit.service.scheduler import next_due
from pvegit.service.status import HostStatus, host_status
from pvegit.state.index import IndexedCommit, last_change, recent_changes
from pvegit.state.liveness import settle_runs
from pvegit.state.store import Host, Run
from pvegit.system.diskspace import Space, disk_space, low_space_warning
from web.context import Context, context_of, render
from web.guard import page

CARD_KINDS = ("ok", "partial", "failing", "stale", "never")


@dataclass(frozen=True)
class HostRow:
    host: Host
    status: HostStatus
    last_change: IndexedCommit | None
    next_run: float | None


@dataclass(frozen=True)
class Storage:
    repos_bytes: int
    disk: Space  # the disk holding $PVEGIT_HOME

    @property
    def free_bytes(self) -> int:
        return self.disk.free

    @property
    def free_share(self) -> float:
        return self.disk.free_percent / 100


_storage_cache: dict[str, tuple[float, Storage]] = {}
_storage_lock = threading.Lock()
_STORAGE_SECONDS = 60.0


def storage_of(home: Home) -> Storage:
    """Bytes used by the repositories and free on their disk (walked at most once a minute)."""
    with _storage_lock:
        cached = _storage_cache.get(str(home.root))
        if cached and time.monotonic() - cached[0] < _STORAGE_SECONDS:
            return cached[1]
    used = sum(item.stat().st_size for item in home.repos_dir.rglob("*") if item.is_file())
    storage = Storage(used, disk_space(home.root))
    with _storage_lock:
        _storage_cache[str(home.root)] = (time.monotonic(), storage)
    return storage


def next_run_at(context: Context, host: Host, runs: list[Run]) -> float | None:
    """When the scheduler will start ``host`` next: its own rule, so the page and it agree."""
    due = next_due(host, runs, time.time(), context.config)
    return due.at if due is not None else None


def fleet_rows(request: Request) -> list[HostRow]:
    """Every host with its status, last change and next scheduled run."""
    context = context_of(request)
    store = context.store
    settle_runs(context.home, store)
    latest = store.latest_runs()
    successes = store.latest_successes()
    changes = last_change(store)
    recent = store.recent_runs(len(context.config.retry_delays) + 2)
    rows = []
    for host in store.hosts():
        status = host_status(
            host,
            latest.get(host.name),
            successes.get(host.name),
            default_schedule=context.config.default_schedule,
            stale_factor=context.config.stale_factor,
        )
        next_run = next_run_at(context, host, recent.get(host.name, []))
        rows.append(HostRow(host, status, changes.get(host.name), next_run))
    return rows


@page
def dashboard(request: Request, user: str) -> Response:
    context = context_of(request)
    rows = fleet_rows(request)
    counts = {kind: sum(1 for row in rows if row.status.kind == kind) for kind in CARD_KINDS}
    running: list[Run] = settle_runs(context.home, context.store)
    storage = storage_of(context.home)
    return render(
        request,
        "dashboard.html",
        {
            "nav": "dashboard",
            "rows": rows,
            "counts": counts,
            "running": [run_progress(run) for run in running],
            "recent": recent_changes(context.store, limit=10),
            "storage": storage,
            "storage_warning": low_space_warning(storage.disk, context.config.storage_warn_percent),
            "storage_reserve_mb": context.config.storage_reserve_mb,
            "unrestricted": [
                row.host.name for row in rows if needs_hardening(row.host.access_kind)
            ],
            "stale_lists": [row.host.name for row in rows if list_words(row.host) is not None],
        },
    )
