"""A hostile (or broken) node over real SSH: runaway command output, crafted owner
names, control characters in what it says.
"""

from __future__ import annotations

import tracemalloc

import pytest
from testbed import Node, register_node

from pvegit.home import Home
from pvegit.inventory import InventoryLimits, inventory_path
from pvegit.repo import HostRepository
from pvegit.snapshot import SnapshotOptions, take_snapshot
from pvegit.store import Store

RUNAWAY_BYTES = 64 * 1024 * 1024
# A stand-in whose output never ends before the 64 MiB (`yes` would run until SIGPIPE).
RUNAWAY = (
    "#!/bin/sh\n"
    f"yes 'pve-manager: 8.2.4 (running version: 8.2.4/faa83925c9641325)' | "
    f"/usr/bin/head -c {RUNAWAY_BYTES}\n"
)
# A node whose `head` ignores -c: the cap on the node is gone, pvegit's own must hold.
HEAD_IGNORING_LIMITS = '#!/bin/sh\nif [ "$1" = -c ]; then exec cat; fi\nexec /usr/bin/head "$@"\n'


def stored(home: Home, path: str) -> bytes:
    with HostRepository(home.repo_path("pve1")) as repository:
        head = repository.head()
        assert head is not None
        return repository.read_file(head, path)[1]


@pytest.mark.parametrize("node_caps", [True, False], ids=["node-caps", "node-ignores-caps"])
def test_a_runaway_command_is_capped_and_keeps_its_previous_output(
    home: Home, store: Store, node: Node, node_caps: bool
) -> None:
    host = register_node(store, home, node, categories=("inventory",))
    first = take_snapshot(home, store, host)
    assert first.status == "changed", first.error
    before = stored(home, inventory_path("pveversion"))
    assert b"pve-manager: 8.2.4" in before

    node.write("/usr/sbin/pveversion", RUNAWAY, mode=0o755)
    if not node_caps:
        node.write("/usr/local/bin/head", HEAD_IGNORING_LIMITS, mode=0o755)
    limits = InventoryLimits(command_bytes=64 * 1024, total_bytes=1024 * 1024)
    tracemalloc.start()
    try:
        run = take_snapshot(home, store, host, SnapshotOptions(inventory_limits=limits))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    # Buffering the output would take 64 MiB at least; a paramiko window is 2 MiB.
    assert peak < 12 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB for a 64 KiB limit"
    assert run.status == "unchanged", (run.status, run.error, run.warnings)
    assert (
        "inventory command pveversion printed more than 64 KiB (inventory_command_limit_kb); "
        "kept its previous output"
    ) in run.warnings
    assert stored(home, inventory_path("pveversion")) == before
    assert b"vm100-pve1" in stored(home, inventory_path("qm-list"))


def test_the_runs_total_is_capped_too(home: Home, store: Store, node: Node) -> None:
    host = register_node(store, home, node, categories=("inventory",))
    assert take_snapshot(home, store, host).status == "changed"
    before = stored(home, inventory_path("qm-list"))
    # Each under the per-command limit, together over the run's total.
    chatty = "#!/bin/sh\nhead -c 61440 /dev/zero | tr '\\0' 'v'; echo\n"
    node.write("/usr/sbin/pveversion", chatty, mode=0o755)
    node.write("/usr/sbin/qm", chatty, mode=0o755)
    limits = InventoryLimits(command_bytes=64 * 1024, total_bytes=96 * 1024)
    run = take_snapshot(home, store, host, SnapshotOptions(inventory_limits=limits))

    assert run.status == "changed", run.error  # pveversion's new output is in
    assert stored(home, inventory_path("pveversion")).startswith(b"vvvv")
    assert stored(home, inventory_path("qm-list")) == before
    assert (
        "inventory command qm-list not read: the run's inventory reached 96 KiB "
        "(inventory_total_limit_kb); kept its previous output"
    ) in run.warnings
