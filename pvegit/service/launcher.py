"""The one launcher of snapshot runs, whatever started them (CLI, timer, scheduler, web, API).

A run is taken with ``take_snapshot``; what follows it is the same for every
face: the events it is worth (changed, failed after its retries, recovered;
pvegit.service.notify decides, with the alert state the store keeps) go to the
notifier, and a commit is pushed to the mirror when one is configured.
``launch`` queues a run on a bounded pool of worker threads and hands back
its id at once (serve); ``run`` takes it in the calling thread and returns
what happened (the CLI, which then waits for the notifier to deliver).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from pvegit.actions.mirror import push_mirror
from pvegit.actions.snapshot import Progress, SnapshotOptions, take_snapshot
from pvegit.config.file import Config
from pvegit.config.home import Home
from pvegit.errors import PvegitError
from pvegit.node.transport import DEFAULT_IO_TIMEOUT
from pvegit.service.events import events_for_run
from pvegit.service.notify import Event, Notifier
from pvegit.state.liveness import settle_runs
from pvegit.state.store import Host, Run, Store

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    """A finished run and what followed it."""

    run: Run
    events: tuple[Event, ...]  # handed to the notifier (delivery is its business)
    mirror_url: str | None = None  # pushed there (credentials redacted)
    mirror_error: str | None = None  # why the push failed


class RunLauncher:
    """Takes snapshots with the configuration's limits, then notifies and mirrors."""

    def __init__(
        self,
        home: Home,
        store: Store,
        config: Config | None = None,
        *,
        notifier: Notifier | None = None,
        concurrency: int | None = None,
    ) -> None:
        """``concurrency``: worker threads of ``launch`` (default: the configuration's)."""
        self._home = home
        self._store = store
        self._config = config or Config()
        self._notifier = notifier
        workers = concurrency or self._config.concurrency
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pvegit-run")
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._active = 0

    def options(
        self,
        trigger: str,
        actor: str | None,
        *,
        force: bool = False,
        io_timeout: float = DEFAULT_IO_TIMEOUT,
    ) -> SnapshotOptions:
        """How a run started by ``trigger`` behaves under this launcher's configuration."""
        return SnapshotOptions(
            trigger=trigger,
            actor=actor,
            force=force,
            io_timeout=io_timeout,
            time_limit=self._config.run_timeout,
            reserve_bytes=self._config.storage_reserve_mb * 1024 * 1024,
            warn_percent=self._config.storage_warn_percent,
            inventory_limits=self._config.inventory_limits,
        )

    def active(self) -> int:
        """Runs of this process queued or running through ``launch``."""
        with self._lock:
            return self._active

    def launch(self, host: Host, *, trigger: str, actor: str | None) -> int:
        """Queue a snapshot of ``host``; if one is still being run, return that run's id.

        "Still being run" is state/liveness.py's answer: a run whose process is gone,
        or that is past its deadline, is recorded as failed and a new one starts.
        """
        with self._lock:
            running = settle_runs(self._home, self._store, host.name)
            if running:
                return running[0].id
            run_id = self._store.start_run(host.name, trigger, actor)
            self._active += 1
        options = self.options(trigger, actor)
        future = self._pool.submit(self._background, host, options, run_id)
        future.add_done_callback(lambda done: self._cancelled(done, run_id))
        return run_id

    def run(
        self, host: Host, options: SnapshotOptions, *, progress: Progress | None = None
    ) -> RunOutcome:
        """Snapshot ``host`` in this thread, notify and mirror; never raises for a failed run.

        The host's lock serialises it with any other run of the host (another
        process's too); it is not deduplicated like ``launch``.
        """
        run = take_snapshot(self._home, self._store, host, options, progress=progress)
        return self._follow_up(run)

    def _background(self, host: Host, options: SnapshotOptions, run_id: int) -> None:
        try:
            run = take_snapshot(self._home, self._store, host, options, run_id=run_id)
            self._follow_up(run)
        except Exception:  # take_snapshot records failures itself; this is a last resort
            _log.exception("run %s of %s failed outside the snapshot", run_id, host.name)
        finally:
            with self._lock:
                self._active -= 1
                self._idle.notify_all()

    def _cancelled(self, future: Future[None], run_id: int) -> None:
        """A queued run dropped at shutdown: this process no longer runs it."""
        if future.cancelled():
            self._store.release_run(run_id)
            with self._lock:
                self._active -= 1
                self._idle.notify_all()

    def _follow_up(self, run: Run) -> RunOutcome:
        """What every finished run gets: its log line, its events, its mirror push."""
        _log.info(
            "run finished host=%s run=%s status=%s duration=%.2fs commit=%s",
            run.host,
            run.id,
            run.status,
            run.duration or 0,
            run.commit_id or "-",
        )
        events: tuple[Event, ...] = ()
        if self._notifier is not None:
            events = tuple(
                events_for_run(self._home, self._store, run, len(self._config.retry_delays))
            )
            for event in events:
                self._notifier.emit(event)
        if not (self._config.mirror and run.commit_id):
            return RunOutcome(run, events)
        try:
            url = push_mirror(self._home, run.host, self._config.mirror)
        except PvegitError as err:
            _log.error("mirror push failed host=%s error=%s", run.host, err)
            if self._notifier is not None:
                failure = Event("failed", run.host, f"{run.host}: mirror push failed", str(err))
                self._notifier.emit(failure)
                events = (*events, failure)
            return RunOutcome(run, events, mirror_error=str(err))
        _log.info("mirror pushed host=%s url=%s", run.host, url)
        return RunOutcome(run, events, mirror_url=url)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no launched run is queued or running; False on timeout."""
        with self._lock:
            return self._idle.wait_for(lambda: self._active == 0, timeout)

    def wait_fewer(self, count: int, timeout: float | None = None) -> bool:
        """Block until fewer than ``count`` launched runs are queued or running."""
        with self._lock:
            return self._idle.wait_for(lambda: self._active < count, timeout)

    def shutdown(self) -> None:
        """Finish the runs being taken, drop the queued ones (released in the run log)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
