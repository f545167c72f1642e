"""Shared fixtures: a pvegit home, the simulated-node test bed, CLI and git helpers."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pvegit.cli import main
from pvegit.config.home import Home
from pvegit.state.store import Host, Store
from testbed.nodes import Node, TestBed, find_pmxcfs, register_node, shared_pmxcfs_source


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def home(tmp_path: Path) -> Home:
    pvegit_home = Home(tmp_path / "pvegit-home")
    pvegit_home.initialize()
    return pvegit_home


@pytest.fixture
def store(home: Home) -> Iterator[Store]:
    state = Store(home.state_path)
    yield state
    state.close()


@pytest.fixture
def cli(home: Home, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run ``pvegit --home HOME ...`` in this process; return code and output."""

    def run(*arguments: str) -> Result:
        capsys.readouterr()
        code = main(["--home", str(home.root), *arguments])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def git(*arguments: str, cwd: Path | None = None) -> str:
    """The real git client."""
    completed = subprocess.run(
        ["git", *arguments], cwd=cwd, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise AssertionError(f"git {' '.join(arguments)} failed: {completed.stderr}")
    return completed.stdout


def pytest_report_header(config: pytest.Config) -> str:
    """Said once at the top of the run: what plays pmxcfs on the simulated nodes."""
    if TestBed.available() is not None:
        return f"simulated nodes: not available here ({TestBed.available()})"
    return TestBed(Path("/nonexistent")).describe()


@pytest.fixture(scope="session")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestBed]:
    why_not = TestBed.available()
    if why_not:
        if os.environ.get("PVEGIT_REQUIRE_SSHD"):
            pytest.fail(f"PVEGIT_REQUIRE_SSHD is set but {why_not}")
        pytest.skip(why_not)
    if os.environ.get("PVEGIT_REQUIRE_PMXCFS") and find_pmxcfs() is None:
        source = shared_pmxcfs_source()
        pytest.fail(
            "PVEGIT_REQUIRE_PMXCFS is set but Proxmox's pmxcfs is not built: "
            + (f"run {source}/build.sh as root" if source else "../shared/pmxcfs is missing")
        )
    bed = TestBed(tmp_path_factory.mktemp("testbed"))
    yield bed
    bed.stop_all()


@pytest.fixture
def real_pmxcfs(testbed: TestBed) -> str:
    """For tests of what Proxmox's own pmxcfs does: its binary, or a skip without it."""
    if testbed.pmxcfs is None:
        pytest.skip(testbed.describe())
    return testbed.pmxcfs


@pytest.fixture
def node(testbed: TestBed) -> Iterator[Node]:
    started = testbed.start("pve1")
    yield started
    started.stop()


add_ssh_host = register_node


@pytest.fixture
def ssh_host(store: Store, home: Home, node: Node) -> Host:
    return add_ssh_host(store, home, node)
