"""SIGKILL `pvegit snapshot --all` at seeded random moments, again and again.

Hosts on simulated nodes (two host entries per node, each its own repository);
between kills random guest configs change. After every kill: git fsck --strict
on every repository, SQLite's integrity check, the run log against the
repositories. At the end one uninterrupted run must succeed and hold the last
version of every change. Prints the seed (--seed repeats the kill times).
"""

from __future__ import annotations

import argparse
import time

from common import new_home, require_testbed

from testbed.faults import hosts_on, kill_loop, seed_from


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--nodes", type=int, default=6)
    parser.add_argument("--seed", default=None)
    arguments = parser.parse_args()
    seed = seed_from(arguments.seed)
    print(f"seed {seed}")
    bed = require_testbed()
    try:
        nodes = [bed.start(f"k{number:02d}", node_name="pve1") for number in range(arguments.nodes)]
        home, store = new_home()
        hosts_on(store, home, nodes, per_node=2)
        started = time.perf_counter()
        report = kill_loop(home, store, nodes, iterations=arguments.kills, seed=seed, log=True)
        print(report.summary())
        print(f"took {time.perf_counter() - started:.0f} s")
        for problem in report.problems:
            print("PROBLEM:", problem)
        raise SystemExit(1 if report.problems else 0)
    finally:
        bed.stop_all()


if __name__ == "__main__":
    main()
