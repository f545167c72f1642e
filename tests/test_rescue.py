"""pvegit rescue: a dead node's disk, /etc/pve rebuilt from config.db, read-only."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from conftest import git
from testbed import make_config_db

from pvegit.demo import DemoNode
from pvegit.home import Home


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
