"""A node that prints without end where pvegit expects a short answer: every command's
stdout is read within a limit chosen where it is run, over SSH and locally.

Each face (the CLI's and the web's connection test, verify, restore, installing the
key) fails with a message naming the limit and what it was for, reads no more than
the limit (memory measured), and stores nothing it would not store for any failure.
"""

from __future__ import annotations

import re
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from starlette.testclient import TestClient
from test_web import login

from pvegit.actions.snapshot import take_snapshot
from pvegit.config.file import Config
from pvegit.config.home import Home
from pvegit.demo.node import DemoNode
from pvegit.errors import CollectError
from pvegit.git.repo import HostRepository
from pvegit.state.credentials import hash_password
from pvegit.state.store import Host, Store
from testbed.nodes import Node
from web.app import create_app

FLOOD_BYTES = 64 * 1024 * 1024
# Reading the flood whole would hold 64 MiB at least (twice that as bytes); within the
# limits pvegit holds a few MiB (a limit of at most 1 MiB here, paramiko's 2 MiB window).
PEAK_LIMIT = 16 * 1024 * 1024
PASSWORD = "correct horse battery"
T = TypeVar("T")


def flooding(then: str = "", *, to: str = "") -> str:
    """A stand-in printing 64 MiB (to ``to``, else its stdout), then running ``then``."""
    return f"#!/bin/sh\nyes pwned | /usr/bin/head -c {FLOOD_BYTES}{to}\n{then}"


def peak_of(action: Callable[[], T]) -> tuple[T, int]:
    """What ``action`` returned, and the peak of Python's memory while it ran."""
    tracemalloc.start()
    try:
        result = action()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def head(home: Home, name: str = "pve1") -> str | None:
    with HostRepository(home.repo_path(name)) as repository:
        return repository.head()


def test_host_test_in_the_cli_stops_reading_a_flooding_pveversion(
    cli,  # type: ignore[no-untyped-def]
    store: Store,
    node: Node,
    ssh_host: Host,
) -> None:
    node.write("/usr/sbin/pveversion", flooding(), mode=0o755)
    hosts = store.hosts()

    result, peak = peak_of(lambda: cli("host", "test", "pve1"))

    assert peak < PEAK_LIMIT, f"peak {peak / 1e6:.1f} MB"
    assert result.code == 1, result.out + result.err
    assert "ok   node says it is 'pve1'" in result.out
    assert (
        "FAIL pve1: the node sent more than 64 KiB for the PVE version (pveversion); "
        "pvegit stopped reading there"
    ) in result.out
    assert "pwned" not in result.out and "Traceback" not in result.err
    assert store.hosts() == hosts


def test_test_connection_in_the_web_stops_reading_a_flooding_pveversion(
    home: Home, store: Store, node: Node, ssh_host: Host
) -> None:
    store.add_user("admin", hash_password(PASSWORD))
    store.add_user("operator", hash_password(PASSWORD), role="operator")
    node.write("/usr/sbin/pveversion", flooding(), mode=0o755)
    hosts = store.hosts()
    app = create_app(home, Config(concurrency=2), store=store)
    with TestClient(app, follow_redirects=False) as client:
        token = login(client, "operator", PASSWORD)

        page, peak = peak_of(lambda: client.post("/hosts/pve1/test", data={"csrf_token": token}))

    assert peak < PEAK_LIMIT, f"peak {peak / 1e6:.1f} MB"
    text = page.text
    assert page.status_code == 200, text
    assert "the node answered with its trusted host key" in text
    assert "pve1: the node sent more than 64 KiB for the PVE version (pveversion)" in text
    assert "pwned" not in text and "Traceback" not in text
    assert store.hosts() == hosts


def test_verify_of_a_node_whose_sha256sum_floods(
    cli,  # type: ignore[no-untyped-def]
    home: Home,
    store: Store,
    node: Node,
    ssh_host: Host,
) -> None:
    # Before the snapshot: /usr/local/bin is collected, and verify snapshots first.
    node.write("/usr/local/bin/sha256sum", flooding(), mode=0o755)
    assert take_snapshot(home, store, ssh_host).status == "changed"
    before = head(home)

    result, peak = peak_of(lambda: cli("verify", "pve1"))

    assert peak < PEAK_LIMIT, f"peak {peak / 1e6:.1f} MB"
    assert result.code == 1, result.out + result.err
    found = re.search(
        r"pvegit: pve1: the node's checksums could not be read: pve1: the node sent more "
        r"than [\d.]+ MiB for the checksums of (\d+) files \(sha256sum\); pvegit stopped "
        "reading there",
        result.err,
    )
    assert found, result.err
    assert int(found.group(1)) > 10
    assert "Traceback" not in result.err
    assert head(home) == before  # the verify's snapshot found nothing new
    assert store.verifications()["pve1"].problems


def test_verify_of_a_local_host_whose_sha256sum_floods(
    cli,  # type: ignore[no-untyped-def]
    home: Home,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    demo = DemoNode(tmp_path / "node", "pve1")
    demo.create()
    added = cli("host", "add", "pve1", "--address", f"local:{demo.root}", "--category", "cluster")
    assert added.code == 0, added.err
    assert cli("snapshot", "pve1").code == 0
    before = head(home)
    programs = tmp_path / "bin"
    programs.mkdir()
    (programs / "sha256sum").write_text(flooding())
    (programs / "sha256sum").chmod(0o755)
    monkeypatch.setenv("PATH", f"{programs}:/usr/bin:/bin")

    result, peak = peak_of(lambda: cli("verify", "pve1"))

    assert peak < PEAK_LIMIT, f"peak {peak / 1e6:.1f} MB"
    assert result.code == 1, result.out + result.err
    assert "pvegit: pve1: the node's checksums could not be read: the node sent more than" in (
        result.err
    )
    assert "(sha256sum); pvegit stopped reading there" in result.err
    assert head(home) == before


def test_host_test_of_a_local_host_stops_reading_a_flooding_pveversion(
    cli,  # type: ignore[no-untyped-def]
    store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert cli("host", "add", "here", "--address", "local").code == 0
    programs = tmp_path / "bin"
    programs.mkdir()
    (programs / "pveversion").write_text(flooding())
    (programs / "pveversion").chmod(0o755)
    monkeypatch.setenv("PATH", f"{programs}:/usr/bin:/bin")
    hosts = store.hosts()

    result, peak = peak_of(lambda: cli("host", "test", "here"))

    assert peak < PEAK_LIMIT, f"peak {peak / 1e6:.1f} MB"
    assert result.code == 1, result.out + result.err
    assert (
        "FAIL the node sent more than 64 KiB for the PVE version (pveversion); "
        "pvegit stopped reading there"
    ) in result.out
    assert store.hosts() == hosts


# Before a restore writes, pvegit asks pvegit-restore (sent inline to a root login) for
# its version. The stand-in `sh` floods that answer; every other script it runs as /bin/sh.
SH_FLOODING_THE_VERSION_ANSWER = (
    "#!/bin/sh\n"
    'if [ "$SSH_ORIGINAL_COMMAND" = "pvegit version 1" ]; then\n'
    f"  yes pwned | /usr/bin/head -c {FLOOD_BYTES}; exit 0\n"
    "fi\n"
    'exec /bin/sh "$@"\n'
)


def test_a_restore_whose_version_check_floods_writes_nothing(
    cli,  # type: ignore[no-untyped-def]
    home: Home,
    store: Store,
    node: Node,
    ssh_host: Host,
) -> None:
    assert take_snapshot(home, store, ssh_host).status == "changed"
    node.write("/etc/pve/storage.cfg", "dir: broken\n")
    node.write("/usr/local/bin/sh", SH_FLOODING_THE_VERSION_ANSWER, mode=0o755)

    result, peak = peak_of(lambda: cli("restore", "pve1", "HEAD", "/etc/pve/storage.cfg", "--yes"))

    assert peak < PEAK_LIMIT, f"peak {peak / 1e6:.1f} MB"
    assert result.code == 1, result.out + result.err
    assert (
        "pvegit: pve1: the node sent more than 4 KiB for the version of pvegit-restore; "
        "pvegit stopped reading there."
    ) in result.err
    assert result.err.rstrip().endswith("Nothing was written")
    assert node.read("/etc/pve/storage.cfg") == "dir: broken\n"
    assert store.audit_events(action="restore") == []  # stopped before it started


def test_a_restore_whose_write_script_floods_reports_every_write_unknown(
    cli,  # type: ignore[no-untyped-def]
    home: Home,
    store: Store,
    node: Node,
    ssh_host: Host,
) -> None:
    assert take_snapshot(home, store, ssh_host).status == "changed"
    node.write("/etc/hosts", "10.9.9.9 broken\n")
    node.write("/usr/local/bin/mv", flooding('exec /usr/bin/mv "$@"\n'), mode=0o755)

    result, peak = peak_of(lambda: cli("restore", "pve1", "HEAD", "/etc/hosts", "--yes"))

    assert peak < PEAK_LIMIT, f"peak {peak / 1e6:.1f} MB"
    assert result.code == 1, result.out + result.err
    assert re.search(
        r"pvegit: /etc/hosts: not known whether written: pve1: the node sent more than "
        r"[\d.]+ MiB for the restore's report of its writes; pvegit stopped reading there",
        result.err,
    ), result.err
    # The snapshot after the restore still records what the node has.
    assert "after the restore: run" in result.out
    entry = store.audit_events(action="restore")[0]
    assert entry.state == "failed", entry


def test_installing_the_key_stops_reading_a_flooding_readlink(
    home: Home, node: Node, ssh_host: Host
) -> None:
    from pvegit.actions.harden import install_collector
    from pvegit.config.selection import resolve_selection
    from pvegit.node.ssh import SshTransport

    node.write("/usr/local/bin/readlink", flooding(), mode=0o755)
    transport = SshTransport.connect(home, ssh_host)
    try:

        def install() -> None:
            with pytest.raises(
                CollectError, match=r"more than 1 MiB for the path of authorized_keys"
            ):
                install_collector(transport, home, resolve_selection(ssh_host.categories))

        _, peak = peak_of(install)
    finally:
        transport.close()
    assert peak < PEAK_LIMIT, f"peak {peak / 1e6:.1f} MB"
