"""The catalogue of backup categories ("backup types").

A category is a named set of node paths (globs allowed), exclusions and
inventory commands. Paths are written as on the node without the leading
slash, the same way they appear in a host's git tree. Patterns follow GNU
tar's exclusion rules: ``*`` also matches ``/``, and a pattern that names a
directory covers everything below it.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pvegit.errors import ConfigError
from pvegit.git.layout import PVEGIT_DIR

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
_NODES = "etc/pve/nodes/"


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

# Node paths are passed to the remote shell unquoted (so globs expand there):
# only this character set is accepted.
_SAFE_PATH = re.compile(r"^[A-Za-z0-9._+@%,:=/*?\[\]-]+$")


@dataclass(frozen=True)
class Selection:
    """What one host's snapshot collects."""

    paths: tuple[str, ...]
    excludes: tuple[str, ...]
    commands: tuple[str, ...]
    include_secrets: bool


def category(name: str) -> Category:
    """Return the category called ``name``; raise ConfigError for unknown names."""
    for candidate in CATALOGUE:
        if candidate.name == name:
            return candidate
    raise ConfigError(f"unknown category {name!r}; choose from: {', '.join(CATEGORY_NAMES)}")


def normalize_node_path(path: str, *, allow_pvegit: bool = True) -> str:
    """Turn ``/etc/pve/storage.cfg`` (as on the node) into the tree path ``etc/pve/storage.cfg``.

    Raises ConfigError for empty paths, ``..`` components and (unless
    ``allow_pvegit``) pvegit's own folder.
    """
    stripped = path.strip().strip("/")
    parts = [part for part in stripped.split("/") if part not in ("", ".")]
    if not parts:
        raise ConfigError(f"path {path!r} is empty; give a path as on the node, e.g. /etc/hosts")
    if ".." in parts:
        raise ConfigError(f"path {path!r} contains '..'; give an absolute path as on the node")
    if parts[0] == PVEGIT_DIR and not allow_pvegit:
        raise ConfigError(f"path {path!r} is pvegit's own folder in the tree")
    return "/".join(parts)


def validate_include(path: str) -> str:
    """Validate an extra include path (globs allowed) and return its tree form."""
    normalized = normalize_node_path(path, allow_pvegit=False)
    if not _SAFE_PATH.match(normalized):
        raise ConfigError(
            f"include path {path!r} has characters pvegit does not pass to the node's shell; "
            "use letters, digits, . _ - + @ % , : = / and the globs * ? [ ] (use ? for a space)"
        )
    return normalized


def validate_exclude(pattern: str) -> str:
    """Validate an exclude glob and return it relative to the node's root."""
    return normalize_node_path(pattern, allow_pvegit=False)


def pattern_matches(pattern: str, path: str) -> bool:
    """True if ``pattern`` matches ``path`` or one of its parent directories (tar semantics)."""
    if fnmatch.fnmatchcase(path, pattern):
        return True
    parent = path
    while "/" in parent:
        parent = parent.rsplit("/", 1)[0]
        if fnmatch.fnmatchcase(parent, pattern):
            return True
    return False


@functools.lru_cache(maxsize=64)
def _compiled(patterns: tuple[str, ...]) -> re.Pattern[str]:
    # fnmatch.translate gives "(?s:...)\\Z"; strip the end anchor so that a
    # pattern also covers everything below the directory it names.
    parts = [fnmatch.translate(pattern).removesuffix(r"\Z") for pattern in patterns]
    return re.compile("(?:" + "|".join(parts) + r")(?:/.*)?\Z", re.DOTALL)


def matches_any(patterns: Iterable[str], path: str) -> bool:
    """True if any pattern covers ``path`` (tar semantics, see pattern_matches)."""
    patterns = tuple(patterns)
    if not patterns:
        return False
    return _compiled(patterns).match(path) is not None


def resolve_link_path(path: str) -> str:
    """``path`` with a leading pmxcfs built-in link replaced by where it leads.

    The node's own folder is written ``etc/pve/nodes/*`` (whichever node it
    is): ``etc/pve/local/pve-ssl.key`` becomes ``etc/pve/nodes/*/pve-ssl.key``,
    which the patterns written for every node (``nodes/*/...``) match. Other
    paths come back unchanged.
    """
    for link, inside in PMXCFS_LINKS.items():
        if path == link or path.startswith(link + "/"):
            target = _NODES + "*" + ("/" + inside if inside else "")
            return target + path[len(link) :]
    return path


def link_aliases(pattern: str) -> tuple[str, ...]:
    """The names a pattern under ``etc/pve/nodes/<any node>/`` also has through the
    built-in links (``etc/pve/nodes/*/pve-ssl.key`` -> ``etc/pve/local/pve-ssl.key``).

    Only a node part with a glob can be the node's own folder; a pattern naming
    one node (``nodes/pve2/...``) has no alias.
    """
    if pattern == _NODES.rstrip("/"):  # every node's folder, this node's among them
        pattern = _NODES + "*"
    if not pattern.startswith(_NODES):
        return ()
    node, _, rest = pattern[len(_NODES) :].partition("/")
    if not any(char in node for char in "*?["):
        return ()
    aliases = []
    for link, inside in PMXCFS_LINKS.items():
        if not inside:
            aliases.append(link + ("/" + rest if rest else ""))
        elif not rest or rest == inside:
            aliases.append(link)
        elif rest.startswith(inside + "/"):
            aliases.append(link + rest[len(inside) :])
    return tuple(aliases)


def matches_resolved(patterns: Iterable[str], path: str) -> bool:
    """True if a pattern covers ``path`` as named or as resolved through the built-in links."""
    patterns = tuple(patterns)
    path = path.lstrip("/")
    return matches_any(patterns, path) or matches_any(patterns, resolve_link_path(path))


def is_secret(path: str) -> bool:
    """True for tree paths that hold secret material (SECRET_PATTERNS, and config.db),
    also when named through a built-in link (``etc/pve/local/pve-ssl.key``)."""
    return matches_resolved((*SECRET_PATTERNS, "var/lib/pve-cluster/config.db"), path)


def is_runtime(path: str) -> bool:
    """True for pmxcfs status files and runtime state that never belong in a snapshot."""
    return matches_resolved(RUNTIME_EXCLUDES, path)


def resolve_selection(
    category_names: Sequence[str],
    includes: Sequence[str] = (),
    excludes: Sequence[str] = (),
) -> Selection:
    """Combine categories, extra includes and exclude globs into one Selection.

    Secret patterns are excluded unless the ``secrets`` category is chosen;
    runtime files are always excluded. Every exclude under the nodes' folders
    also excludes its names through the built-in links (see link_aliases).
    """
    chosen = [category(name) for name in dict.fromkeys(category_names)]
    paths: list[str] = []
    commands: list[str] = []
    all_excludes: list[str] = list(RUNTIME_EXCLUDES)
    for item in chosen:
        paths.extend(item.paths)
        all_excludes.extend(item.excludes)
        commands.extend(item.commands)
    paths.extend(validate_include(path) for path in includes)
    all_excludes.extend(validate_exclude(pattern) for pattern in excludes)
    include_secrets = any(item.name == "secrets" for item in chosen)
    if not include_secrets:
        all_excludes.extend(SECRET_PATTERNS)
        paths = [path for path in paths if path not in SECRET_PATTERNS]
    # tar matches names as it reads them: a file reached through a built-in
    # link (an include of /etc/pve/local/*) needs the link's name excluded too.
    aliases = [alias for pattern in all_excludes for alias in link_aliases(pattern)]
    all_excludes.extend(aliases)
    return Selection(
        paths=tuple(dict.fromkeys(paths)),
        excludes=tuple(dict.fromkeys(all_excludes)),
        commands=tuple(dict.fromkeys(commands)),
        include_secrets=include_secrets,
    )
