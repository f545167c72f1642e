"""``restore --to-dir`` where another local user can write: no write through their links."""

from __future__ import annotations

import errno
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import git
from faults import pvegit_command

from pvegit.demo import DemoNode
from pvegit.home import Home
from pvegit.snapshot import take_snapshot
from pvegit.store import Host, Store

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="the attacks need root (pvegit's restore) and another user"
)
OTHER_USER = "nobody"


@pytest.fixture
def demo_host(home: Home, store: Store, tmp_path: Path) -> Host:
    node = DemoNode(tmp_path / "node", "pve1")
    node.create()
    # A setuid program on the node: its copy must not come out setuid by default.
    program = node.root / "usr/local/bin/pve-housekeeping"
    program.chmod(0o4755)
    host = store.add_host(Host("pve1", f"local:{node.root}", categories=("cluster", "system")))
    assert take_snapshot(home, store, host).status == "changed"
    return host


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory the other user can reach (pytest's tmp_path is root's alone)."""
    directory = Path(tempfile.mkdtemp(prefix="pvegit-extract-", dir="/tmp"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory)


def as_other_user(script: str, cwd: Path) -> None:
    entry = pwd.getpwnam(OTHER_USER)
    subprocess.run(
        [
            *("setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups"),
            *("/bin/sh", "-c", script),
        ],
        cwd=cwd,
        check=True,
    )


def owned_by_other_user(path: Path) -> Path:
    entry = pwd.getpwnam(OTHER_USER)
    path.mkdir()
    os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def gated_revision(home: Home, content: bytes) -> tuple[str, Path, bytes]:
    """A commit on top of HEAD whose /etc/hosts is ``content``, stored as a loose object
    that is a FIFO: reading it blocks a restore until the test writes the object.

    Returns the commit, the FIFO and the object's bytes.
    """
    repository = str(home.repo_path("pve1"))
    blob = (
        subprocess.run(
            ["git", "--git-dir", repository, "hash-object", "-w", "--stdin"],
            input=content,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .strip()
    )
    index = {"GIT_INDEX_FILE": str(home.root / "gate-index"), **os.environ}
    for command in (
        ["read-tree", "HEAD"],
        ["update-index", "--add", "--cacheinfo", f"100644,{blob},etc/hosts"],
    ):
        subprocess.run(["git", "--git-dir", repository, *command], env=index, check=True)
    tree = subprocess.run(
        ["git", "--git-dir", repository, "write-tree"],
        env=index,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    commit = git("--git-dir", repository, "commit-tree", tree, "-p", "HEAD", "-m", "gate").strip()
    loose = home.repo_path("pve1") / "objects" / blob[:2] / blob[2:]
    data = loose.read_bytes()
    assert zlib.decompress(data).endswith(content)
    loose.unlink()
    os.mkfifo(loose)
    return commit, loose, data


def open_when_read(fifo: Path, process: subprocess.Popen[bytes]) -> int:
    """Open ``fifo`` for writing once the restore has opened it for reading."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as err:
            if err.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
        assert process.poll() is None, "the restore ended before it read the gated file"
        assert time.monotonic() < deadline, "the restore never read the gated file"
        time.sleep(0.01)


def test_a_directory_swapped_for_a_link_mid_restore_gets_nothing(
    home: Home, store: Store, demo_host: Host, shared: Path
) -> None:
    commit, fifo, data = gated_revision(home, b"# the gate\n")
    mallory = owned_by_other_user(shared / "mallory")
    victim = shared / "victim"  # a stand-in for /: the link could point there
    (victim / "etc").mkdir(parents=True)
    target = mallory / "restored"
    process = subprocess.Popen(
        pvegit_command(home, "restore", "pve1", commit, "--to-dir", str(target)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        gate = open_when_read(fifo, process)
        try:
            # The restore has written the files before /etc/hosts and waits for its
            # object: the other user moves the directory away and puts a link there.
            as_other_user("mv restored restored.moved && ln -s ../victim restored", cwd=mallory)
            os.write(gate, data)
        finally:
            os.close(gate)
        _, err = process.communicate(timeout=120)
    finally:
        if process.returncode is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err.decode()
    assert list(victim.rglob("*")) == [victim / "etc"], "files landed where the link points"
    moved = mallory / "restored.moved"
    assert (moved / "etc/hosts").read_bytes() == b"# the gate\n"
    assert (moved / "etc/pve/storage.cfg").is_file()  # written after the swap, in its place
    assert moved.stat().st_uid == 0 and moved.stat().st_mode & 0o777 == 0o700


def test_the_target_must_be_new_or_an_empty_directory_of_ours(
    cli, home: Home, demo_host: Host, shared: Path
) -> None:  # type: ignore[no-untyped-def]
    elsewhere = shared / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    link = shared / "link"
    link.symlink_to(elsewhere)
    refused = cli("restore", "pve1", "HEAD", "--to-dir", str(link))
    assert refused.code == 1 and "is a link or not a directory" in refused.err, refused.err
    theirs = owned_by_other_user(shared / "theirs")
    refused = cli("restore", "pve1", "HEAD", "--to-dir", str(theirs))
    assert refused.code == 1 and f"belongs to {OTHER_USER}" in refused.err, refused.err
    open_to_all = shared / "open"
    open_to_all.mkdir()
    open_to_all.chmod(0o777)
    refused = cli("restore", "pve1", "HEAD", "--to-dir", str(open_to_all))
    assert refused.code == 1 and "writable by others (mode 0777)" in refused.err, refused.err
    assert [list(path.iterdir()) for path in (elsewhere, theirs, open_to_all)] == [[], [], []]
    ours = shared / "ours"
    ours.mkdir(mode=0o700)
    assert cli("restore", "pve1", "HEAD", "--to-dir", str(ours)).code == 0
    assert (ours / "etc/pve/storage.cfg").is_file()


def test_setuid_bits_are_dropped_unless_asked_for(
    cli, home: Home, demo_host: Host, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    program = "usr/local/bin/pve-housekeeping"
    plain = tmp_path / "plain"
    result = cli("restore", "pve1", "HEAD", "--to-dir", str(plain))
    assert result.code == 0, result.err
    assert (plain / program).stat().st_mode & 0o7777 == 0o755
    assert plain.stat().st_mode & 0o777 == 0o700  # made by pvegit, for root alone
    assert (plain / "etc/pve/nodes").stat().st_mode & 0o777 == 0o750  # pmxcfs's modes
    kept = tmp_path / "kept"
    result = cli("restore", "pve1", "HEAD", "--to-dir", str(kept), "--keep-setuid")
    assert result.code == 0, result.err
    assert (kept / program).stat().st_mode & 0o7777 == 0o4755
    assert (kept / program).stat().st_uid == 0
