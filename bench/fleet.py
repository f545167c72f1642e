"""`pvegit snapshot --all` over 50 host entries, each its own simulated node.

Reports hosts per second for several --jobs values, first snapshots (every
host changed) and repeat runs (every host unchanged), against 50 x the OpenSSH
floor (`ssh node 'tar -c <same paths>'`, fresh connection) measured in the
same run. Runs as root.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time

from common import (
    FILE_CATEGORIES,
    add_host,
    median,
    new_home,
    require_testbed,
    run_quiet,
    ssh_command,
    timed,
    write_known_hosts,
)

from pvegit.config.selection import resolve_selection
from pvegit.node.collector import tar_script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 4, 8, 16])
    arguments = parser.parse_args()
    executable = shutil.which("pvegit") or sys.exit("pvegit is not on PATH")

    bed = require_testbed()
    try:
        started = time.perf_counter()
        nodes = [
            bed.start(f"node{number:02d}", node_name="pve1") for number in range(arguments.hosts)
        ]
        print(f"started {len(nodes)} simulated nodes in {time.perf_counter() - started:.1f} s")
        home, store = new_home()
        for number, node in enumerate(nodes):
            add_host(store, home, node, f"node{number:02d}")
        write_known_hosts(home, nodes)
        script = tar_script("/", resolve_selection(FILE_CATEGORIES), live=True)
        floor = median(timed(lambda: run_quiet(ssh_command(home, nodes[0], script)), 10))
        serial_floor = floor * len(nodes)
        print(
            f"floor: one ssh+tar {floor * 1000:.0f} ms; {len(nodes)} x floor = "
            f"{serial_floor:.2f} s ({len(nodes) / serial_floor:.1f} hosts/s)\n"
        )
        print(f"{'jobs':>4}  {'first run (all changed)':>26}  {'repeat (all unchanged)':>26}")
        for jobs in arguments.jobs:
            fresh_home, fresh_store = new_home()
            for host in store.hosts():
                fresh_store.add_host(host)
            fresh_home.private_key_path.write_bytes(home.private_key_path.read_bytes())
            figures = []
            for _ in range(2):
                command = [
                    executable,
                    "--home",
                    str(fresh_home.root),
                    "snapshot",
                    "--all",
                    "--jobs",
                    str(jobs),
                ]
                began = time.perf_counter()
                completed = subprocess.run(command, capture_output=True, text=True)
                seconds = time.perf_counter() - began
                if completed.returncode != 0:
                    sys.exit(f"bench: snapshot --all failed: {completed.stderr[-500:]}")
                figures.append(
                    f"{seconds:6.2f} s {len(nodes) / seconds:5.1f} h/s "
                    f"{serial_floor / seconds:4.1f}x"
                )
            print(f"{jobs:>4}  {figures[0]:>26}  {figures[1]:>26}")
        print("\n(h/s: hosts per second; Nx: how many times faster than 50 serial ssh+tar)")
    finally:
        bed.stop_all()


if __name__ == "__main__":
    main()
