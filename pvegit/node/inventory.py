"""Inventory: command outputs kept as text, normalized to change only when the node does.

Each command's output is stored at ``.pvegit/inventory/<name>.txt`` in the
host's tree. Columns that change on their own (PIDs, run states, dates,
usage counters, scrub progress) are dropped so an idle node makes no commits.
How much output a run takes is capped (``InventoryLimits``): a node whose
``pveversion`` prints gigabytes must not take pvegit's memory with it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class InventoryCommand:
    """A command run on the node and how its output is normalized."""

    name: str
    program: str  # checked with `command -v`; missing means "not applicable", not an error
    shell: str
    normalize: Callable[[str], str]


def _identity(text: str) -> str:
    return text


def _sorted_lines(text: str) -> str:
    lines = sorted({line.strip() for line in text.splitlines() if line.strip()})
    return "\n".join(lines) + ("\n" if lines else "")


def _columns(text: str, keep: Callable[[list[str]], list[str]], header: bool = True) -> str:
    rows = [line.split() for line in text.splitlines() if line.strip()]
    if header and rows:
        rows = rows[1:]
    out = ["\t".join(keep(row)) for row in rows if row]
    return "\n".join(out) + ("\n" if out else "")


def _qm_list(text: str) -> str:
    # VMID NAME STATUS MEM(MB) BOOTDISK(GB) PID: keep id, name, memory, disk.
    return _columns(text, lambda row: [row[0], row[1], *row[3:5]] if len(row) >= 5 else row[:2])


def _pct_list(text: str) -> str:
    # VMID Status [Lock] Name: the lock is transient, the status changes by itself.
    return _columns(text, lambda row: [row[0], row[-1]] if len(row) >= 3 else row[:1])


def _pvesm_status(text: str) -> str:
    # Name Type Status Total Used Available %: usage and status move on their own.
    return _columns(text, lambda row: row[:2])


_PVECM_NOISE = re.compile(r"^\s*(Date|Ring ID)\s*:", re.IGNORECASE)


def _pvecm_status(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines() if not _PVECM_NOISE.match(line)]
    return "\n".join(lines).strip("\n") + "\n" if lines else ""


def _zpool_status(text: str) -> str:
    out: list[str] = []
    skipping_scan = False
    for line in text.splitlines():
        stripped = line.strip()
        if re.match(r"^(scan|status|action|see):", stripped):
            skipping_scan = True
            continue
        if skipping_scan:
            # Continuation lines of a scan/status paragraph are indented text.
            if re.match(r"^(pool|state|config|errors):", stripped) or not stripped:
                skipping_scan = False
            else:
                continue
        columns = line.split()
        if len(columns) >= 5 and columns[2:5] != ["READ", "WRITE", "CKSUM"]:
            # vdev lines: keep the indentation, the name and the state, drop counters.
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}{columns[0]} {columns[1]}")
        elif columns[2:5] == ["READ", "WRITE", "CKSUM"]:
            out.append(f"{line[: len(line) - len(line.lstrip())]}NAME STATE")
        else:
            out.append(line.rstrip())
    return "\n".join(out).strip("\n") + "\n" if out else ""


def _ip_link(text: str) -> str:
    try:
        links = json.loads(text or "[]")
    except json.JSONDecodeError:
        return text
    out = []
    for link in links if isinstance(links, list) else []:
        if not isinstance(link, dict):
            continue
        fields = [
            str(link.get("ifname", "?")),
            str(link.get("link_type", "")),
            str(link.get("address", "")),
            f"permaddr={link['permaddr']}" if link.get("permaddr") else "",
            f"mtu={link.get('mtu', '')}",
            f"master={link['master']}" if link.get("master") else "",
            "altnames=" + ",".join(link["altnames"]) if link.get("altnames") else "",
        ]
        out.append(" ".join(field for field in fields if field))
    return "\n".join(sorted(out)) + ("\n" if out else "")


def _lsblk(text: str) -> str:
    try:
        data = json.loads(text or "{}")
    except json.JSONDecodeError:
        return text
    out: list[str] = []

    def walk(devices: list[dict[str, object]], depth: int) -> None:
        for device in devices:
            fields = ("name", "type", "size", "model", "serial", "wwn", "fstype", "uuid")
            values = [str(device.get(field) or "-") for field in fields]
            out.append("  " * depth + " ".join(values))
            children = device.get("children")
            if isinstance(children, list):
                walk(children, depth + 1)

    devices = data.get("blockdevices", []) if isinstance(data, dict) else []
    walk(devices if isinstance(devices, list) else [], 0)
    return "\n".join(out) + ("\n" if out else "")


COMMANDS: dict[str, InventoryCommand] = {
    command.name: command
    for command in (
        InventoryCommand("pveversion", "pveversion", "pveversion -v", _identity),
        InventoryCommand("apt-manual", "apt-mark", "apt-mark showmanual", _sorted_lines),
        InventoryCommand("qm-list", "qm", "qm list", _qm_list),
        InventoryCommand("pct-list", "pct", "pct list", _pct_list),
        InventoryCommand("pvecm-status", "pvecm", "pvecm status", _pvecm_status),
        InventoryCommand("pvesm-status", "pvesm", "pvesm status", _pvesm_status),
        InventoryCommand("zpool-status", "zpool", "zpool status", _zpool_status),
        InventoryCommand("zfs-list", "zfs", "zfs list -H -o name,type", _sorted_lines),
        InventoryCommand("ip-link", "ip", "ip -j link show", _ip_link),
        InventoryCommand(
            "nic-drivers",
            "readlink",
            'for i in /sys/class/net/*; do d=$(readlink "$i/device/driver" 2>/dev/null) '
            '&& printf "%s %s\\n" "${i##*/}" "${d##*/}"; done; true',
            _sorted_lines,
        ),
        InventoryCommand(
            "lsblk",
            "lsblk",
            "lsblk -J -b -o NAME,TYPE,SIZE,MODEL,SERIAL,WWN,FSTYPE,UUID",
            _lsblk,
        ),
        InventoryCommand(
            "enabled-units",
            "systemctl",
            "systemctl list-unit-files --state=enabled --no-legend --no-pager",
            lambda text: _columns(text, lambda row: row[:1], header=False),
        ),
    )
}
