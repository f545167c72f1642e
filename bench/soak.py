"""2,000 scheduled runs over simulated nodes with random configuration changes.

40 hosts (4 entries on each of 10 nodes) on "every 6 hours"; the scheduler's
clock moves one interval per round, so every host runs once per round; random
guest configs change between rounds. Checks every version written is in the
host's history in order, the run log holds every run, the stored state is
intact; prints the process' RSS after the first round and every 10 rounds.
"""

from __future__ import annotations

import argparse

from common import new_home, require_testbed

from testbed.faults import seed_from
from testbed.soak import soak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--per-node", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--seed", default=None)
    arguments = parser.parse_args()
    seed = seed_from(arguments.seed)
    print(f"seed {seed}")
    bed = require_testbed()
    try:
        nodes = [bed.start(f"s{number:02d}", node_name="pve1") for number in range(arguments.nodes)]
        home, store = new_home()
        store.close()
        report = soak(
            home, nodes, per_node=arguments.per_node, rounds=arguments.rounds, seed=seed, log=True
        )
        print(report.summary())
        for problem in report.problems[:50]:
            print("PROBLEM:", problem)
        raise SystemExit(1 if report.problems else 0)
    finally:
        bed.stop_all()


if __name__ == "__main__":
    main()
