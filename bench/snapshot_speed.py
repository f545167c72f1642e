"""Snapshot speed against the OpenSSH floor, measured in the same run.

Floor: `ssh node 'tar -c <same paths>' > /dev/null`, a fresh connection each time.
Figures: the engine in a warm process (as `pvegit serve` runs it), unchanged
and changed; the whole `pvegit snapshot NAME` in a fresh process; the extra
cost of the inventory commands; then the same node hardened (`pvegit host
harden`: the key runs only the installed collector, whose version and sha256
are checked on every connection), warm and fresh, against the same floor.
Each fresh figure is shown twice: as this environment runs pvegit (under
PYTHONDONTWRITEBYTECODE a checkout compiles its modules on every start) and
with pvegit's bytecode compiled, as an installed pvegit has it.
Runs as root (it starts a simulated node).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

from common import (
    FILE_CATEGORIES,
    add_host,
    compiled_environment,
    median,
    new_home,
    require_testbed,
    run_quiet,
    show,
    ssh_command,
    timed,
    write_known_hosts,
)

from pvegit.actions.harden import harden_host
from pvegit.actions.snapshot import take_snapshot
from pvegit.config.selection import resolve_selection
from pvegit.node.collector import tar_script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    arguments = parser.parse_args()
    repeat = arguments.repeat

    bed = require_testbed()
    try:
        node = bed.start("pve1")
        home, store = new_home()
        host = add_host(store, home, node, "pve1")
        write_known_hosts(home, [node])
        selection = resolve_selection(FILE_CATEGORIES)
        script = tar_script("/", selection, live=True)
        floor_command = ssh_command(home, node, script)
        count = subprocess.run(floor_command, capture_output=True, check=True).stdout
        members = subprocess.run(["tar", "-t"], input=count, capture_output=True, check=True)
        files = len(members.stdout.splitlines())
        print(
            f"fixture node: {files} tar members ({len(count) // 1024} KiB) with categories "
            f"{', '.join(FILE_CATEGORIES)}; {repeat} runs each, {os.cpu_count()} cores\n"
        )

        take_snapshot(home, store, host)  # first snapshot, so later ones compare
        floor_times = timed(lambda: run_quiet(floor_command), repeat)
        floor = median(floor_times)
        show("floor: ssh node 'tar -c <same paths>' >/dev/null", floor_times)

        unchanged = timed(lambda: _expect(take_snapshot(home, store, host), "unchanged"), repeat)
        show("engine, warm process, unchanged", unchanged, floor)

        counter = iter(range(10**6))

        def changed() -> None:
            node.sh(f"echo '# edit {next(counter)}' >> /etc/pve/storage.cfg")
            _expect(take_snapshot(home, store, host), "changed")

        edit_only = median(timed(lambda: node.sh("true"), repeat))
        changed_times = [value - edit_only for value in timed(changed, repeat)]
        show("engine, warm process, changed (edit cost taken off)", changed_times, floor)

        executable = shutil.which("pvegit") or sys.exit("pvegit is not on PATH")
        command = [executable, "--home", str(home.root), "snapshot", "pve1"]
        fresh = timed(lambda: run_quiet(command), repeat)
        show("`pvegit snapshot pve1`, fresh process, unchanged", fresh, floor)
        compiled = compiled_environment()
        fresh_compiled = timed(lambda: run_quiet(command, compiled), repeat)
        show("  the same, pvegit's bytecode compiled (installed)", fresh_compiled, floor)
        helped = timed(lambda: run_quiet([executable, "--help"]), repeat)
        show("`pvegit --help` (start-up alone)", helped, floor)
        logged = timed(
            lambda: run_quiet([executable, "--home", str(home.root), "log", "pve1"]), repeat
        )
        show("`pvegit log pve1`", logged, floor)

        store.update_host("pve1", categories=(*FILE_CATEGORIES, "inventory"))
        take_snapshot(home, store, store.host("pve1"))
        inventory = timed(
            lambda: _expect(take_snapshot(home, store, store.host("pve1")), "unchanged"), repeat
        )
        show("engine, warm, unchanged, with the inventory category", inventory, floor)
        print(
            "  (inventory runs the node's own apt-mark, systemctl, ip, lsblk plus the\n"
            "   stand-ins, in parallel with tar; its cost is the slowest command's)"
        )

        store.update_host("pve1", categories=FILE_CATEGORIES)
        harden_host(home, store, store.host("pve1"), actor="bench")
        take_snapshot(home, store, store.host("pve1"))  # records the installed collector
        restricted = timed(
            lambda: _expect(take_snapshot(home, store, store.host("pve1")), "unchanged"), repeat
        )
        show("restricted (hardened): engine, warm, unchanged", restricted, floor)
        fresh_restricted = timed(lambda: run_quiet(command), repeat)
        show("restricted (hardened): `pvegit snapshot pve1`, fresh", fresh_restricted, floor)
        compiled_restricted = timed(lambda: run_quiet(command, compiled), repeat)
        show("  the same, pvegit's bytecode compiled (installed)", compiled_restricted, floor)
    finally:
        bed.stop_all()


def _expect(run: object, status: str) -> None:
    actual = getattr(run, "status", None)
    if actual != status:
        sys.exit(f"bench: expected a {status} run, got {actual}: {getattr(run, 'error', '')}")


if __name__ == "__main__":
    main()
