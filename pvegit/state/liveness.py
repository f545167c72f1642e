"""Whether a run recorded as ``running`` is still being run: the one answer.

Every face asks here before it shows or acts on a running run: the launcher
before it starts one (a host runs once at a time), a snapshot under its host's
lock, the dashboard, the API, /metrics, serve's housekeeping (which the
scheduler's plan follows) and ``pvegit runs``. ``settle_runs`` records the
runs nobody runs any more as failed, at once, wherever they are looked at.

A run is still being run

* if this process recorded it: while this process claims it (its thread has
  not ended; ``processes.claim``);
* if another process recorded it with its boot id and start time: while that
  very process exists (same boot, same pid, same start time: a reused pid,
  after a reboot or in a container where serve is PID 1, is another process);
* if its record has only a pid (written before pvegit recorded more): while
  that pid exists and someone holds the host's lock;

and in every case only until its deadline (its time limit, plus the time to
connect and to commit). Past that it counts as failed ("overdue") even when
its process still seems to hold it, and the host is reported stale.

A run that stopped after its commit landed (the host's newest commit names it
in its ``Run-Id`` trailer) is recorded as ``changed`` with that commit, so the
run log never misses a commit, whoever looks first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pvegit.config.home import Home
from pvegit.errors import PvegitError
from pvegit.git.repo import HostRepository
from pvegit.state.runs import Run
from pvegit.state.store import Store
from pvegit.system.locks import is_held
from pvegit.system.processes import ProcessIdentity, claimed, identity_of, this_process

INTERRUPTED = "interrupted: the pvegit process running it stopped"
OVERDUE = "overdue"  # the failure kind of a run settled past its deadline
STOPPED_AFTER_COMMIT = "the pvegit process stopped after this commit; counts not recorded"

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    """Whether a run is still being run; if not, what its record says and its failure kind."""

    running: bool
    error: str = ""
    failure: str = ""


def judge_run(
    home: Home, store: Store, run: Run, *, now: float, holding_lock: bool = False
) -> Verdict:
    """Decide whether ``run`` (of ``store``) is still being run at ``now``.

    ``holding_lock``: the caller holds the run's host's lock, so a run known
    only by its pid is not running that host. A run no longer recorded as
    running is not being run (its verdict has no error). Raises nothing.
    """
    if not run.is_running:
        return Verdict(False)
    if not _owner_alive(home, store, run, holding_lock):
        # Retried by the scheduler: nothing is known to be wrong with the host.
        return Verdict(False, INTERRUPTED, "transient")
    if run.deadline is not None and now > run.deadline:
        return Verdict(False, _overdue_message(run, now), OVERDUE)
    return Verdict(True)


def _owner_alive(home: Home, store: Store, run: Run, holding_lock: bool) -> bool:
    recorded = ProcessIdentity(run.pid or 0, run.boot_id, run.process_start)
    if recorded == this_process():
        return claimed(store.owner_key, run.id)
    if recorded.complete:
        return identity_of(recorded.pid) == recorded
    if holding_lock or run.pid is None or identity_of(run.pid) is None:
        return False
    return is_held(home.lock_path(run.host))


def _overdue_message(run: Run, now: float) -> str:
    minutes = (now - run.started_at) / 60
    return (
        f"overdue: still marked running {minutes:.0f} min after it started, past its time "
        f"limit; pvegit process {run.pid} may hang (check it: ps -o pid,stat,etime,args -p "
        f"{run.pid}); the host's next run waits for it to let go of the host's lock"
    )


def settle_runs(
    home: Home,
    store: Store,
    host: str | None = None,
    *,
    now: float | None = None,
    holding_lock: bool = False,
) -> list[Run]:
    """Record the runs (of ``host``, or all) nobody runs any more as failed.

    Returns the runs still being run, oldest first. ``now`` defaults to the
    store's clock; ``holding_lock`` is for a caller that holds ``host``'s lock.
    Raises what the store raises (a damaged or full state database).
    """
    if holding_lock and host is None:
        raise ValueError("holding_lock needs the host whose lock is held")
    moment = store.now() if now is None else now
    return [
        run
        for run in store.running_runs(host)
        if _judged_running(home, store, run, moment, holding_lock)
    ]


def settled_run(home: Home, store: Store, run_id: int, *, now: float | None = None) -> Run:
    """Run ``run_id`` as it stands, settled first if nobody runs it any more.

    Raises NotFound when the run log holds no such run.
    """
    run = store.run(run_id)
    moment = store.now() if now is None else now
    if run.is_running and not _judged_running(home, store, run, moment, False):
        run = store.run(run_id)
    return run


def _judged_running(home: Home, store: Store, run: Run, now: float, holding_lock: bool) -> bool:
    verdict = judge_run(home, store, run, now=now, holding_lock=holding_lock)
    if verdict.running:
        return True
    commit_id = _landed_commit(home, run)
    if commit_id is not None:
        if store.settle_run(
            run.id, error=None, failure=None, commit_id=commit_id, warnings=[STOPPED_AFTER_COMMIT]
        ):
            _log.warning("run %s of %s settled as changed: %s", run.id, run.host, commit_id)
    elif store.settle_run(run.id, error=verdict.error, failure=verdict.failure):
        _log.warning("run %s of %s settled as failed: %s", run.id, run.host, verdict.error)
    return False


def _landed_commit(home: Home, run: Run) -> str | None:
    """The host's newest commit if ``run`` made it (its ``Run-Id`` trailer), else None.

    Any later run of the host settles this one before it commits, so the
    newest commit is the one to look at. A repository that cannot be read
    gives None: the run is failed, and `pvegit verify` names a commit the run
    log lacks (`pvegit repair` records it).
    """
    path = home.repo_path(run.host)
    if not path.exists():
        return None
    try:
        with HostRepository(path) as repository:
            head = repository.head()
            made_by = repository.commit(head).run_id if head else None
    except (PvegitError, OSError) as err:
        _log.warning("run %s of %s: could not read its repository: %s", run.id, run.host, err)
        return None
    return head if made_by == run.id else None
