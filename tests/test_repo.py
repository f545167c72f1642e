from __future__ import annotations

import threading
from pathlib import Path

import pytest
from conftest import git

from pvegit.content.filediff import read_diff
from pvegit.errors import ConfigError, LockTimeout, NotFound
from pvegit.git.repo import (
    EXECUTABLE_MODE,
    FILE_MODE,
    SYMLINK_MODE,
    HostRepository,
    prepare_tree,
)
from pvegit.system.locks import exclusive

_open: list[HostRepository] = []


def request_close(repository: HostRepository) -> None:
    _open.append(repository)


@pytest.fixture(autouse=True)
def _close_repositories():  # type: ignore[no-untyped-def]
    yield
    while _open:
        _open.pop().close()


def commit(repository: HostRepository, files: dict[str, tuple[int, bytes]], message: str = "m"):
    return repository.commit_tree(
        prepare_tree(files), message=message, author="t <t@x>", parent=repository.head()
    )


def test_commit_only_when_the_tree_changes(tmp_path: Path) -> None:
    repository = HostRepository(tmp_path / "pve1.git", create=True)
    files = {
        "etc/hosts": (FILE_MODE, b"127.0.0.1 localhost\n"),
        "usr/local/bin/run": (EXECUTABLE_MODE, b"#!/bin/sh\n"),
        "etc/pve/local": (SYMLINK_MODE, b"nodes/pve1"),
    }
    first = commit(repository, files, "first")
    assert first is not None
    assert commit(repository, dict(files), "again") is None
    files["etc/hosts"] = (FILE_MODE, b"127.0.0.1 localhost\n10.0.0.1 pve1\n")
    second = commit(repository, files, "second")
    assert second is not None and second != first
    assert [c.commit_id for c in repository.log()] == [second, first]
    changes = repository.changes(first, second)
    assert [(c.path, c.change) for c in changes] == [("etc/hosts", "modified")]
    diff = read_diff(repository, changes[0])
    assert "+10.0.0.1 pve1" in diff.unified()
    assert (diff.added, diff.removed) == (1, 0)
    # What a user sees with the real git client.
    assert git("--git-dir", str(tmp_path / "pve1.git"), "fsck", "--strict") == ""
    tree = git("--git-dir", str(tmp_path / "pve1.git"), "ls-tree", "-r", "HEAD")
    assert "120000 blob" in tree and "etc/pve/local" in tree
    assert "100755 blob" in tree and "usr/local/bin/run" in tree
    assert git("--git-dir", str(tmp_path / "pve1.git"), "symbolic-ref", "HEAD").strip() == (
        "refs/heads/main"
    )
    repository.close()


def test_resolve_revisions(tmp_path: Path) -> None:
    repository = HostRepository(tmp_path / "r.git", create=True)
    request_close(repository)
    ids = [commit(repository, {"a": (FILE_MODE, str(i).encode())}) for i in range(3)]
    assert repository.resolve("HEAD") == ids[2]
    assert repository.resolve("HEAD~1") == ids[1]
    assert repository.resolve("HEAD~2") == ids[0]
    assert repository.resolve(ids[0][:8]) == ids[0]
    assert repository.resolve(ids[1].upper()) == ids[1]
    with pytest.raises(NotFound):
        repository.resolve("HEAD~5")
    with pytest.raises(ConfigError):
        repository.resolve("main; rm -rf /")
    with pytest.raises(NotFound):
        repository.resolve("deadbeef")
    assert repository.read_file(ids[1], "a") == (FILE_MODE, b"1")
    with pytest.raises(NotFound):
        repository.read_file(ids[1], "nope")


def test_log_by_path(tmp_path: Path) -> None:
    repository = HostRepository(tmp_path / "r.git", create=True)
    request_close(repository)
    commit(repository, {"etc/a": (FILE_MODE, b"1"), "etc/b": (FILE_MODE, b"1")})
    second = commit(repository, {"etc/a": (FILE_MODE, b"2"), "etc/b": (FILE_MODE, b"1")})
    commit(repository, {"etc/a": (FILE_MODE, b"2"), "etc/b": (FILE_MODE, b"2")})
    assert repository.log(path="etc/a")[0].commit_id == second
    assert len(repository.log(path="etc/b")) == 2
    assert len(repository.log(limit=1)) == 1


def test_many_packs_are_folded(tmp_path: Path) -> None:
    with HostRepository(tmp_path / "r.git", create=True) as repository:
        for number in range(70):
            commit(repository, {"f": (FILE_MODE, str(number).encode())})
    packs = list((tmp_path / "r.git/objects/pack").glob("*.pack"))
    assert len(packs) < 64
    assert git("--git-dir", str(tmp_path / "r.git"), "fsck", "--strict") == ""
    assert git("--git-dir", str(tmp_path / "r.git"), "rev-list", "--count", "HEAD").strip() == "70"


def test_lock_serializes_threads_and_times_out(tmp_path: Path) -> None:
    lock = tmp_path / "locks/h.lock"
    inside = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with exclusive(lock, timeout=5, what="h"):
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    inside.wait(5)
    with pytest.raises(LockTimeout, match="busy"), exclusive(lock, timeout=0.1, what="h"):
        pass
    release.set()
    thread.join()
    with exclusive(lock, timeout=1, what="h"):
        pass


def test_debris_of_a_killed_writer_is_removed(tmp_path: Path) -> None:
    """A kill while dulwich held refs/heads/main.lock failed every later commit."""
    from pvegit.git.repo import prepare_tree

    with HostRepository(tmp_path / "h.git", create=True) as repository:
        first = repository.commit_tree(
            prepare_tree({"etc/a": (0o100644, b"1")}), message="a", author="t <t@t>", parent=None
        )
        (tmp_path / "h.git/refs/heads/main.lock").write_text("0" * 40 + "\n")
        (tmp_path / "h.git/objects/pack/tmpabc.pack").write_bytes(b"PACK")
        assert repository.remove_stale_temporaries() == 2
        second = repository.commit_tree(
            prepare_tree({"etc/a": (0o100644, b"2")}), message="b", author="t <t@t>", parent=first
        )
        assert repository.head() == second
