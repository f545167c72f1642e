from __future__ import annotations

from pvegit.collect import inventory_script, parse_inventory
from pvegit.inventory import COMMANDS


def normalize(name: str, text: str) -> str:
    return COMMANDS[name].normalize(text)


def test_qm_list_drops_status_and_pid() -> None:
    one = (
        "      VMID NAME                 STATUS     MEM(MB)    BOOTDISK(GB) PID\n"
        "       100 web                  running    2048              32.00 1234\n"
        "       101 db                   stopped    4096              64.00 0\n"
    )
    two = one.replace("running", "stopped").replace("1234", "0")
    assert normalize("qm-list", one) == normalize("qm-list", two)
    assert "100\tweb\t2048\t32.00" in normalize("qm-list", one)
    assert normalize("qm-list", one) != normalize("qm-list", one.replace("2048", "8192"))


def test_pct_list_drops_status_and_lock() -> None:
    one = "VMID       Status     Lock         Name\n103        running                 ct1\n"
    two = "VMID       Status     Lock         Name\n103        stopped    backup       ct1\n"
    assert normalize("pct-list", one) == normalize("pct-list", two) == "103\tct1\n"


def test_pvecm_status_drops_date_and_ring_id() -> None:
    one = "Quorum information\nDate:   Mon Jan  1 10:00:00 2024\nRing ID:   1.2a\nNodes: 3\n"
    two = "Quorum information\nDate:   Tue Jan  2 11:00:00 2024\nRing ID:   1.3f\nNodes: 3\n"
    assert normalize("pvecm-status", one) == normalize("pvecm-status", two)
    assert "Nodes: 3" in normalize("pvecm-status", one)


def test_zpool_status_drops_scan_and_counters() -> None:
    one = (
        "  pool: rpool\n state: ONLINE\n  scan: scrub repaired 0B in 00:01:02 with 0 errors on"
        " Sun\nconfig:\n\n\tNAME        STATE     READ WRITE CKSUM\n"
        "\trpool       ONLINE       0     0     0\n\t  sda3      ONLINE       0     0     4\n"
        "\nerrors: No known data errors\n"
    )
    two = one.replace("00:01:02", "00:09:09").replace("0     4", "0     0")
    assert normalize("zpool-status", one) == normalize("zpool-status", two)
    assert "sda3 ONLINE" in normalize("zpool-status", one)
    assert "DEGRADED" in normalize(
        "zpool-status", one.replace("sda3      ONLINE", "sda3      DEGRADED")
    )


def test_pvesm_status_keeps_names_and_types() -> None:
    text = "Name Type Status Total Used Available %\nlocal dir active 100 5 95 5.00%\n"
    assert normalize("pvesm-status", text) == "local\tdir\n"


def test_ip_link_keeps_name_and_mac() -> None:
    text = (
        '[{"ifname":"nic0","link_type":"ether","address":"bc:24:11:00:00:01","mtu":1500,'
        '"operstate":"UP"}]'
    )
    down = text.replace('"UP"', '"DOWN"')
    assert normalize("ip-link", text) == normalize("ip-link", down)
    assert "nic0 ether bc:24:11:00:00:01 mtu=1500" in normalize("ip-link", text)


def test_inventory_framing_survives_missing_and_failing_commands() -> None:
    boundary = "pvegit-0123"
    output = (
        f"{boundary} begin pveversion\npve-manager: 8.2.4\n\n{boundary} end pveversion 0\n"
        f"{boundary} missing zpool-status\n"
        f"{boundary} begin qm-list\n\n{boundary} end qm-list 1\n"
    ).encode()
    outputs, failed = parse_inventory(
        output, boundary, ["pveversion", "zpool-status", "qm-list", "pct-list"]
    )
    assert outputs == {"pveversion": b"pve-manager: 8.2.4\n"}
    assert failed == ["qm-list", "pct-list"]


def test_inventory_script_runs_each_command_under_timeout() -> None:
    script = inventory_script("B", ["pvesm-status"])
    assert "timeout 30 sh -c 'pvesm status'" in script
    assert "command -v pvesm" in script
