"""50 web users on a real `pvegit serve` while 20 snapshots run.

20 hosts on simulated nodes, each with some history; the users (own sessions,
logged in first) browse dashboards, host timelines, commits, comparisons,
trees and file histories for --seconds or --max-requests, whichever ends
first, while snapshots of all 20 hosts are started through the API. Prints
page times (p50/p95/p99, per page), errors, run durations against the run
time limit, and the server's RSS before and after.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import new_home, require_testbed

from testbed.appserver import start_serve
from testbed.faults import seed_from
from testbed.load import RUN_TIMEOUT, prepare_fleet, run_load

PASSWORD = "load test password"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--seed", default=None)
    arguments = parser.parse_args()
    seed = seed_from(arguments.seed)
    print(f"seed {seed}")
    bed = require_testbed()
    try:
        nodes = [bed.start(f"l{number:02d}", node_name="pve1") for number in range(arguments.nodes)]
        home, store = new_home()
        hosts, token = prepare_fleet(home, store, nodes, per_node=1, password=PASSWORD)
        log = Path(tempfile.mkdtemp()) / "serve.log"
        server, base = start_serve(home, log, "--no-scheduler", "--jobs", str(arguments.jobs))
        try:
            report = run_load(
                base,
                password=PASSWORD,
                token=token,
                hosts=hosts,
                snapshot_hosts=hosts[:20],
                users=arguments.users,
                seconds=arguments.seconds,
                max_requests=arguments.max_requests,
                seed=seed,
                server_pid=server.pid,
            )
        finally:
            server.terminate()
            server.wait(60)
        print(report.summary())
        slow = [run for run in report.runs if float(run["duration"] or 0) >= RUN_TIMEOUT]  # type: ignore[arg-type]
        print(f"runs at or past the {RUN_TIMEOUT} s limit: {len(slow)}")
        for error in report.errors[:20]:
            print("ERROR:", error)
        raise SystemExit(1 if report.errors or slow else 0)
    finally:
        bed.stop_all()


if __name__ == "__main__":
    main()
