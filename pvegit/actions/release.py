"""Proxmox VE major versions: which one a snapshot was taken from, and what differs
between 8 and 9 when a revision is restored or a node rebuilt.

One place for these facts, used by RECOVERY.md (``runbook.py``) and by the
restore's rails (``restore_plan.py``). The major version is read from what a
snapshot holds: the inventory's ``pveversion -v`` first, then the Debian
release the APT sources name (a Proxmox repository's suite before Debian's),
then an os-release file if one was included.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass

from pvegit.config.categories import HARDWARE_BOUND
from pvegit.config.selection import matches_any
from pvegit.git.repo import HostRepository
from pvegit.layout import inventory_path

# Each Proxmox VE major version is built on one Debian release.
DEBIAN_RELEASES: dict[int, tuple[str, str]] = {
    7: ("11", "bullseye"),
    8: ("12", "bookworm"),
    9: ("13", "trixie"),
}
_MAJOR_BY_CODENAME = {codename: major for major, (_, codename) in DEBIAN_RELEASES.items()}

HA_GROUPS = "etc/pve/ha/groups.cfg"
HA_RULES = "etc/pve/ha/rules.cfg"
# Files only Proxmox VE 9 reads: a PVE 8 node ignores them.
PVE9_ONLY: tuple[str, ...] = (
    HA_RULES,
    "etc/pve/sdn/fabrics.cfg",
    "etc/pve/sdn/route-maps.cfg",
    "etc/pve/sdn/prefix-lists.cfg",
    "etc/pve/priv/wg-keys.cfg",
)
# NIC names pinned by MAC address: by hand, or (PVE 9) by pve-network-interface-pinning.
LINK_FILES: tuple[str, ...] = tuple(path for path in HARDWARE_BOUND if path.endswith(".link"))
APT_SOURCES: tuple[str, ...] = (
    "etc/apt/sources.list",
    "etc/apt/sources.list.d/*.list",
    "etc/apt/sources.list.d/*.sources",
)
_OS_RELEASE = ("etc/os-release", "usr/lib/os-release")

# pve-manager's line first: it is the version Proxmox VE calls itself (`pveversion`).
_PVEVERSION = (
    re.compile(r"^pve-manager[:/]\s*(\d+)\..*$", re.MULTILINE),
    re.compile(r"^proxmox-ve[:/]\s*(\d+)\..*$", re.MULTILINE),
)
_ONE_LINE = re.compile(r"^\s*deb(?:-src)?\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", re.MULTILINE)
_FIELD = re.compile(r"^(URIs|Suites)\s*:\s*(.*)$", re.MULTILINE | re.IGNORECASE)
_CODENAME = re.compile(r"^VERSION_CODENAME=\"?(\w+)", re.MULTILINE)


@dataclass(frozen=True)
class Release:
    """The Proxmox VE major version a snapshot shows, and where it was read."""

    major: int | None
    evidence: str = ""

    def describe(self) -> str:
        """``Proxmox VE 9 (Debian 13 trixie)``, or ``unknown``."""
        if self.major is None:
            return "unknown"
        debian = DEBIAN_RELEASES.get(self.major)
        return f"Proxmox VE {self.major}" + (f" (Debian {debian[0]} {debian[1]})" if debian else "")


def _version_line(text: str) -> re.Match[str] | None:
    for pattern in _PVEVERSION:
        found = pattern.search(text)
        if found:
            return found
    return None


def major_from_pveversion(text: str) -> int | None:
    """The major version in ``pveversion`` or ``pveversion -v`` output, or None."""
    found = _version_line(text)
    return int(found.group(1)) if found else None


def apt_suites(text: str) -> list[tuple[str, str]]:
    """(URI, suite) pairs of an APT sources file, one-line or deb822 form."""
    pairs = _ONE_LINE.findall(text)
    for stanza in re.split(r"\n\s*\n", text):
        lines = [line for line in stanza.splitlines() if not line.lstrip().startswith("#")]
        fields = {key.lower(): value.split() for key, value in _FIELD.findall("\n".join(lines))}
        pairs += [
            (uri, suite) for uri in fields.get("uris", []) for suite in fields.get("suites", [])
        ]
    return pairs


def _codename(suite: str) -> str:
    """``trixie-security`` -> ``trixie``; a suite name like ``stable`` stays as it is."""
    return suite.split("-", 1)[0].split("/", 1)[0]


def _majors_of_sources(text: str, *, proxmox_only: bool) -> set[int]:
    return {
        _MAJOR_BY_CODENAME[_codename(suite)]
        for uri, suite in apt_suites(text)
        if _codename(suite) in _MAJOR_BY_CODENAME and (not proxmox_only or "proxmox.com" in uri)
    }


def release_of_tree(paths: Collection[str], read: Callable[[str], str]) -> Release:
    """The release of a snapshot whose tree holds ``paths``; ``read`` gives a path's text."""
    version_path = inventory_path("pveversion")
    if version_path in paths:
        found = _version_line(read(version_path))
        if found:
            line = found.group(0).strip()
            return Release(int(found.group(1)), f"the inventory's `pveversion -v` ({line})")
    sources = {path: read(path) for path in sorted(paths) if matches_any(APT_SOURCES, path)}
    for proxmox_only, what in ((True, "the Proxmox APT repositories"), (False, "APT sources")):
        majors = set().union(
            *(_majors_of_sources(text, proxmox_only=proxmox_only) for text in sources.values())
        )
        if majors:
            # Mixed releases (an upgrade under way): the newer one is where it is going.
            major = max(majors)
            return Release(major, f"the suite of {what} ({DEBIAN_RELEASES[major][1]})")
    for path in _OS_RELEASE:
        if path in paths:
            found = _CODENAME.search(read(path))
            if found and found.group(1) in _MAJOR_BY_CODENAME:
                return Release(_MAJOR_BY_CODENAME[found.group(1)], f"/{path} ({found.group(1)})")
    return Release(None)


def release_of_commit(repository: HostRepository, commit_id: str | None) -> Release:
    """The release the snapshot ``commit_id`` was taken from (unknown without a commit)."""
    if commit_id is None:
        return Release(None)
    files = repository.file_ids(commit_id)
    return release_of_tree(
        files, lambda path: repository.read_blob(files[path][1]).decode("utf-8", "replace")
    )


def restore_note(path: str, data: bytes, node: Release) -> str:
    """What to know before ``data`` is written at ``path`` onto a node running ``node``:
    a warning for the preview, or "" (nothing to say)."""
    notes = []
    if node.major is not None and node.major >= 9 and path == HA_GROUPS:
        notes.append(
            "Proxmox VE 9 places HA resources by ha/rules.cfg: its HA manager turns these "
            "groups into node-affinity rules 'ha-group-<group>' (replacing rules of that "
            "name) and deletes this file again; restore ha/rules.cfg and ha/resources.cfg "
            "of a PVE 9 revision instead if that is what you mean"
        )
    if node.major is not None and node.major < 9 and matches_any(PVE9_ONLY, path):
        notes.append(f"this node runs Proxmox VE {node.major}, which does not read it (9 does)")
    if node.major in DEBIAN_RELEASES and matches_any(APT_SOURCES, path):
        text = data.decode("utf-8", "replace")
        other = sorted(
            {
                _codename(suite)
                for _, suite in apt_suites(text)
                if _MAJOR_BY_CODENAME.get(_codename(suite), node.major) != node.major
            }
        )
        if other:
            notes.append(
                f"APT source for {', '.join(other)} on a {node.describe()} node: apt would "
                "mix Debian releases"
            )
    if matches_any(LINK_FILES, path):
        notes.append(
            "renames a NIC at the next boot (the initramfs has a copy: update-initramfs -u -k all)"
        )
    return "; ".join(notes)


# What a rebuild onto the other major version has to know: (what, PVE 8, PVE 9).
_DIFFERENCES: tuple[tuple[str, str, str], ...] = (
    (
        "APT sources",
        "one-line `.list` files (`/etc/apt/sources.list`)",
        "deb822 `.sources` files in `/etc/apt/sources.list.d/` "
        "(`debian.sources`, `proxmox.sources`, `ceph.sources`)",
    ),
    (
        "HA placement",
        "groups: `/etc/pve/ha/groups.cfg`, `group` in `ha/resources.cfg`",
        "rules: `/etc/pve/ha/rules.cfg` (node-affinity, resource-affinity); the HA manager "
        "migrates groups into rules `ha-group-<group>` once every node runs 9 and deletes "
        "groups.cfg",
    ),
    (
        "NIC name pinning",
        "`.link` files written by hand in `/etc/systemd/network/`",
        "`pve-network-interface-pinning` writes `50-pve-<name>.link` (`50-pmx-` since "
        "pve-manager 9.1.17) to `/usr/local/lib/systemd/network/`",
    ),
    (
        "SDN",
        "zones, VNets, subnets, controllers, VNet firewall (`sdn/firewall/`)",
        "also fabrics (`sdn/fabrics.cfg`), route maps, prefix lists, WireGuard keys "
        "(`priv/wg-keys.cfg`)",
    ),
)


def rebuild_notes(release: Release) -> str:
    """RECOVERY.md's section on rebuilding onto Proxmox VE 8 or 9, for a snapshot of ``release``."""
    table = "\n".join(
        f"| {what} | {eight} | {nine} |"
        for what, eight, nine in (
            ("", "Proxmox VE 8 (Debian 12 bookworm)", "Proxmox VE 9 (Debian 13 trixie)"),
            ("---", "---", "---"),
            *_DIFFERENCES,
        )
    )
    if release.major is None:
        advice = (
            "This snapshot does not say which major version it was taken from (no inventory "
            "and no APT sources in it): check with the node's owner before installing."
        )
    elif release.major >= 9:
        advice = """\
Rebuild onto Proxmox VE 9. Proxmox VE 8 does not read `ha/rules.cfg`, `sdn/fabrics.cfg`,
route maps, prefix lists or WireGuard keys (HA placement and fabrics would be lost),
and there is no way down from 9 to 8. NIC names are pinned in
`/usr/local/lib/systemd/network/`: the pins name the old NICs by their MAC addresses,
so they are bound to the old hardware (step 5); on new NICs run
`pve-network-interface-pinning generate` before rebooting (it writes the renamed
configuration as `.new` files beside `/etc/network/interfaces`, `host.fw` and the SDN
files: compare them, they apply on reboot)."""
    else:
        codename = DEBIAN_RELEASES.get(release.major, ("", "an older Debian"))[1]
        advice = f"""\
Rebuild onto Proxmox VE {release.major} as it was, or onto 9 (a fresh 9 instead of an upgrade):
then do not copy this snapshot's APT sources (they name {codename}; keep the
installer's trixie `.sources`), expect `ha/groups.cfg` to turn into rules in
`ha/rules.cfg` and disappear once every node of the cluster runs 9, and expect other
NIC names from the newer systemd: pin them with `pve-network-interface-pinning generate`
and check `/etc/network/interfaces.new` before rebooting."""
    source = f", read from {release.evidence}" if release.evidence else ""
    return (
        f"This snapshot was taken from **{release.describe()}**{source}.\n\n"
        f"{advice}\n\nWhat differs between the two:\n\n{table}\n"
    )
