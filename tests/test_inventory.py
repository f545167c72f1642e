from __future__ import annotations

import io
import tracemalloc

from pvegit.config.limits import InventoryLimits
from pvegit.node.collector import inventory_parameters
from pvegit.node.inventory import COMMANDS
from pvegit.node.inventorystream import read_inventory
from pvegit.node.program import program_text


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


def frame(boundary: str, name: str, data: bytes, status: int = 0) -> bytes:
    head = f"{boundary} begin {name} {len(data)}\n".encode()
    return head + data + f"{boundary} end {name} {status}\n".encode()


def test_inventory_framing_survives_missing_and_failing_commands() -> None:
    boundary = "pvegit-0123"
    output = (
        frame(boundary, "pveversion", b"pve-manager: 8.2.4\n")
        + f"{boundary} missing zpool-status\n".encode()
        + frame(boundary, "qm-list", b"", 1)
    )
    found = read_inventory(
        io.BytesIO(output),
        boundary,
        ["pveversion", "zpool-status", "qm-list", "pct-list"],
        InventoryLimits(),
    )
    assert found.outputs == {"pveversion": b"pve-manager: 8.2.4\n"}
    assert found.failed == ["qm-list", "pct-list"]
    assert found.over_limit == {}


def test_inventory_script_runs_each_command_under_timeout_and_cap() -> None:
    asked = inventory_parameters("B", ["pvesm-status"], InventoryLimits(command_bytes=1000))
    assert asked == [("boundary", "B"), ("keep", "1000"), ("command", "pvesm-status")]
    program = program_text()  # the collector: the fixed command list, each under timeout
    assert "pvesm-status) prog=pvesm; cmd='pvesm status' ;;" in program
    assert 'timeout 30 sh -c "$cmd"' in program
    assert 'command -v "$prog"' in program
    assert "head -c $((keep + 1))" in program  # one byte past the limit, no more


class Endless:
    """A node's stdout that never ends: ``head`` then the same line forever, counted."""

    def __init__(self, head: bytes) -> None:
        self.head = head
        self.sent = 0

    def read(self, size: int = -1, /) -> bytes:
        if self.sent < len(self.head):
            chunk = self.head[self.sent : self.sent + size]
        else:
            chunk = (b"pve-manager: 8.2.4 " * (size // 19 + 1))[:size]
        self.sent += len(chunk)
        return chunk


def test_an_output_over_the_command_limit_is_discarded_as_it_is_read() -> None:
    limits = InventoryLimits(command_bytes=4096, total_bytes=100 * 1024 * 1024)
    size = 50 * 1024 * 1024  # announced and sent although the script caps it on the node
    body = b"x" * 10
    stream = io.BytesIO(
        b"B begin pveversion %d\n" % size
        + b"y" * size
        + b"B end pveversion 0\n"
        + frame("B", "qm-list", body)
    )
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        found = read_inventory(stream, "B", ["pveversion", "qm-list"], limits)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024, f"{peak} bytes held for a 4 KiB limit"
    assert found.over_limit == {
        "pveversion": "printed more than 4 KiB (inventory_command_limit_kb)"
    }
    assert set(found.outputs) == {"qm-list"}
    assert found.failed == []


def test_the_node_saying_over_keeps_nothing() -> None:
    found = read_inventory(
        io.BytesIO(b"B over pveversion\n" + frame("B", "zfs-list", b"rpool\tfilesystem\n")),
        "B",
        ["pveversion", "zfs-list"],
        InventoryLimits(command_bytes=1024, total_bytes=4096),
    )
    assert set(found.over_limit) == {"pveversion"}
    assert found.outputs == {"zfs-list": b"rpool\tfilesystem\n"}


def test_reading_stops_at_the_runs_total() -> None:
    limits = InventoryLimits(command_bytes=64 * 1024, total_bytes=100 * 1024)
    endless = Endless(frame("B", "pveversion", b"a" * 60 * 1024) + b"B begin qm-list 61440\n")
    found = read_inventory(endless, "B", ["pveversion", "qm-list", "pct-list"], limits)
    assert set(found.outputs) == {"pveversion"}
    assert set(found.over_limit) == {"qm-list", "pct-list"}
    assert "100 KiB (inventory_total_limit_kb)" in found.over_limit["qm-list"]
    assert endless.sent <= limits.total_bytes + 1  # not a byte more than the total


def test_a_stream_that_ignores_the_framing_costs_no_memory() -> None:
    endless = Endless(b"")  # no newline, ever
    found = read_inventory(endless, "B", ["pveversion", "qm-list"], InventoryLimits())
    assert found.failed == ["pveversion", "qm-list"]
    assert endless.sent < 1024 * 1024
