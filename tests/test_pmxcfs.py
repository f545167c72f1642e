"""What Proxmox's own pmxcfs does to a snapshot: crashed, hung, stopped or gone half way.

These run against the real pmxcfs on the simulated nodes (testbed/nodes.py):
after a crash its FUSE mount stays and every access fails with ENOTCONN; a
hung one blocks every access; a stopped one leaves the plain empty directory.
Whatever happens, a run that could not read /etc/pve is refused (exit 1,
nothing committed, a message naming pmxcfs and what to run on the node) and
a directory that could not be read never turns into deletions.
"""

from __future__ import annotations

import json

import pytest
from conftest import git

from pvegit.config.home import Home
from pvegit.state.store import Host
from testbed.nodes import Node

# Kills pmxcfs just before the real tar starts: after the probe, before any file is read.
KILL_BEFORE_TAR = """#!/bin/sh
pid=$(cat /run/pve-cluster.pid)
kill -9 "$pid" && while kill -0 "$pid" 2>/dev/null; do :; done
exec /usr/bin/tar "$@"
"""
# Kills pmxcfs from inside tar, at its third record (30 KiB into the stream, which
# starts with /etc/pve): the files read before are in the stream, the rest fail.
KILL_DURING_TAR = """#!/bin/sh
exec /usr/bin/tar --checkpoint=3 --checkpoint-action=exec='pid=$(cat /run/pve-cluster.pid); \
kill -9 "$pid" 2>/dev/null && while kill -0 "$pid" 2>/dev/null; do :; done' "$@"
"""


def head(home: Home) -> str:
    return git("--git-dir", str(home.repo_path("pve1")), "rev-parse", "HEAD").strip()


def own_key_file(node: Node, home: Home) -> None:
    """root's key in a plain file: /root/.ssh/authorized_keys links into /etc/pve/priv,
    which a dead or hung pmxcfs makes unreadable (key logins then fail or hang)."""
    node.sh(
        f"rm /root/.ssh/authorized_keys && echo '{home.public_key()}' > /root/.ssh/authorized_keys"
    )


def refused(cli, home: Home, before: str):  # type: ignore[no-untyped-def]
    result = cli("snapshot", "pve1")
    assert result.code == 1, result.out + result.err
    assert "pmxcfs" in result.err and "Nothing was committed" in result.err, result.err
    assert "On the node: " in result.err
    assert head(home) == before  # nothing committed, nothing deleted
    run = json.loads(cli("runs", "--json", "-n", "1").out)[0]
    assert run["status"] == "refused" and run["commit"] is None
    return result


def test_a_crashed_pmxcfs_is_refused_wherever_it_dies(
    cli,
    home: Home,
    node: Node,
    ssh_host: Host,
    real_pmxcfs: str,  # type: ignore[no-untyped-def]
) -> None:
    own_key_file(node, home)
    assert cli("snapshot", "pve1").code == 0
    before = head(home)
    for _ in range(2):  # each point twice: it must hold every time, not once in three
        node.kill_pmxcfs()
        assert "Transport endpoint is not connected" in node.sh("ls /etc/pve", check=False).stderr
        result = refused(cli, home, before)
        assert "pmxcfs has crashed" in result.err and "systemctl restart pve-cluster" in result.err
        node.start_pmxcfs()

        node.write("/usr/sbin/tar", KILL_BEFORE_TAR, mode=0o755)
        result = refused(cli, home, before)
        assert "pmxcfs crashed during the run" in result.err
        assert "tar could not read /etc/pve" in result.err
        node.sh("rm /usr/sbin/tar")
        node.start_pmxcfs()

        node.write("/usr/sbin/tar", KILL_DURING_TAR, mode=0o755)
        result = refused(cli, home, before)
        assert "pmxcfs crashed during the run" in result.err
        # Killed in the middle of /etc/pve: files before it were read, this one was not.
        assert "tar could not read /etc/pve/" in result.err, result.err
        node.sh("rm /usr/sbin/tar")
        node.start_pmxcfs()
    again = cli("snapshot", "pve1")
    assert again.code == 0 and "unchanged" in again.out, again.out + again.err
    assert git("--git-dir", str(home.repo_path("pve1")), "fsck", "--strict") == ""


def test_a_hung_pmxcfs_is_refused_in_seconds(
    cli,
    home: Home,
    node: Node,
    ssh_host: Host,
    real_pmxcfs: str,  # type: ignore[no-untyped-def]
) -> None:
    own_key_file(node, home)
    assert cli("snapshot", "pve1").code == 0
    before = head(home)
    node.freeze_pmxcfs()
    try:
        result = refused(cli, home, before)
        assert "pmxcfs is not answering" in result.err and "journalctl -u pve-cluster" in result.err
    finally:
        node.thaw_pmxcfs()
    assert cli("snapshot", "pve1").code == 0


def test_a_stopped_pmxcfs_is_refused_and_the_next_run_works(
    cli,
    home: Home,
    node: Node,
    ssh_host: Host,
    real_pmxcfs: str,  # type: ignore[no-untyped-def]
) -> None:
    own_key_file(node, home)
    assert cli("snapshot", "pve1").code == 0
    before = head(home)
    node.stop_pmxcfs()
    assert node.sh("ls -A /etc/pve").stdout == ""  # the plain empty directory
    result = refused(cli, home, before)
    assert "pmxcfs is not running" in result.err and "systemctl status pve-cluster" in result.err
    node.start_pmxcfs()
    assert cli("snapshot", "pve1").code == 0 and head(home) == before


UNREADABLE_TAR = """#!/bin/sh
# The real tar, but the node "cannot read" one directory: tar leaves it out and says why.
/usr/bin/tar --exclude={path} "$@"
echo "tar: {path}: Cannot open: Input/output error" >&2
exit 2
"""


@pytest.mark.parametrize(
    ("path", "refusal"),
    [
        ("etc/pve/nodes", "pmxcfs stopped serving /etc/pve during the run"),
        ("etc/network", None),
        ("etc/ssh", None),
    ],
)
def test_a_directory_that_could_not_be_read_is_never_recorded_as_deleted(
    cli,
    home: Home,
    node: Node,
    ssh_host: Host,
    path: str,
    refusal: str | None,  # type: ignore[no-untyped-def]
) -> None:
    assert cli("snapshot", "pve1").code == 0
    before = head(home)
    repository = str(home.repo_path("pve1"))
    kept = git("--git-dir", repository, "ls-tree", "-r", "--name-only", "HEAD", path)
    assert kept.count("\n") >= 2
    node.write("/usr/sbin/tar", UNREADABLE_TAR.format(path=path), mode=0o755)
    result = cli("snapshot", "pve1")
    node.sh("rm /usr/sbin/tar")
    if refusal:  # below /etc/pve: pmxcfs is in trouble; refused, nothing committed
        assert result.code == 1 and refusal in result.err, result.err
        assert head(home) == before
    else:  # elsewhere: a partial run that keeps what it could not read as it was
        assert result.code == 3, result.out + result.err
        assert f"could not read /{path}; kept as it was" in result.err or "PARTIAL" in result.err
    assert git("--git-dir", repository, "ls-tree", "-r", "--name-only", "HEAD", path) == kept
