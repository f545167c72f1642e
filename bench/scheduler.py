"""The scheduler under load: 200 hosts on schedules against simulated nodes.

Real clock, real sshd nodes (50 nodes, 4 host entries each), the same
scheduler and run launcher `pvegit serve` uses. Reports: how late each due
run started (target: within 5 s), overlapping runs of one host (target:
none), and the CPU the process used while nothing was due (target: under 1 %).
Runs as root; takes about 9 minutes with the defaults.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import threading
import time

from common import new_home, require_testbed

from pvegit.config.file import Config
from pvegit.service.launcher import RunLauncher
from pvegit.service.scheduler import Scheduler
from testbed.nodes import register_node


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--per-node", type=int, default=4)
    parser.add_argument("--interval-minutes", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--jitter", type=int, default=60)
    parser.add_argument("--idle-seconds", type=int, default=60)
    arguments = parser.parse_args()

    bed = require_testbed()
    try:
        nodes = [bed.start(f"n{number:02d}", node_name="pve1") for number in range(arguments.nodes)]
        home, store = new_home()
        for number, node in enumerate(nodes):
            for entry in range(arguments.per_node):
                name = f"n{number:02d}-{entry}"
                register_node(store, home, node, name, categories=("cluster", "network"))
                store.update_host(name, schedule=f"every {arguments.interval_minutes} minutes")
        hosts = arguments.nodes * arguments.per_node
        config = Config(concurrency=8, jitter=arguments.jitter, run_timeout=120)
        launcher = RunLauncher(home, store, config)
        scheduler = Scheduler(
            store,
            config,
            lambda host, trigger: launcher.launch(host, trigger=trigger, actor="scheduler"),
            running=launcher.active,
        )
        interval = arguments.interval_minutes * 60
        print(
            f"{hosts} hosts on {arguments.nodes} simulated nodes, every "
            f"{arguments.interval_minutes} min, jitter {arguments.jitter} s, concurrency "
            f"{config.concurrency}; {arguments.rounds} rounds",
            flush=True,
        )
        started = time.time()
        scheduler.start(1)
        expected = hosts * arguments.rounds
        while (
            len([run for run in store.runs(limit=expected + 10) if run.status != "running"])
            < expected
        ):
            time.sleep(1)
            if time.time() - started > interval * (arguments.rounds + 1):
                break
        # Nothing is due until the next round: measure what the idle scheduler costs.
        idle_window = min(arguments.idle_seconds, max(5, interval - arguments.jitter - 60))
        cpu_before, wall_before = time.process_time(), time.monotonic()
        threading.Event().wait(idle_window)
        cpu = time.process_time() - cpu_before
        wall = time.monotonic() - wall_before
        scheduler.stop()
        launcher.shutdown()
        runs = store.runs(limit=expected * 2)
        by_host: dict[str, list[tuple[float, float]]] = {}
        for run in runs:
            by_host.setdefault(run.host, []).append(
                (run.started_at, run.finished_at or time.time())
            )
        overlaps = sum(
            1
            for spans in by_host.values()
            for a, b in itertools.pairwise(sorted(spans))
            if b[0] < a[1]
        )
        late = scheduler.lateness
        statuses: dict[str, int] = {}
        for run in runs:
            statuses[run.status] = statuses.get(run.status, 0) + 1
        print(
            f"\nruns: {len(runs)} ({', '.join(f'{n} {s}' for s, n in sorted(statuses.items()))})"
            f" in {time.time() - started:.0f} s"
        )
        print(
            f"start lateness: median {statistics.median(late):.2f} s, p99 "
            f"{sorted(late)[int(len(late) * 0.99) - 1]:.2f} s, max {max(late):.2f} s; "
            f"{sum(1 for value in late if value > 5)} of {len(late)} over 5 s (target: none)"
        )
        print(f"overlapping runs of one host: {overlaps} (target: none)")
        print(
            f"idle CPU of the process: {cpu:.3f} s over {wall:.0f} s = {100 * cpu / wall:.2f} % "
            "(target: under 1 %)"
        )
    finally:
        bed.stop_all()


if __name__ == "__main__":
    main()
