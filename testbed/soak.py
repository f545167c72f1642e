"""The soak drill (tests/test_load.py short, bench/soak.py long).

Hosts on simulated nodes, each on a schedule, driven by the scheduler and run
launcher `pvegit serve` uses. The scheduler's clock is moved forward one
schedule interval per round, so every host falls due once per round; between
rounds random guest configs change on random nodes. At the end every version
written must be in the host's history, in order; the run log must hold every
scheduled run; the stored state must be intact. The process' RSS is read after
the first round (warm) and at the end. Runs are stamped with the same stepped
clock (the store's), as the scheduler reads their times.
"""

from __future__ import annotations

import gc
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from pvegit.config.file import Config
from pvegit.config.home import Home
from pvegit.git.repo import HostRepository
from pvegit.service.launcher import RunLauncher
from pvegit.service.scheduler import Scheduler
from pvegit.state.store import Store
from testbed.faults import GUEST_DIR, damage_report
from testbed.nodes import Node, register_node

INTERVAL = 6 * 3600  # "every 6 hours": each round moves the clock by this


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class SteppedClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class SoakReport:
    hosts: int
    rounds: int
    runs: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    versions_written: int = 0
    seconds: float = 0.0
    rss_warm: int = 0
    rss_end: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        counts = ", ".join(f"{count} {status}" for status, count in sorted(self.statuses.items()))
        return (
            f"{self.runs} scheduled runs ({counts}) of {self.hosts} hosts in {self.rounds} "
            f"rounds, {self.seconds:.1f} s ({self.runs / max(self.seconds, 1e-9):.1f} runs/s); "
            f"{self.versions_written} config versions written, all in history: "
            f"{'yes' if not self.problems else 'NO'}; RSS {self.rss_warm / 2**20:.1f} MiB after "
            f"round 1 -> {self.rss_end / 2**20:.1f} MiB at the end"
        )


def soak(
    home: Home,
    nodes: list[Node],
    *,
    per_node: int,
    rounds: int,
    seed: int,
    concurrency: int = 4,
    log: bool = False,
    on_round: Callable[[int], None] | None = None,
) -> SoakReport:
    rng = random.Random(seed)
    clock = SteppedClock()
    store = Store(home.state_path, clock=clock)  # runs stamped with the scheduler's time
    hosts_of: dict[str, list[str]] = defaultdict(list)
    for node in nodes:
        for number in range(per_node):
            name = f"{node.name}-{number}"
            register_node(store, home, node, name, categories=("cluster", "network"))
            store.update_host(name, schedule="every 6 hours")
            hosts_of[node.name].append(name)
    report = SoakReport(len(nodes) * per_node, rounds)
    config = Config(concurrency=concurrency, jitter=0, run_timeout=300, retry_delays=(60,))
    launcher = RunLauncher(home, store, config)
    scheduler = Scheduler(
        store,
        config,
        lambda host, trigger: launcher.launch(host, trigger=trigger, actor="scheduler"),
        clock=clock,
        running=launcher.active,
    )
    written: dict[tuple[str, str], list[str]] = defaultdict(list)
    started = time.perf_counter()
    try:
        for round_number in range(rounds):
            if round_number:  # the first round takes every host's first snapshot
                for node in rng.sample(nodes, k=max(1, len(nodes) // 2)):
                    path = f"{GUEST_DIR}/{rng.randrange(800, 806)}.conf"
                    content = f"# round {round_number}\nmemory: {rng.randrange(512, 1 << 20)}\n"
                    node.write(path, content)
                    for name in hosts_of[node.name]:
                        written[(name, path)].append(content)
                    report.versions_written += 1
            clock.now += INTERVAL
            while True:
                scheduler.tick()
                if not scheduler.due():
                    break
                launcher.wait_fewer(concurrency, timeout=600)
            launcher.wait_idle(timeout=600)
            if round_number == 0:
                gc.collect()
                report.rss_warm = rss_bytes()
            if on_round is not None:
                on_round(round_number)
            if log and (round_number + 1) % 10 == 0:
                print(f"round {round_number + 1}/{rounds}: RSS {rss_bytes() / 2**20:.1f} MiB")
    finally:
        launcher.shutdown()
    report.seconds = time.perf_counter() - started
    gc.collect()
    report.rss_end = rss_bytes()

    runs = [run for run in store.runs(limit=10**6) if run.trigger == "schedule"]
    report.runs = len(runs)
    for run in runs:
        report.statuses[run.status] = report.statuses.get(run.status, 0) + 1
    if report.runs != report.hosts * rounds:
        report.problems.append(f"{report.runs} scheduled runs, expected {report.hosts * rounds}")
    report.problems += [
        f"run {run.id} of {run.host}: {run.status} {run.error}"
        for run in runs
        if run.status not in ("changed", "unchanged")
    ]
    for (name, path), versions in written.items():
        with HostRepository(home.repo_path(name)) as repository:
            history = []
            for commit in reversed(repository.log(path=path.lstrip("/"))):
                history.append(repository.read_file(commit.commit_id, path.lstrip("/"))[1].decode())
        if history != versions:
            report.problems.append(
                f"{name}: {path}: history has {len(history)} versions, {len(versions)} written"
            )
    report.problems += damage_report(home, store)
    store.close()
    return report
