"""``pvegit repair``: put a damaged repository back on its newest complete snapshot.

Under the host's lock: the damaged files are moved into ``damaged/<time>/``
inside the repository (nothing is ever deleted; git ignores that folder), the
config and HEAD are written anew, an index is rebuilt from its intact pack,
then main points at the newest commit that the run log records and the object
store still has complete (commit, trees, blobs and the commits before it
readable), or, when the run log names none, at the newest complete commit in
the object store. Recorded commits that are gone are written into the audit
entry as lost (so ``verify`` stops asking for them and a new history may
start); runs whose commit is on main but missing from the run log are
recorded from their trailers; the commit index is rebuilt. On a healthy
repository it changes nothing and says so.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from pvegit.config.home import Home
from pvegit.errors import NotFound, PvegitError
from pvegit.git.check import MAIN_REF, read_main
from pvegit.git.maintenance import MaintenanceRepository, fix_files
from pvegit.git.repo import HostRepository
from pvegit.state.index import rebuild_index
from pvegit.state.runlog import REPAIR_ACTION, record_runs, recorded_commits, unrecorded_commits
from pvegit.state.store import Store, validate_host_name
from pvegit.system.durable import move_aside
from pvegit.system.locks import exclusive

DAMAGED_FOLDER = "damaged"
_LOCK_TIMEOUT = 600.0


@dataclass(frozen=True)
class RepairReport:
    """What ``repair_host`` found and did."""

    host: str
    actions: tuple[str, ...]  # one line per file moved, written or rebuilt
    main_before: str | None  # the commit main named, when it named one
    main_after: str | None
    reason: str | None  # why main points where it does now (None: main was not touched)
    lost: tuple[str, ...]  # recorded commits that are gone (now in the audit log as lost)
    runs_recorded: int  # runs the run log lacked, recorded from commit trailers
    aside: Path | None  # where the damaged files are now

    @property
    def nothing_to_repair(self) -> bool:
        return not (self.actions or self.reason or self.lost or self.runs_recorded)


def repair_host(
    home: Home, store: Store, host: str, *, actor: str, accept_loss: bool = False
) -> RepairReport:
    """Repair ``host``'s repository (see the module's docstring); audited when it did anything.

    Raises PvegitError when nothing complete is left to go back to, unless
    ``accept_loss``: then main is left absent and the next snapshot starts a
    new history, the recorded commits written down as lost.
    """
    validate_host_name(host)
    path = home.repo_path(host)
    with exclusive(home.lock_path(host), timeout=_LOCK_TIMEOUT, what=host):
        if not path.exists():
            report = _repair_missing(store, host, path, accept_loss)
        else:
            report = _repair(home, store, host, path, accept_loss)
    if not report.nothing_to_repair:
        store.audit(
            actor,
            REPAIR_ACTION,
            host,
            main_before=report.main_before,
            main_after=report.main_after,
            reason=report.reason,
            lost=list(report.lost),
            runs_recorded=report.runs_recorded,
            actions=list(report.actions),
            aside=str(report.aside) if report.aside else None,
        )
    return report


def _repair_missing(store: Store, host: str, path: Path, accept_loss: bool) -> RepairReport:
    recorded = recorded_commits(store, host)
    if not recorded:
        raise NotFound(f"no repository at {path} and no commit of {host} in the run log")
    if not accept_loss:
        raise PvegitError(
            f"{path} is missing and the run log records {len(recorded)} commit(s) of {host} "
            f"(newest {recorded[0][:10]}): there is nothing here to repair from. Put the "
            f"repository back from a backup or the mirror (e.g. `git clone --mirror URL "
            f"{path}`) and run `pvegit repair {host}` again; or, to let the next snapshot start "
            f"a new history, run `pvegit repair {host} --accept-loss` (the commits are then "
            "recorded as lost)"
        )
    return RepairReport(
        host,
        ("the repository is missing: its recorded commits are written down as lost",),
        None,
        None,
        "nothing to go back to: the next snapshot starts a new history (--accept-loss)",
        tuple(recorded),
        0,
        None,
    )


def _repair(home: Home, store: Store, host: str, path: Path, accept_loss: bool) -> RepairReport:
    aside = path / DAMAGED_FOLDER / time.strftime("%Y%m%d-%H%M%S")
    main_before = read_main(path)
    main_damaged = bool(main_before.damage)
    actions = fix_files(path, aside)
    recorded = recorded_commits(store, host)
    lost: list[str] = []
    reason: str | None = None
    with MaintenanceRepository(path, check=False, recorded=lambda: recorded) as repository:
        repository.remove_stale_temporaries()
        current = None if main_damaged else read_main(path).commit_id
        needs_main = main_damaged
        if current is not None:
            problem = repository.completeness_problem(current)
            if problem:
                needs_main = True
                actions.append(f"main pointed at {current[:10]}, {problem}")
                actions.append(f"moved {MAIN_REF} to {move_aside(path, _ref_file(path), aside)}")
                current = None
        elif not main_damaged:
            evidence = repository.history_evidence()
            if evidence:
                needs_main = True
                actions.append(f"{MAIN_REF} was missing, but {evidence}")
        if needs_main:
            current, reason, lost = _choose_main(repository, store, host, recorded)
            if current is not None:
                repository.point_main_at(current, reason="repair")
            elif not accept_loss:
                raise PvegitError(
                    f"{host}: no complete commit is left to put main on (the run log's and the "
                    f"object store's all miss objects). The damaged files are in {aside}. Put "
                    f"the repository back from a backup or the mirror; or run `pvegit repair "
                    f"{host} --accept-loss` to let the next snapshot start a new history"
                )
            else:
                actions += _start_new_history(repository, path, aside)
                reason = "nothing complete to go back to: the next snapshot starts a new history"
        lost += [
            commit_id
            for commit_id in recorded
            if commit_id not in lost and repository.commit_problem(commit_id)
        ]
        if needs_main:
            cleaned = repository.clean_reflog(aside)
            if cleaned:
                actions.append(cleaned)
        runs = 0
        if current is not None:
            runs = record_runs(store, repository, host, unrecorded_commits(store, repository, host))
    if needs_main or runs:
        # opened anew: what it knew of a missing main is out of date now
        remaining = [commit_id for commit_id in recorded if commit_id not in lost]
        with HostRepository(path, recorded=lambda: remaining) as repository:
            rebuild_index(store, repository, host)
    moved = aside if aside.exists() else None
    return RepairReport(
        host,
        tuple(actions),
        main_before.commit_id,
        current,
        reason,
        tuple(lost),
        runs,
        moved,
    )


def _ref_file(path: Path) -> Path:
    loose = path / MAIN_REF
    return loose if loose.exists() else path / "packed-refs"


def _choose_main(
    repository: MaintenanceRepository, store: Store, host: str, recorded: list[str]
) -> tuple[str | None, str | None, list[str]]:
    """(commit for main, why, recorded commits found incomplete on the way)."""
    rejected: list[str] = []
    for commit_id in recorded:
        if repository.completeness_problem(commit_id) is None:
            run = store.newest_run_with_commit(host, commit_id)
            skipped = (
                f"; the {len(rejected)} newer one(s) it records are incomplete and lost"
                if rejected
                else ""
            )
            return (
                commit_id,
                f"the newest commit the run log records (run {run}) that the object store "
                f"still has complete{skipped}",
                rejected,
            )
        rejected.append(commit_id)
    for commit in repository.stored_commits():
        if repository.completeness_problem(commit.commit_id) is None:
            what = "none" if not recorded else "no complete one"
            return (
                commit.commit_id,
                f"the run log records {what}: the newest complete commit found in the object "
                f"store ({time.strftime('%Y-%m-%d %H:%M', time.gmtime(commit.time))} UTC, "
                f"{commit.subject!r})",
                rejected,
            )
    return None, None, rejected


def _start_new_history(repository: MaintenanceRepository, path: Path, aside: Path) -> list[str]:
    """What lets the next snapshot start anew: no reflog, no settings, no objects left
    (all kept aside: what is incomplete may still help someone by hand)."""
    done: list[str] = []
    reflog = path / "logs" / MAIN_REF
    if reflog.exists():
        done.append(f"moved the reflog to {move_aside(path, reflog, aside)}")
    objects = path / "objects"
    left = [*sorted((objects / "pack").glob("pack-*"))] + [
        loose
        for directory in sorted(objects.iterdir())
        if re.fullmatch(r"[0-9a-f]{2}", directory.name)
        for loose in sorted(directory.iterdir())
    ]
    for file in sorted(left, key=lambda item: item.suffix != ".idx"):  # indexes first
        move_aside(path, file, aside)
    if left:
        done.append(f"moved the {len(left)} object file(s) left to {aside / 'objects'}")
    config = path / "config"
    if repository.settings():
        done.append(f"kept a copy of the config in {_copy_aside(path, config, aside)}")
        repository.write_settings({})
    return done


def _copy_aside(root: Path, file: Path, aside: Path) -> Path:
    from pvegit.system.durable import write_synced

    target = aside / file.relative_to(root)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_synced(target, file.read_bytes())
    return target
