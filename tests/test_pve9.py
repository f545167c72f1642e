"""A Proxmox VE 9 node (the test bed's pve9, /etc/pve in Proxmox's pmxcfs) over real SSH:
what PVE 9 brought is collected, an idle node stays unchanged, RECOVERY.md names the
release, and the restore's rails know .link files, HA groups and APT sources."""

from __future__ import annotations

import fnmatch
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import git

from pvegit.config.categories import DEFAULT_CATEGORIES
from pvegit.config.home import Home
from pvegit.state.store import Store
from testbed.nodes import STAND_INS, Node, TestBed, register_node
from testbed.pve9 import PVE9_PATHS, PVE9_STAND_INS

DEFAULT = tuple(name for name in DEFAULT_CATEGORIES if name != "configdb")


@pytest.fixture
def pve9(testbed: TestBed) -> Iterator[Node]:
    started = testbed.start("pve9")
    yield started
    started.stop()


def tree(home: Home, host: str, revision: str = "HEAD") -> dict[str, str]:
    """path -> mode of every entry of a revision, read with the real git client."""
    listing = git("--git-dir", str(home.repo_path(host)), "ls-tree", "-r", revision)
    return {line.split("\t", 1)[1]: line.split()[0] for line in listing.splitlines()}


def show(home: Home, host: str, path: str, revision: str = "HEAD") -> str:
    return git("--git-dir", str(home.repo_path(host)), "show", f"{revision}:{path}")


def commits(home: Home, host: str) -> int:
    return int(git("--git-dir", str(home.repo_path(host)), "rev-list", "--count", "HEAD"))


def test_every_pve9_path_is_collected_and_an_idle_node_makes_no_commit(
    cli,
    home: Home,
    store: Store,
    pve9: Node,
    testbed: TestBed,  # type: ignore[no-untyped-def]
) -> None:
    if testbed.pmxcfs:  # the real one, as CI requires (PVEGIT_REQUIRE_PMXCFS)
        assert " /etc/pve fuse " in pve9.sh("cat /proc/mounts").stdout
    register_node(store, home, pve9, "pve9", categories=DEFAULT)
    register_node(store, home, pve9, "pve9-secrets", categories=(*DEFAULT, "secrets"))
    for host in ("pve9", "pve9-secrets"):
        result = cli("snapshot", host)
        assert result.code == 0 and "changed" in result.out, result.out + result.err
    plain, secret = tree(home, "pve9"), tree(home, "pve9-secrets")
    for pattern, category in PVE9_PATHS:
        assert any(fnmatch.fnmatchcase(path, pattern) for path in secret), pattern
        in_plain = any(fnmatch.fnmatchcase(path, pattern) for path in plain)
        assert in_plain == (category != "secrets"), pattern
    for path in (
        "etc/pve/sdn/fabrics.cfg",
        "etc/pve/ha/rules.cfg",
        "etc/pve/nodes/pve10/ssh_known_hosts",  # no final newline, as pve-cluster writes it
        "usr/local/lib/systemd/network/50-pve-nic2.link",
        "etc/apt/sources.list.d/proxmox.sources",
        "etc/systemd/system/pve-guests.service.d/override.conf",
    ):
        assert show(home, "pve9", path) == pve9.read(f"/{path}"), path
    assert show(home, "pve9-secrets", "etc/pve/priv/wg-keys.cfg").startswith("node: pve9\n")
    assert "ha-group-prefer-pve9" in show(home, "pve9", "etc/pve/ha/rules.cfg")
    assert "etc/pve/ha/groups.cfg" not in plain  # migrated to rules by PVE 9's HA manager
    assert plain["etc/systemd/system/rpcbind.service"] == "120000"  # masked: kept as a link
    assert show(home, "pve9", "etc/systemd/system/rpcbind.service") == "/dev/null"
    assert not [path for path in plain if ".wants/" in path]  # enablement: not collected
    version = show(home, "pve9", ".pvegit/inventory/pveversion.txt")
    assert "pve-manager: 9.0.6" in version and "running kernel: 6.14.8-2-pve" in version
    assert "Name:             lab9" in show(home, "pve9", ".pvegit/inventory/pvecm-status.txt")
    for _ in range(2):  # the stand-ins print fresh noise (dates, ring ids, PIDs) every time
        for host in ("pve9", "pve9-secrets"):
            result = cli("snapshot", host)
            assert result.code == 0 and "unchanged" in result.out, result.out + result.err
    assert commits(home, "pve9") == 1 and commits(home, "pve9-secrets") == 1


def test_recovery_runbook_names_pve9_and_what_differs_from_8(
    cli,
    home: Home,
    store: Store,
    pve9: Node,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    register_node(store, home, pve9, "pve9", categories=DEFAULT)
    assert cli("snapshot", "pve9").code == 0
    archive = tmp_path / "pve9.tar.gz"
    assert cli("export", "pve9", "-o", str(archive)).code == 0
    with tarfile.open(archive) as opened:
        runbook = opened.extractfile("RECOVERY.md").read().decode()  # type: ignore[union-attr]
        assert "usr/local/lib/systemd/network/50-pve-nic0.link" in opened.getnames()
    assert "- major version: Proxmox VE 9 (Debian 13 trixie)" in runbook
    assert "This snapshot was taken from **Proxmox VE 9 (Debian 13 trixie)**, read from" in runbook
    assert "pve-manager: 9.0.6" in runbook
    assert "cluster: `lab9` with nodes `pve9` (id 1), `pve10` (id 2), `pve11` (id 3)" in runbook
    assert "- 50-pve-nic0.link: MACAddress=bc:24:11:90:00:01 Name=nic0" in runbook
    section = runbook.split("## Proxmox VE 8 or 9", 1)[1].split("## Step by step", 1)[0]
    for difference in (
        "deb822",
        "ha/rules.cfg",
        "ha-group-<group>",
        "pve-network-interface-pinning",
    ):
        assert difference in section, difference
    assert "Rebuild onto Proxmox VE 9" in section
    assert "`/usr/local/lib/systemd/network/*.link`" in runbook.split("## Step by step", 1)[1]


def _pve8_state(node: Node) -> dict[str, str]:
    """Make the node look as it did on Proxmox VE 8 (HA groups, bookworm sources, PVE 8's
    pveversion); return what PVE 9 had, to put back."""
    saved = {
        path: node.read(path)
        for path in (
            "/etc/pve/ha/rules.cfg",
            "/etc/pve/ha/resources.cfg",
            "/etc/apt/sources.list.d/proxmox.sources",
        )
    }
    node.write("/usr/sbin/pveversion", STAND_INS["pveversion"], mode=0o755)
    node.write(
        "/etc/pve/ha/groups.cfg", "group: prefer-pve9\n\tnodes pve10:1,pve9:2\n\tnofailback 0\n"
    )
    node.write(
        "/etc/pve/ha/resources.cfg",
        "vm: 100\n\tgroup prefer-pve9\n\tstate started\n\nvm: 101\n\tstate started\n",
    )
    node.sh("rm /etc/pve/ha/rules.cfg")
    node.write(
        "/etc/apt/sources.list.d/proxmox.sources",
        saved["/etc/apt/sources.list.d/proxmox.sources"].replace("trixie", "bookworm"),
    )
    return saved


def test_restore_rails_for_link_files_ha_groups_and_apt_sources(
    cli,
    home: Home,
    store: Store,
    pve9: Node,  # type: ignore[no-untyped-def]
) -> None:
    register_node(store, home, pve9, "pve9", categories=DEFAULT)
    # Before the upgrade (PVE 8), then after it: PVE 9's HA manager migrated the groups.
    saved = _pve8_state(pve9)
    assert cli("snapshot", "pve9").code == 0
    pve8 = git("--git-dir", str(home.repo_path("pve9")), "rev-parse", "HEAD").strip()
    pve9.write("/usr/sbin/pveversion", PVE9_STAND_INS["pveversion"], mode=0o755)
    for path, content in saved.items():
        pve9.write(path, content)
    pve9.sh("rm /etc/pve/ha/groups.cfg")
    assert "changed" in cli("snapshot", "pve9").out
    # A NIC swapped: its pin now names another MAC address.
    link = "/usr/local/lib/systemd/network/50-pve-nic0.link"
    pinned = pve9.read(link)
    pve9.write(link, pinned.replace("bc:24:11:90:00:01", "bc:24:11:90:00:99"))

    whole = cli("restore", "pve9", "HEAD", "/usr/local/lib/systemd/network", "--dry-run")
    assert whole.code == 0, whole.err
    assert f"skip  {link}  [bound to the old hardware: name it to restore it]" in whole.out
    named = cli("restore", "pve9", "HEAD", link, "--yes")
    assert named.code == 0, named.out + named.err
    assert f"change  {link}  [renames a NIC at the next boot" in named.out
    assert "verified: the node now matches the revision" in named.out
    assert pve9.read(link) == pinned

    ha = cli("restore", "pve9", pve8, "/etc/pve/ha", "--yes")
    assert ha.code == 0, ha.out + ha.err
    assert "create  /etc/pve/ha/groups.cfg  [Proxmox VE 9 places HA resources by ha/rules.cfg" in (
        ha.out
    )
    assert "change  /etc/pve/ha/resources.cfg" in ha.out
    assert "ha-group-<group>" in ha.out and "verified" in ha.out
    assert "prefer-pve9" in pve9.read("/etc/pve/ha/groups.cfg")  # written, with the warning
    sources = cli("restore", "pve9", pve8, "/etc/apt/sources.list.d/proxmox.sources", "--dry-run")
    assert "APT source for bookworm on a Proxmox VE 9 (Debian 13 trixie) node" in sources.out
    audit = [event for event in store.audit_events() if event.action == "restore"]
    assert len(audit) == 2
    assert json.loads(cli("runs", "--json").out)[0]["status"] == "changed"
