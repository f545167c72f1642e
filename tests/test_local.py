"""End to end through the local transport (a node's tree in a directory), via the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import Result, git

from pvegit.cli import main
from pvegit.config.home import Home
from pvegit.demo.node import DemoNode


@pytest.fixture
def demo(tmp_path: Path, cli) -> DemoNode:  # type: ignore[no-untyped-def]
    node = DemoNode(tmp_path / "node", "pve1")
    node.create()
    result = cli("host", "add", "pve1", "--address", f"local:{node.root}")
    assert result.code == 0, result.err
    return node


def snapshot(cli, *extra: str) -> Result:  # type: ignore[no-untyped-def]
    return cli("snapshot", "pve1", *extra)


def test_first_snapshot_then_unchanged(cli, demo: DemoNode, home: Home) -> None:  # type: ignore[no-untyped-def]
    first = snapshot(cli)
    assert first.code == 0, first.err
    assert "pve1: changed" in first.out
    again = snapshot(cli)
    assert again.code == 0 and "unchanged" in again.out
    log = git("--git-dir", str(home.repo_path("pve1")), "log", "--format=%s")
    assert log.splitlines() == [log.splitlines()[0]]
    assert log.startswith("pve1: first snapshot, ")
    files = git("--git-dir", str(home.repo_path("pve1")), "ls-tree", "-r", "--name-only", "HEAD")
    assert "etc/pve/storage.cfg" in files
    assert "etc/network/interfaces" in files
    assert ".pvegit/metadata" in files
    # secrets and status files stay out by default
    for absent in (
        "etc/pve/priv/",
        "etc/pve/.version",
        "lrm_status",
        "pve-ssl.key",
        "etc/corosync/authkey",
        "ssh_host_ed25519_key\n",
        "sasl_passwd",
    ):
        assert absent not in files, absent
    tree = git("--git-dir", str(home.repo_path("pve1")), "ls-tree", "HEAD", "etc/pve/")
    assert "120000 blob" in tree and "etc/pve/local" in tree  # a link, not followed


def test_status_files_do_not_make_commits(cli, demo: DemoNode) -> None:  # type: ignore[no-untyped-def]
    snapshot(cli)
    pve = demo.root / "etc/pve"
    (pve / ".version").write_text('{"version": 999}\n')
    (pve / ".members").write_text("{}\n")
    (pve / "nodes/pve1/lrm_status").write_text('{"timestamp": 2}\n')
    (pve / "ha/manager_status").write_text("{}\n")
    (pve / "sdn/.running-config").write_text("{}\n")
    (pve / "authkey.pub").write_text("rotated\n")
    assert "unchanged" in snapshot(cli).out


def test_edits_make_one_commit_naming_the_files(cli, demo: DemoNode, home: Home) -> None:  # type: ignore[no-untyped-def]
    snapshot(cli)
    pve = demo.root / "etc/pve"
    with (pve / "storage.cfg").open("a") as handle:
        handle.write("\ndir: scratch\n\tpath /scratch\n\tcontent backup\n")
    (pve / "nodes/pve1/qemu-server/100.conf").unlink()
    (demo.root / "etc/network/interfaces").write_text("auto lo\niface lo inet loopback\n")
    result = snapshot(cli)
    assert result.code == 0 and "3 changed" in result.out
    subject = git("--git-dir", str(home.repo_path("pve1")), "log", "-1", "--format=%s")
    assert subject.strip() == "pve1: 3 files changed: interfaces, 100.conf, storage.cfg"
    body = git("--git-dir", str(home.repo_path("pve1")), "log", "-1", "--format=%b")
    assert "deleted  /etc/pve/nodes/pve1/qemu-server/100.conf" in body
    assert "Trigger: cli" in body and "Run-Id: 2" in body
    stat = git("--git-dir", str(home.repo_path("pve1")), "show", "--stat", "--format=", "HEAD")
    assert "4 files changed" in stat  # with .pvegit/metadata (a file left)
    diff = cli("diff", "pve1", "--path", "/etc/pve/storage.cfg")
    assert "+dir: scratch" in diff.out and "interfaces" not in diff.out
    stat = cli("diff", "pve1", "--stat")
    assert "/etc/pve/storage.cfg | +4 -0 (modified)" in stat.out
    shown = cli("show", "pve1", "HEAD~1:/etc/network/interfaces")
    assert "bridge-ports bond0" in shown.out
    log = json.loads(cli("log", "pve1", "--json").out)
    assert log[0]["trailers"]["Trigger"] == "cli" and len(log) == 2
    log_path = cli("log", "pve1", "--path", "/etc/network/interfaces")
    assert len(log_path.out.splitlines()) == 2


def test_mode_changes_outside_pmxcfs_only(cli, demo: DemoNode, home: Home) -> None:  # type: ignore[no-untyped-def]
    snapshot(cli)
    os.chmod(demo.root / "etc/pve/storage.cfg", 0o600)  # pmxcfs decides these: ignored
    assert "unchanged" in snapshot(cli).out
    os.chmod(demo.root / "etc/ssh/sshd_config", 0o600)
    result = snapshot(cli)
    assert "1 changed" in result.out, result.out
    body = git("--git-dir", str(home.repo_path("pve1")), "log", "-1", "--format=%s%n%b")
    assert "owner/mode  /etc/ssh/sshd_config" in body
    metadata = cli("show", "pve1", "HEAD:/.pvegit/metadata").out
    assert "f 0600 " in metadata and "etc/ssh/sshd_config" in metadata


def test_empty_pve_directory_without_config_db_is_partial(cli, demo: DemoNode, home: Home) -> None:  # type: ignore[no-untyped-def]
    # A disk mounted elsewhere: pmxcfs does not serve its /etc/pve, and here
    # there is no config.db to rebuild it from. The rest is committed, /etc/pve
    # is kept as it was, never recorded as deleted.
    snapshot(cli)
    shutil.rmtree(demo.root / "etc/pve")
    (demo.root / "etc/pve").mkdir()
    (demo.root / "etc/hosts").write_text("127.0.0.1 localhost\n")
    result = snapshot(cli)
    assert result.code == 3
    assert "/etc/pve could not be rebuilt" in result.err and "config.db" in result.err
    files = git("--git-dir", str(home.repo_path("pve1")), "ls-tree", "-r", "--name-only", "HEAD")
    assert "etc/pve/storage.cfg" in files
    assert git("--git-dir", str(home.repo_path("pve1")), "show", "HEAD:etc/hosts") == (
        "127.0.0.1 localhost\n"
    )
    runs = json.loads(cli("runs", "pve1", "--json").out)
    assert runs[0]["status"] == "partial"


def test_mass_deletion_is_held_unless_forced(cli, demo: DemoNode, home: Home) -> None:  # type: ignore[no-untyped-def]
    snapshot(cli)
    for config in (demo.root / "etc/pve/nodes").glob("*/*/*.conf"):
        config.unlink()
    held = snapshot(cli)
    assert held.code == 1 and "held: this snapshot would delete" in held.err
    assert git("--git-dir", str(home.repo_path("pve1")), "rev-list", "--count", "HEAD") == "1\n"
    forced = snapshot(cli, "--force")
    assert forced.code == 0 and "changed" in forced.out


def test_secrets_only_when_opted_in(cli, demo: DemoNode, home: Home) -> None:  # type: ignore[no-untyped-def]
    result = cli("host", "edit", "pve1", "--category", "cluster", "--category", "secrets")
    assert result.code == 0, result.err
    snapshot(cli)
    files = git("--git-dir", str(home.repo_path("pve1")), "ls-tree", "-r", "--name-only", "HEAD")
    assert "etc/pve/priv/storage/pbs-main.enc" in files
    assert "etc/pve/nodes/pve1/pve-ssl.key" in files
    assert "etc/pve/priv/authkey.key" not in files  # rotated daily: runtime, not a secret to keep
    assert "etc/network/interfaces" not in files


def test_export_has_owners_and_modes(cli, demo: DemoNode, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    snapshot(cli)
    output = tmp_path / "pve1.tar.gz"
    result = cli("export", "pve1", "HEAD", "-o", str(output))
    assert result.code == 0, result.err
    with tarfile.open(output) as archive:
        members = {member.name: member for member in archive.getmembers()}
    storage = members["etc/pve/storage.cfg"]
    assert (storage.uname, storage.gname, storage.mode) == ("root", "www-data", 0o640)
    assert members["etc/pve/nodes"].isdir() and members["etc/pve/nodes"].mode == 0o750
    assert members["etc/pve/local"].issym()
    assert members["etc/pve/local"].linkname == "nodes/pve1"
    config = members["root/.ssh/config"]
    assert config.mode == 0o600
    assert members["root/.ssh"].mode == 0o700
    assert members["usr/local/bin/pve-housekeeping"].mode == 0o755


def test_host_commands(cli, demo: DemoNode) -> None:  # type: ignore[no-untyped-def]
    listed = json.loads(cli("host", "list", "--json").out)
    assert listed[0]["name"] == "pve1" and listed[0]["address"].startswith("local:")
    assert cli("host", "add", "pve1", "--address", "x").code == 1
    bad = cli("host", "add", "../evil", "--address", "10.0.0.1")
    assert bad.code == 1 and "not allowed" in bad.err
    bad = cli("host", "add", "pve9", "--address", "10.0.0.9", "--schedule", "sometimes")
    assert bad.code == 1 and "daily at 02:30" in bad.err
    bad = cli("host", "add", "pve9", "--address", "10.0.0.9", "--include", "/etc/$(id)")
    assert bad.code == 1 and "characters" in bad.err
    edited = cli("host", "edit", "pve1", "--schedule", "daily at 2:30", "--exclude", "/etc/hosts")
    assert edited.code == 0
    shown = json.loads(cli("host", "show", "pve1", "--json").out)
    assert shown["schedule"] == "daily at 02:30" and shown["excludes"] == ["etc/hosts"]
    assert cli("host", "remove", "pve1").code == 0
    assert cli("host", "show", "pve1").code == 1


def test_categories_and_key(cli) -> None:  # type: ignore[no-untyped-def]
    listing = cli("categories").out
    assert "secrets (opt-in)" in listing and "/etc/pve" in listing and "$ qm-list" in listing
    key = cli("key").out.strip()
    assert key.startswith("ssh-ed25519 ") and key.endswith(" pvegit")


def test_demo_command(cli, home: Home) -> None:  # type: ignore[no-untyped-def]
    result = cli("demo", "--no-serve")
    assert result.code == 0, result.err
    assert "pve-demo: changed" in result.out
    log = git("--git-dir", str(home.repo_path("pve-demo")), "log", "--format=%s").splitlines()
    assert log[-2] == "pve-demo: 1 file changed: 100.conf"
    assert len(log) == 7
    assert "user:     admin" in result.out and "password: " in result.out


def test_unknown_host_and_bad_revision_are_one_line_errors(cli, demo: DemoNode) -> None:  # type: ignore[no-untyped-def]
    missing = cli("snapshot", "nope")
    assert missing.code == 1 and missing.err.startswith("pvegit: no host 'nope'")
    snapshot(cli)
    bad = cli("show", "pve1", "zzz")
    assert bad.code == 1 and "is not a revision" in bad.err and "Traceback" not in bad.err


def test_help_and_log_do_not_import_paramiko(home: Home, demo: DemoNode, cli) -> None:  # type: ignore[no-untyped-def]
    snapshot(cli)
    probe = (
        "import sys; from pvegit.cli import main; "
        f"main(['--home', {str(home.root)!r}, 'log', 'pve1']); "
        "assert 'paramiko' not in sys.modules, 'paramiko imported'"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    helped = subprocess.run(
        [sys.executable, "-m", "pvegit", "--help"], capture_output=True, text=True
    )
    assert helped.returncode == 0 and "snapshot" in helped.stdout


def test_gc_compacts_without_losing_history(cli, demo: DemoNode, home: Home) -> None:  # type: ignore[no-untyped-def]
    snapshot(cli)
    config = demo.root / "etc/pve/nodes/pve1/qemu-server/100.conf"
    for number in range(5):
        config.write_text(config.read_text() + f"#edit {number}\n")
        snapshot(cli)
    before = git("--git-dir", str(home.repo_path("pve1")), "log", "--format=%H %T")
    result = cli("gc")
    assert result.code == 0 and result.out.startswith("pve1: ")
    repository = str(home.repo_path("pve1"))
    assert git("--git-dir", repository, "log", "--format=%H %T") == before
    assert git("--git-dir", repository, "fsck", "--strict") == ""
    assert len(list((home.repo_path("pve1") / "objects/pack").glob("*.pack"))) == 1
    assert "#edit 4" in cli("show", "pve1", "HEAD:/etc/pve/nodes/pve1/qemu-server/100.conf").out
    assert "unchanged" in snapshot(cli).out
    config.write_text(config.read_text() + "#after gc\n")
    assert "changed" in snapshot(cli).out


def test_progress_only_on_a_terminal(home: Home, demo: DemoNode) -> None:
    import pty

    command = [sys.executable, "-m", "pvegit", "--home", str(home.root), "snapshot", "pve1"]
    main_fd, terminal_fd = pty.openpty()
    try:
        completed = subprocess.run(
            command, stdout=subprocess.PIPE, stderr=terminal_fd, text=True, timeout=60
        )
        os.close(terminal_fd)
        shown = b""
        while True:
            try:
                chunk = os.read(main_fd, 65536)
            except OSError:  # the terminal side is closed and drained
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(main_fd)
    assert completed.returncode == 0
    assert b"[0/1] pve1: connect" in shown and b"pve1: collect" in shown
    assert "pve1: changed" in completed.stdout and "\r" not in completed.stdout
    piped = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert piped.returncode == 0 and piped.stderr == ""


def test_home_is_private(home: Home, cli) -> None:  # type: ignore[no-untyped-def]
    cli("init")
    assert home.root.stat().st_mode & 0o777 == 0o700
    assert home.private_key_path.stat().st_mode & 0o777 == 0o600
    assert (home.root / "ssh").stat().st_mode & 0o777 == 0o700
    assert home.state_path.stat().st_mode & 0o777 == 0o600


def test_demo_with_a_relative_home_as_make_demo_runs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`make demo` passes --home ./pvegit-home: the demo node's local: address must still be
    absolute (it was 'local:pvegit-home/...', and every snapshot of the demo failed)."""
    monkeypatch.chdir(tmp_path)
    assert main(["--home", "./pvegit-home", "demo", "--no-serve"]) == 0
    out = capsys.readouterr().out
    assert "pve-demo: changed" in out and "FAILED" not in out, out
