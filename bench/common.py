"""Shared helpers for the benchmarks: a test bed of simulated nodes, timing."""

from __future__ import annotations

import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pvegit.config.home import Home
from pvegit.state.store import Host, Store
from testbed.nodes import Node, TestBed, register_node

FILE_CATEGORIES = ("cluster", "network", "storage", "system")


def require_testbed() -> TestBed:
    why_not = TestBed.available()
    if why_not:
        sys.exit(f"bench: {why_not}")
    return TestBed(Path(tempfile.mkdtemp(prefix="pvegit-bench-")))


def new_home() -> tuple[Home, Store]:
    home = Home(Path(tempfile.mkdtemp(prefix="pvegit-bench-home-")))
    home.initialize()
    return home, Store(home.state_path)


def add_host(
    store: Store, home: Home, node: Node, name: str, categories: tuple[str, ...] = FILE_CATEGORIES
) -> Host:
    return register_node(store, home, node, name, categories=categories)


def ssh_command(home: Home, node: Node, script: str) -> list[str]:
    """OpenSSH itself, a fresh connection: the floor every figure is compared with."""
    return [
        "ssh",
        "-q",
        "-i",
        str(home.private_key_path),
        "-p",
        str(node.port),
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"UserKnownHostsFile={home.known_hosts_path}",
        "-o",
        "BatchMode=yes",
        "-o",
        "ControlMaster=no",
        "-o",
        "ControlPath=none",
        f"root@{node.address}",
        script,
    ]


def write_known_hosts(home: Home, nodes: list[Node]) -> None:
    lines = []
    for node in nodes:
        key = node.public_host_key.read_text().split()
        lines.append(f"[{node.address}]:{node.port} {key[0]} {key[1]}\n")
    home.known_hosts_path.write_text("".join(lines))


def timed(function: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return times


def run_quiet(command: list[str], env: dict[str, str] | None = None) -> None:
    subprocess.run(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env
    )


def compiled_environment() -> dict[str, str]:
    """An environment whose pvegit is a copy with its bytecode compiled.

    An installed pvegit has its bytecode (pip and the distributions' packages
    compile it at install time); a source checkout under
    PYTHONDONTWRITEBYTECODE compiles every module on every start, ~75 modules
    for a snapshot. The copy comes first on PYTHONPATH, so it is the pvegit
    a fresh process loads, whether the checkout is installed editable or not.
    """
    import pvegit

    target = Path(tempfile.mkdtemp(prefix="pvegit-bench-compiled-"))
    ignored = shutil.ignore_patterns("__pycache__")
    shutil.copytree(Path(pvegit.__file__).parent, target / "pvegit", ignore=ignored)
    compileall.compile_dir(target / "pvegit", quiet=1)
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=f"{target}{os.pathsep}{path}" if path else str(target))


def median(values: list[float]) -> float:
    return statistics.median(values)


def show(label: str, seconds: list[float], floor: float | None = None) -> None:
    """One line: median and minimum, and the ratio of the medians to the floor's."""
    middle = median(seconds)
    ratio = f"  {middle / floor:5.2f}x floor" if floor else ""
    print(f"{label:<52} median {middle * 1000:7.1f} ms  (min {min(seconds) * 1000:6.1f}){ratio}")
