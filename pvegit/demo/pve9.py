"""A simulated Proxmox VE 9 node: pve8.py's PVE 8 tree changed the way PVE 9 changes it.

A node of ``PVE9_CLUSTER`` (cluster ``lab9``, 10.20.0.21 and up) as it is
after installing 9.0 (or upgrading from 8 and letting the HA manager migrate
its groups). The formats are Proxmox's own, from their sources:

* HA groups are gone: pve-ha-manager 5 turned ``ha/groups.cfg`` into
  node-affinity rules named ``ha-group-<group>`` in ``ha/rules.cfg``, moved
  ``nofailback`` into the resources as ``failback 0``, dropped their
  ``group`` and deleted groups.cfg (``PVE::HA::Groups::migrate_groups_to_rules``);
* SDN fabrics (``sdn/fabrics.cfg``: OpenFabric and WireGuard sections, as
  proxmox-ve-rs parses them), route maps and prefix lists, the WireGuard
  private keys in ``priv/wg-keys.cfg``, a VNet firewall in ``sdn/firewall/``;
* resource mappings for PCI, USB and directories (virtiofs);
* notification targets with their secrets in ``priv/notifications.cfg`` and
  template overrides in ``notification-templates/default/``;
* each node's pinned SSH host key in ``nodes/<node>/ssh_known_hosts``
  (written without a final newline, as pve-cluster writes it);
* APT sources in deb822 form only (Debian 13 trixie);
* NIC names pinned by ``pve-network-interface-pinning``, whose .link files go
  to /usr/local/lib/systemd/network (``50-pve-<name>.link`` up to
  pve-manager 9.1.16, ``50-pmx-<name>.link`` after);
* local systemd units, a timer, a drop-in, masked units and the enablement
  links ``systemctl enable`` makes, under /etc/systemd/system.
"""

from __future__ import annotations

import base64
import hashlib

from pvegit.demo.node import PVE9_CLUSTER
from pvegit.demo.pve8 import cluster_node_items
from pvegit.demo.tree import WWW_DATA_GID, TreeItem

CLUSTER_NAME = "lab9"
FIRST_HOST = 21  # 10.20.0.21 is pve9
GUESTS = 60

# Whatever PVE 9 removed or rewrote of the PVE 8 tree.
_REPLACED = (
    "etc/pve/ha/groups.cfg",
    "etc/pve/ha/resources.cfg",
    "etc/pve/mapping/pci.cfg",
    "etc/pve/notifications.cfg",
    "etc/apt/sources.list",
    "etc/apt/sources.list.d/pve-enterprise.sources",
    "etc/apt/sources.list.d/ceph.sources",
    "etc/systemd/network",
)


def _wireguard_key(label: str) -> str:
    """A WireGuard key as wg(8) prints it: 32 bytes in base64."""
    return base64.b64encode(hashlib.sha256(label.encode()).digest()).decode()


def _pve(path: str, content: str | None, *, private: bool = False) -> TreeItem:
    mode = (0o700 if private else 0o750) if content is None else (0o600 if private else 0o640)
    return TreeItem(f"etc/pve/{path}", content, mode, 0, WWW_DATA_GID)


def _file(path: str, content: str | None, mode: int | None = None) -> TreeItem:
    return TreeItem(
        path, content, mode if mode is not None else (0o755 if content is None else 0o644)
    )


def _link(path: str, target: str) -> TreeItem:
    return TreeItem(path, "", 0o777, link=target)


def _cluster_files() -> list[TreeItem]:
    """What PVE 9 adds or rewrites under /etc/pve (cluster-wide, so the same on every node)."""
    first, second = PVE9_CLUSTER[:2]
    items = [
        _pve(
            "ha/resources.cfg",
            "vm: 100\n\tstate started\n\nvm: 101\n\tstate started\n\n"
            "ct: 103\n\tfailback 0\n\tstate started\n",
        ),
        _pve(
            "ha/rules.cfg",
            f"node-affinity: ha-group-prefer-{first}\n"
            f"\tcomment Generated from HA group 'prefer-{first}'.\n"
            f"\tnodes {second}:1,{first}:2\n\tresources vm:100\n\n"
            "resource-affinity: keep-apart\n\taffinity negative\n\tresources ct:103,vm:101\n",
        ),
        _pve("sdn/firewall", None),
        _pve(
            "sdn/firewall/labnet.fw",
            "[OPTIONS]\n\nenable: 1\npolicy_forward: DROP\n\n[RULES]\n\n"
            "FORWARD ACCEPT -source 10.30.0.0/24 -dest 10.20.0.50 -p tcp -dport 8007 "
            "-log nolog\nFORWARD ACCEPT -source 10.20.0.50 -dest 10.30.0.0/24 -p tcp "
            "-sport 8007 -log nolog\n",
        ),
        _pve(
            "sdn/route-maps.cfg",
            "route-map-entry: ceph-out_10\n\taction permit\n"
            "\tmatch key=ip-address-prefix-list,value=ceph-loopbacks\n\n"
            "route-map-entry: ceph-out_20\n\taction deny\n",
        ),
        _pve(
            "sdn/prefix-lists.cfg",
            "prefix-list: ceph-loopbacks\n"
            "\tentries action=permit,prefix=10.50.0.0/24,le=32,seq=10\n",
        ),
        _pve(
            "mapping/pci.cfg",
            f"gpu0\n\tmap id=10de:1eb8,node={first},path=0000:41:00.0\n"
            f"\tmap id=10de:1eb8,node={second},path=0000:41:00.0\n",
        ),
        _pve("mapping/usb.cfg", f"ups\n\tmap id=051d:0002,node={first}\n"),
        _pve(
            "mapping/directory.cfg",
            "isos\n\tdescription ISO images for the guests (virtiofs)\n"
            + "".join(f"\tmap node={host},path=/mnt/pve/isos\n" for host in PVE9_CLUSTER),
        ),
        _pve(
            "notifications.cfg",
            "sendmail: mail-to-root\n\tcomment Send mails to root@pam's email address\n"
            "\tmailto-user root@pam\n\n"
            "smtp: relay\n\tfrom-address pve@example.org\n\tmailto admin@example.org\n"
            "\tmode starttls\n\tport 587\n\tserver smtp.example.org\n"
            "\tusername pve@example.org\n\n"
            "gotify: phone\n\tserver https://gotify.example.org\n\n"
            "matcher: default-matcher\n\tcomment Route all notifications to mail-to-root\n"
            "\tmode all\n\ttarget mail-to-root\n\n"
            "matcher: failed-backups\n\tmatch-field exact:type=vzdump\n"
            "\tmatch-severity error\n\tmode all\n\ttarget phone\n\ttarget relay\n",
        ),
        _pve(
            "priv/notifications.cfg",
            "smtp: relay\n\tpassword relay-mail-password\n\n"
            "gotify: phone\n\ttoken AqLx7v2bQe9Zk1M\n",
            private=True,
        ),
        _pve("notification-templates", None),
        _pve("notification-templates/default", None),
        _pve(
            "notification-templates/default/vzdump-subject.txt.hbs",
            "[{{fqdn}}] backup {{status-text}}\n",
        ),
        _pve(
            "notification-templates/default/vzdump-body.txt.hbs",
            "{{error}}\nBackups of {{fqdn}} ({{job-id}})\n=======\n{{table guest-table}}\n"
            "Total running time: {{duration total-time}}\n"
            "Total size: {{human-bytes total-size}}\n",
        ),
    ]
    fabric = "openfabric_fabric: ceph\n\thello_interval 3\n\tip_prefix 10.50.0.0/24\n"
    wireguard = "wireguard_fabric: wgmesh\n"
    keys = []
    for number, host in enumerate(PVE9_CLUSTER):
        address = f"10.20.0.{FIRST_HOST + number}"
        fabric += (
            f"\nopenfabric_node: ceph_{host}\n\tinterfaces name=nic2\n\tinterfaces name=nic3\n"
            f"\tip 10.50.0.{number + 1}\n"
        )
        peers = "".join(
            f"\tpeers type=internal,node={other},node_iface=wg0,iface=wg0\n"
            for other in PVE9_CLUSTER
            if other != host
        )
        wireguard += (
            f"\nwireguard_node: wgmesh_{host}\n\trole internal\n\tendpoint {address}\n"
            f"\tinterfaces name=wg0,listen_port=51820,"
            f"public_key={_wireguard_key(f'public-{host}')},ip=10.60.0.{number + 1}/24\n" + peers
        )
        keys.append(
            f"node: {host}\n\tprivate_keys name=wg0,key={_wireguard_key(f'private-{host}')}\n"
        )
        # pve-cluster writes "<node> <key>" without a final newline.
        items.append(
            _pve(
                f"nodes/{host}/ssh_known_hosts",
                f"{host} ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQ"
                + hashlib.sha256(f"ssh-{host}".encode()).hexdigest(),
            )
        )
    items.append(_pve("sdn/fabrics.cfg", fabric + "\n" + wireguard))
    items.append(_pve("priv/wg-keys.cfg", "\n".join(keys), private=True))
    return items


def _node_files(node: str) -> list[TreeItem]:
    """What PVE 9 changes outside /etc/pve on ``node``."""
    number = PVE9_CLUSTER.index(node)
    debian = "/usr/share/keyrings/debian-archive-keyring.gpg"
    proxmox = "/usr/share/keyrings/proxmox-archive-keyring.gpg"
    items = [
        _file(
            "etc/apt/sources.list.d/debian.sources",
            "Types: deb\nURIs: http://deb.debian.org/debian/\nSuites: trixie trixie-updates\n"
            f"Components: main contrib non-free-firmware\nSigned-By: {debian}\n\n"
            "Types: deb\nURIs: http://security.debian.org/debian-security/\n"
            "Suites: trixie-security\nComponents: main contrib non-free-firmware\n"
            f"Signed-By: {debian}\n",
        ),
        _file(
            "etc/apt/sources.list.d/proxmox.sources",
            "Types: deb\nURIs: http://download.proxmox.com/debian/pve\nSuites: trixie\n"
            f"Components: pve-no-subscription\nSigned-By: {proxmox}\n",
        ),
        _file(
            "etc/apt/sources.list.d/ceph.sources",
            "Types: deb\nURIs: http://download.proxmox.com/debian/ceph-squid\nSuites: trixie\n"
            f"Components: no-subscription\nSigned-By: {proxmox}\n",
        ),
        _file("usr/local/lib", None),
        _file("usr/local/lib/systemd", None),
        _file("usr/local/lib/systemd/network", None),
        _file("etc/systemd/system", None),
        _file(
            "etc/systemd/system/pve-housekeeping.service",
            "[Unit]\nDescription=Prune old ISO images\n\n"
            "[Service]\nType=oneshot\nExecStart=/usr/local/bin/pve-housekeeping\n",
        ),
        _file(
            "etc/systemd/system/pve-housekeeping.timer",
            "[Unit]\nDescription=Prune old ISO images every week\n\n"
            "[Timer]\nOnCalendar=Sun 04:00\nPersistent=true\nRandomizedDelaySec=30m\n\n"
            "[Install]\nWantedBy=timers.target\n",
        ),
        _file("etc/systemd/system/pve-guests.service.d", None),
        _file(
            "etc/systemd/system/pve-guests.service.d/override.conf",
            "[Service]\n# Give the guests time to shut down cleanly.\nTimeoutStopSec=900\n",
        ),
        # Masked: kept as configuration.
        _link("etc/systemd/system/rpcbind.service", "/dev/null"),
        _link("etc/systemd/system/rpcbind.socket", "/dev/null"),
        # What `systemctl enable` made: enablement state (see docs/categories.md).
        _file("etc/systemd/system/timers.target.wants", None),
        _link(
            "etc/systemd/system/timers.target.wants/pve-housekeeping.timer",
            "/etc/systemd/system/pve-housekeeping.timer",
        ),
        _file("etc/systemd/system/multi-user.target.wants", None),
        _link(
            "etc/systemd/system/multi-user.target.wants/pve-guests.service",
            "/usr/lib/systemd/system/pve-guests.service",
        ),
    ]
    # Two NICs for the bond, two for the OpenFabric mesh: all pinned.
    for nic in range(4):
        items.append(
            _file(
                f"usr/local/lib/systemd/network/50-pve-nic{nic}.link",
                f"[Match]\nMACAddress=bc:24:11:9{number}:00:{nic + 1:02x}\nType=ether\n\n"
                f"[Link]\nName=nic{nic}\n",
            )
        )
    return items


def pve9_items(node: str, *, seed: int = 7) -> list[TreeItem]:
    """Every file, directory and link of PVE 9 node ``node`` (one of ``PVE9_CLUSTER``)."""
    items = cluster_node_items(
        node, PVE9_CLUSTER, CLUSTER_NAME, FIRST_HOST, guests=GUESTS, seed=seed
    )
    kept = [
        item
        for item in items
        if not any(item.path == gone or item.path.startswith(gone + "/") for gone in _REPLACED)
    ]
    return kept + _cluster_files() + _node_files(node)
