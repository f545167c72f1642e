"""``pvegit export`` of a hostile revision: only clean relative members of the tree.

The revision is written with dulwich directly, the way an older pvegit (or a
hand-made repository) could have left it: metadata lines a crafted owner name
added, and a tree entry named ``..``.
"""

from __future__ import annotations

import os
import tarfile
import time
from pathlib import Path

from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo

from pvegit.actions.export import export_tarball
from pvegit.git.repo import HostRepository


def clean_relative(name: str) -> bool:
    return not name.startswith("/") and os.path.normpath(name) == name and ".." not in name


def hostile_revision(path: Path, outside: Path) -> str:
    """A commit whose tree and metadata try to reach ``outside`` and beyond."""
    metadata = (
        "# pvegit metadata v1\n"
        "d 0755 root root etc\n"
        "f 0644 r r a\n"  # the first part of an owner "r r a\nd 755 r r ../../x\nf 0 r"
        "d 755 r r ../../x\n"
        "f 0 r root etc/hosts\n"
        f"d 0755 root root {outside}/absolute\n"
        "d 0755 root root root/link/through\n"  # below a link to `outside`
        "d 0755 root root etc/hosts/below-a-file\n"
        "d 0700 root root etc/empty\n"  # a real empty directory: kept
    ).encode()
    repo = Repo.init_bare(str(path), mkdir=True)
    objects: list[Blob | Tree] = []

    def blob(data: bytes) -> bytes:
        item = Blob.from_string(data)
        objects.append(item)
        return item.id

    def tree(entries: dict[bytes, tuple[int, bytes]]) -> bytes:
        item = Tree()
        for name, (mode, sha) in entries.items():
            item.add(name, mode, sha)
        objects.append(item)
        return item.id

    etc = tree({b"hosts": (0o100644, blob(b"127.0.0.1 localhost\n"))})
    root = tree({b"link": (0o120000, blob(str(outside).encode()))})
    dotdot = tree({b"escaped": (0o100644, blob(b"written outside\n"))})
    pvegit = tree({b"metadata": (0o100644, blob(metadata))})
    top = tree(
        {
            b"etc": (0o040000, etc),
            b"root": (0o040000, root),
            b"..": (0o040000, dotdot),
            b".pvegit": (0o040000, pvegit),
        }
    )
    for item in objects:
        repo.object_store.add_object(item)
    commit = Commit()
    commit.tree = top
    commit.author = commit.committer = b"old pvegit <pvegit@example.org>"
    commit.author_time = commit.commit_time = int(time.time())
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = b"pve1: first snapshot\n"
    repo.object_store.add_object(commit)
    repo.refs[b"refs/heads/main"] = commit.id
    repo.refs.set_symbolic_ref(b"HEAD", b"refs/heads/main")
    repo.close()
    return commit.id.decode()


def test_a_hostile_revision_exports_only_clean_members_of_the_tree(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    commit_id = hostile_revision(tmp_path / "pve1.git", outside)
    archive = tmp_path / "deep/er/export.tar.gz"
    archive.parent.mkdir(parents=True)
    with HostRepository(tmp_path / "pve1.git") as repository:
        export_tarball(repository, commit_id, archive, "pve1")

    with tarfile.open(archive) as reading:
        members = {member.name: member for member in reading.getmembers()}
    for name in members:
        assert clean_relative(name), name
    assert set(members) == {
        "RECOVERY.md",
        ".pvegit",
        ".pvegit/metadata",
        "etc",
        "etc/hosts",
        "etc/empty",
        "root",
        "root/link",
    }
    assert members["etc/empty"].mode == 0o700

    # What a user runs: Python's extractall, trusting the archive (the default before 3.14).
    target = tmp_path / "deep/er/target"
    target.mkdir()
    with tarfile.open(archive) as reading:
        reading.extractall(target, filter="fully_trusted")
    assert list(outside.iterdir()) == []
    assert sorted(path.name for path in tmp_path.iterdir()) == ["deep", "outside", "pve1.git"]
    assert sorted(path.name for path in (tmp_path / "deep").iterdir()) == ["er"]
    assert (target / "etc/hosts").read_text() == "127.0.0.1 localhost\n"
    assert (target / "root/link").is_symlink()
