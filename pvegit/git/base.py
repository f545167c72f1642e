"""What every part of ``HostRepository`` shares: the open dulwich repository.

``HostRepository`` (repo.py) is composed of mixins, one per concern (health,
reading, changes, writing, packs, dumb-HTTP info); each subclasses
``RepositoryBase`` for the state they share and the two ways an object is
read: ``_git_commit`` and the translation of dulwich's many errors for an
unreadable object into ``RepositoryDamaged``. Nothing here is public API
beyond ``close``, the context manager and the host settings.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Self

from dulwich.errors import ApplyDeltaError, ChecksumMismatch, ObjectFormatException
from dulwich.objects import Commit as GitCommit
from dulwich.objects import ObjectID
from dulwich.refs import Ref
from dulwich.repo import Repo

from pvegit.errors import NotFound, RepositoryDamaged
from pvegit.git.model import Commit

BRANCH = Ref(b"refs/heads/main")
_SETTINGS_SECTION = b"pvegit"
# What dulwich raises for an object it cannot read: missing, or a pack damaged
# inside (zlib, struct, checksum, its own assertions on headers).
UNREADABLE = (
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


def oid(value: str | bytes) -> ObjectID:
    """An object id as dulwich takes it."""
    return ObjectID(value.encode() if isinstance(value, str) else value)


def to_commit(commit: GitCommit) -> Commit:
    """A dulwich commit as the git layer's ``Commit``."""
    return Commit(
        commit_id=commit.id.decode(),
        parents=tuple(parent.decode() for parent in commit.parents),
        author=commit.author.decode("utf-8", "replace"),
        time=commit.commit_time,
        message=commit.message.decode("utf-8", "replace"),
    )


def each_once(pending: list[bytes]) -> Iterator[bytes]:
    """Take ids from ``pending`` (last first), each only once, until it is empty.

    The walk of a graph of objects: the caller pushes the ids it finds onto
    ``pending`` while iterating, and may stop at any point.
    """
    seen: set[bytes] = set()
    while pending:
        sha = pending.pop()
        if sha not in seen:
            seen.add(sha)
            yield sha


class RepositoryBase:
    """The state the mixins of ``HostRepository`` share (set by its ``__init__``)."""

    path: Path
    name: str
    _repo: Repo
    _recorded: Callable[[], Sequence[str]] | None = None
    _verified_head: str | None = None  # main's commit, once checked to be a readable commit

    def close(self) -> None:
        self._repo.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _open_repo(self) -> None:
        """(Re)open the dulwich repository, e.g. after packs were replaced under it."""
        self._repo = Repo(str(self.path))
        # Packs and their indexes are synced before they are renamed into place.
        self._repo.object_store.fsync_object_files = True

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

    # -- reading objects ------------------------------------------------------

    def _unreadable(self, what: str, error: Exception) -> RepositoryDamaged:
        """An object dulwich cannot read (missing, in a damaged pack) as RepositoryDamaged.

        The file checks at opening see a pack cut short or zeroed; bit rot inside
        one shows only when an object is read, as any of the UNREADABLE errors.
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
        """The dulwich commit ``commit_id``; NotFound if it is another object."""
        try:
            obj = self._repo.object_store[oid(commit_id)]
        except UNREADABLE as err:
            raise self._unreadable(f"commit {commit_id[:10]}", err) from err
        if not isinstance(obj, GitCommit):
            raise NotFound(f"{commit_id} is not a commit")
        return obj
