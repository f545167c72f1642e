"""Verification: is every stored history intact, and does it still match the node?

Three checks per host, each reported with what to do:

1. the repository: its files are whole (HEAD, the main ref, every pack and
   index, hashed: see git/check.py; damage points at ``pvegit repair``), and
   every object main reaches can be read and hashes to its name (what ``git
   fsck`` checks for pvegit);
2. the run log against the repository: every ``changed`` run's commit exists
   (unless a repair recorded it as lost), and every commit on main has its run;
3. where the node is reachable: a snapshot first (trigger ``verify``), then
   every file of it against SHA-256 sums computed on the node by another tool
   (``sha256sum``), so a silent collection bug shows as a difference.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from pvegit.config.home import Home
from pvegit.errors import OutputTooLarge, PvegitError
from pvegit.git.repo import SYMLINK_MODE, HostRepository, decode_path, encode_path
from pvegit.layout import is_pvegit_path
from pvegit.node.program import CONFIG_DB
from pvegit.state.runlog import lost_commits, recorded_commits, unrecorded_commits
from pvegit.state.store import Host, RunStatus, Store


@dataclass
class Verification:
    """What verifying one host found."""

    host: str
    objects: int = 0
    problems: list[str] = field(default_factory=list)
    node_checked: int = 0
    node_skipped: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _reachable_commits(repository: HostRepository) -> list[str]:
    return [commit.commit_id for commit in repository.log()]


def verify_host(home: Home, store: Store, host: Host, *, node: bool = True) -> Verification:
    """Run the three checks for one host."""
    from pvegit.actions.snapshot import SnapshotOptions, take_snapshot

    result = Verification(host.name)
    if node:
        run = take_snapshot(home, store, host, SnapshotOptions(trigger="verify"))
        if run.status not in (RunStatus.CHANGED, RunStatus.UNCHANGED):
            node = False
            result.node_skipped = f"snapshot {run.status}: {run.error}"
    path = home.repo_path(host.name)
    if not path.exists():
        recorded = recorded_commits(store, host.name)
        if recorded:
            result.problems.append(
                f"the repository {path} is missing, but the run log records {len(recorded)} "
                f"commit(s): run `pvegit repair {host.name}`, which says how to go on"
            )
        else:
            result.node_skipped = "no snapshot yet"
        store.record_verification(host.name, result.problems)
        return result
    recorded_list = recorded_commits(store, host.name)
    with HostRepository(path, check=False, recorded=lambda: recorded_list) as repository:
        damage = repository.damage(deep=True)
        if damage:
            result.problems += [
                f"{item.describe(path)}: run `pvegit repair {host.name}` to put it back"
                for item in damage
            ]
            store.record_verification(host.name, result.problems)
            return result
        result.objects, result.problems = repository.check_objects()
        known = set(_reachable_commits(repository)) if not result.problems else None
        lost = lost_commits(store, host.name)
        for run in store.runs(host.name, limit=100_000, status=RunStatus.CHANGED):
            if run.commit_id is None or known is None or run.commit_id in lost:
                continue
            if run.commit_id not in known:
                result.problems.append(
                    f"run {run.id} made commit {run.commit_id[:10]}, which the repository "
                    f"does not have: run `pvegit repair {host.name}`"
                )
        if not result.problems:
            unrecorded = unrecorded_commits(store, repository, host.name)
            if unrecorded:
                newest = unrecorded[-1]
                result.problems.append(
                    f"the run log lacks the runs of {len(unrecorded)} commit(s) on main (newest "
                    f"{newest.commit.short_id}, run {newest.run_id}; state.db lost its last "
                    f"writes or was rebuilt): `pvegit repair {host.name}` records them"
                )
        head = repository.head()
        files = (
            {
                entry.path: entry.blob_id
                for entry in repository.iter_files(head)
                if entry.mode != SYMLINK_MODE
                and not is_pvegit_path(entry.path)
                # pmxcfs's database is taken with sqlite3 .backup: a consistent copy, never
                # the live file's bytes (which change with every write to /etc/pve).
                and entry.path != CONFIG_DB
            }
            if head and not result.problems
            else {}
        )
        blobs = {path: repository.read_blob(blob) for path, blob in files.items()}
    if node and files:
        _compare_with_node(home, host, blobs, result)
    store.record_verification(host.name, result.problems)
    return result


def _compare_with_node(
    home: Home, host: Host, blobs: dict[str, bytes], result: Verification
) -> None:
    from pvegit.node.collector import checksums_request
    from pvegit.node.transport import MiB, OutputLimit, open_transport

    try:
        transport = open_transport(home, host)
    except PvegitError as err:
        result.node_skipped = f"node not reachable: {err}"
        return
    try:
        paths = sorted(blobs)
        # Names go in on stdin, NUL-separated, and come back NUL-terminated and
        # unescaped (-z): any byte a name may hold (newlines, non-UTF-8) survives.
        names = b"".join(encode_path(path) + b"\0" for path in paths)
        script, stdin = checksums_request(transport, names)
        # The answer is each name back with 66 bytes of digest and spaces: room for
        # names escaped twice as long (a sha256sum without -z) and then some.
        limit = OutputLimit(
            2 * len(names) + 128 * len(paths) + MiB,
            f"the checksums of {len(paths)} files (sha256sum)",
        )
        remote: dict[str, str] = {}
        for record in transport.run(script, stdin, limit=limit).stdout.split(b"\0"):
            digest, _, name = record.partition(b"  ")
            if name:
                remote[decode_path(name)] = digest.decode("ascii", "replace")
    except OutputTooLarge as err:
        result.problems.append(f"the node's checksums could not be read: {err}")
        return
    except PvegitError as err:  # the connection dropped: nothing known either way
        result.node_skipped = f"node not reachable: {err}"
        return
    finally:
        transport.close()
    for path in paths:
        on_node = remote.get(path)
        if on_node is None:
            continue  # gone or unreadable now: a snapshot's business, not damage
        result.node_checked += 1
        if on_node != hashlib.sha256(blobs[path]).hexdigest():
            result.problems.append(
                f"/{path} on the node differs from the snapshot just taken: a collection "
                "bug or a file changing right now; run verify again, then report it"
            )
