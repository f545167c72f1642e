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
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import git

from pvegit.actions.snapshot import take_snapshot
from pvegit.config.home import Home
from pvegit.demo.node import DemoNode
from pvegit.layout import METADATA_PATH as META
from pvegit.state.store import Host, Store
from testbed.faults import pvegit_command

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


def gated_revision(home: Home, path: str, content: bytes) -> tuple[str, Path, bytes]:
    """A commit on top of HEAD whose ``path`` is ``content``, stored as a loose object
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
        ["update-index", "--add", "--cacheinfo", f"100644,{blob},{path}"],
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


def restore_meanwhile(
    home: Home, commit: str, target: Path, fifo: Path, data: bytes, meanwhile: Callable[[], None]
) -> subprocess.CompletedProcess[bytes]:
    """Run a real ``pvegit restore --to-dir``; do ``meanwhile`` while it waits on ``fifo``."""
    process = subprocess.Popen(
        pvegit_command(home, "restore", "pve1", commit, "--to-dir", str(target)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        gate = open_when_read(fifo, process)
        try:
            meanwhile()
            os.write(gate, data)
        finally:
            os.close(gate)
        out, err = process.communicate(timeout=120)
    finally:
        if process.returncode is None:
            process.kill()
            process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


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


def test_the_target_swapped_for_a_link_mid_restore_gets_nothing(
    home: Home, store: Store, demo_host: Host, shared: Path
) -> None:
    """Every write is relative to the target's descriptor: even a swap no other user could
    make (the target's directory is root's, so root makes it here) carries nothing away."""
    commit, fifo, data = gated_revision(home, "etc/hosts", b"# the gate\n")
    victim = shared / "victim"  # a stand-in for /: the link could point there
    (victim / "etc").mkdir(parents=True)
    target = shared / "restored"

    def swap() -> None:
        # The restore has written the files before /etc/hosts and waits for its object.
        target.rename(shared / "restored.moved")
        target.symlink_to("victim")

    finished = restore_meanwhile(home, commit, target, fifo, data, swap)
    assert finished.returncode == 0, finished.stderr.decode()
    assert list(victim.rglob("*")) == [victim / "etc"], "files landed where the link points"
    moved = shared / "restored.moved"
    assert (moved / "etc/hosts").read_bytes() == b"# the gate\n"
    assert (moved / "etc/pve/storage.cfg").is_file()  # written after the swap, in its place
    assert moved.stat().st_uid == 0 and moved.stat().st_mode & 0o777 == 0o700


def test_a_directory_on_the_way_swapped_for_a_link_before_the_target_is_made_gets_nothing(
    home: Home, store: Store, demo_host: Host, shared: Path
) -> None:
    metadata = git("--git-dir", str(home.repo_path("pve1")), "cat-file", "blob", "HEAD:" + META)
    commit, fifo, data = gated_revision(home, META, metadata.encode() + b"# the gate\n")
    mallory = owned_by_other_user(shared / "mallory")
    as_other_user("mkdir work", cwd=mallory)
    victim = shared / "victim"
    victim.mkdir()
    # The metadata is read before the target is made: the other user swaps the
    # directory that is to hold it for a link to the stand-in for /.
    finished = restore_meanwhile(
        home,
        commit,
        mallory / "work/out",
        fifo,
        data,
        lambda: as_other_user("mv work work.moved && ln -s ../victim work", cwd=mallory),
    )
    assert finished.returncode == 1
    assert f"{mallory} belongs to {OTHER_USER}" in finished.stderr.decode()
    assert list(victim.iterdir()) == [] and list((mallory / "work.moved").iterdir()) == []


def test_links_another_user_could_change_are_not_followed(
    cli, home: Home, demo_host: Host, shared: Path
) -> None:  # type: ignore[no-untyped-def]
    victim = shared / "victim"
    victim.mkdir()
    # Their directory with their link in it, there before the restore starts.
    mallory = owned_by_other_user(shared / "mallory")
    as_other_user("ln -s ../victim work", cwd=mallory)
    refused = cli("restore", "pve1", "HEAD", "--to-dir", str(mallory / "work/out"))
    assert refused.code == 1 and f"{mallory} belongs to {OTHER_USER}" in refused.err, refused.err
    # Their link in a sticky directory like /tmp: only they could replace it.
    sticky = shared / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    as_other_user("ln -s ../victim theirs", cwd=sticky)
    refused = cli("restore", "pve1", "HEAD", "--to-dir", str(sticky / "theirs/out"))
    assert refused.code == 1, refused.err
    assert f"{sticky}/theirs is a link of {OTHER_USER}" in refused.err, refused.err
    assert "it points to ../victim now" in refused.err
    # Root's own link, in a directory its group can write: the group could replace it.
    grouped = shared / "grouped"
    grouped.mkdir()
    grouped.chmod(0o775)
    (grouped / "link").symlink_to("../victim")
    refused = cli("restore", "pve1", "HEAD", "--to-dir", str(grouped / "link/out"))
    assert refused.code == 1, refused.err
    assert f"{grouped} is writable by its group (mode 0775)" in refused.err, refused.err
    assert list(victim.iterdir()) == []


def test_only_sticky_directories_others_can_write_are_passed(
    cli, home: Home, demo_host: Host, shared: Path
) -> None:  # type: ignore[no-untyped-def]
    for mode, who in ((0o770, "its group"), (0o777, "everyone")):
        open_place = shared / f"open-{mode:o}"
        open_place.mkdir()
        open_place.chmod(mode)
        refused = cli("restore", "pve1", "HEAD", "--to-dir", str(open_place / "deeper/out"))
        assert refused.code == 1, refused.err
        assert f"{open_place} is writable by {who} (mode 0{mode:o})" in refused.err, refused.err
        assert list(open_place.iterdir()) == []  # nothing made in it either
    sticky = shared / "sticky"  # like /tmp
    sticky.mkdir()
    sticky.chmod(0o1777)
    theirs = sticky / "theirs"
    as_other_user("mkdir theirs", cwd=sticky)
    refused = cli("restore", "pve1", "HEAD", "--to-dir", str(theirs / "out"))
    assert refused.code == 1, refused.err
    assert f"{theirs} is a directory of {OTHER_USER}" in refused.err, refused.err
    assert list(theirs.iterdir()) == []
    result = cli("restore", "pve1", "HEAD", "--to-dir", str(sticky / "out"))
    assert result.code == 0, result.err
    assert (sticky / "out/etc/pve/storage.cfg").is_file()
    assert (sticky / "out").stat().st_uid == 0


def test_links_of_your_own_on_the_way_are_followed(
    cli, home: Home, demo_host: Host, shared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    real = shared / "deep/real"
    real.mkdir(parents=True)
    (shared / "scratch").symlink_to("deep/real")  # root's, where only root writes
    result = cli("restore", "pve1", "HEAD", "--to-dir", str(shared / "scratch/new/out"))
    assert result.code == 0, result.err
    assert (real / "new/out/etc/pve/storage.cfg").is_file()
    assert (real / "new").stat().st_mode & 0o777 == 0o700  # made on the way, root's alone
    sticky = shared / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    (sticky / "mine").symlink_to(real)  # root's link in a sticky directory: only root's to change
    result = cli("restore", "pve1", "HEAD", "--to-dir", str(sticky / "mine/second"))
    assert result.code == 0, result.err
    assert (real / "second/etc/pve/storage.cfg").is_file()
    # A relative path, and ".." after a link, go where the kernel would take them.
    monkeypatch.chdir(shared)
    result = cli("restore", "pve1", "HEAD", "--to-dir", "scratch/../relative")
    assert result.code == 0, result.err
    assert (shared / "deep/relative/etc/pve/storage.cfg").is_file()


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
