"""Faults against simulated nodes: kills, a full disk, a locked database.

Each case ends with the stored state checked (git fsck --strict on every
repository, SQLite's integrity check, the run log against the repositories)
and a next run that succeeds. Full-length versions: bench/kill_loop.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pvegit.actions.snapshot import SnapshotOptions, take_snapshot
from pvegit.config.file import Config, Target
from pvegit.config.home import Home
from pvegit.git.repo import HostRepository
from pvegit.service.housekeeping import check_storage
from pvegit.state.store import Run, Store
from testbed.faults import GUEST_DIR, damage_report, hosts_on, kill_loop, seed_from
from testbed.nodes import Node, TestBed, register_node
from testbed.webhook import Receiver
from web.app import create_app
from web.metrics import render_metrics

KILLS = int(os.environ.get("PVEGIT_KILLS", "10"))


def test_killed_at_random_points_loses_nothing(testbed: TestBed, home: Home, store: Store) -> None:
    seed = seed_from(os.environ.get("PVEGIT_FAULT_SEED"))
    print(f"kill loop: seed {seed} (PVEGIT_FAULT_SEED={seed} repeats the kill times)")
    nodes = [testbed.start(f"kill{number}", node_name="pve1") for number in range(3)]
    try:
        hosts_on(store, home, nodes, per_node=2)
        report = kill_loop(home, store, nodes, iterations=KILLS, seed=seed)
    finally:
        for node in nodes:
            node.stop()
    print(report.summary())
    assert not report.problems, f"{report.summary()}\n" + "\n".join(report.problems)
    assert report.killed_mid_run >= 1, f"no kill landed mid-run: {report.summary()}"


# -- a full disk -----------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs for $PVEGIT_HOME (mounting needs root)."""
    if os.geteuid() != 0:
        if os.environ.get("PVEGIT_REQUIRE_SSHD"):
            pytest.fail("the full-disk test needs root to mount a tmpfs")
        pytest.skip("the full-disk test needs root to mount a tmpfs")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(mount)], check=True
    )
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` until ``leave`` bytes are free."""
    stats = os.statvfs(disk)
    filler = disk / "filler"
    with open(filler, "wb") as handle:
        os.posix_fallocate(handle.fileno(), 0, stats.f_bavail * stats.f_frsize - leave)
    return filler


def test_full_disk_fails_clearly_damages_nothing_and_recovers(
    testbed: TestBed, small_disk: Path, node: Node
) -> None:
    home = Home(small_disk / "home")
    home.initialize()
    store = Store(home.state_path)
    host = register_node(store, home, node, "pve1", categories=("cluster",))
    receiver = Receiver()
    config = Config(
        storage_reserve_mb=1,
        storage_warn_percent=20,
        targets=(Target("hook", "webhook", url=receiver.url),),
    )
    app = create_app(home, config=config, store=store)
    context = app.state.pvegit
    options = SnapshotOptions(reserve_bytes=0)  # let it run into the wall
    try:
        assert take_snapshot(home, store, host, options).status == "changed"
        check_storage(home, store, config, context.notifier)  # 8 MiB, nearly empty: no alert
        for number in range(40):  # ~1.6 MB that does not compress
            node.write(f"{GUEST_DIR}/{700 + number}.conf", os.urandom(30_000).hex())
        filler = fill(small_disk, leave=300 * 1024)

        failed = take_snapshot(home, store, host, options)
        assert failed.status == "failed", failed
        assert f"the disk holding {home.root} is full" in (failed.error or "")
        assert "nothing already stored was changed" in (failed.error or "")
        assert damage_report(home, store) == []
        packs = home.repo_path("pve1") / "objects" / "pack"
        assert not list(packs.glob("tmp*")), "a half-written pack was left behind"

        # The reserve: with less free than it, a run does not even start.
        refused = take_snapshot(home, store, host, SnapshotOptions(reserve_bytes=1024 * 1024))
        assert refused.status == "failed" and "pvegit keeps 1.0 MiB free" in (refused.error or "")
        # Storage monitoring: the dashboard, /metrics and one alert.
        check_storage(home, store, config, context.notifier)
        check_storage(home, store, config, context.notifier)
        alert = receiver.wait_for(lambda bodies: len(bodies) == 1)[0]
        assert alert["title"] == "pvegit: storage almost full" and alert["event"] == "failed"

        filler.unlink()
        check_storage(home, store, config, context.notifier)
        events = receiver.wait_for(lambda bodies: len(bodies) == 2)
        assert events[1]["event"] == "recovered"
        again = take_snapshot(home, store, host, SnapshotOptions(reserve_bytes=1024 * 1024))
        assert again.status == "changed", again
        with HostRepository(home.repo_path("pve1")) as repository:
            head = repository.head()
            assert head is not None
            names = {entry.path for entry in repository.iter_files(head)}
        assert {f"etc/pve/nodes/pve1/qemu-server/{700 + n}.conf" for n in range(40)} <= names
        assert damage_report(home, store) == []
    finally:
        receiver.close()
        store.close()


def test_storage_warning_on_dashboard_metrics_and_runs(home: Home, tmp_path: Path) -> None:
    """Warnings come before the disk is full: here any disk counts as nearly full."""
    from starlette.testclient import TestClient

    from pvegit.demo.node import DemoNode
    from pvegit.state.credentials import hash_password
    from pvegit.state.store import Host

    store = Store(home.state_path)
    store.add_user("admin", hash_password("a long password here"))
    node = DemoNode(tmp_path / "node", "pve1")
    node.create()
    host = store.add_host(Host("pve1", f"local:{node.root}"))
    run = take_snapshot(home, store, host, SnapshotOptions(reserve_bytes=0, warn_percent=100))
    assert any("has only" in warning and "free some space" in warning for warning in run.warnings)
    app = create_app(home, config=Config(storage_warn_percent=100), store=store)
    with TestClient(app, follow_redirects=False) as client:
        page = client.get("/login")
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        client.post(
            "/login",
            data={"username": "admin", "password": "a long password here", "csrf_token": token},
        )
        dashboard = client.get("/")
        assert "storage-warning" in dashboard.text and "Snapshots stop when less than" in (
            dashboard.text
        )
        metrics = render_metrics(app.state.pvegit)[0].decode()
        assert "pvegit_storage_free_bytes " in metrics and "pvegit_storage_size_bytes " in metrics
    store.close()


# -- the state database held by another process -------------------------------

HOLDER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("holding", flush=True)
sys.stdin.readline()
connection.execute("COMMIT")
"""


def test_locked_state_database_is_waited_for(
    home: Home, node: Node, testbed: TestBed, store: Store
) -> None:
    host = register_node(store, home, node, "pve1", categories=("cluster",))
    patient = Store(home.state_path, busy_timeout=0.2)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(home.state_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline() == "holding\n"
    finished: list[Run] = []
    worker = threading.Thread(target=lambda: finished.append(take_snapshot(home, patient, host)))
    worker.start()
    deadline = time.monotonic() + 60
    while patient.busy_waits < 3 and time.monotonic() < deadline:
        worker.join(0.05)  # the run is blocked on the lock; watch its retry count
    assert patient.busy_waits >= 3 and not finished, "the run did not wait for the lock"
    began = time.monotonic()  # meanwhile the process' other threads still read (pages)
    assert [host.name for host in patient.hosts()] == ["pve1"]
    assert time.monotonic() - began < 5
    holder.stdin.write("\n")
    holder.stdin.close()
    assert holder.wait(30) == 0
    holder.stdout.close()
    worker.join(120)
    assert finished and finished[0].status == "changed", finished
    runs = store.runs("pve1")
    assert [run.status for run in runs] == ["changed"] and runs[0].commit_id
    assert damage_report(home, store) == []
    patient.close()
