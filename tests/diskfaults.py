"""What a power cut (or a disk that lies) leaves behind, done to real files.

Shared by tests/test_integrity.py and tests/test_powercut.py: a host with some
history made by the real CLI, and the ways to half-write its files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from conftest import Result, git

import pvegit as pvegit_package
from pvegit.config.home import Home
from pvegit.demo.node import DemoNode


def truncate_half(path: Path) -> None:
    """A write cut in the middle: the first half of the file stays."""
    data = path.read_bytes()
    path.chmod(0o600)
    path.write_bytes(data[: len(data) // 2])


def truncate_empty(path: Path) -> None:
    """A file created and renamed but never filled: 0 bytes."""
    path.chmod(0o600)
    path.write_bytes(b"")


def zero(path: Path) -> None:
    """A file whose blocks were allocated but never written: zeros, same size."""
    size = path.stat().st_size
    path.chmod(0o600)
    path.write_bytes(b"\0" * size)


DAMAGES: dict[str, Callable[[Path], None]] = {
    "truncated": truncate_half,
    "empty": truncate_empty,
    "zeroed": zero,
}


def newest_pack(repository: Path) -> Path:
    """The pack written last (the newest commit's objects: one pack per commit)."""
    packs = sorted(
        (repository / "objects" / "pack").glob("pack-*.pack"), key=lambda p: p.stat().st_mtime_ns
    )
    return packs[-1]


def same_pvegit() -> dict[str, str]:
    """An environment in which a child process imports the pvegit this test imported.

    (``python -m`` puts the working directory first on the path; the children run
    elsewhere, so that a run against another checkout, PYTHONPATH=..., stays one.)
    """
    root = str(Path(pvegit_package.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{path}" if path else root}


def pvegit(home: Home, *arguments: str) -> subprocess.CompletedProcess[str]:
    """The real ``pvegit`` program in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "pvegit", "--home", str(home.root), *arguments],
        capture_output=True,
        text=True,
        check=False,
        cwd=home.root.parent,
        env=same_pvegit(),
    )


def process_cli(home: Home) -> Callable[..., Result]:
    """Like the ``cli`` fixture, but each command in its own process, which closes its
    state.db on exit (the fixture's in-process runs leave their connections open)."""

    def run(*arguments: str) -> Result:
        completed = pvegit(home, *arguments)
        return Result(completed.returncode, completed.stdout, completed.stderr)

    return run


@dataclass
class History:
    """A local host (a demo node's tree) with three committed snapshots."""

    home: Home
    node: DemoNode
    commits: list[str]  # newest first, as `git log` lists them

    @property
    def repository(self) -> Path:
        return self.home.repo_path("pve1")

    def git(self, *arguments: str) -> str:
        return git("--git-dir", str(self.repository), *arguments)

    def log(self) -> list[str]:
        """Commit ids on main by the real git client, newest first."""
        return self.git("log", "--format=%H", "main").split()

    def fsck(self) -> str:
        return self.git("fsck", "--strict", "--no-dangling")


def make_history(cli: Callable[..., Result], home: Home, root: Path, snapshots: int = 3) -> History:
    """Add host pve1 (``local:`` a demo node under ``root``) and snapshot it ``snapshots`` times.

    ``cli`` runs the command line (the conftest fixture, in this process).
    """
    node = DemoNode(root / "node", "pve1")
    node.create()
    added = cli("host", "add", "pve1", "--address", f"local:{node.root}")
    assert added.code == 0, added.err
    for number in range(snapshots):
        if number:
            node.edit_something()
        run = cli("snapshot", "pve1")
        assert run.code == 0 and "changed" in run.out, run.err
    history = History(home, node, [])
    history.commits = history.log()
    assert len(history.commits) == snapshots
    return history
