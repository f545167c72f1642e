"""Snapshots over real OpenSSH, against simulated Proxmox nodes (see testbed/nodes.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import add_ssh_host, git

from pvegit.actions.snapshot import take_snapshot
from pvegit.config.home import Home
from pvegit.state.store import Host, Store
from testbed.appserver import pvegit_process
from testbed.faults import damage_report
from testbed.nodes import BACKUP_USER, ROOT_PASSWORD, Node, TestBed


def commits(home: Home, name: str = "pve1") -> int:
    return int(git("--git-dir", str(home.repo_path(name)), "rev-list", "--count", "HEAD"))


def test_first_snapshot_is_a_clonable_repository(
    cli,
    home: Home,
    node: Node,
    ssh_host: Host,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    result = cli("snapshot", "pve1")
    assert result.code == 0, result.err
    run = json.loads(cli("runs", "--json").out)[0]
    assert run["status"] == "changed" and run["files"] >= 300
    clone = tmp_path / "clone"
    git("clone", "-q", str(home.repo_path("pve1")), str(clone))
    assert (clone / "etc/pve/storage.cfg").read_text() == node.read("/etc/pve/storage.cfg")
    assert (clone / "etc/pve/local").is_symlink()
    assert os.readlink(clone / "etc/pve/local") == "nodes/pve1"
    assert (clone / "etc/network/interfaces").read_text() == node.read("/etc/network/interfaces")
    inventory = clone / ".pvegit/inventory"
    assert "pve-manager: 8.2.4" in (inventory / "pveversion.txt").read_text()
    assert "vm100-pve1" in (inventory / "qm-list.txt").read_text()
    assert "Date:" not in (inventory / "pvecm-status.txt").read_text()
    assert not (clone / "etc/pve/priv").exists()
    assert git("fsck", "--strict", cwd=clone) == ""
    assert git("log", "--format=%s", cwd=clone).startswith("pve1: first snapshot")


def pve_write(node: Node, path: str, content: str) -> None:
    """Write a file the way PVE does (PVE::Tools::file_set_contents): PATH.tmp.PID, rename."""
    node.write(f"{path}.tmp.4242", content)
    node.sh(f"mv -f {path}.tmp.4242 {path}")


def test_idle_node_makes_no_commit(cli, home: Home, node: Node, ssh_host: Host) -> None:  # type: ignore[no-untyped-def]
    assert cli("snapshot", "pve1").code == 0
    before = node.read("/etc/pve/.version")
    # What a running node rewrites on its own: the LRM's and the HA manager's status,
    # cluster locks, the rotating auth key (and pmxcfs's status files with each write).
    pve_write(node, "/etc/pve/nodes/pve1/lrm_status", '{"timestamp": 1700000100}\n')
    pve_write(node, "/etc/pve/ha/manager_status", '{"master_node":"pve1","timestamp":2}\n')
    node.sh("mkdir -p /etc/pve/priv/lock/file-storage_cfg")
    pve_write(node, "/etc/pve/authkey.pub", "-----BEGIN PUBLIC KEY-----\nrotated\n")
    if node.pmxcfs:
        assert node.read("/etc/pve/.version") != before  # pmxcfs counted the writes
    else:  # the stand-in's status files are plain files: change them by hand
        node.write("/etc/pve/.version", '{"version": 413}\n')
        node.write("/etc/pve/.clusterlog", '{"data": [1]}\n')
    for _ in range(2):  # qm/pct/pvecm/pvesm/zpool print fresh noise every time
        result = cli("snapshot", "pve1")
        assert result.code == 0 and "unchanged" in result.out, result.out + result.err
    assert commits(home) == 1


def test_an_edit_written_like_pve_writes_it_is_one_commit(
    cli,
    home: Home,
    node: Node,
    ssh_host: Host,  # type: ignore[no-untyped-def]
) -> None:
    assert cli("snapshot", "pve1").code == 0
    pve_write(node, "/etc/pve/storage.cfg", node.read("/etc/pve/storage.cfg") + "\ndir: x\n")
    result = cli("snapshot", "pve1")
    assert result.code == 0 and "(1 changed" in result.out, result.out + result.err
    repository = str(home.repo_path("pve1"))
    assert git("--git-dir", repository, "log", "-1", "--format=%s") == (
        "pve1: 1 file changed: storage.cfg\n"
    )
    assert git("--git-dir", repository, "show", "--name-only", "--format=", "HEAD") == (
        "etc/pve/storage.cfg\n"
    )
    assert commits(home) == 2


def test_edits_deletions_and_modes(cli, home: Home, node: Node, ssh_host: Host) -> None:  # type: ignore[no-untyped-def]
    cli("snapshot", "pve1")
    node.write("/etc/pve/storage.cfg", node.read("/etc/pve/storage.cfg") + "\ndir: extra\n")
    node.sh("rm /etc/pve/nodes/pve1/qemu-server/101.conf")
    node.sh("chmod 600 /etc/ssh/sshd_config")
    result = cli("snapshot", "pve1")
    assert result.code == 0, result.err
    subject = git("--git-dir", str(home.repo_path("pve1")), "log", "-1", "--format=%s").strip()
    assert subject.startswith("pve1: 4 files changed: ")
    for name in ("inventory/qm-list", "storage.cfg", "101.conf", "sshd_config"):
        assert name in subject
    changes = git(
        "--git-dir", str(home.repo_path("pve1")), "show", "--name-status", "--format=", "HEAD"
    )
    assert "D\tetc/pve/nodes/pve1/qemu-server/101.conf" in changes
    assert "M\tetc/pve/storage.cfg" in changes
    assert "M\t.pvegit/inventory/qm-list.txt" in changes  # the VM is gone from `qm list`
    assert (
        "f 0600 root root etc/ssh/sshd_config" in cli("show", "pve1", "HEAD:.pvegit/metadata").out
    )


def test_pmxcfs_down_is_refused(cli, home: Home, node: Node, ssh_host: Host) -> None:  # type: ignore[no-untyped-def]
    cli("snapshot", "pve1")
    node.stop_pmxcfs()
    # root's authorized_keys links into /etc/pve/priv: without pmxcfs a key login fails...
    locked_out = cli("snapshot", "pve1")
    assert locked_out.code == 1 and "pmxcfs is down" in locked_out.err
    # ...so admins keep a second entry; then pvegit gets in and refuses to record an empty tree.
    node.sh(f"echo '{home.public_key()}' > /root/.ssh/authorized_keys2")
    refused = cli("snapshot", "pve1")
    assert refused.code == 1
    assert "pmxcfs is not running" in refused.err and "Nothing was committed" in refused.err
    assert commits(home) == 1
    node.start_pmxcfs()
    again = cli("snapshot", "pve1")
    assert again.code == 0 and "(1 changed" in again.out  # the second authorized_keys file
    subject = git("--git-dir", str(home.repo_path("pve1")), "log", "-1", "--format=%s")
    assert subject == "pve1: 1 file changed: authorized_keys2\n"


def test_non_root_user_gives_a_partial_snapshot(
    cli,
    home: Home,
    store: Store,
    node: Node,  # type: ignore[no-untyped-def]
) -> None:
    root = add_ssh_host(store, home, node, "pve1")
    assert cli("snapshot", "pve1").code == 0
    node.authorize(home.public_key(), BACKUP_USER)
    store.update_host(root.name, user=BACKUP_USER)
    result = cli("snapshot", "pve1")
    assert result.code == 3, result.out + result.err
    run = json.loads(cli("runs", "--json").out)[0]
    assert run["status"] == "partial"
    warnings = "\n".join(run["warnings"])
    assert "could not read /var/spool/cron/crontabs" in warnings
    assert "inventory command qm-list failed; kept its previous output" in warnings
    # What could not be read is kept as it was, not recorded as deleted.
    files = git("--git-dir", str(home.repo_path("pve1")), "ls-tree", "-r", "--name-only", "HEAD")
    assert "var/spool/cron/crontabs/root" in files
    assert "etc/pve/storage.cfg" in files
    # /root is 0700: the backup user cannot even see whether /root/.ssh is there. That is
    # "unreadable", not "gone" (it used to be dropped from tar's list, i.e. deleted).
    assert "could not read /root/.ssh" in warnings
    assert "root/.ssh/authorized_keys" in files
    changed = git("--git-dir", str(home.repo_path("pve1")), "show", "--name-status", "HEAD")
    assert "D\t" not in changed, changed


def test_non_root_first_snapshot_commits_what_it_read(
    cli,
    home: Home,
    store: Store,
    node: Node,  # type: ignore[no-untyped-def]
) -> None:
    add_ssh_host(store, home, node, "pve1", user=BACKUP_USER)
    result = cli("snapshot", "pve1")
    assert result.code == 3
    assert "PARTIAL" in result.err and "could not read" in result.err
    files = git("--git-dir", str(home.repo_path("pve1")), "ls-tree", "-r", "--name-only", "HEAD")
    assert "etc/pve/user.cfg" in files  # www-data group can read /etc/pve
    body = git("--git-dir", str(home.repo_path("pve1")), "log", "-1", "--format=%b")
    assert "unreadable: /var/spool/cron/crontabs" in body


def test_unknown_and_changed_host_keys_are_refused(
    cli,
    home: Home,
    store: Store,
    node: Node,
    testbed: TestBed,  # type: ignore[no-untyped-def]
) -> None:
    node.authorize(home.public_key())
    store.add_host(Host("pve1", node.address, node.port, categories=("network",)))
    unknown = cli("snapshot", "pve1")
    assert unknown.code == 1 and "host key not trusted yet" in unknown.err
    assert node.fingerprint in unknown.err
    no_terminal = cli("host", "trust", "pve1")
    assert no_terminal.code == 1 and f"--fingerprint {node.fingerprint}" in no_terminal.err
    wrong = cli("host", "trust", "pve1", "--fingerprint", "SHA256:AAAA")
    assert wrong.code == 1 and "nothing was trusted" in wrong.err
    assert cli("host", "trust", "pve1", "--fingerprint", node.fingerprint).code == 0
    assert cli("snapshot", "pve1").code == 0
    # The node is replaced by another machine answering on the same address.
    impostor = testbed.start("pve1")
    store.update_host("pve1", address=impostor.address, port=impostor.port)
    changed = cli("snapshot", "pve1")
    assert changed.code == 1 and "HOST KEY CHANGED" in changed.err
    assert impostor.fingerprint in changed.err
    run = json.loads(cli("runs", "--json").out)[0]
    assert run["status"] == "failed" and "HOST KEY CHANGED" in run["error"]
    impostor.stop()
    known_hosts = (home.root / "known_hosts").read_text()
    assert f"[{node.address}]:{node.port} ssh-ed25519 " in known_hosts


def test_unreachable_host_fails_fast(cli, store: Store) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    store.add_host(
        Host(
            "gone",
            "127.0.0.1",
            port,
            categories=("network",),
            host_key_type="ssh-ed25519",
            host_key="AAAA",
        )
    )
    started = time.monotonic()
    result = cli("snapshot", "gone")
    assert result.code == 1 and "refused the connection" in result.err
    assert time.monotonic() - started < 5


HOSTILE_TAR = r"""#!/usr/bin/python3
import io, sys, tarfile
out = io.BytesIO()
with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as archive:
    def add(name, data=b"x", kind=tarfile.REGTYPE, link=""):
        info = tarfile.TarInfo(name); info.type = kind; info.linkname = link
        info.size = len(data) if kind == tarfile.REGTYPE else 0
        archive.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    add("etc/hosts", b"127.0.0.1 localhost\n")
    add("../../../../tmp/pvegit-escape", b"owned")
    add("/etc/cron.d/evil", b"* * * * * root id")
    add("etc/network/null", kind=tarfile.CHRTYPE)
    add("etc/.git/hooks/post-checkout", b"#!/bin/sh\nid\n")
    add("etc/hostname", b"x" * (20 * 1024 * 1024))
sys.stdout.buffer.write(out.getvalue()[: int(sys.argv[-1]) if sys.argv[-1].isdigit() else None])
"""


def test_hostile_tar_stream_writes_nothing_outside_and_is_partial(
    cli,
    home: Home,
    store: Store,
    node: Node,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    add_ssh_host(store, home, node, "pve1", categories=("network",))
    node.write("/usr/sbin/tar", HOSTILE_TAR, mode=0o755)
    result = cli("snapshot", "pve1")
    assert result.code == 3, result.out + result.err
    run = json.loads(cli("runs", "--json").out)[0]
    problems = "\n".join(run["warnings"])
    assert "absolute name" in problems and "'..'" in problems
    assert "device, fifo or other special file" in problems
    assert "forbidden path component '.git'" in problems
    assert "per-file limit" in problems
    files = git("--git-dir", str(home.repo_path("pve1")), "ls-tree", "-r", "--name-only", "HEAD")
    assert files.split() == [".pvegit/metadata", "etc/hosts"]
    assert not Path("/tmp/pvegit-escape").exists()
    assert git("--git-dir", str(home.repo_path("pve1")), "fsck", "--strict") == ""


def test_stream_cut_midway_fails_without_commit(
    cli,
    home: Home,
    store: Store,
    node: Node,  # type: ignore[no-untyped-def]
) -> None:
    add_ssh_host(store, home, node, "pve1", categories=("network",))
    assert cli("snapshot", "pve1").code == 0
    # The node's tar stops after 3 KiB: the connection "drops" mid-stream.
    node.write("/usr/sbin/tar", '#!/bin/sh\n/usr/bin/tar "$@" | head -c 3072\n', mode=0o755)
    result = cli("snapshot", "pve1")
    assert result.code == 1 and "broke off" in result.err
    assert commits(home) == 1
    assert damage_report(home, store) == []
    node.sh("rm /usr/sbin/tar")
    assert cli("snapshot", "pve1").code == 0


SESSION_KILLER = """#!/bin/sh
# Send 3 KiB of the real stream, then kill this SSH session's sshd: the TCP
# connection dies mid-stream, as when a node reboots or its network goes.
/usr/bin/tar "$@" | head -c 3072
p=$PPID
while [ "$(cat /proc/$p/comm)" != sshd ]; do p=$(cut -d' ' -f4 /proc/$p/stat); done
kill -9 $p
"""


@pytest.mark.parametrize("sent", [3072, 0])
def test_connection_killed_mid_stream_fails_without_commit(
    cli,
    home: Home,
    store: Store,
    node: Node,  # type: ignore[no-untyped-def]
    sent: int,
) -> None:
    """Killed after 3 KiB, or before a byte left (an empty stream parses as a clean
    one: the lost exit status must still fail the run, in the same words)."""
    add_ssh_host(store, home, node, "pve1", categories=("network",))
    assert cli("snapshot", "pve1").code == 0
    node.write("/etc/network/interfaces", node.read("/etc/network/interfaces") + "# new\n")
    node.write("/usr/sbin/tar", SESSION_KILLER.replace("3072", str(sent)), mode=0o755)
    result = cli("snapshot", "pve1")
    assert result.code == 1, result.out + result.err
    assert "broke off" in result.err and "nothing from this run was committed" in result.err
    assert commits(home) == 1
    assert damage_report(home, store) == []
    node.sh("rm /usr/sbin/tar")
    assert cli("snapshot", "pve1").code == 0 and commits(home) == 2


def test_concurrent_snapshots_of_one_host_are_serialized(
    home: Home,
    node: Node,
    ssh_host: Host,  # type: ignore[no-untyped-def]
) -> None:
    command = [
        sys.executable,
        "-m",
        "pvegit",
        "--home",
        str(home.root),
        "snapshot",
        "pve1",
        "--json",
    ]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [json.loads(process.communicate(timeout=120)[0])[0] for process in processes]
    statuses = sorted(output["status"] for output in outputs)
    assert statuses == ["changed", "unchanged", "unchanged"]
    assert commits(home) == 1
    assert git("--git-dir", str(home.repo_path("pve1")), "fsck", "--strict") == ""


def test_snapshot_all_isolates_a_bad_host(
    cli,
    home: Home,
    store: Store,
    node: Node,
    testbed: TestBed,  # type: ignore[no-untyped-def]
) -> None:
    add_ssh_host(store, home, node, "pve1")
    second = testbed.start("pve2")
    add_ssh_host(store, home, second, "pve2")
    store.add_host(
        Host(
            "pve3",
            "127.0.0.1",
            1,
            categories=("network",),
            host_key_type="ssh-ed25519",
            host_key="AAAA",
        )
    )
    result = cli("snapshot", "--all")
    assert result.code == 1
    assert "3 hosts: 2 changed, 1 failed" in result.out
    assert "pve3: FAILED" in result.err
    assert commits(home, "pve1") == 1 and commits(home, "pve2") == 1
    pve2_hosts = git("--git-dir", str(home.repo_path("pve2")), "show", "HEAD:etc/hostname")
    assert pve2_hosts == "pve2\n"
    second.stop()


def test_killed_mid_run_leaves_a_valid_repo(
    home: Home,
    store: Store,
    node: Node,
    ssh_host: Host,  # type: ignore[no-untyped-def]
) -> None:
    assert take_snapshot(home, store, ssh_host).status == "changed"
    node.write("/etc/pve/storage.cfg", node.read("/etc/pve/storage.cfg") + "\n# edited\n")
    with node.held_tar() as wait_started:
        process = subprocess.Popen(
            [sys.executable, "-m", "pvegit", "--home", str(home.root), "snapshot", "pve1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_started(30)
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert git("--git-dir", str(home.repo_path("pve1")), "fsck", "--strict") == ""
    assert store.runs("pve1")[0].status == "running"
    run = take_snapshot(home, store, ssh_host)
    assert run.status == "changed"
    interrupted = store.run(run.id - 1)
    assert interrupted.status == "failed" and "interrupted" in (interrupted.error or "")
    assert git("--git-dir", str(home.repo_path("pve1")), "fsck", "--strict") == ""
    assert commits(home) == 2


def install_key(home: Home, node: Node, password: str) -> subprocess.CompletedProcess[str]:
    return pvegit_process(
        home,
        "host",
        "add",
        "pve1",
        "--address",
        node.address,
        "--port",
        str(node.port),
        "--install-key",
        "--password-stdin",
        "--fingerprint",
        node.fingerprint,
        stdin=password + "\n",
        timeout=60,
    )


def test_install_key_with_a_password_once(home: Home, node: Node) -> None:
    completed = install_key(home, node, ROOT_PASSWORD)
    assert completed.returncode == 0, completed.stderr
    assert "installed pvegit's key in /etc/pve/priv/authorized_keys" in completed.stdout
    assert "every node of this cluster" in completed.stdout
    assert "key login works" in completed.stdout
    assert home.public_key() in node.read("/etc/pve/priv/authorized_keys")
    assert ROOT_PASSWORD.encode() not in home.state_path.read_bytes()
    tested = pvegit_process(home, "host", "test", "pve1", timeout=60)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "PVE version: pve-manager/8.2.4" in tested.stdout
    assert "pmxcfs: /etc/pve is served" in tested.stdout


def test_wrong_password_is_a_clear_error(home: Home, node: Node) -> None:
    completed = install_key(home, node, "wrong")
    assert completed.returncode == 1
    assert "refused password for user 'root'" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_frozen_node_fails_within_the_time_limit(
    home: Home,
    store: Store,
    node: Node,
    ssh_host: Host,  # type: ignore[no-untyped-def]
) -> None:
    from pvegit.actions.snapshot import SnapshotOptions

    assert take_snapshot(home, store, ssh_host).status == "changed"
    outcome: list[object] = []
    worker = threading.Thread(
        target=lambda: outcome.append(
            take_snapshot(home, store, ssh_host, SnapshotOptions(io_timeout=2))
        )
    )
    with node.held_tar() as wait_started:
        started = time.monotonic()
        worker.start()
        wait_started(30)
        node.signal(signal.SIGSTOP)  # the whole node freezes: sshd, the session, tar
        worker.join(timeout=30)
        assert not worker.is_alive(), "the run did not end at its time limit"
        elapsed = time.monotonic() - started
    run = outcome[0]
    assert run.status == "failed" and "stopped sending" in (run.error or "")  # type: ignore[attr-defined]
    assert elapsed < 15
    assert damage_report(home, store) == []
    assert take_snapshot(home, store, ssh_host).status == "unchanged"


def test_trust_asks_on_a_terminal(home: Home, store: Store, node: Node) -> None:
    import pty
    import select

    store.add_host(Host("pve1", node.address, node.port, categories=("network",)))
    main_fd, terminal_fd = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "pvegit", "--home", str(home.root), "host", "trust", "pve1"],
        stdin=terminal_fd,
        stdout=terminal_fd,
        stderr=terminal_fd,
    )
    os.close(terminal_fd)
    shown = b""
    try:
        while b"trust this key?" not in shown:
            ready, _, _ = select.select([main_fd], [], [], 30)
            assert ready, f"no question asked: {shown!r}"
            shown += os.read(main_fd, 4096)
        assert node.fingerprint.encode() in shown
        os.write(main_fd, b"y\n")
        assert process.wait(timeout=30) == 0
    finally:
        os.close(main_fd)
    assert store.host("pve1").host_key is not None
    events = [event.action for event in store.audit_events()]
    assert "host key trusted" in events


def test_a_hung_run_is_cut_off_by_its_time_limit(
    home: Home,
    store: Store,
    node: Node,
    ssh_host: Host,  # type: ignore[no-untyped-def]
) -> None:
    from pvegit.actions.snapshot import SnapshotOptions

    with node.held_tar():  # the node's tar never starts sending
        started = time.monotonic()
        run = take_snapshot(home, store, ssh_host, SnapshotOptions(io_timeout=60, time_limit=2))
        elapsed = time.monotonic() - started
    assert run.status == "failed" and "cut off after its time limit of 2 s" in (run.error or "")
    assert run.failure == "transient" and elapsed < 15
    assert damage_report(home, store) == []
    assert take_snapshot(home, store, ssh_host).status == "changed"
    assert damage_report(home, store) == []


def test_export_has_a_recovery_runbook(
    cli,
    home: Home,
    node: Node,
    ssh_host: Host,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    import tarfile

    assert cli("snapshot", "pve1").code == 0
    output = tmp_path / "pve1.tar.gz"
    assert cli("export", "pve1", "-o", str(output)).code == 0
    with tarfile.open(output) as archive:
        runbook = archive.extractfile("RECOVERY.md").read().decode()  # type: ignore[union-attr]
    assert "# Recovering pve1" in runbook
    assert "pve-manager: 8.2.4" in runbook
    assert "cluster: `lab` with nodes `pve1` (id 1), `pve2` (id 2), `pve3` (id 3)" in runbook
    assert "`10.20.0.11/24`" in runbook and "`pbs-main` (pbs)" in runbook
    assert "systemctl stop pve-cluster" in runbook and "pvecm add" in runbook
    assert "method B" in runbook and "no priv/ keys" in runbook
    assert "rpool" in runbook  # pools from the inventory
