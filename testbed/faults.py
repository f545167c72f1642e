"""Fault drills shared by the tests (short runs) and bench/ (the full figures).

``kill_loop``: `pvegit snapshot --all` over many hosts, killed with SIGKILL at a
seeded random moment, again and again, with random configuration changes on
the nodes in between; after every kill the repositories, the state database and
the run log are checked, and at the end one uninterrupted run must succeed and
hold the last version of every change.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field

from pvegit.actions.verify import verify_host
from pvegit.config.home import Home
from pvegit.errors import NotFound
from pvegit.git.repo import HostRepository
from pvegit.state.store import Store
from testbed.nodes import Node

GUEST_DIR = "/etc/pve/nodes/pve1/qemu-server"


def pvegit_command(home: Home, *arguments: str) -> list[str]:
    return [sys.executable, "-m", "pvegit", "--home", str(home.root), *arguments]


def damage_report(home: Home, store: Store) -> list[str]:
    """Everything wrong with the stored state: git fsck, SQLite's own check, the run log."""
    problems: list[str] = []
    for repo in sorted(home.repos_dir.glob("*.git")):
        fsck = subprocess.run(
            ["git", "--git-dir", str(repo), "fsck", "--strict", "--no-dangling"],
            capture_output=True,
            text=True,
            check=False,
        )
        if fsck.returncode != 0 or fsck.stdout.strip():
            problems.append(f"{repo.name}: git fsck: {fsck.stdout}{fsck.stderr}")
    with sqlite3.connect(f"file:{home.state_path}?mode=ro", uri=True) as connection:
        check = connection.execute("PRAGMA integrity_check").fetchone()[0]
    if check != "ok":
        problems.append(f"state.db: {check}")
    for host in store.hosts():
        result = verify_host(home, store, host, node=False)
        problems += [f"{host.name}: {problem}" for problem in result.problems]
    return problems


@dataclass
class KillReport:
    seed: int
    iterations: int
    killed_mid_run: int = 0  # the process was still working when the signal came
    interrupted_runs: int = 0  # run records the kills left 'running'
    commits_before_final: int = 0
    final_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"seed {self.seed}: {self.iterations} kills, {self.killed_mid_run} mid-run, "
            f"{self.interrupted_runs} run records left running, "
            f"{self.commits_before_final} commits kept, final run {self.final_seconds:.2f} s, "
            f"{len(self.problems)} problems"
        )


def kill_loop(
    home: Home,
    store: Store,
    nodes: list[Node],
    *,
    iterations: int,
    seed: int,
    log: bool = False,
) -> KillReport:
    """The drill; ``store`` must already hold the hosts (of ``nodes``), snapshotted once."""
    rng = random.Random(seed)
    report = KillReport(seed, iterations)
    expected: dict[tuple[str, str], str] = {}  # (node, path) -> last content written

    # Two whole runs: the first snapshots, then a repeat whose length (a process
    # start and a run of every host, as after the changes below) spans the kill times.
    for _ in range(2):
        started = time.perf_counter()
        baseline = subprocess.run(
            pvegit_command(home, "snapshot", "--all"), capture_output=True, check=False
        )
        duration = time.perf_counter() - started
        if baseline.returncode != 0:
            report.problems.append(f"baseline run failed: {baseline.stderr.decode()}")
            return report

    for iteration in range(iterations):
        for node in rng.sample(nodes, k=max(1, len(nodes) // 2)):
            path = f"{GUEST_DIR}/{rng.randrange(900, 920)}.conf"
            content = f"# iteration {iteration}\nmemory: {rng.randrange(512, 65536)}\n"
            node.write(path, content)
            expected[(node.name, path)] = content
        process = subprocess.Popen(
            pvegit_command(home, "snapshot", "--all"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        delay = rng.uniform(0.05, 1.0) * duration
        try:
            process.wait(timeout=delay)  # the fault's moment, not a synchronisation
        except subprocess.TimeoutExpired:
            report.killed_mid_run += 1
        process.send_signal(signal.SIGKILL)
        process.wait()
        report.interrupted_runs += sum(1 for run in store.running_runs())
        found = damage_report(home, store)
        if found:
            report.problems += [f"after kill {iteration + 1}: {problem}" for problem in found]
            break
        if log:
            print(f"kill {iteration + 1}/{iterations} after {delay:.2f} s: intact", flush=True)

    for host in store.hosts():
        with HostRepository(home.repo_path(host.name)) as repository:
            report.commits_before_final += len(repository.log())
    started = time.perf_counter()
    final = subprocess.run(
        pvegit_command(home, "snapshot", "--all"), capture_output=True, text=True, check=False
    )
    report.final_seconds = time.perf_counter() - started
    if final.returncode != 0:
        report.problems.append(f"the run after the kills failed: {final.stdout}{final.stderr}")
    if store.running_runs():
        report.problems.append("run records still 'running' after a complete run")
    report.problems += damage_report(home, store)
    by_node = {node.name: node for node in nodes}
    for host in store.hosts():
        node_name = next(name for name in by_node if by_node[name].address == host.address)
        with HostRepository(home.repo_path(host.name)) as repository:
            head = repository.head()
            assert head is not None
            for (name, path), content in expected.items():
                if name != node_name:
                    continue
                try:
                    _, stored = repository.read_file(head, path.lstrip("/"))
                except NotFound:
                    stored = b"(missing)"
                if stored.decode() != content:
                    report.problems.append(f"{host.name}: {path} lost its last change")
        leftovers = list((home.repo_path(host.name) / "objects" / "pack").glob("tmp*"))
        if leftovers:
            report.problems.append(f"{host.name}: temporary packs left: {leftovers}")
    return report


def new_seed() -> int:
    return random.SystemRandom().randrange(1, 2**31)


def seed_from(value: str | None) -> int:
    return int(value) if value else new_seed()


def hosts_on(store: Store, home: Home, nodes: list[Node], per_node: int) -> None:
    """Register ``per_node`` host entries for every node (each its own repository)."""
    from testbed.nodes import register_node

    for node in nodes:
        for number in range(per_node):
            register_node(
                store,
                home,
                node,
                f"{node.name}-{number}",
                categories=("cluster", "network", "storage", "system"),
            )
