"""The catalogue of backup categories ("backup types"), and the path lists beside it.

A category is a named set of node paths (globs allowed), exclusions and
inventory commands. Paths are written as on the node without the leading
slash, the same way they appear in a host's git tree. Patterns follow GNU
tar's exclusion rules: ``*`` also matches ``/``, and a pattern that names a
directory covers everything below it (matching them is selection.py).
This module is data: what never to collect (runtime state), what is a
secret, what is bound to the hardware, and pmxcfs's built-in links.
"""

from __future__ import annotations

from dataclasses import dataclass

from pvegit.errors import ConfigError

# pmxcfs status files and runtime state: they change without anyone editing
# configuration, so they must never make a commit on an unchanged node.
RUNTIME_EXCLUDES: tuple[str, ...] = (
    "etc/pve/.version",
    "etc/pve/.members",
    "etc/pve/.vmlist",
    "etc/pve/.clusterlog",
    "etc/pve/.rrd",
    "etc/pve/.debug",
    "etc/pve/nodes/*/lrm_status",
    "etc/pve/nodes/*/lrm_status.tmp.*",
    "etc/pve/ha/manager_status",
    "etc/pve/ha/crm_commands",
    "etc/pve/priv/lock",
    "etc/pve/sdn/.running-config",
    "etc/pve/sdn/.version",
    "etc/pve/sdn/*cache*.json",
    "etc/pve/sdn/pve-ipam-state.json",
    "etc/pve/authkey.pub",
    "etc/pve/authkey.pub.old",
    "etc/pve/priv/authkey.key",
    # Generated on every boot or package run, not configuration.
    "etc/ssh/ssh_host_*_key-cert.pub",
    "etc/**/*.dpkg-old",
    "etc/**/*.dpkg-dist",
    "etc/**/*.swp",
    # A restore's temporary file, left when the restore was interrupted.
    "**/.pvegit-restore.*",
)

# Secret material: only collected when the `secrets` category is chosen, and
# never shown in the web UI without an explicit, audited step. Files a rebuild
# needs that merely carry a password line (iscsid.conf, frr.conf, interfaces,
# apt.conf.d proxies) are not here: they are collected, and pvegit.content.masking hides
# their secret lines wherever content is shown.
SECRET_PATTERNS: tuple[str, ...] = (
    "etc/pve/priv",
    "etc/pve/pve-www.key",
    "etc/pve/nodes/*/pve-ssl.key",
    "etc/pve/nodes/*/pveproxy-ssl.key",
    "etc/corosync/authkey",
    "etc/corosync/qdevice/net/nssdb",
    "etc/corosync/qnetd/nssdb",
    "etc/postfix/sasl_passwd",
    "etc/postfix/sasl_passwd.*",
    "etc/postfix/sasl",
    "etc/apt/auth.conf",
    "etc/apt/auth.conf.d",
    "etc/ssh/ssh_host_*_key",
    "etc/ceph/*.keyring",
    "etc/pve/ceph/*.keyring",
    # open-iscsi's node and discovery records: each carries the target's CHAP
    # password (node.session.auth.password) in its own file.
    "etc/iscsi/nodes",
    "etc/iscsi/send_targets",
    "etc/chrony/*.keys",
    "etc/ppp/chap-secrets",
    "etc/ppp/pap-secrets",
    "etc/ssl/private",
    "root/.ssh/id_*",
)

# pmxcfs's built-in links: /etc/pve/local and the guest folders lead into the
# node's own folder, nodes/<hostname>/. Seen through them a file has a second
# name (an include of /etc/pve/local/* reads nodes/<hostname>/pve-ssl.key as
# etc/pve/local/pve-ssl.key), so paths are classified by where they lead.
PMXCFS_LINKS: dict[str, str] = {
    "etc/pve/local": "",
    "etc/pve/qemu-server": "qemu-server",
    "etc/pve/lxc": "lxc",
    "etc/pve/openvz": "openvz",
}


@dataclass(frozen=True)
class Category:
    """One named backup category."""

    name: str
    description: str
    paths: tuple[str, ...]
    excludes: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()
    default: bool = True


CATALOGUE: tuple[Category, ...] = (
    Category(
        "cluster",
        "/etc/pve as pmxcfs shows it: guests, storage, users, firewall, HA, SDN "
        "(without secrets and status files); corosync",
        paths=("etc/pve", "etc/corosync"),
    ),
    Category(
        "network",
        "identity, interfaces, NIC name pinning (.link files), DNS, routing, time",
        paths=(
            "etc/hostname",
            "etc/hosts",
            "etc/resolv.conf",
            "etc/timezone",
            "etc/network",
            "etc/systemd/network",
            # PVE 9's pve-network-interface-pinning writes its .link files here.
            "usr/local/lib/systemd/network",
            "etc/udev/rules.d",
            "etc/frr",
            "etc/chrony",
            "etc/nftables.conf",
        ),
    ),
    Category(
        "storage",
        "vzdump defaults, fstab, LVM, ZFS, iSCSI, multipath, Ceph",
        paths=(
            "etc/vzdump.conf",
            "etc/fstab",
            "etc/lvm/lvm.conf",
            "etc/zfs",
            "etc/hostid",
            "etc/iscsi",
            "etc/multipath",
            "etc/multipath.conf",
            "etc/ceph",
        ),
    ),
    Category(
        "system",
        "boot and kernel, APT sources, cron, local systemd units, SSH server, mail, local scripts",
        paths=(
            "etc/kernel/cmdline",
            "etc/kernel/proxmox-boot-uuids",
            "etc/default/grub",
            "etc/default/grub.d",
            "etc/modprobe.d",
            "etc/modules",
            "etc/modules-load.d",
            "etc/sysctl.conf",
            "etc/sysctl.d",
            "etc/initramfs-tools",
            "etc/apt/sources.list",
            "etc/apt/sources.list.d",
            "etc/apt/apt.conf.d",
            "etc/apt/preferences.d",
            "etc/apt/auth.conf.d",
            "etc/crontab",
            "etc/cron.d",
            "etc/cron.daily",
            "etc/cron.hourly",
            "etc/cron.weekly",
            "etc/cron.monthly",
            "var/spool/cron/crontabs",
            "etc/ssh/sshd_config",
            "etc/ssh/sshd_config.d",
            "etc/ssh/ssh_config",
            "etc/ssh/ssh_config.d",
            "etc/ssh/ssh_host_*_key.pub",
            "etc/ssh/ssh_host_*_key",
            "root/.ssh",
            "etc/postfix",
            "etc/aliases",
            "etc/usbguard",
            "usr/local/bin",
            "usr/local/sbin",
            "etc/systemd/system",
        ),
        # Enablement state, not configuration: `systemctl enable` makes these links from
        # the units' [Install] sections and package scripts change them; which units are
        # enabled is in the inventory (enabled-units). Masks and aliases are kept.
        excludes=(
            "etc/systemd/system/*.wants",
            "etc/systemd/system/*.requires",
            "etc/systemd/system/*.upholds",
        ),
    ),
    Category(
        "inventory",
        "normalized command outputs: versions, packages, guests, cluster, pools, disks, NICs",
        paths=(),
        commands=(
            "pveversion",
            "apt-manual",
            "qm-list",
            "pct-list",
            "pvecm-status",
            "pvesm-status",
            "zpool-status",
            "zfs-list",
            "ip-link",
            "nic-drivers",
            "lsblk",
            "enabled-units",
        ),
    ),
    Category(
        "configdb",
        "opt-in: pmxcfs's database /var/lib/pve-cluster/config.db, taken consistently with "
        "sqlite3 .backup (all of /etc/pve in one file, secrets included)",
        paths=("var/lib/pve-cluster/config.db",),
        default=False,
    ),
    Category(
        "secrets",
        "opt-in: /etc/pve/priv (incl. PBS encryption keys), TLS and SSH host keys, "
        "corosync authkey and qdevice keys, mail, APT, iSCSI CHAP, chrony and PPP credentials",
        paths=SECRET_PATTERNS,
        default=False,
    ),
)

CATEGORY_NAMES: tuple[str, ...] = tuple(category.name for category in CATALOGUE)
DEFAULT_CATEGORIES: tuple[str, ...] = tuple(c.name for c in CATALOGUE if c.default)

# Hardware-bound files: recorded, but not restored onto other hardware by default.
HARDWARE_BOUND: tuple[str, ...] = (
    "etc/fstab",
    "etc/zfs/zpool.cache",
    "etc/kernel/proxmox-boot-uuids",
    "etc/hostid",
    # NIC names pinned by MAC address: on other NICs they name nothing, or the wrong one.
    "etc/systemd/network/*.link",
    "usr/local/lib/systemd/network/*.link",
)


def category(name: str) -> Category:
    """Return the category called ``name``; raise ConfigError for unknown names."""
    for candidate in CATALOGUE:
        if candidate.name == name:
            return candidate
    raise ConfigError(f"unknown category {name!r}; choose from: {', '.join(CATEGORY_NAMES)}")
