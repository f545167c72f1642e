"""Restore onto simulated nodes over real SSH, and into a directory."""

from __future__ import annotations

import json
import os
import re
import textwrap
from pathlib import Path

from conftest import git

from pvegit.actions.snapshot import take_snapshot
from pvegit.config.home import Home
from pvegit.state.store import Host, Store
from testbed.nodes import Node


def restore(cli, *arguments: str):  # type: ignore[no-untyped-def]
    return cli("restore", "pve1", *arguments)


def test_dry_run_then_restore_changed_deleted_and_modes(
    cli,
    home: Home,
    store: Store,
    node: Node,
    ssh_host: Host,  # type: ignore[no-untyped-def]
) -> None:
    assert take_snapshot(home, store, ssh_host).status == "changed"
    original_storage = node.read("/etc/pve/storage.cfg")
    node.write("/etc/pve/storage.cfg", "dir: broken\n")
    node.sh("rm /etc/pve/nodes/pve1/qemu-server/100.conf")
    node.sh("chmod 644 /root/.ssh/config && echo 'Host evil' >> /root/.ssh/config")
    preview = restore(
        cli,
        "HEAD",
        "/etc/pve/storage.cfg",
        "/etc/pve/nodes/pve1/qemu-server",
        "/root/.ssh/config",
        "--dry-run",
    )
    assert preview.code == 0, preview.err
    assert "   change  /etc/pve/storage.cfg" in preview.out
    assert "   create  /etc/pve/nodes/pve1/qemu-server/100.conf" in preview.out
    assert "unchanged  /etc/pve/nodes/pve1/qemu-server/101.conf" in preview.out
    assert node.read("/etc/pve/storage.cfg") == "dir: broken\n"  # nothing written
    done = restore(
        cli,
        "HEAD",
        "/etc/pve/storage.cfg",
        "/etc/pve/nodes/pve1/qemu-server",
        "/root/.ssh/config",
        "--yes",
    )
    assert done.code == 0, done.out + done.err
    assert "verified: the node now matches the revision" in done.out
    assert node.read("/etc/pve/storage.cfg") == original_storage
    assert node.sh("test -f /etc/pve/nodes/pve1/qemu-server/100.conf", check=False).returncode == 0
    assert node.sh("stat -c %a /root/.ssh/config").stdout.strip() == "600"
    assert "Host evil" not in node.read("/root/.ssh/config")
    assert node.sh("ls -a /etc/pve | grep -c pvegit-restore", check=False).stdout.strip() == "0"
    log = json.loads(cli("log", "pve1", "--json").out)
    triggers = [commit["trailers"].get("Trigger") for commit in log]
    assert triggers[:2] == ["restore", "pre-restore"]
    body = git("--git-dir", str(home.repo_path("pve1")), "log", "-1", "--format=%b")
    assert "Restored-From: " in body and "/etc/pve/storage.cfg" in body.split("Restored-Paths: ")[1]
    assert "restore" in [event.action for event in store.audit_events()]
    # The pre-restore snapshot undoes the restore.
    undo = restore(cli, "HEAD~1", "/etc/pve/storage.cfg", "--yes")
    assert undo.code == 0 and node.read("/etc/pve/storage.cfg") == "dir: broken\n"


def test_rails_interfaces_corosync_and_pmxcfs(
    cli,
    home: Home,
    store: Store,
    node: Node,
    ssh_host: Host,  # type: ignore[no-untyped-def]
) -> None:
    take_snapshot(home, store, ssh_host)
    node.write("/etc/network/interfaces", "auto lo\n")
    running = node.read("/etc/pve/corosync.conf").replace("config_version: 3", "config_version: 7")
    node.write("/etc/pve/corosync.conf", running + "# edited\n")
    result = restore(cli, "HEAD~0", "/etc/network/interfaces", "/etc/pve/corosync.conf", "--yes")
    assert result.code == 0, result.out + result.err
    assert "written as interfaces.new" in result.out
    assert "config_version raised from 3 to 8" in result.out
    assert node.read("/etc/network/interfaces") == "auto lo\n"  # the live one is untouched
    assert "bridge-ports bond0" in node.read("/etc/network/interfaces.new")
    assert "config_version: 8" in node.read("/etc/pve/corosync.conf")
    node.stop_pmxcfs()
    node.sh(f"echo '{home.public_key()}' > /root/.ssh/authorized_keys2")
    refused = restore(cli, "HEAD", "/etc/pve/storage.cfg", "--yes")
    assert refused.code == 1 and "pmxcfs" in refused.err


def test_secrets_and_hardware_bound_files_only_by_name(
    cli,
    home: Home,
    store: Store,
    node: Node,  # type: ignore[no-untyped-def]
) -> None:
    from testbed.nodes import register_node

    register_node(store, home, node, "pve1", categories=("storage", "secrets"))
    record = "/etc/iscsi/send_targets/10.0.0.5,3260/st_config"  # holds a CHAP password
    node.sh("mkdir -p '/etc/iscsi/send_targets/10.0.0.5,3260'")
    node.write(record, "discovery.sendtargets.auth.password = chap\n")
    take_snapshot(home, store, store.host("pve1"))
    node.write("/etc/fstab", "# emptied\n")
    node.write(record, "# emptied\n")
    whole = restore(cli, "HEAD", "/etc", "--dry-run")
    assert "skip  /etc/fstab  [bound to the old hardware" in whole.out
    assert f"skip  {record}  [secret: name it" in whole.out
    named = restore(cli, "HEAD", "/etc/fstab", record, "--dry-run")
    assert "change  /etc/fstab" in named.out and f"change  {record}" in named.out


def test_restore_to_a_directory(
    cli,
    home: Home,
    store: Store,
    node: Node,
    ssh_host: Host,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    take_snapshot(home, store, ssh_host)
    target = tmp_path / "rebuild"
    result = cli("restore", "pve1", "HEAD", "--to-dir", str(target))
    assert result.code == 0, result.err
    assert (target / "etc/pve/storage.cfg").read_text() == node.read("/etc/pve/storage.cfg")
    assert os.readlink(target / "etc/pve/local") == "nodes/pve1"
    assert (target / "root/.ssh/config").stat().st_mode & 0o777 == 0o600
    if os.geteuid() == 0:
        assert (target / "etc/pve/storage.cfg").stat().st_gid == 33
    assert not (target / ".pvegit").exists()
    runs = json.loads(cli("runs", "--json").out)
    assert runs[0]["status"] == "changed"


def test_an_interrupted_restore_leaves_each_file_old_or_new(
    home: Home,
    store: Store,
    node: Node,
    ssh_host: Host,  # type: ignore[no-untyped-def]
) -> None:
    import signal
    import subprocess
    import sys
    import time

    configs = [f"/etc/pve/nodes/pve1/qemu-server/{number}.conf" for number in (100, 101, 102, 104)]
    new = {path: node.read(path) for path in configs}
    take_snapshot(home, store, ssh_host)
    for path in configs:
        node.write(path, "memory: 1\n")
    old = {path: node.read(path) for path in configs}
    # The node's base64 stops at the third file until the test lets it go on.
    node.sh("mkfifo /run/gate && echo 0 > /run/count")
    node.write(
        "/usr/sbin/base64",
        "#!/bin/sh\nn=$(cat /run/count); n=$((n + 1)); "
        "echo $n > /run/count\n[ $n = 3 ] && { echo waiting > /run/stuck; "
        'read line < /run/gate; }\nexec /usr/bin/base64 "$@"\n',
        mode=0o755,
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pvegit",
            "--home",
            str(home.root),
            "restore",
            "pve1",
            "HEAD",
            *configs,
            "--yes",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while node.sh("test -e /run/stuck", check=False).returncode != 0:
        assert time.monotonic() < deadline and process.poll() is None
    process.send_signal(signal.SIGKILL)  # the connection dies in the middle of the restore
    process.wait()
    node.sh("rm /usr/sbin/base64")
    states = []
    for path in configs:
        now = node.read(path)
        assert now in (old[path], new[path]), f"{path} is neither old nor new: {now!r}"
        states.append("new" if now == new[path] else "old")
    assert states[:2] == ["new", "new"] and states[3] == "old"


def test_config_db_is_taken_with_sqlite_backup(
    cli,
    home: Home,
    store: Store,
    node: Node,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    import sqlite3

    from testbed.nodes import register_node

    register_node(store, home, node, "pve1", categories=("network", "configdb"))
    node.sh("sqlite3 /var/lib/pve-cluster/config.db 'PRAGMA journal_mode=WAL' >/dev/null")
    result = cli("snapshot", "pve1")
    assert result.code == 0, result.err
    copy = tmp_path / "config.db"
    copy.write_bytes(_blob(home, "var/lib/pve-cluster/config.db"))
    names = {row[0] for row in sqlite3.connect(copy).execute("SELECT name FROM tree")}
    assert {"storage.cfg", "user.cfg", "nodes", "qemu-server"} <= names
    connection = sqlite3.connect(copy)
    assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    connection.close()
    files = git("--git-dir", str(home.repo_path("pve1")), "ls-tree", "-r", "--name-only", "HEAD")
    assert "var/lib/pve-cluster/config.db" in files


def _blob(home: Home, path: str) -> bytes:
    import subprocess

    return subprocess.run(
        ["git", "--git-dir", str(home.repo_path("pve1")), "cat-file", "blob", f"HEAD:{path}"],
        capture_output=True,
        check=True,
    ).stdout


def runbook_steps(runbook: str) -> list[str]:
    """The shell blocks of RECOVERY.md's "Step by step", in order."""
    steps = runbook.split("## Step by step", 1)[1]
    return [
        textwrap.dedent(block).strip() for block in re.findall(r"```sh\n(.*?)```", steps, re.DOTALL)
    ]


def follow(node: Node, block: str, where: str) -> None:
    """Run one runbook block on ``node`` as the admin would, in one shell started in
    ``where`` (the archive's folder). The service manager's lines become the test bed's
    own: the nodes have no systemd."""
    pending: list[str] = [f"set -e; cd {where}"]

    def flush() -> None:
        if len(pending) > 1:
            node.sh("\n".join(pending))
        del pending[1:]

    for line in block.splitlines():
        command = line.split("  #", 1)[0].strip()
        if command == "systemctl stop pve-cluster":
            flush()
            node.stop_pmxcfs()
        elif command == "systemctl start pve-cluster":
            flush()
            node.start_pmxcfs()
        elif command.startswith("hostnamectl set-hostname"):
            assert node.sh("hostname").stdout.strip() == command.split()[-1]
        elif command:
            pending.append(command)
    flush()


def test_rebuild_drill_on_a_blank_node(
    cli,
    home: Home,
    store: Store,
    node: Node,
    ssh_host: Host,
    testbed,
    real_pmxcfs: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    """Export a node, follow RECOVERY.md (method B) on a blank node with Proxmox's pmxcfs,
    snapshot it, compare: identical."""
    import shutil
    import tarfile

    from testbed.nodes import register_node

    assert cli("snapshot", "pve1").code == 0
    archive = tmp_path / "pve1.tar.gz"
    assert cli("export", "pve1", "-o", str(archive)).code == 0
    with tarfile.open(archive) as opened:
        runbook = opened.extractfile("RECOVERY.md").read().decode()  # type: ignore[union-attr]
    assert "Method B" in runbook
    identity, stop, method_a, method_b, rest, start = runbook_steps(runbook)[:6]
    assert "config.db" in method_a and "pmxcfs -l" in method_b
    blank = testbed.start("rebuilt", node_name="blank")  # a fresh install named pve1
    shutil.copy(archive, blank.directory / "pve1.tar.gz")  # where the node's shell can reach it
    for block in (identity, stop, method_b, rest, start):
        follow(blank, block, str(blank.directory))
    assert blank.pmxcfs_pid() is not None  # serving again, on the files put back
    register_node(
        store, home, blank, "rebuilt", categories=("cluster", "network", "storage", "system")
    )
    assert cli("snapshot", "rebuilt").code == 0

    def tree(name: str, path: str) -> dict[str, str]:
        listing = git("--git-dir", str(home.repo_path(name)), "ls-tree", "-r", "HEAD", path)
        return {line.split("\t")[1]: line.split()[2] for line in listing.splitlines()}

    rebuilt, original = tree("rebuilt", "etc/pve"), tree("pve1", "etc/pve")
    assert rebuilt == original
    assert len(original) > 200 and "etc/pve/local" in original  # the links, made by pmxcfs
    for path in ("etc/hostname", "etc/hosts", "etc/vzdump.conf", "etc/apt/sources.list.d"):
        assert tree("rebuilt", path) == tree("pve1", path), path
    assert (
        tree("rebuilt", "etc/network/interfaces.new")["etc/network/interfaces.new"]
        == (tree("pve1", "etc/network/interfaces")["etc/network/interfaces"])
    )
    blank.stop()


def test_pmxcfs_write_errors_are_put_in_plain_words(
    cli,
    home: Home,
    store: Store,
    node: Node,
    ssh_host: Host,  # type: ignore[no-untyped-def]
) -> None:
    take_snapshot(home, store, ssh_host)
    node.write("/etc/pve/storage.cfg", "dir: changed\n")
    if node.pmxcfs:
        # Proxmox's pmxcfs without quorum: /etc/pve readable, every write refused (EACCES).
        node.lose_quorum()
        expected = "/etc/pve/storage.cfg: pmxcfs refused the write: no quorum?"
    else:
        node.sh("mount -o remount,ro /etc/pve")  # the stand-in: a read-only mount
        expected = "/etc/pve/storage.cfg: the file system is read-only"
    result = restore(cli, "HEAD", "/etc/pve/storage.cfg", "--yes")
    assert result.code == 1
    assert expected in result.err, result.err
    assert node.read("/etc/pve/storage.cfg") == "dir: changed\n"
    assert ".pvegit-restore" not in node.sh("ls -a /etc/pve").stdout  # no temporary left


def test_to_dir_wants_an_empty_directory(
    cli,
    home: Home,
    store: Store,
    node: Node,  # type: ignore[no-untyped-def]
    ssh_host: Host,
    tmp_path: Path,
) -> None:
    take_snapshot(home, store, ssh_host)
    target = tmp_path / "busy"
    target.mkdir()
    (target / "etc").symlink_to("/etc")  # would carry the files into the real /etc
    result = cli("restore", "pve1", "HEAD", "--to-dir", str(target))
    assert result.code == 1 and "not an empty directory" in result.err


def test_temporary_files_of_an_interrupted_restore_are_cleaned_up(
    cli,
    home: Home,
    store: Store,
    node: Node,
    ssh_host: Host,  # type: ignore[no-untyped-def]
) -> None:
    assert take_snapshot(home, store, ssh_host).status == "changed"
    node.write("/etc/pve/storage.cfg", "dir: broken\n")
    node.write("/etc/pve/.pvegit-restore.OLD123", "left by a restore killed long ago\n")
    node.sh("touch -d '2 hours ago' /etc/pve/.pvegit-restore.OLD123")
    node.write("/etc/pve/.pvegit-restore.NEW456", "maybe another restore, right now\n")
    done = restore(cli, "HEAD~0", "/etc/pve/storage.cfg", "--yes")
    assert done.code == 0, done.out + done.err
    left = node.sh("ls -a /etc/pve").stdout.split()
    assert ".pvegit-restore.OLD123" not in left and ".pvegit-restore.NEW456" in left
    tree = git("--git-dir", str(home.repo_path("pve1")), "ls-tree", "--name-only", "HEAD:etc/pve")
    assert ".pvegit-restore" not in tree  # never snapshotted


# Logs what the restore script asks of chmod, chown and ln on the node, then does it.
_LOGGING = '#!/bin/sh\necho "{name} $*" >> /run/pvegit-tools.log\nexec /usr/bin/{name} "$@"\n'


def test_restore_into_proxmoxs_pmxcfs(
    cli,
    home: Home,
    store: Store,
    node: Node,
    real_pmxcfs: str,  # type: ignore[no-untyped-def]
) -> None:
    """Changed, deleted and new files, a whole directory, the built-in links and a file
    under priv/, written into the real pmxcfs: no chmod/chown/link attempted there, no
    temporary name left behind, verified."""
    from testbed.nodes import register_node

    register_node(store, home, node, "pve1", categories=("cluster", "secrets"))
    assert take_snapshot(home, store, store.host("pve1")).status == "changed"
    token = node.read("/etc/pve/priv/token.cfg")
    storage = node.read("/etc/pve/storage.cfg")
    node.write("/etc/pve/storage.cfg", "dir: broken\n")  # changed
    node.sh("rm /etc/pve/nodes/pve1/qemu-server/100.conf")  # deleted on the node
    node.sh("rm -r /etc/pve/nodes/pve1/lxc")  # a whole directory gone
    node.write("/etc/pve/nodes/pve1/qemu-server/4242.conf", "name: not-in-the-revision\n")
    node.write("/etc/pve/priv/token.cfg", "backup@pve!ci stolen\n")
    for name in ("chmod", "chown", "ln"):
        node.write(f"/usr/sbin/{name}", _LOGGING.format(name=name), mode=0o755)
    result = restore(cli, "HEAD", "/etc/pve", "/etc/pve/priv/token.cfg", "--delete", "--yes")
    for name in ("chmod", "chown", "ln"):
        node.sh(f"rm /usr/sbin/{name}")
    assert result.code == 0, result.out + result.err
    assert "verified: the node now matches the revision" in result.out
    assert "skip  /etc/pve/local  [pmxcfs makes its own links" in result.out
    assert "/etc/pve/.version" not in result.out  # pmxcfs's status files: never planned
    asked = node.sh("cat /run/pvegit-tools.log 2>/dev/null", check=False).stdout
    assert "etc/pve" not in asked, asked  # nothing pmxcfs would refuse with EPERM/ENOSYS
    assert node.read("/etc/pve/storage.cfg") == storage
    assert node.read("/etc/pve/priv/token.cfg") == token
    assert node.sh("test -e /etc/pve/nodes/pve1/qemu-server/100.conf", check=False).returncode == 0
    assert node.sh("ls /etc/pve/nodes/pve1/lxc").stdout.split()  # the directory is back
    assert node.sh("test -e /etc/pve/qemu-server/4242.conf", check=False).returncode != 0
    assert node.sh("readlink /etc/pve/local").stdout.strip() == "nodes/pve1"
    left = node.sh("find /etc/pve -name '.pvegit-restore*'").stdout
    assert left == "", left
    assert node.sh("stat -c '%a %U:%G' /etc/pve/storage.cfg").stdout.strip() == "640 root:www-data"


def test_delete_never_removes_what_the_host_does_not_collect(
    cli,
    home: Home,
    store: Store,
    node: Node,  # type: ignore[no-untyped-def]
) -> None:
    """--delete removes files a snapshot would have recorded and the revision lacks; never
    a secret the host does not collect (priv/: shadow.cfg, the cluster's authorized_keys),
    an excluded file, or pmxcfs's status and runtime files (authkey.key, lrm_status)."""
    from testbed.nodes import register_node

    register_node(store, home, node, "pve1", categories=("cluster",))
    store.update_host("pve1", excludes=("etc/pve/firewall",))
    assert take_snapshot(home, store, store.host("pve1")).status == "changed"
    node.write("/etc/pve/nodes/pve1/qemu-server/4243.conf", "name: new-since\n")
    result = restore(cli, "HEAD", "/etc/pve", "--delete", "--dry-run")
    assert result.code == 0, result.err
    deletions = [line for line in result.out.splitlines() if line.strip().startswith("delete")]
    assert deletions == [
        "   delete  /etc/pve/nodes/pve1/qemu-server/4243.conf  [not in this revision]"
    ]
