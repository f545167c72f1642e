"""A simulated Proxmox VE 8 cluster node, as a directory tree.

Used by ``pvegit demo`` (through the ``local:`` transport) and by the test
bed, which serves the same tree over real OpenSSH. The tree is realistic:
a three-node cluster with guests, storage, users, firewall, HA, SDN, the
secrets under priv/, the pmxcfs status files and built-in symlinks, and the
configuration outside /etc/pve that a rebuild needs. Owners and modes are
set the way a node has them when run as root.

The nodes of a second cluster, ``PVE9_CLUSTER``, run Proxmox VE 9: their
tree is this one changed the way PVE 9 changes it. The trees themselves are
listed in pve8.py and pve9.py, and written into a directory by tree.py.
"""

from __future__ import annotations

from pathlib import Path

from pvegit.demo.pve8 import cluster_node_items
from pvegit.demo.tree import TreeItem, write_items

CLUSTER = ("pve1", "pve2", "pve3")
# A second cluster ("lab9", same site network) whose nodes run Proxmox VE 9.
PVE9_CLUSTER = ("pve9", "pve10", "pve11")
FIXTURE_NODES = CLUSTER + PVE9_CLUSTER


def node_items(node: str, guests: int = 150, seed: int = 7) -> list[TreeItem]:
    """Every file, directory and link of a simulated node ``node``: a PVE 8 node of
    ``CLUSTER`` (any other name gets pve1's tree), or a PVE 9 node of ``PVE9_CLUSTER``."""
    if node in PVE9_CLUSTER:
        from pvegit.demo.pve9 import pve9_items

        return pve9_items(node, seed=seed)
    return cluster_node_items(node, CLUSTER, "lab", 11, guests=guests, seed=seed)


class DemoNode:
    """A simulated node in a directory, for the ``local:`` transport."""

    def __init__(self, root: Path, name: str = "pve1") -> None:
        self.root = root
        self.name = name

    def create(self) -> bool:
        """Write the tree unless it exists; return True if it was written."""
        if (self.root / "etc" / "pve" / ".version").exists():
            return False
        self.root.mkdir(parents=True, exist_ok=True)
        write_items(self.root, node_items(self.name if self.name in FIXTURE_NODES else "pve1"))
        return True

    def edit_something(self) -> str:
        """Make one realistic change (they rotate) and say what it was."""
        state = self.root / ".demo-edits"
        number = int(state.read_text()) if state.exists() else 0
        state.write_text(str(number + 1))
        configs = sorted((self.root / "etc/pve/nodes").glob("*/qemu-server/*.conf"))
        step = number % 4
        if step == 0:
            target = configs[number % len(configs)]
            lines = target.read_text().splitlines()
            for index, line in enumerate(lines):
                if line.startswith("memory: "):
                    memory = int(line.split()[1])
                    lines[index] = f"memory: {memory * 2 if memory < 65536 else 2048}"
            target.write_text("\n".join(lines) + "\n")
            what = "memory"
        elif step == 1:
            target = self.root / "etc/pve/storage.cfg"
            target.write_text(
                target.read_text() + f"\ndir: scratch{number}\n\tpath /srv/scratch"
                f"{number}\n\tcontent backup,iso\n"
            )
            what = "a storage"
        elif step == 2:
            target = self.root / "etc/pve/firewall/cluster.fw"
            target.write_text(
                target.read_text() + f"IN ACCEPT -source 10.20.{number}.0/24 -p tcp "
                "-dport 9100 -log nolog\n"
            )
            what = "a firewall rule"
        else:
            target = self.root / "etc/network/interfaces"
            text = target.read_text()
            old, new = ("2-4094", "2-1000") if "2-4094" in text else ("2-1000", "2-4094")
            target.write_text(text.replace(f"bridge-vids {old}", f"bridge-vids {new}"))
            what = "VLANs of vmbr0"
        return f"/{target.relative_to(self.root)} ({what})"
