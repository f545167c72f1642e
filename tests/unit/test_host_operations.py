"""Unit tests for the host operations (pvegit/actions/hosts.py, trust.py) and the
/etc/pve path check: a real store in tmp_path, no node.

Trusting a key read from a real node is tested in tests/test_ssh.py (CLI) and
tests/test_web.py (web, then OpenSSH reading known_hosts).
"""

from __future__ import annotations

import base64
import subprocess

import pytest

from pvegit.actions.hosts import add_host, edit_host, remove_host
from pvegit.actions.trust import OfferedKey, known_hosts_text, pin_key
from pvegit.config.home import Home
from pvegit.node.metadata import is_pmxcfs_path
from pvegit.state.store import Host, Store

KEY = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes(32)).decode()
OFFERED = OfferedKey("ssh-ed25519", KEY, "SHA256:test")


@pytest.mark.parametrize(
    ("path", "below"),
    [
        ("etc/pve", True),
        ("etc/pve/storage.cfg", True),
        ("/etc/pve/priv/authorized_keys", True),
        ("/etc/pve", True),
        ("etc/pvefoo", False),
        ("etc/pve.bak/x", False),
        ("root/etc/pve/x", False),
        ("etc", False),
    ],
)
def test_is_pmxcfs_path(path: str, below: bool) -> None:
    assert is_pmxcfs_path(path) is below


def test_known_hosts_lines_name_the_port_only_when_it_is_not_22() -> None:
    hosts = [
        Host("a", "192.0.2.1", host_key_type="ssh-ed25519", host_key=KEY),
        Host("b", "pve2.example.org", 2222, host_key_type="ssh-ed25519", host_key=KEY),
        Host("c", "192.0.2.3"),  # nothing pinned: left out
    ]
    assert known_hosts_text(hosts) == (
        f"192.0.2.1 ssh-ed25519 {KEY}\n[pve2.example.org]:2222 ssh-ed25519 {KEY}\n"
    )


def _pinned(home: Home, store: Store, address: str = "192.0.2.1", port: int = 22) -> Host:
    host = add_host(store, "pve1", {"address": address, "port": port}, actor="test")
    return pin_key(home, store, host, OFFERED, actor="test")


def test_pinning_writes_known_hosts_that_openssh_reads(home: Home, store: Store) -> None:
    _pinned(home, store, port=2222)
    assert home.known_hosts_path.read_text() == f"[192.0.2.1]:2222 ssh-ed25519 {KEY}\n"
    found = subprocess.run(
        ["ssh-keygen", "-F", "[192.0.2.1]:2222", "-f", str(home.known_hosts_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode == 0 and KEY in found.stdout
    assert [path.name for path in home.root.iterdir() if "tmp" in path.name] == []
    event = store.audit_events(action="host key trusted")[0]
    assert event.detail["fingerprint"] == "SHA256:test"


def test_an_edit_that_keeps_the_address_keeps_the_key(home: Home, store: Store) -> None:
    host = _pinned(home, store)
    edited = edit_host(home, store, host, {"address": "192.0.2.1", "user": "pvebackup"}, actor="t")
    assert edited.host_key == KEY and edited.user == "pvebackup"
    assert KEY in home.known_hosts_path.read_text()


def test_a_new_port_drops_the_key_and_its_known_hosts_line(home: Home, store: Store) -> None:
    host = _pinned(home, store)
    edited = edit_host(home, store, host, {"port": 2222}, actor="t", via="web")
    assert edited.host_key is None and edited.host_key_type is None
    assert home.known_hosts_path.read_text() == ""
    event = store.audit_events(action="host edited")[0]
    assert event.detail["via"] == "web"
    assert "host_key" in event.detail["changed"]


def test_removing_a_host_forgets_its_known_hosts_line(home: Home, store: Store) -> None:
    _pinned(home, store)
    remove_host(home, store, "pve1", actor="t")
    assert home.known_hosts_path.read_text() == ""


def test_the_cli_keeps_the_key_when_the_address_given_is_the_same(  # type: ignore[no-untyped-def]
    cli, home: Home, store: Store
) -> None:
    """`host edit --address` with the address it has is not another machine (the web
    always knew; the CLI dropped the key and asked for a new trust)."""
    assert cli("host", "add", "pve1", "--address", "192.0.2.1").code == 0
    store.update_host("pve1", host_key_type="ssh-ed25519", host_key=KEY)
    edited = cli("host", "edit", "pve1", "--address", "192.0.2.1", "--user", "pvebackup")
    assert edited.code == 0 and "next: pvegit host trust" not in edited.out
    assert store.host("pve1").host_key == KEY


def test_the_cli_rewrites_known_hosts_when_an_edit_drops_a_key(  # type: ignore[no-untyped-def]
    cli, home: Home, store: Store
) -> None:
    assert cli("host", "add", "pve1", "--address", "192.0.2.1").code == 0
    store.update_host("pve1", host_key_type="ssh-ed25519", host_key=KEY)
    home.known_hosts_path.write_text(f"192.0.2.1 ssh-ed25519 {KEY}\n")
    edited = cli("host", "edit", "pve1", "--address", "192.0.2.2")
    assert edited.code == 0 and "next: pvegit host trust pve1" in edited.out
    assert home.known_hosts_path.read_text() == ""
