"""pvegit rescue: a dead node's disk, /etc/pve rebuilt from config.db, read-only."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import git

from pvegit.config.home import Home
from pvegit.config.selection import is_runtime, is_secret
from pvegit.demo.node import DemoNode
from pvegit.node.rescue import CONFIG_DB
from pvegit.state.store import Store
from testbed.nodes import Node, make_config_db, register_node


def rescued_disk(tmp_path: Path) -> Path:
    root = tmp_path / "disk"
    DemoNode(root, "pve1").create()
    make_config_db(root / "etc/pve", root / "var/lib/pve-cluster/config.db")
    shutil.rmtree(root / "etc/pve")
    (root / "etc/pve").mkdir()  # pmxcfs is not running: an empty plain directory
    return root


def test_rescue_rebuilds_etc_pve_from_config_db(cli, home: Home, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    original = tmp_path / "original"
    DemoNode(original, "pve1").create()
    assert (
        cli("host", "add", "alive", "--address", f"local:{original}", "--category", "cluster").code
        == 0
    )
    assert cli("snapshot", "alive").code == 0
    root = rescued_disk(tmp_path)
    database = root / "var/lib/pve-cluster/config.db"
    before = (database.read_bytes(), database.stat().st_mtime_ns)
    result = cli("rescue", str(root))
    assert result.code == 0, result.out + result.err
    assert result.out.startswith("pve1: changed")
    rescued = git("--git-dir", str(home.repo_path("pve1")), "ls-tree", "-r", "HEAD", "etc/pve")
    alive = git("--git-dir", str(home.repo_path("alive")), "ls-tree", "-r", "HEAD", "etc/pve")
    assert rescued == alive  # same files, same contents, the same built-in links
    assert "120000 blob" in rescued and "etc/pve/local" in rescued
    files = git("--git-dir", str(home.repo_path("pve1")), "ls-tree", "-r", "--name-only", "HEAD")
    assert "etc/network/interfaces" in files and "etc/pve/priv/authkey.key" not in files
    # Nothing was written to the rescued disk.
    assert (database.read_bytes(), database.stat().st_mtime_ns) == before
    assert sorted(os.listdir(database.parent)) == ["config.db"]
    assert sorted(os.listdir(root / "etc/pve")) == []
    log = git("--git-dir", str(home.repo_path("pve1")), "log", "-1", "--format=%b")
    assert "Trigger: rescue" in log


def test_corrupt_config_db_is_a_partial_run(cli, home: Home, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = rescued_disk(tmp_path)
    (root / "var/lib/pve-cluster/config.db").write_bytes(b"this is not sqlite" * 100)
    result = cli("rescue", str(root), "--host", "pve1")
    assert result.code == 3, result.out + result.err
    assert "/etc/pve could not be rebuilt" in result.err and "config.db" in result.err
    files = git("--git-dir", str(home.repo_path("pve1")), "ls-tree", "-r", "--name-only", "HEAD")
    assert "etc/network/interfaces" in files


def test_missing_config_db_is_a_clear_error_and_a_partial_run(
    cli, home: Home, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    root = rescued_disk(tmp_path)
    (root / "var/lib/pve-cluster/config.db").unlink()
    result = cli("rescue", str(root))
    assert result.code == 3
    assert "config.db does not exist" in result.err and "pmxcfs" in result.err
    files = git("--git-dir", str(home.repo_path("pve1")), "ls-tree", "-r", "--name-only", "HEAD")
    assert "etc/network/interfaces" in files


# -- against Proxmox's own pmxcfs ------------------------------------------------------


def etc_pve_as_shown(node: Node) -> dict[str, bytes]:
    """Every regular file /etc/pve shows now (read through pmxcfs), status files aside."""
    archive = node.directory / "shown.tar"
    node.sh(f"tar -C / -cf {archive} etc/pve")
    with tarfile.open(archive) as opened:
        shown = {
            member.name: opened.extractfile(member).read()  # type: ignore[union-attr]
            for member in opened.getmembers()
            if member.isfile()
        }
    return {
        path: data for path, data in shown.items() if not is_runtime(path) and not is_secret(path)
    }


@contextmanager
def dead_node_disk(node: Node, tmp_path: Path) -> Iterator[Path]:
    """The node's disk as a rescue system sees it: mounted read-only elsewhere, /etc/pve an
    empty folder, /var/lib/pve-cluster as pmxcfs left it (config.db, -wal, -shm)."""
    root = tmp_path / "rescue"
    shutil.copytree(node.directory / "etc-lower", root / "etc", symlinks=True)
    shutil.copytree(node.data_directory, root / "var/lib/pve-cluster")
    subprocess.run(["mount", "--bind", str(root), str(root)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(root)], check=True)
        yield root
    finally:
        subprocess.run(["umount", str(root)], check=True)


def fingerprint(directory: Path) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.iterdir())
    }


def rescued_files(home: Home, name: str) -> dict[str, bytes]:
    repository = str(home.repo_path(name))
    names = git("--git-dir", repository, "ls-tree", "-r", "--name-only", "HEAD", "etc/pve")
    out = {}
    for path in names.splitlines():
        if not is_runtime(path):
            data = subprocess.run(
                ["git", "--git-dir", repository, "cat-file", "-p", f"HEAD:{path}"],
                capture_output=True,
                check=True,
            ).stdout
            out[path] = data
    return out


def rescue_and_compare(cli, home: Home, root: Path, shown: dict[str, bytes], name: str) -> str:  # type: ignore[no-untyped-def]
    data = root / "var/lib/pve-cluster"
    before = fingerprint(data)
    result = cli("rescue", str(root), "--host", name)
    assert result.code == 0, result.out + result.err
    assert fingerprint(data) == before  # nothing written to the rescued disk, nothing added
    rescued = rescued_files(home, name)
    links = {path for path in rescued if path.rsplit("/", 1)[-1] in ("local", "lxc", "openvz")}
    links |= {"etc/pve/qemu-server"}
    assert {path: data for path, data in rescued.items() if path not in links} == shown
    assert rescued["etc/pve/local"] == b"nodes/pve1"
    return str(result.out)


def test_rescue_of_a_node_whose_pmxcfs_died_right_after_a_write(
    cli,
    home: Home,
    node: Node,
    real_pmxcfs: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    """config.db checkpointed once, the newest writes only in config.db-wal."""
    node.write("/etc/pve/storage.cfg", node.read("/etc/pve/storage.cfg") + "\ndir: late\n")
    node.write("/etc/pve/nodes/pve1/qemu-server/999.conf", "name: written-last\nmemory: 512\n")
    node.sh("rm /etc/pve/nodes/pve1/qemu-server/101.conf")
    shown = etc_pve_as_shown(node)
    node.kill_pmxcfs()
    with dead_node_disk(node, tmp_path) as root:
        database = root / "var/lib/pve-cluster/config.db"
        assert (database.parent / "config.db-wal").stat().st_size > 0
        # What the old immutable=1 read saw: the main file without the WAL.
        stale = sqlite3.connect(f"file:{database}?mode=ro&immutable=1", uri=True)
        names = {row[0] for row in stale.execute("SELECT name FROM tree")}
        stale.close()
        assert "999.conf" not in names and "101.conf" in names
        out = rescue_and_compare(cli, home, root, shown, "pve1")
    assert "config.db and its write-ahead log (config.db-wal) copied" in out
    assert re.search(r"config\.db version \d+ \(its newest change, 20", out), out


def test_rescue_of_a_database_never_checkpointed(
    cli,
    home: Home,
    node: Node,
    real_pmxcfs: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    """A fresh pmxcfs database: everything it holds is in the WAL ("no such table: tree")."""
    node.stop_pmxcfs()
    node.sh("rm -f /var/lib/pve-cluster/config.db /var/lib/pve-cluster/config.db-*")
    node.start_pmxcfs()
    node.sh(
        "mkdir -p /etc/pve/nodes/pve1/qemu-server /etc/pve/priv && "
        "echo 'dir: local' > /etc/pve/storage.cfg && "
        "echo 'name: only-in-the-wal' > /etc/pve/nodes/pve1/qemu-server/100.conf"
    )
    shown = etc_pve_as_shown(node)
    node.kill_pmxcfs()
    with dead_node_disk(node, tmp_path) as root:
        stale = sqlite3.connect(f"file:{root / CONFIG_DB}?mode=ro&immutable=1", uri=True)
        with pytest.raises(sqlite3.OperationalError, match="no such table: tree"):
            stale.execute("SELECT name FROM tree")
        stale.close()
        rescue_and_compare(cli, home, root, shown, "pve1")


def test_rescue_after_a_clean_stop(
    cli,
    home: Home,
    node: Node,
    real_pmxcfs: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    node.write("/etc/pve/nodes/pve1/qemu-server/998.conf", "name: before-the-stop\n")
    shown = etc_pve_as_shown(node)
    node.stop_pmxcfs()  # checkpoints the WAL into config.db
    with dead_node_disk(node, tmp_path) as root:
        assert not (root / "var/lib/pve-cluster/config.db-wal").exists()
        out = rescue_and_compare(cli, home, root, shown, "pve1")
    assert "config.db copied to a private temporary directory and read there (no WAL)" in out


def test_configdb_backup_of_a_running_pmxcfs_rescues_to_the_same_tree(
    cli,
    home: Home,
    store: Store,
    node: Node,
    real_pmxcfs: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    """The configdb category's `sqlite3 .backup` of the live database, fed to rescue,
    gives the /etc/pve the snapshot of the same run recorded."""
    register_node(store, home, node, "pve1", categories=("cluster", "configdb"))
    node.write("/etc/pve/nodes/pve1/qemu-server/997.conf", "name: in-the-wal-now\n")
    assert cli("snapshot", "pve1").code == 0
    repository = str(home.repo_path("pve1"))
    backup = subprocess.run(
        ["git", "--git-dir", repository, "cat-file", "blob", f"HEAD:{CONFIG_DB}"],
        capture_output=True,
        check=True,
    ).stdout
    root = tmp_path / "from-backup"
    shutil.copytree(node.directory / "etc-lower", root / "etc", symlinks=True)
    (root / CONFIG_DB).parent.mkdir(parents=True)
    (root / CONFIG_DB).write_bytes(backup)
    result = cli("rescue", str(root), "--host", "pve1-from-backup")
    assert result.code == 0, result.out + result.err
    snapshot = rescued_files(home, "pve1")
    rebuilt = rescued_files(home, "pve1-from-backup")
    assert rebuilt == snapshot
    assert "etc/pve/nodes/pve1/qemu-server/997.conf" in rebuilt
