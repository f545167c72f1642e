"""Runs started from the web UI: a bounded pool of worker threads."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from pvegit.actions.snapshot import SnapshotOptions, take_snapshot
from pvegit.config.home import Home
from pvegit.errors import PvegitError
from pvegit.node.inventory import InventoryLimits
from pvegit.service.notify import Notifier, events_for_run
from pvegit.state.liveness import settle_runs
from pvegit.state.store import Host, Store
from pvegit.system.diskspace import DEFAULT_RESERVE, DEFAULT_WARN_PERCENT

_log = logging.getLogger(__name__)


class RunLauncher:
    """Starts snapshots in the background and hands back their run id at once."""

    def __init__(
        self,
        home: Home,
        store: Store,
        *,
        concurrency: int = 4,
        notifier: Notifier | None = None,
        retries: int = 3,
        time_limit: float | None = None,
        mirror: str = "",
        reserve_bytes: int = DEFAULT_RESERVE,
        warn_percent: float = DEFAULT_WARN_PERCENT,
        inventory_limits: InventoryLimits | None = None,
    ) -> None:
        self._home = home
        self._inventory_limits = inventory_limits or InventoryLimits()
        self._reserve_bytes = reserve_bytes
        self._warn_percent = warn_percent
        self._store = store
        self._notifier = notifier
        self._retries = retries
        self._time_limit = time_limit
        self._mirror = mirror
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="pvegit-run")
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._active = 0

    def active(self) -> int:
        """Runs of this process queued or running."""
        with self._lock:
            return self._active

    def launch(self, host: Host, *, trigger: str, actor: str | None) -> int:
        """Queue a snapshot of ``host``; if one is still being run, return that run's id.

        "Still being run" is liveness.py's answer: a run whose process is gone,
        or that is past its deadline, is recorded as failed and a new one starts.
        """
        with self._lock:
            running = settle_runs(self._home, self._store, host.name)
            if running:
                return running[0].id
            run_id = self._store.start_run(host.name, trigger, actor)
            self._active += 1
        options = SnapshotOptions(
            trigger=trigger,
            actor=actor,
            time_limit=self._time_limit,
            reserve_bytes=self._reserve_bytes,
            warn_percent=self._warn_percent,
            inventory_limits=self._inventory_limits,
        )
        future = self._pool.submit(self._run, host, options, run_id)
        future.add_done_callback(lambda done: self._cancelled(done, run_id))
        return run_id

    def _cancelled(self, future: Future[None], run_id: int) -> None:
        """A queued run dropped at shutdown: this process no longer runs it."""
        if future.cancelled():
            self._store.release_run(run_id)
            with self._lock:
                self._active -= 1
                self._idle.notify_all()

    def _run(self, host: Host, options: SnapshotOptions, run_id: int) -> None:
        try:
            run = take_snapshot(self._home, self._store, host, options, run_id=run_id)
            _log.info(
                "run finished host=%s run=%s status=%s duration=%.2fs commit=%s",
                host.name,
                run.id,
                run.status,
                run.duration or 0,
                run.commit_id or "-",
            )
            if self._notifier is not None:
                for event in events_for_run(self._home, self._store, run, self._retries):
                    self._notifier.emit(event)
            if self._mirror and run.commit_id:
                self._push(host.name)
        except Exception:  # take_snapshot records failures itself; this is a last resort
            _log.exception("run %s of %s failed outside the snapshot", run_id, host.name)
        finally:
            with self._lock:
                self._active -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no run of this process is queued or running; False on timeout."""
        with self._lock:
            return self._idle.wait_for(lambda: self._active == 0, timeout)

    def wait_fewer(self, count: int, timeout: float | None = None) -> bool:
        """Block until fewer than ``count`` runs are queued or running."""
        with self._lock:
            return self._idle.wait_for(lambda: self._active < count, timeout)

    def _push(self, host: str) -> None:
        from pvegit.actions.mirror import push_mirror
        from pvegit.service.notify import Event

        try:
            url = push_mirror(self._home, host, self._mirror)
            _log.info("mirror pushed host=%s url=%s", host, url)
        except PvegitError as err:
            _log.error("mirror push failed host=%s error=%s", host, err)
            if self._notifier is not None:
                self._notifier.emit(Event("failed", host, f"{host}: mirror push failed", str(err)))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
