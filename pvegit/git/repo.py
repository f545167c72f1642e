"""The git layer: one bare repository per host, written without a work tree.

Everything dulwich stays in this module. Callers hand in and get back plain
Python values and small frozen dataclasses (``Commit``, ``FileChange``).
Trees are built in memory and compared by id: a snapshot equal to its
parent makes no commit. New objects go into one pack per commit and the
branch moves with a compare-and-swap, so a crash at any point leaves the
repository valid (at worst with an unreferenced pack, which git ignores).
Each step is synced before the next one points to it (pack and index, their
directory, then the ref and its directory), so a power cut does too.

A repository whose files are damaged (see repocheck.py) is never read as
"no history": opening it raises ``RepositoryDamaged`` naming the damage.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import struct
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from dulwich.errors import (
    ApplyDeltaError,
    ChecksumMismatch,
    NotGitRepository,
    NotTreeError,
    ObjectFormatException,
)
from dulwich.objects import Blob, ObjectID, Tree
from dulwich.objects import Commit as GitCommit
from dulwich.refs import Ref
from dulwich.repo import Repo

from pvegit.errors import ConfigError, NotFound, PvegitError, RepositoryDamaged
from pvegit.git.check import MAIN_REF, Damage, check_head, check_packs, read_main
from pvegit.system.durable import sync_directory

_log = logging.getLogger(__name__)

BRANCH = Ref(b"refs/heads/main")
FILE_MODE = 0o100644
EXECUTABLE_MODE = 0o100755
SYMLINK_MODE = 0o120000
TREE_MODE = 0o040000
_SETTINGS_SECTION = b"pvegit"
# What dulwich raises for an object it cannot read: missing, or a pack damaged
# inside (zlib, struct, checksum, its own assertions on headers).
_UNREADABLE = (
    KeyError,
    ValueError,
    AssertionError,
    OSError,
    struct.error,
    zlib.error,
    ChecksumMismatch,
    ObjectFormatException,
    ApplyDeltaError,
)
# More packs than this slow every lookup down: fold them into one.
_REPACK_THRESHOLD = 64


@dataclass(frozen=True)
class Commit:
    """One commit of a host's history."""

    commit_id: str
    parents: tuple[str, ...]
    author: str
    time: int  # seconds since the epoch, UTC
    message: str

    @property
    def short_id(self) -> str:
        return self.commit_id[:10]

    @property
    def subject(self) -> str:
        return self.message.split("\n", 1)[0]

    def trailers(self) -> dict[str, str]:
        """Git trailers (``Key: value`` lines of the last paragraph)."""
        paragraphs = self.message.strip().split("\n\n")
        found: dict[str, str] = {}
        if len(paragraphs) < 2:
            return found
        for line in paragraphs[-1].splitlines():
            match = re.match(r"^([A-Za-z][A-Za-z0-9-]*): (.*)$", line)
            if match:
                found[match.group(1)] = match.group(2)
        return found

    @property
    def run_id(self) -> int | None:
        """The run that made this commit (its ``Run-Id`` trailer), or None."""
        value = self.trailers().get("Run-Id", "")
        return int(value) if value.isdecimal() else None


@dataclass(frozen=True)
class FileChange:
    """One path that differs between two trees."""

    path: str
    change: str  # "added", "modified", "deleted"
    old_mode: int | None
    new_mode: int | None
    old_id: str | None
    new_id: str | None


@dataclass(frozen=True)
class DirectoryEntry:
    """One entry of a directory listing."""

    name: str
    path: str
    mode: int
    object_id: str


@dataclass(frozen=True)
class TreeEntry:
    """One file or symlink of a snapshot tree."""

    path: str
    mode: int
    blob_id: str


def _oid(value: str | bytes) -> ObjectID:
    return ObjectID(value.encode() if isinstance(value, str) else value)


def encode_path(path: str) -> bytes:
    return path.encode("utf-8", "surrogateescape")


def decode_path(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def is_binary(data: bytes) -> bool:
    """Git's rule: a NUL byte in the first 8000 bytes makes a file binary."""
    return b"\0" in data[:8000]


class HostRepository:
    """A host's bare repository. Writers must hold the host's lock (see locks.py)."""

    def __init__(
        self,
        path: Path,
        *,
        create: bool = False,
        check: bool = True,
        recorded: Callable[[], Sequence[str]] | None = None,
    ) -> None:
        """Open the repository at ``path`` (``create``: make it if it does not exist).

        ``check`` (the default) raises RepositoryDamaged if its files are
        damaged, so no caller reads a damaged ref as an empty history;
        ``verify`` and ``repair`` open with ``check=False`` and call
        ``damage()``. ``recorded`` returns the commit ids the run log records
        for the host: a repository without a main ref is empty only when it
        returns none (called only then).
        """
        self.path = path
        self.name = path.name.removesuffix(".git")
        self._recorded = recorded
        self._verified_head: str | None = None
        self._evidence_known = False
        self._evidence: str | None = None
        try:
            if path.exists():
                self._repo = Repo(str(path))
            elif create:
                self._refuse_to_create_over_lost_history()
                path.parent.mkdir(parents=True, exist_ok=True)
                self._repo = Repo.init_bare(str(path), mkdir=True, default_branch=b"main")
                _sync_new_repository(path)
                check = False
            else:
                self._refuse_to_create_over_lost_history()
                raise NotFound(f"no repository at {path}: the host has no snapshot yet")
        except NotGitRepository as err:
            raise PvegitError(f"{path} is not a git repository: {err}") from err
        except ValueError as err:  # dulwich's answer to a config file it cannot parse
            raise RepositoryDamaged(
                self.name, [f"config cannot be read ({err}), what a power cut can leave"]
            ) from err
        # Packs and their indexes are synced before they are renamed into place.
        self._repo.object_store.fsync_object_files = True
        if check:
            problems = self.damage()
            if problems:
                self._repo.close()
                raise RepositoryDamaged(self.name, [item.describe(path) for item in problems])

    def _refuse_to_create_over_lost_history(self) -> None:
        recorded = self._recorded() if self._recorded is not None else ()
        if recorded:
            raise RepositoryDamaged(
                self.name,
                [
                    f"{self.path} is missing, but the run log records {len(recorded)} "
                    f"commit(s) of this host (newest {recorded[0][:10]}); put the repository "
                    "back from a backup or the mirror first"
                ],
            )

    def close(self) -> None:
        self._repo.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- health --------------------------------------------------------------

    def damage(self, *, deep: bool = False) -> list[Damage]:
        """Everything wrong with the repository's files; empty when it is whole.

        The one decision of "this repository is damaged": HEAD, the main ref
        (empty, garbage, a bad packed-refs line, pointing at an object that is
        missing or not a commit, missing while the repository had history) and
        every pack against its index. ``deep`` also hashes packs and indexes.
        """
        found = check_head(self.path) + check_packs(self.path, deep=deep)
        main = read_main(self.path)
        found += main.damage
        ref_path = self.path / MAIN_REF
        if main.commit_id is not None:
            problem = self.commit_problem(main.commit_id)
            if problem:
                found.append(Damage(ref_path, f"points at {main.commit_id[:10]}, {problem}"))
        elif not main.damage:
            evidence = self.history_evidence()
            if evidence:
                found.append(Damage(ref_path, f"is missing, but {evidence}"))
        return found

    def commit_problem(self, commit_id: str) -> str | None:
        """Why ``commit_id`` cannot be main's commit, or None."""
        try:
            obj = self._repo.object_store[_oid(commit_id)]
        except KeyError:
            return "which is not in the object store"
        except Exception as err:  # a broken pack or loose object shows as any of many errors
            return f"which cannot be read ({type(err).__name__})"
        if not isinstance(obj, GitCommit):
            return f"which is a {obj.type_name.decode()}, not a commit"
        return None

    def history_evidence(self) -> str | None:
        """Why a repository without a main ref is not simply empty, or None.

        Evidence: the reflog (written with every move of main), the host
        settings in the config (written after a snapshot), any commit in the
        object store, the run log's commits. (A first snapshot killed between
        its pack and main leaves a commit too: then `pvegit repair` puts main
        on it, rather than a new history starting beside it.)
        """
        if self._evidence_known:
            return self._evidence
        evidence: str | None = None
        reflog = self.path / "logs" / MAIN_REF
        if reflog.is_file() and reflog.stat().st_size:
            evidence = f"its reflog (logs/{MAIN_REF}) records moves of main"
        elif self.settings():
            evidence = "its config holds pvegit's host settings, written after a commit"
        elif (stored := self._any_commit()) is not None:
            evidence = f"the object store holds commits (e.g. {stored[:10]})"
        elif self._recorded is not None:
            recorded = self._recorded()
            if recorded:
                evidence = (
                    f"the run log records {len(recorded)} commit(s) of this host "
                    f"(newest {recorded[0][:10]})"
                )
        self._evidence, self._evidence_known = evidence, True
        return evidence

    def _any_commit(self) -> str | None:
        """A commit in the object store, if there is one (stops at the first)."""
        store = self._repo.object_store
        for sha in store:
            if self.commit_problem(sha.decode()) is None:
                return sha.decode()
        return None

    # -- pvegit's settings of the host, kept in the repository's config -----

    def settings(self) -> dict[str, str]:
        """The ``[pvegit]`` section of the repository's config (see repository-layout.md)."""
        section = (_SETTINGS_SECTION,)
        config = self._repo.get_config()
        return {
            key.decode(): value.decode("utf-8", "surrogateescape")
            for key, value in config.items(section)
        }

    def write_settings(self, settings: Mapping[str, str]) -> bool:
        """Make the ``[pvegit]`` section hold ``settings``; True if the config was rewritten.

        Written only when something differs, through a lock file, synced and
        renamed into place (dulwich's GitFile), so a cut leaves the old config.
        """
        if self.settings() == dict(settings):
            return False
        section = (_SETTINGS_SECTION,)
        config = self._repo.get_config()
        if section in config:
            del config[section]
        for key, value in settings.items():
            config.set(section, key.encode(), value.encode("utf-8", "surrogateescape"))
        config.write_to_path()
        return True

    # -- reading -----------------------------------------------------------

    def head(self) -> str | None:
        """The commit id at the tip of main, or None for an empty repository.

        Raises RepositoryDamaged when main cannot be trusted (see ``damage``):
        a damaged ref is never taken for an empty history.
        """
        main = read_main(self.path)
        if main.damage:
            raise RepositoryDamaged(self.name, [item.describe(self.path) for item in main.damage])
        if main.commit_id is None:
            evidence = self.history_evidence()
            if evidence:
                raise RepositoryDamaged(self.name, [f"{MAIN_REF} is missing, but {evidence}"])
            return None
        if main.commit_id != self._verified_head:
            problem = self.commit_problem(main.commit_id)
            if problem:
                raise RepositoryDamaged(
                    self.name, [f"{MAIN_REF} points at {main.commit_id[:10]}, {problem}"]
                )
            self._verified_head = main.commit_id
        return main.commit_id

    def resolve(self, revision: str) -> str:
        """Resolve ``HEAD``, ``HEAD~N``, ``main``, a full id or a unique prefix to a commit id."""
        revision = revision.strip()
        match = re.fullmatch(r"(HEAD|main|@)((?:~\d*|\^)*)", revision)
        if match:
            commit_id = self.head()
            if commit_id is None:
                raise NotFound("the repository has no commits yet: take a snapshot first")
            steps = 0
            for step in re.findall(r"~\d*|\^", match.group(2)):
                steps += int(step[1:] or 1) if step.startswith("~") else 1
            for _ in range(steps):
                parents = self._git_commit(commit_id).parents
                if not parents:
                    raise NotFound(f"{revision} goes back past the first snapshot")
                commit_id = parents[0].decode()
            return commit_id
        if not re.fullmatch(r"[0-9a-fA-F]{4,40}", revision):
            raise ConfigError(
                f"{revision!r} is not a revision: use a commit id (or a prefix of 4+ "
                "hex digits), HEAD or HEAD~N"
            )
        prefix = revision.lower()
        store = self._repo.object_store
        if len(prefix) == 40:
            if _oid(prefix) in store and isinstance(store[_oid(prefix)], GitCommit):
                return prefix
            raise NotFound(f"no commit {prefix} in {self.path.name}")
        candidates = {
            sha.decode()
            for sha in store.iter_prefix(prefix.encode())
            if isinstance(store[_oid(sha)], GitCommit)
        }
        if not candidates:
            raise NotFound(f"no commit starting with {prefix} in {self.path.name}")
        if len(candidates) > 1:
            raise ConfigError(f"{prefix} is ambiguous: give more digits of the commit id")
        return candidates.pop()

    def _unreadable(self, what: str, error: Exception) -> RepositoryDamaged:
        """An object dulwich cannot read (missing, in a damaged pack) as RepositoryDamaged.

        The file checks at opening see a pack cut short or zeroed; bit rot inside
        one shows only when an object is read, as any of the _UNREADABLE errors.
        """
        # Its frames hold views into the pack's memory map, which close() could
        # then not release ("cannot close exported pointers exist").
        error.__traceback__ = None
        return RepositoryDamaged(
            self.name,
            [
                f"{what} cannot be read ({type(error).__name__}); `pvegit verify {self.name}` "
                "lists what is damaged"
            ],
        )

    def _git_commit(self, commit_id: str) -> GitCommit:
        try:
            obj = self._repo.object_store[_oid(commit_id)]
        except _UNREADABLE as err:
            raise self._unreadable(f"commit {commit_id[:10]}", err) from err
        if not isinstance(obj, GitCommit):
            raise NotFound(f"{commit_id} is not a commit")
        return obj

    def commit(self, commit_id: str) -> Commit:
        """The commit ``commit_id`` as a Commit."""
        return _to_commit(self._git_commit(commit_id))

    def tree_id(self, commit_id: str | None) -> str | None:
        if commit_id is None:
            return None
        return str(self._git_commit(commit_id).tree.decode())

    def log(self, *, limit: int | None = None, path: str | None = None) -> list[Commit]:
        """Commits from newest to oldest, optionally only those touching ``path``."""
        head = self.head()
        if head is None:
            return []
        walker = self._repo.get_walker(
            include=[_oid(head)],
            max_entries=limit,
            paths=[encode_path(path)] if path else None,
        )
        try:
            return [_to_commit(entry.commit) for entry in walker]
        except _UNREADABLE as err:
            raise self._unreadable("the history of main", err) from err

    def iter_files(self, commit_id: str) -> Iterator[TreeEntry]:
        """Every file and symlink of a commit's tree."""
        store = self._repo.object_store
        tree = self._git_commit(commit_id).tree
        try:
            items = list(store.iter_tree_contents(tree))
        except _UNREADABLE as err:
            raise self._unreadable(f"the tree of commit {commit_id[:10]}", err) from err
        for item in items:
            if item.path is None or item.mode is None or item.sha is None:
                continue
            yield TreeEntry(decode_path(item.path), item.mode, item.sha.decode())

    def read_blob(self, blob_id: str) -> bytes:
        try:
            obj = self._repo.object_store[_oid(blob_id)]
        except _UNREADABLE as err:
            raise self._unreadable(f"file {blob_id[:10]}", err) from err
        if not isinstance(obj, Blob):
            raise NotFound(f"{blob_id} is not a file")
        return obj.as_raw_string()

    def read_file(self, commit_id: str, path: str) -> tuple[int, bytes]:
        """Mode and content of ``path`` at ``commit_id``; raises NotFound."""
        from dulwich.object_store import tree_lookup_path

        store = self._repo.object_store
        try:
            mode, sha = tree_lookup_path(
                store.__getitem__, self._git_commit(commit_id).tree, encode_path(path)
            )
        except KeyError as err:
            raise NotFound(f"/{path} is not in snapshot {commit_id[:10]}") from err
        if mode == TREE_MODE:
            raise NotFound(f"/{path} is a directory in snapshot {commit_id[:10]}")
        return mode, self.read_blob(sha.decode())

    def lookup(self, commit_id: str, path: str) -> tuple[str, tuple[int, str]]:
        """("tree", (mode, id)) or ("blob", (mode, id)) for ``path`` ("" is the root)."""
        from dulwich.object_store import tree_lookup_path

        tree = self._git_commit(commit_id).tree
        if not path:
            return "tree", (TREE_MODE, tree.decode())
        store = self._repo.object_store
        try:
            mode, sha = tree_lookup_path(store.__getitem__, tree, encode_path(path))
        except (KeyError, NotTreeError) as err:
            raise NotFound(f"/{path} is not in snapshot {commit_id[:10]}") from err
        return ("tree" if mode == TREE_MODE else "blob"), (mode, sha.decode())

    def list_directory(self, commit_id: str, path: str) -> list[DirectoryEntry]:
        """The entries of a directory at ``commit_id``; raises NotFound."""
        kind, (_, tree_id) = self.lookup(commit_id, path)
        if kind != "tree":
            raise NotFound(f"/{path} is a file, not a directory")
        tree = self._repo.object_store[_oid(tree_id)]
        assert isinstance(tree, Tree)
        prefix = f"{path}/" if path else ""
        return [
            DirectoryEntry(
                decode_path(item.path),
                prefix + decode_path(item.path),
                item.mode,
                item.sha.decode(),
            )
            for item in tree.iteritems()
        ]

    def changes(
        self, old_commit: str | None, new_commit: str, paths: Sequence[str] = ()
    ) -> list[FileChange]:
        """Paths that differ between two commits (None: everything is added)."""
        old_tree = self.tree_id(old_commit)
        new_tree = self.tree_id(new_commit)
        return self.tree_changes(
            old_tree.encode() if old_tree else None,
            new_tree.encode() if new_tree else None,
            paths,
        )

    def tree_changes(
        self,
        old_tree: bytes | None,
        new_tree: bytes | None,
        paths: Sequence[str] = (),
    ) -> list[FileChange]:
        """Paths that differ between two trees, optionally limited to ``paths``."""
        object_store = self._repo.object_store
        out: list[FileChange] = []
        wanted = [encode_path(path) for path in paths]
        try:
            compared = list(
                object_store.tree_changes(
                    _oid(old_tree) if old_tree else None, _oid(new_tree) if new_tree else None
                )
            )
        except _UNREADABLE as err:
            raise self._unreadable("a tree to compare", err) from err
        for (old_path, new_path), (old_mode, new_mode), (old_sha, new_sha) in compared:
            path = decode_path(new_path or old_path or b"")
            if wanted and not any(
                encode_path(path) == item or encode_path(path).startswith(item + b"/")
                for item in wanted
            ):
                continue
            change = "added" if old_path is None else "deleted" if new_path is None else "modified"
            out.append(
                FileChange(
                    path,
                    change,
                    old_mode,
                    new_mode,
                    old_sha.decode() if old_sha else None,
                    new_sha.decode() if new_sha else None,
                )
            )
        return out

    # -- writing -----------------------------------------------------------

    def file_ids(self, commit_id: str | None) -> dict[str, tuple[int, str]]:
        """Path -> (mode, blob id) of every file and symlink at ``commit_id``."""
        if commit_id is None:
            return {}
        return {entry.path: (entry.mode, entry.blob_id) for entry in self.iter_files(commit_id)}

    def commit_tree(
        self,
        prepared: PreparedTree,
        *,
        message: str,
        author: str,
        parent: str | None,
        timestamp: int | None = None,
    ) -> str | None:
        """Commit a prepared tree on top of ``parent``.

        Returns the new commit id, or None when the tree equals the parent's.
        Raises PvegitError if main moved away from ``parent`` meanwhile.
        """
        store = self._repo.object_store
        if parent is not None and self.tree_id(parent) == prepared.tree_id:
            return None
        missing: list[Blob | Tree | GitCommit] = list(self._new_objects(prepared, parent))
        commit = GitCommit()
        commit.tree = _oid(prepared.tree_id)
        commit.parents = [_oid(parent)] if parent else []
        identity = author.encode()
        commit.author = commit.committer = identity
        commit.author_time = commit.commit_time = timestamp or int(time.time())
        commit.author_timezone = commit.commit_timezone = 0
        commit.encoding = b"UTF-8"
        commit.message = message.encode("utf-8", "surrogateescape")
        missing.append(commit)
        # One pack for the whole snapshot: a few files on disk instead of hundreds.
        before = self._pack_dir_names()
        try:
            store.add_objects([(obj, None) for obj in missing])
        except BaseException:
            self._remove_unfinished_packs(before)
            raise
        self._tighten_packs()
        # The pack and its index are synced (fsync_object_files); their names in
        # the directory must be on disk too before main points at the commit.
        sync_directory(self.path / "objects" / "pack")
        if parent is None:
            # Only onto a ref that does not exist: dulwich's set_if_equals with no
            # old value would overwrite whatever is there (a damaged ref included).
            moved = self._repo.refs.add_if_new(
                BRANCH, commit.id, committer=identity, message=b"pvegit: first snapshot"
            )
        else:
            moved = self._repo.refs.set_if_equals(
                BRANCH, _oid(parent), commit.id, committer=identity, message=b"pvegit: snapshot"
            )
        if not moved:
            raise PvegitError(
                f"{self.path.name}: main moved while committing; another writer "
                "ignored the host lock. Run the snapshot again."
            )
        # dulwich syncs the ref's content before its rename; the rename itself
        # is durable once its directory is synced.
        sync_directory((self.path / MAIN_REF).parent)
        self._verified_head = commit.id.decode()
        if store.count_pack_files() > _REPACK_THRESHOLD:
            self.pack()
        return commit.id.decode()

    def check_objects(self) -> tuple[int, list[str]]:
        """(objects read, problems): every object main reaches read and re-hashed, like fsck."""
        store = self._repo.object_store
        head = self.head()
        if head is None:
            return 0, []
        problems: list[str] = []
        seen: set[bytes] = set()
        pending: list[bytes] = [head.encode()]
        while pending:
            sha = pending.pop()
            if sha in seen:
                continue
            seen.add(sha)
            try:
                obj = store[_oid(sha)]
                raw = obj.as_raw_string()
            except Exception as err:  # a broken pack or loose object shows as any of many errors
                problems.append(f"object {sha.decode()[:12]} cannot be read: {err}")
                continue
            header = f"{obj.type_name.decode()} {len(raw)}\0".encode()
            if hashlib.sha1(header + raw).hexdigest().encode() != sha:
                problems.append(f"object {sha.decode()[:12]} does not match its hash")
            if isinstance(obj, GitCommit):
                pending.append(obj.tree)
                pending.extend(obj.parents)
            elif isinstance(obj, Tree):
                pending.extend(item.sha for item in obj.iteritems())
            elif not isinstance(obj, Blob):
                problems.append(f"object {sha.decode()[:12]} has an unexpected type")
        return len(seen), problems

    def _pack_dir_names(self) -> set[str]:
        directory = self.path / "objects" / "pack"
        return set(os.listdir(directory)) if directory.is_dir() else set()

    def _remove_unfinished_packs(self, before: set[str]) -> None:
        """After a failed pack write (a full disk): drop its temporary file and any
        pack left without its index, so the space is free again and git sees no debris."""
        directory = self.path / "objects" / "pack"
        names = self._pack_dir_names()
        for name in names - before:
            stem = name.rsplit(".", 1)[0]
            if name.startswith("tmp") or not {f"{stem}.pack", f"{stem}.idx"} <= names:
                with contextlib.suppress(OSError):
                    (directory / name).unlink()

    def remove_stale_temporaries(self) -> int:
        """Delete what a killed writer left: temporary packs and ref lock files.

        Call only with the host's lock held: then no other writer is alive, and a
        ``refs/heads/main.lock`` is debris that would otherwise fail every later
        commit (found by bench/kill_loop.py).
        """
        directory = self.path / "objects" / "pack"
        debris = [directory / name for name in self._pack_dir_names() if name.startswith("tmp")]
        debris += [path for path in (self.path / "refs").rglob("*.lock") if path.is_file()]
        # an index being written when the writer died (``pack-*.idx.lock``): left
        # there, it fails the next commit that writes the same pack
        debris += [directory / name for name in self._pack_dir_names() if name.endswith(".lock")]
        debris += [
            self.path / name
            for name in ("packed-refs.lock", "HEAD.lock", "config.lock")
            if (self.path / name).is_file()
        ]
        removed = 0
        for path in debris:
            with contextlib.suppress(OSError):
                path.unlink()
                removed += 1
        if removed:
            _log.warning("%s: removed %d file(s) a killed run left", self.path.name, removed)
        return removed

    def _tighten_packs(self) -> None:
        """dulwich makes packs 0444 whatever the umask; this history is for pvegit only."""
        for path in (self.path / "objects" / "pack").iterdir():
            if path.stat().st_mode & 0o077:
                path.chmod(0o400)

    def info_refs(self) -> bytes:
        """What ``git update-server-info`` would write to info/refs (served, never stored)."""
        lines = []
        for name, sha in sorted(self._repo.refs.as_dict().items()):
            if name != b"HEAD":
                lines.append(sha + b"\t" + name + b"\n")
        return b"".join(lines)

    def info_packs(self) -> bytes:
        """What ``git update-server-info`` would write to objects/info/packs."""
        pack_dir = self.path / "objects" / "pack"
        names = sorted(
            path.name for path in pack_dir.glob("pack-*.pack") if path.with_suffix(".idx").exists()
        )
        return b"".join(b"P " + name.encode() + b"\n" for name in names) + b"\n"

    def _new_objects(self, prepared: PreparedTree, parent: str | None) -> list[Blob | Tree]:
        """The objects of ``prepared`` that the repository lacks.

        Walks the new tree against the parent's and descends only where tree
        ids differ, so a one-file change reads a handful of the parent's trees
        instead of looking every object up in every pack (that lookup was most
        of a commit's time with a long history).
        """
        store = self._repo.object_store
        by_id: dict[bytes, Blob | Tree] = {bytes(obj.id): obj for obj in prepared.objects}
        if parent is None:
            return [obj for obj in prepared.objects if obj.id not in store]
        candidates: set[bytes] = set()

        def walk(new_id: bytes, old_id: bytes | None) -> None:
            if new_id == old_id:
                return
            candidates.add(new_id)
            old_entries: dict[bytes, tuple[int, bytes]] = {}
            if old_id is not None:
                old_tree = store[_oid(old_id)]
                assert isinstance(old_tree, Tree)
                old_entries = {item.path: (item.mode, item.sha) for item in old_tree.iteritems()}
            new_tree = by_id[new_id]
            assert isinstance(new_tree, Tree)
            for item in new_tree.iteritems():
                old_entry = old_entries.get(item.path)
                if item.mode == TREE_MODE:
                    old_tree_id = old_entry[1] if old_entry and old_entry[0] == TREE_MODE else None
                    walk(item.sha, old_tree_id)
                elif old_entry is None or old_entry[1] != item.sha:
                    candidates.add(item.sha)

        walk(prepared.tree_id.encode(), self._git_commit(parent).tree)
        return [by_id[sha] for sha in candidates if sha in by_id and _oid(sha) not in store]

    def pack(self) -> None:
        """Fold loose objects and the smaller half of the packs into one pack.

        Quick (no deltas, no pruning) and cheap over time: folded packs grow
        geometrically, so an object is rewritten about log(history) times, not
        once per fold. ``compact`` makes one delta-compressed pack.
        """
        store = self._repo.object_store
        store.pack_loose_objects()
        packs = sorted(store.packs, key=len)
        if len(packs) < 2:
            return
        small = packs[: max(2, min(len(packs) - 1, _REPACK_THRESHOLD // 2))]
        objects: list[tuple[Any, None]] = [
            (obj, None) for pack in small for obj in pack.iterobjects()
        ]
        folded = store.add_objects(objects)
        keep = f"pack-{folded.name().decode()}" if folded is not None else None
        names = {f"pack-{pack.name().decode()}" for pack in small} - {keep}
        self._repo.close()
        pack_dir = self.path / "objects" / "pack"
        sync_directory(pack_dir)  # the folded pack is on disk before its sources go
        for name in names:
            # the index first: a pack without one is ignored, an index without its pack is not
            for suffix in (".idx", ".bitmap", ".rev", ".pack"):
                (pack_dir / f"{name}{suffix}").unlink(missing_ok=True)
        sync_directory(pack_dir)
        self._repo = Repo(str(self.path))
        self._repo.object_store.fsync_object_files = True
        self._tighten_packs()


@dataclass(frozen=True)
class PreparedTree:
    """A snapshot's tree built in memory, not yet written."""

    tree_id: str
    files: dict[str, tuple[int, str]]  # path -> (mode, blob id)
    objects: tuple[Blob | Tree, ...]


def prepare_tree(files: Mapping[str, tuple[int, bytes]]) -> PreparedTree:
    """Build the nested trees for ``files`` (path -> (git mode, content)) in memory."""
    objects: list[Blob | Tree] = []
    file_ids: dict[str, tuple[int, str]] = {}
    root: dict[bytes, Any] = {}
    for path, (mode, data) in files.items():
        parts = encode_path(path).split(b"/")
        node = root
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise PvegitError(f"{path}: a parent directory is also a file")
            node = child
        blob = Blob.from_string(data)
        objects.append(blob)
        node[parts[-1]] = (mode, blob.id)
        file_ids[path] = (mode, blob.id.decode())

    def write(node: dict[bytes, Any]) -> ObjectID:
        tree = Tree()
        for name, value in node.items():
            if isinstance(value, dict):
                tree.add(name, TREE_MODE, write(value))
            else:
                mode, sha = value
                tree.add(name, mode, sha)
        objects.append(tree)
        return tree.id

    tree_id = write(root).decode()
    return PreparedTree(tree_id, file_ids, tuple(objects))


def _sync_new_repository(path: Path) -> None:
    """A new repository's directories on disk, so a cut cannot leave half of one."""
    for directory in (path / "objects" / "pack", path / "objects", path / "refs" / "heads"):
        if directory.is_dir():
            sync_directory(directory)
    sync_directory(path)
    sync_directory(path.parent)


def _to_commit(commit: GitCommit) -> Commit:
    return Commit(
        commit_id=commit.id.decode(),
        parents=tuple(parent.decode() for parent in commit.parents),
        author=commit.author.decode("utf-8", "replace"),
        time=commit.commit_time,
        message=commit.message.decode("utf-8", "replace"),
    )
