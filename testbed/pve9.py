"""The test bed's Proxmox VE 9 nodes (pve9, pve10, pve11): the paths PVE 9 brought that
pvegit must know, and what the stand-in programs print there.

The rest of ``testbed.STAND_INS`` (qm, pct, pvesm, zpool, zfs) prints the same on
PVE 8 and 9: their formats did not change. These two did: ``pveversion -v`` of
PVE 9.0 on Debian 13 trixie with kernel 6.14 (its package list: pve-manager's
PVE::API2::APT ``versions``), and ``pvecm status`` of cluster lab9.
"""

from __future__ import annotations

# The paths of issue 11 as docs/categories.md lists them (tree form, tar globs), each
# with the category that collects it. The pve9 fixture (pvegit/demo/pve9.py) has each.
PVE9_PATHS: tuple[tuple[str, str], ...] = (
    ("etc/pve/ha/rules.cfg", "cluster"),
    ("etc/pve/sdn/fabrics.cfg", "cluster"),
    ("etc/pve/sdn/route-maps.cfg", "cluster"),
    ("etc/pve/sdn/prefix-lists.cfg", "cluster"),
    ("etc/pve/priv/wg-keys.cfg", "secrets"),
    ("etc/pve/mapping/pci.cfg", "cluster"),
    ("etc/pve/mapping/usb.cfg", "cluster"),
    ("etc/pve/mapping/directory.cfg", "cluster"),
    ("etc/pve/notifications.cfg", "cluster"),
    ("etc/pve/priv/notifications.cfg", "secrets"),
    ("etc/pve/notification-templates/*", "cluster"),
    ("etc/pve/nodes/*/ssh_known_hosts", "cluster"),
    ("etc/pve/sdn/firewall/*.fw", "cluster"),
    ("etc/apt/sources.list.d/*.sources", "system"),
    ("usr/local/lib/systemd/network/*.link", "network"),
    ("etc/systemd/system/*.service", "system"),
    ("etc/systemd/system/*.timer", "system"),
    ("etc/systemd/system/*.d/override.conf", "system"),
)

PVE9_STAND_INS: dict[str, str] = {
    "pveversion": r"""#!/bin/sh
if [ "$1" = "-v" ]; then
cat <<'END'
proxmox-ve: 9.0.0 (running kernel: 6.14.8-2-pve)
pve-manager: 9.0.6 (running version: 9.0.6/49c767b70aeb6648)
proxmox-kernel-6.14.8-2-pve-signed: 6.14.8-2
proxmox-kernel-6.14: 6.14.8-2
ceph-fuse: 19.2.3-pve1
corosync: 3.1.9-pve2
frr-pythontools: 10.3.1-1+pve4
ifupdown2: 3.3.0-1+pmx9
libpve-cluster-perl: 9.0.6
libpve-network-perl: 1.1.6
proxmox-firewall: 1.1.1
proxmox-kernel-helper: 9.0.3
pve-cluster: 9.0.6
pve-container: 6.0.9
pve-firewall: 6.0.3
pve-ha-manager: 5.0.4
qemu-server: 9.0.16
zfsutils-linux: 2.3.3-pve1
END
else
echo "pve-manager/9.0.6/49c767b70aeb6648 (running kernel: 6.14.8-2-pve)"
fi
""",
    "pvecm": r"""#!/bin/sh
[ "$1" = "status" ] || exit 2
cat <<END
Cluster information
-------------------
Name:             lab9
Config Version:   3
Transport:        knet
Secure auth:      on

Quorum information
------------------
Date:             $(date)
Quorum provider:  corosync_votequorum
Nodes:            3
Node ID:          0x00000001
Ring ID:          1.$(od -An -N2 -tx2 /dev/urandom | tr -d ' ')
Quorate:          Yes

Votequorum information
----------------------
Expected votes:   3
Highest expected: 3
Total votes:      3
Quorum:           2
Flags:            Quorate

Membership information
----------------------
    Nodeid      Votes Name
0x00000001          1 10.20.0.21 (local)
0x00000002          1 10.20.0.22
0x00000003          1 10.20.0.23
END
""",
}
