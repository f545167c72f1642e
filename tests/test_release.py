"""Which Proxmox VE major version a snapshot shows, and the restore's warnings between 8 and 9."""

from __future__ import annotations

from pvegit.actions.release import (
    Release,
    apt_suites,
    major_from_pveversion,
    rebuild_notes,
    release_of_tree,
    restore_note,
)
from testbed.nodes import STAND_INS
from testbed.pve9 import PVE9_STAND_INS

PVEVERSION = ".pvegit/inventory/pveversion.txt"


def _stand_in_output(script: str) -> str:
    """The text a pveversion stand-in prints for -v (between its heredoc markers)."""
    return script.split("<<'END'\n", 1)[1].split("\nEND\n", 1)[0]


def test_the_major_version_comes_from_pveversion() -> None:
    assert major_from_pveversion(_stand_in_output(STAND_INS["pveversion"])) == 8
    assert major_from_pveversion(_stand_in_output(PVE9_STAND_INS["pveversion"])) == 9
    assert major_from_pveversion("pve-manager/9.0.6/49c767b7 (running kernel: 6.14.8-2-pve)") == 9
    assert major_from_pveversion("") is None
    tree = {PVEVERSION: _stand_in_output(PVE9_STAND_INS["pveversion"])}
    release = release_of_tree(tree, tree.__getitem__)
    assert release.major == 9 and release.describe() == "Proxmox VE 9 (Debian 13 trixie)"
    assert "pve-manager: 9.0.6" in release.evidence


def test_apt_sources_in_both_forms() -> None:
    one_line = (
        "# comment\ndeb http://deb.debian.org/debian bookworm main contrib\n"
        "deb [arch=amd64] http://download.proxmox.com/debian/pve bookworm pve-no-subscription\n"
    )
    assert apt_suites(one_line) == [
        ("http://deb.debian.org/debian", "bookworm"),
        ("http://download.proxmox.com/debian/pve", "bookworm"),
    ]
    deb822 = (
        "Types: deb\nURIs: http://deb.debian.org/debian/\nSuites: trixie trixie-updates\n"
        "Components: main\n\n# Suites: bookworm\nTypes: deb\n"
        "URIs: http://security.debian.org/debian-security/\nSuites: trixie-security\n"
    )
    assert apt_suites(deb822) == [
        ("http://deb.debian.org/debian/", "trixie"),
        ("http://deb.debian.org/debian/", "trixie-updates"),
        ("http://security.debian.org/debian-security/", "trixie-security"),
    ]


def test_without_inventory_the_proxmox_repository_decides() -> None:
    tree = {
        # The machine's Debian sources still say bookworm (an upgrade under way)...
        "etc/apt/sources.list": "deb http://deb.debian.org/debian bookworm main\n",
        # ...Proxmox's repository is what the node runs.
        "etc/apt/sources.list.d/proxmox.sources": (
            "Types: deb\nURIs: http://download.proxmox.com/debian/pve\nSuites: trixie\n"
            "Components: pve-no-subscription\n"
        ),
        "etc/hostname": "pve9\n",
    }
    release = release_of_tree(tree, tree.__getitem__)
    assert release.major == 9 and "Proxmox APT repositories (trixie)" in release.evidence
    debian_only = {"etc/apt/sources.list": tree["etc/apt/sources.list"]}
    assert release_of_tree(debian_only, debian_only.__getitem__).major == 8
    os_release = {"usr/lib/os-release": 'NAME="Debian"\nVERSION_CODENAME=trixie\n'}
    assert release_of_tree(os_release, os_release.__getitem__).major == 9
    assert release_of_tree({}, {}.__getitem__) == Release(None)


def test_restore_warns_where_8_and_9_differ() -> None:
    pve8, pve9, unknown = Release(8), Release(9), Release(None)
    groups = b"group: prefer-pve9\n\tnodes pve9:2,pve10:1\n"
    assert "ha/rules.cfg" in restore_note("etc/pve/ha/groups.cfg", groups, pve9)
    assert restore_note("etc/pve/ha/groups.cfg", groups, pve8) == ""
    rules = b"node-affinity: ha-group-x\n\tnodes pve9\n\tresources vm:100\n"
    assert "does not read it" in restore_note("etc/pve/ha/rules.cfg", rules, pve8)
    assert "does not read it" in restore_note("etc/pve/sdn/fabrics.cfg", b"", pve8)
    assert restore_note("etc/pve/ha/rules.cfg", rules, pve9) == ""
    bookworm = b"Types: deb\nURIs: http://download.proxmox.com/debian/pve\nSuites: bookworm\n"
    note = restore_note("etc/apt/sources.list.d/proxmox.sources", bookworm, pve9)
    assert "bookworm on a Proxmox VE 9 (Debian 13 trixie) node" in note
    assert restore_note("etc/apt/sources.list.d/proxmox.sources", bookworm, pve8) == ""
    assert restore_note("etc/apt/sources.list.d/proxmox.sources", bookworm, unknown) == ""
    link = b"[Match]\nMACAddress=bc:24:11:90:00:01\n\n[Link]\nName=nic0\n"
    for path in ("usr/local/lib/systemd/network/50-pve-nic0.link", "etc/systemd/network/a.link"):
        assert "update-initramfs" in restore_note(path, link, unknown), path
    assert restore_note("etc/pve/storage.cfg", b"dir: local\n", pve9) == ""


def test_rebuild_notes_name_the_release_and_what_differs() -> None:
    nine = rebuild_notes(Release(9, "the inventory's `pveversion -v`"))
    assert "**Proxmox VE 9 (Debian 13 trixie)**, read from the inventory's" in nine
    assert "Rebuild onto Proxmox VE 9" in nine and "pve-network-interface-pinning" in nine
    eight = rebuild_notes(Release(8, "APT sources"))
    assert "they name bookworm" in eight and "ha/groups.cfg` to turn into rules" in eight
    for text in (nine, eight, rebuild_notes(Release(None))):
        for difference in ("deb822", "ha/rules.cfg", "/usr/local/lib/systemd/network/"):
            assert difference in text
    assert "does not say which major version" in rebuild_notes(Release(None))
