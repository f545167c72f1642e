"""A restore's audit entry (written before the first write, interrupted when killed) and
the explicit, audited way past the mass-deletion guard, on simulated nodes over SSH."""

from __future__ import annotations

import json
import signal
import subprocess
import time

from conftest import git
from starlette.testclient import TestClient
from test_web import PASSWORD, login

from pvegit.actions.snapshot import take_snapshot
from pvegit.cli.common import actor
from pvegit.config.file import Config
from pvegit.config.home import Home
from pvegit.state.credentials import hash_password
from pvegit.state.store import Host, Store
from testbed.faults import pvegit_command
from testbed.nodes import Node
from web.app import create_app

GUESTS = "/etc/pve/nodes/pve1/qemu-server"


def web_client(home: Home, store: Store) -> TestClient:
    """The web UI on the same home, with an admin to log in as."""
    store.add_user("admin", hash_password(PASSWORD))
    app = create_app(home, Config(concurrency=1), store=store)
    return TestClient(app, follow_redirects=False)


def restore_entries(cli) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    """The audit log as `pvegit audit` shows it: restores of pve1, newest first."""
    shown = cli("audit", "pve1", "--action", "restore", "--json")
    assert shown.code == 0, shown.err
    entries: list[dict[str, object]] = json.loads(shown.out)
    return entries


def test_a_restore_killed_half_way_is_in_the_audit_log_as_interrupted(
    cli,
    home: Home,
    store: Store,
    node: Node,
    ssh_host: Host,  # type: ignore[no-untyped-def]
) -> None:
    configs = [f"{GUESTS}/{number}.conf" for number in (100, 101, 102, 104)]
    revision = take_snapshot(home, store, ssh_host).commit_id
    for path in configs:
        node.write(path, "memory: 1\n")
    # The node's base64 (one per file written) stops at the second file until released.
    node.sh("mkfifo /run/gate && echo 0 > /run/count")
    node.write(
        "/usr/sbin/base64",
        "#!/bin/sh\nn=$(cat /run/count); n=$((n + 1)); echo $n > /run/count\n"
        "[ $n = 2 ] && { echo waiting > /run/stuck; read line < /run/gate; }\n"
        'exec /usr/bin/base64 "$@"\n',
        mode=0o755,
    )
    process = subprocess.Popen(
        pvegit_command(home, "restore", "pve1", "HEAD", *configs, "--yes"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while node.sh("test -e /run/stuck", check=False).returncode != 0:
            assert time.monotonic() < deadline and process.poll() is None
        # Half way: the first file is written, the second is being written.
        [entry] = restore_entries(cli)
        assert entry["state"] == "running"
        detail = entry["detail"]
        assert isinstance(detail, dict)
        assert detail["revision"] == revision and detail["stage"] == "writing"
        assert detail["paths"] == ", ".join(configs)
        assert entry["actor"] == actor() and entry["host"] == "pve1"
        before = detail["before"]  # the pre-restore snapshot, recorded before any write
        assert before == git("--git-dir", str(home.repo_path("pve1")), "rev-parse", "HEAD").strip()
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    node.sh("rm /usr/sbin/base64")
    [entry] = restore_entries(cli)
    assert entry["state"] == "interrupted"
    assert isinstance(entry["detail"], dict) and entry["detail"]["before"] == before
    assert node.read(configs[0]) != "memory: 1\n"  # the one file it wrote
    # The web UI's audit page says so too.
    store.add_user("admin", hash_password(PASSWORD))
    with TestClient(
        create_app(home, Config(concurrency=1), store=store), follow_redirects=False
    ) as client:
        login(client)
        page = client.get("/audit?host=pve1&action=restore")
        assert page.status_code == 200 and "Interrupted" in page.text
    # The entry's undo point puts the node back; that restore completes.
    undo = cli("restore", "pve1", str(before), *configs, "--yes")
    assert undo.code == 0, undo.out + undo.err
    assert [node.read(path) for path in configs] == ["memory: 1\n"] * len(configs)
    assert [entry["state"] for entry in restore_entries(cli)] == ["completed", "interrupted"]


def lose_most_files(node: Node) -> None:
    """What a failed disk or a wrong rm leaves: most of /etc/pve and of /etc gone."""
    node.sh(
        "rm -rf /etc/pve/firewall /etc/pve/nodes/*/qemu-server/* /etc/pve/nodes/*/lxc/* "
        "/etc/pve/sdn /etc/pve/storage.cfg /etc/apt /etc/cron.d /etc/cron.daily /etc/sysctl.d "
        "/etc/modprobe.d /etc/systemd/network"
    )


def test_a_node_that_lost_most_files_is_restored_past_the_guard_when_asked(
    cli,
    home: Home,
    store: Store,
    node: Node,
    ssh_host: Host,  # type: ignore[no-untyped-def]
) -> None:
    original = take_snapshot(home, store, ssh_host).commit_id
    assert original is not None
    storage = node.read("/etc/pve/storage.cfg")
    paths = ["/etc/pve", "/etc/apt", "/etc/cron.d", "/etc/sysctl.d"]
    lose_most_files(node)
    refused = cli("restore", "pve1", "HEAD", *paths, "--yes")
    assert refused.code == 1
    assert "mass-deletion guard held it" in refused.err and "--accept-deletions" in refused.err
    assert node.sh("test -e /etc/pve/storage.cfg", check=False).returncode == 1  # nothing written
    [entry] = restore_entries(cli)
    assert entry["state"] == "refused"

    done = cli("restore", "pve1", "HEAD", *paths, "--yes", "--accept-deletions")
    assert done.code == 0, done.out + done.err
    assert "verified: the node now matches" in done.out
    assert node.read("/etc/pve/storage.cfg") == storage
    # The undo point is exact: the pre-restore commit records the deletions.
    repository = str(home.repo_path("pve1"))
    undo_point = git("--git-dir", repository, "ls-tree", "-r", "--name-only", "HEAD~1")
    assert "etc/pve/storage.cfg" not in undo_point and "etc/apt/sources.list" not in undo_point
    assert "etc/pve/storage.cfg" in git("--git-dir", repository, "ls-tree", "-r", "HEAD")
    entry = restore_entries(cli)[0]
    assert entry["state"] == "completed" and entry["actor"] == actor()
    detail = entry["detail"]
    assert isinstance(detail, dict) and "accept_deletions" in detail["options"]
    assert str(detail["guard_passed"]).startswith("forced past the mass-deletion guard: ")

    # The same from the web UI: refused without the check box, done with it, audited.
    lose_most_files(node)
    store.add_user("admin", hash_password(PASSWORD))
    with TestClient(
        create_app(home, Config(concurrency=1), store=store), follow_redirects=False
    ) as client:
        token = login(client)
        form = client.get("/hosts/pve1/restore")
        assert 'name="accept_deletions"' in form.text
        values = {"csrf_token": token, "commit": original, "paths": "\n".join(paths)}
        refused_page = client.post("/hosts/pve1/restore", data={**values, "confirm": "yes"})
        assert "mass-deletion guard held it" in refused_page.text
        accepted = client.post(
            "/hosts/pve1/restore", data={**values, "confirm": "yes", "accept_deletions": "1"}
        )
        assert accepted.status_code == 200 and "Restored and verified" in accepted.text
    assert node.read("/etc/pve/storage.cfg") == storage
    entry = restore_entries(cli)[0]
    assert entry["actor"] == "admin" and entry["state"] == "completed"
    assert isinstance(entry["detail"], dict) and entry["detail"]["guard_passed"]
