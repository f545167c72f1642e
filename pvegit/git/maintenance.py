"""Maintenance of a host's repository: gc (``compact``) and the operations of a repair.

``MaintenanceRepository`` is a ``HostRepository`` opened by ``pvegit gc`` and
``pvegit repair`` (with the host's lock held). gc keeps every commit that
state.db names, not only what main reaches; a repair finds the newest complete
commit and points main at it. Everything is written before anything that
points to it, and synced (see docs/reliability.md).
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from dulwich.objects import Blob, Tree
from dulwich.objects import Commit as GitCommit

from pvegit.errors import RepositoryDamaged
from pvegit.git.base import BRANCH, each_once, oid
from pvegit.git.check import (
    HEAD_TEXT,
    MAIN_REF,
    check_head,
    check_packs,
    pack_files,
    pack_is_whole,
    read_main,
)
from pvegit.git.model import TREE_MODE, Commit
from pvegit.git.repo import HostRepository
from pvegit.system.durable import move_aside, sync_directory, sync_file, write_synced


@dataclass(frozen=True)
class Compaction:
    """What ``compact`` did."""

    bytes_before: int
    bytes_after: int
    beyond_main: int  # commits kept (with what they reach) that main does not reach
    absent: tuple[str, ...]  # named commits that are not in the repository (already lost)


class MaintenanceRepository(HostRepository):
    """A host's repository opened for gc or repair. Hold the host's lock."""

    def compact(self, keep: Iterable[str] = ()) -> Compaction:
        """Rewrite the history as one delta-compressed pack, like ``git gc``.

        Keeps what main reaches and what the commits in ``keep`` reach (the
        commits the run log and the audit log name, whatever main says), and,
        transitively, the commits their ``Restored-From`` trailers name; drops
        the rest (e.g. a pack left by a crash). Refuses with RepositoryDamaged,
        removing nothing, when the repository is damaged or an object to keep
        cannot be read. The new pack is complete and synced before the old ones
        are removed, so a crash or power cut at any point leaves a valid
        repository. Writers must hold the host's lock.
        """
        from dulwich.pack import iter_sha1, write_pack

        problems = self.damage()
        if problems:
            raise RepositoryDamaged(self.name, [item.describe(self.path) for item in problems])
        store = self._repo.object_store
        objects_dir = self.path / "objects"
        pack_dir = objects_dir / "pack"
        before = _directory_size(objects_dir)
        roots, absent = self._kept_commits(keep)
        beyond_main = len(roots) - (1 if roots and roots[0] == self.head() else 0)
        objects = list(self._reachable_objects(roots))
        if not objects:
            return Compaction(before, before, beyond_main, tuple(absent))
        old_files = [path for path in pack_dir.iterdir() if path.suffix in (".pack", ".idx")]
        loose_dirs = [
            path for path in objects_dir.iterdir() if re.fullmatch(r"[0-9a-f]{2}", path.name)
        ]
        temporary = pack_dir / f"tmp-pvegit-{os.getpid()}"
        write_pack(str(temporary), objects, store.object_format, deltify=True)
        sync_file(Path(f"{temporary}.pack"))
        sync_file(Path(f"{temporary}.idx"))
        # Named like dulwich and git name packs: the SHA-1 over the sorted object ids.
        name = f"pack-{iter_sha1(sorted(obj.id for obj, _ in objects)).decode()}"
        # The index goes last: git only sees a pack once its .idx exists.
        os.replace(f"{temporary}.pack", pack_dir / f"{name}.pack")
        os.replace(f"{temporary}.idx", pack_dir / f"{name}.idx")
        sync_directory(pack_dir)  # the new pack is on disk before any old one goes
        self._repo.close()
        # indexes before their packs: a pack without its index is ignored, not damage
        for path in sorted(old_files, key=lambda item: item.suffix != ".idx"):
            if path.stem != name:
                path.unlink(missing_ok=True)
        for directory in loose_dirs:
            for loose in directory.iterdir():
                loose.unlink(missing_ok=True)
            directory.rmdir()
        sync_directory(pack_dir)
        sync_directory(objects_dir)
        self._open_repo()
        self._tighten_packs()
        return Compaction(before, _directory_size(objects_dir), beyond_main, tuple(absent))

    def _kept_commits(self, keep: Iterable[str]) -> tuple[list[str], list[str]]:
        """(commits gc starts from: main first, then those main does not reach;
        ids in ``keep`` that are not commits here).

        Kept: main, the commits in ``keep`` and every commit a kept commit's
        ``Restored-From`` trailer names (followed until nothing new turns up).
        """
        head = self.head()
        roots: list[str] = [head] if head else []
        absent: list[str] = []
        reached: set[str] = set()
        pending = list(dict.fromkeys(keep))
        unwalked = list(roots)
        while unwalked or pending:
            for entry in self._repo.get_walker(include=[oid(item) for item in unwalked]):
                commit_id = entry.commit.id.decode()
                if commit_id in reached:
                    continue
                reached.add(commit_id)
                pending += [
                    named.decode()
                    for named in re.findall(
                        rb"^Restored-From: ([0-9a-f]{40})\s*$", entry.commit.message, re.MULTILINE
                    )
                ]
            unwalked = []
            for commit_id in dict.fromkeys(pending):
                if commit_id in reached or commit_id in roots or commit_id in absent:
                    continue
                if self.commit_problem(commit_id) is None:
                    roots.append(commit_id)
                    unwalked.append(commit_id)
                else:
                    absent.append(commit_id)
            pending = []
        return roots, absent

    def _reachable_objects(
        self, roots: Sequence[str]
    ) -> Iterator[tuple[GitCommit | Tree | Blob, bytes]]:
        """Every object the ``roots`` reach, with its path as a hint for delta pairing.

        Raises RepositoryDamaged when one cannot be read: gc removes nothing then.
        """
        if not roots:
            return
        seen: set[bytes] = set()
        for entry in self._repo.get_walker(include=[oid(root) for root in roots]):
            commit = entry.commit
            yield commit, b""  # dulwich sorts by hint: all hints must be bytes
            pending: list[tuple[bytes, bytes]] = [(commit.tree, b"")]
            while pending:
                tree_id, prefix = pending.pop()
                if tree_id in seen:
                    continue
                seen.add(tree_id)
                tree = self._kept_object(tree_id, commit, Tree)
                assert isinstance(tree, Tree)
                yield tree, prefix
                for item in tree.iteritems():
                    path = prefix + b"/" + item.path if prefix else item.path
                    if item.mode == TREE_MODE:
                        pending.append((item.sha, path))
                    elif item.sha not in seen:
                        seen.add(item.sha)
                        yield self._kept_object(item.sha, commit, Blob), path

    def _kept_object(self, sha: bytes, commit: GitCommit, kind: type[Tree | Blob]) -> Tree | Blob:
        try:
            obj = self._repo.object_store[oid(sha)]
        except Exception as err:  # missing or unreadable: gc must not go on
            raise RepositoryDamaged(
                self.name,
                [
                    f"object {sha.decode()[:10]} of commit {commit.id.decode()[:10]} cannot be "
                    f"read ({type(err).__name__}); gc removed nothing: run `pvegit verify "
                    f"{self.name}`"
                ],
            ) from err
        if not isinstance(obj, kind):
            raise RepositoryDamaged(
                self.name, [f"object {sha.decode()[:10]} is not a {kind.__name__.lower()}"]
            )
        return obj

    # -- repair ------------------------------------------------------------

    def completeness_problem(self, commit_id: str) -> str | None:
        """Why ``commit_id`` is not a complete snapshot, or None.

        Complete: the commit, every tree and blob of its tree, and every commit
        before it can be read, so main can point at it and history reads.
        """
        problem = self.commit_problem(commit_id)
        if problem:
            return problem
        store = self._repo.object_store
        commit = store[oid(commit_id)]
        assert isinstance(commit, GitCommit)
        pending = [commit.tree]
        for sha in each_once(pending):
            try:
                obj = store[oid(sha)]
            except Exception as err:  # missing, or a broken pack: any of many errors
                name = type(err).__name__
                return f"object {sha.decode()[:10]} of its tree cannot be read ({name})"
            if isinstance(obj, Tree):
                pending.extend(item.sha for item in obj.iteritems())
        parents: list[bytes] = list(commit.parents)
        for sha in each_once(parents):
            problem = self.commit_problem(sha.decode())
            if problem:
                return f"the earlier commit {sha.decode()[:10]} cannot be read ({problem})"
            earlier = store[oid(sha)]
            assert isinstance(earlier, GitCommit)
            parents.extend(earlier.parents)
        return None

    def stored_commits(self) -> list[Commit]:
        """Every readable commit in the object store, newest first (a repair's last resort).

        Newest: the latest commit time; within one second (snapshots can be that
        quick) the one further from the first commit, then the higher Run-Id.
        """
        store = self._repo.object_store
        found: dict[str, Commit] = {}
        for sha in list(store):
            if self.commit_problem(sha.decode()) is None:
                found[sha.decode()] = self.commit(sha.decode())
        depths: dict[str, int] = {}

        def depth(commit_id: str) -> int:
            chain: list[str] = []
            cursor: str | None = commit_id
            while cursor is not None and cursor not in depths:
                chain.append(cursor)
                parents = found[cursor].parents if cursor in found else ()
                cursor = parents[0] if parents else None
            known = depths.get(cursor, 0) if cursor is not None else 0
            for item in reversed(chain):
                known += 1
                depths[item] = known
            return depths[commit_id]

        def newness(commit: Commit) -> tuple[int, int, int]:
            return commit.time, depth(commit.commit_id), commit.run_id or 0

        return sorted(found.values(), key=newness, reverse=True)

    def clean_reflog(self, aside: Path) -> str | None:
        """Drop reflog lines naming commits that are gone (``git fsck`` fails on them).

        The whole reflog is moved to ``aside`` first. Returns what was done, or None.
        """
        reflog = self.path / "logs" / MAIN_REF
        if not reflog.is_file():
            return None
        lines = reflog.read_bytes().splitlines(keepends=True)
        zero = b"0" * 40

        def whole(line: bytes) -> bool:
            fields = line.split(b" ", 2)
            return len(fields) == 3 and all(
                sha == zero or self.commit_problem(sha.decode("ascii", "replace")) is None
                for sha in fields[:2]
            )

        kept = [line for line in lines if whole(line)]
        if len(kept) == len(lines):
            return None
        moved = move_aside(self.path, reflog, aside)
        write_synced(reflog, b"".join(kept))
        return (
            f"dropped {len(lines) - len(kept)} reflog line(s) naming commits that are gone "
            f"(the whole reflog is kept in {moved})"
        )

    def point_main_at(self, commit_id: str, *, reason: str) -> None:
        """Write main (the damaged ref must have been moved aside), synced, with a reflog line."""
        identity = f"pvegit <pvegit@{socket.gethostname()}>".encode()
        self._repo.refs.set_if_equals(
            BRANCH, None, oid(commit_id), committer=identity, message=f"pvegit: {reason}".encode()
        )
        sync_directory((self.path / MAIN_REF).parent)
        self._verified_head = commit_id


_DEFAULT_CONFIG = (
    b"[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n"
    b"\tlogallrefupdates = true\n"
)


def fix_files(path: Path, aside: Path) -> list[str]:
    """Put a repository's damaged files right without opening it; return what was done.

    Nothing is deleted: a damaged file is moved into ``aside`` (same relative
    path) first. The config and HEAD are written anew (the config's host
    settings come back with the next snapshot); an index is rebuilt from its
    pack when the pack is whole, a damaged pack is moved aside with its index
    (its commits are then gone: the repair goes back to the newest complete
    commit); a pack that never got its index is indexed; a damaged main ref or
    packed-refs is moved aside for the repair to write main anew.
    """
    from dulwich.config import ConfigFile

    done: list[str] = []
    config = path / "config"
    try:
        ConfigFile.from_path(str(config))
        config_whole = True
    except FileNotFoundError:
        config_whole = False
    except (ValueError, OSError):  # what dulwich raises for a config it cannot parse
        config_whole = False
        done.append(f"moved the unreadable config to {move_aside(path, config, aside)}")
    if not config_whole:
        write_synced(config, _DEFAULT_CONFIG)
        done.append("wrote a new config (the host settings return with the next snapshot)")
    for item in check_head(path):
        if item.path.exists():
            done.append(f"moved the damaged HEAD to {move_aside(path, item.path, aside)}")
        write_synced(item.path, HEAD_TEXT + b"\n")
        done.append("wrote HEAD anew (ref: refs/heads/main)")
    done += _fix_packs(path, aside)
    for item in read_main(path).damage:
        done.append(f"moved {item.describe(path)} to {move_aside(path, item.path, aside)}")
    return done


def _fix_packs(path: Path, aside: Path) -> list[str]:
    done: list[str] = []
    for item in check_packs(path, deep=True):
        pack = item.path.with_suffix(".pack")
        index = item.path.with_suffix(".idx")
        if item.path == index and pack.exists() and pack_is_whole(pack):
            moved = move_aside(path, index, aside)
            _index_pack(pack)
            done.append(f"rebuilt the index of {pack.name} from its intact pack ({moved} kept)")
            continue
        for file in (index, pack):  # the index first: a pack without one is ignored
            if file.exists():
                done.append(
                    f"moved {file.name} ({item.problem}) to {move_aside(path, file, aside)}"
                )
    for pack in pack_files(path):
        if not pack.with_suffix(".idx").exists() and pack_is_whole(pack):
            _index_pack(pack)
            done.append(f"indexed {pack.name}, which had no index (a cut before it was written)")
    return done


def _index_pack(pack: Path) -> None:
    from dulwich.object_format import DEFAULT_OBJECT_FORMAT
    from dulwich.pack import PackData

    index = pack.with_suffix(".idx")
    with PackData.from_path(str(pack), DEFAULT_OBJECT_FORMAT) as data:
        data.create_index(str(index))  # through a lock file, synced, renamed
    index.chmod(0o400)
    sync_directory(pack.parent)


def _directory_size(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())
