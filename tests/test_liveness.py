"""Whether a run recorded as running is still being run (pvegit/state/liveness.py).

A pid is reused (a reboot, a container where serve is PID 1): a run is alive
only while the very process that recorded it (boot id, start time) exists, or
this process still claims it; an old record with only a pid counts while its
host's lock is held; a run past its deadline counts as failed and its host
as stale. Real processes throughout: this test's own pid, PID 1, a real
`pvegit snapshot` held at a real node's tar, SIGKILLed or not.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from pvegit.actions.snapshot import take_snapshot
from pvegit.config.home import Home
from pvegit.demo.node import DemoNode
from pvegit.service.housekeeping import housekeeping
from pvegit.service.launcher import RunLauncher
from pvegit.state.liveness import OVERDUE, settle_runs, settled_run
from pvegit.state.store import Host, Store
from pvegit.system.locks import exclusive, is_held
from pvegit.system.processes import boot_id, identity_of, this_process
from testbed.nodes import Node
from web.app import create_app

OTHER_BOOT = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def demo_host(store: Store, tmp_path: Path) -> Host:
    node = DemoNode(tmp_path / "node", "pve1")
    node.create()
    return store.add_host(Host("pve1", f"local:{node.root}", categories=("cluster",)))


@pytest.fixture
def launcher(home: Home, store: Store) -> Iterator[RunLauncher]:
    started = RunLauncher(home, store, concurrency=2)
    yield started
    started.shutdown()


def record_running(
    store: Store,
    host: str,
    *,
    pid: int,
    boot: str | None,
    start_time: int | None,
    deadline: float | None = None,
) -> int:
    """A run row as a process with this identity would have left it."""
    with store.transaction() as connection:
        cursor = connection.execute(
            "INSERT INTO runs (host, trigger, status, stage, started_at, pid, boot_id,"
            " process_start, deadline) VALUES (?, 'schedule', 'running', 'collect', ?, ?, ?, ?, ?)",
            (host, store.now() - 60, pid, boot, start_time, deadline),
        )
        return int(cursor.lastrowid or 0)


def _pid_one_start() -> int:
    identity = identity_of(1)
    assert identity is not None and identity.start_time is not None
    return identity.start_time


REUSED_PIDS = {
    # this very pid, but an earlier process that had it
    "own pid, earlier start": lambda: (this_process().pid, boot_id(), _start() - 1),
    # PID 1 of an earlier boot (serve as PID 1 of a container, restarted)
    "PID 1, earlier boot": lambda: (1, OTHER_BOOT, _pid_one_start()),
    # PID 1 of this boot, another process than the one running now
    "PID 1, other start": lambda: (1, boot_id(), _pid_one_start() + 12345),
}


def _start() -> int:
    start = this_process().start_time
    assert start is not None
    return start


@pytest.mark.parametrize("owner", sorted(REUSED_PIDS))
def test_a_reused_pid_does_not_keep_a_run_alive(
    owner: str, home: Home, store: Store, demo_host: Host, launcher: RunLauncher
) -> None:
    pid, boot, start = REUSED_PIDS[owner]()
    old = record_running(store, "pve1", pid=pid, boot=boot, start_time=start)
    new = launcher.launch(demo_host, trigger="manual", actor="admin")
    assert new != old  # it used to answer with the old run, for ever
    assert launcher.wait_idle(60)
    assert store.run(new).status == "changed"
    settled = store.run(old)
    assert settled.status == "failed" and "interrupted" in (settled.error or "")
    assert settled.failure == "transient"  # the scheduler retries it


def test_a_run_with_a_reused_pid_is_interrupted_through_the_cli(
    cli, home: Home, store: Store, demo_host: Host
) -> None:  # type: ignore[no-untyped-def]
    old = record_running(store, "pve1", pid=1, boot=OTHER_BOOT, start_time=_pid_one_start())
    listed = cli("runs")
    assert listed.code == 0
    line = next(item for item in listed.out.splitlines() if item.split()[0] == str(old))
    assert " failed " in line and "interrupted" in line
    assert cli("snapshot", "pve1").code == 0
    assert store.runs("pve1")[0].status == "changed"


def test_a_run_with_a_reused_pid_is_not_running_through_the_api(
    cli, home: Home, store: Store, demo_host: Host
) -> None:  # type: ignore[no-untyped-def]
    token = cli("token", "add", "ci", "--role", "operator").out.split()[-1]
    headers = {"Authorization": f"Bearer {token}"}
    old = record_running(store, "pve1", pid=this_process().pid, boot=boot_id(), start_time=0)
    app = create_app(home, store=store)
    with TestClient(app) as client:
        hosts = client.get("/api/v1/hosts", headers=headers).json()
        assert hosts[0]["status"]["kind"] == "failing"
        assert "interrupted" in hosts[0]["status"]["reason"]
        started = client.post("/api/v1/hosts/pve1/snapshot", headers=headers)
        assert started.status_code == 202 and started.json()["run"] != old
        assert app.state.pvegit.launcher.wait_idle(60)
        assert client.get(f"/api/v1/runs/{old}", headers=headers).json()["status"] == "failed"
        run = client.get(f"/api/v1/runs/{started.json()['run']}", headers=headers).json()
        assert run["status"] == "changed"


def test_a_run_that_stopped_after_its_commit_keeps_it_whoever_looks_first(
    cli, home: Home, store: Store, demo_host: Host
) -> None:  # type: ignore[no-untyped-def]
    old = record_running(store, "pve1", pid=1, boot=OTHER_BOOT, start_time=_pid_one_start())
    # Its commit landed, its record did not (a kill, or state.db's WAL cut short).
    commit_id = take_snapshot(home, store, demo_host, run_id=old).commit_id
    with store.transaction() as connection:
        connection.execute(
            "UPDATE runs SET status='running', commit_id=NULL, finished_at=NULL WHERE id=?", (old,)
        )
    listed = cli("runs")  # a look, before any other run of the host
    line = next(item for item in listed.out.splitlines() if item.split()[0] == str(old))
    assert " changed " in line and (commit_id or "?")[:10] in line
    assert store.run(old).commit_id == commit_id


def test_a_host_left_running_by_a_dead_process_is_scheduled_again(home: Home, store: Store) -> None:
    # No key pinned: serve's housekeeping neither verifies nor contacts it.
    store.add_host(Host("pve2", "192.0.2.1", schedule="hourly"))
    record_running(store, "pve2", pid=1, boot=OTHER_BOOT, start_time=_pid_one_start())
    app = create_app(home, store=store)
    context = app.state.pvegit
    assert app.state.scheduler.plan() == []  # 'running': never due again, before
    housekeeping(home, store, context.config, context.notifier, now=store.now())
    assert [due.host.name for due in app.state.scheduler.plan()] == ["pve2"]
    context.launcher.shutdown()


def test_a_run_of_this_process_lives_while_this_process_runs_it(
    home: Home, store: Store, demo_host: Host, launcher: RunLauncher
) -> None:
    run_id = store.start_run("pve1", "manual")
    assert [run.id for run in settle_runs(home, store)] == [run_id]
    assert launcher.launch(demo_host, trigger="manual", actor=None) == run_id  # deduped
    # Its thread ended without finishing the record (a full disk): interrupted.
    store.release_run(run_id)
    assert settled_run(home, store, run_id).status == "failed"
    new = launcher.launch(demo_host, trigger="manual", actor=None)
    assert new != run_id and launcher.wait_idle(60)
    assert store.run(new).status == "changed"


def test_an_old_record_with_only_a_pid_counts_while_the_host_is_locked(
    home: Home, store: Store, demo_host: Host, launcher: RunLauncher
) -> None:
    old = record_running(store, "pve1", pid=this_process().pid, boot=None, start_time=None)
    with exclusive(home.lock_path("pve1"), timeout=1, what="pve1"):
        assert is_held(home.lock_path("pve1"))
        assert launcher.launch(demo_host, trigger="manual", actor=None) == old
    assert not is_held(home.lock_path("pve1"))
    new = launcher.launch(demo_host, trigger="manual", actor=None)
    assert new != old and launcher.wait_idle(60)
    assert store.run(old).status == "failed" and store.run(new).status == "changed"
    # A pid that is gone counts as gone, lock or not.
    dead = subprocess.Popen(["true"])
    dead.wait()
    gone = record_running(store, "pve1", pid=dead.pid, boot=None, start_time=None)
    with exclusive(home.lock_path("pve1"), timeout=1, what="pve1"):
        assert settled_run(home, store, gone).status == "failed"


def test_an_old_state_database_opens_and_its_running_rows_are_judged(
    home: Home, tmp_path: Path
) -> None:
    """A state.db of a release without the run's identity columns."""
    database = sqlite3.connect(home.state_path)
    database.executescript(
        "CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, host TEXT NOT NULL,"
        " trigger TEXT NOT NULL, actor TEXT, status TEXT NOT NULL, stage TEXT,"
        " progress_done INTEGER NOT NULL DEFAULT 0, progress_total INTEGER NOT NULL DEFAULT 0,"
        " started_at REAL NOT NULL, finished_at REAL, duration REAL,"
        " files INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0,"
        " changed_files INTEGER NOT NULL DEFAULT 0, commit_id TEXT,"
        " warnings TEXT NOT NULL DEFAULT '[]', error TEXT, pid INTEGER, failure TEXT);"
        "INSERT INTO runs (host, trigger, status, stage, started_at, pid)"
        " VALUES ('pve1', 'schedule', 'running', 'collect', 1700000000, 1);"
    )
    database.commit()
    database.close()
    store = Store(home.state_path)
    try:
        [run] = store.running_runs()
        assert run.pid == 1 and run.boot_id is None and run.deadline is None
        assert settle_runs(home, store) == []  # PID 1 lives, but nobody holds pve1's lock
        assert store.run(run.id).status == "failed"
        assert store.start_run("pve1", "manual") == run.id + 1
    finally:
        store.close()


def test_a_process_is_named_by_its_start_time_whatever_its_command_name(
    tmp_path: Path,
) -> None:
    odd = tmp_path / "a) b (c"  # field 2 of /proc/PID/stat holds spaces and parentheses
    shutil.copy(shutil.which("sleep") or "/bin/sleep", odd)
    process = subprocess.Popen([str(odd), "60"])
    try:
        identity = identity_of(process.pid)
        stat = Path(f"/proc/{process.pid}/stat").read_text()
        assert identity is not None and identity.boot_id == boot_id()
        assert identity.start_time == int(stat.rpartition(")")[2].split()[19])
        process.send_signal(signal.SIGKILL)
        # Until it is waited for it is a zombie: it runs nothing any more.
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        assert identity_of(process.pid) is None
    finally:
        process.kill()
        process.wait()


def snapshot_process(home: Home) -> subprocess.Popen[bytes]:
    """A real `pvegit snapshot pve1` in a process of its own."""
    return subprocess.Popen(
        [sys.executable, "-m", "pvegit", "--home", str(home.root), "snapshot", "pve1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def operator_headers(cli) -> dict[str, str]:  # type: ignore[no-untyped-def]
    token = cli("token", "add", "ci", "--role", "operator").out.split()[-1]
    return {"Authorization": f"Bearer {token}"}


def test_a_run_of_another_process_lives_until_that_process_is_killed(
    cli, home: Home, store: Store, node: Node, ssh_host: Host
) -> None:  # type: ignore[no-untyped-def]
    assert take_snapshot(home, store, ssh_host).status == "changed"
    node.write("/etc/pve/storage.cfg", node.read("/etc/pve/storage.cfg") + "\n# edited\n")
    headers = operator_headers(cli)
    app = create_app(home, store=store)
    with TestClient(app) as client:
        with node.held_tar() as wait_started:
            process = snapshot_process(home)
            try:
                wait_started(30)
                [held] = store.running_runs("pve1")
                assert held.pid == process.pid
                assert held.deadline is not None  # the CLI's run has its time limit
                started = client.post("/api/v1/hosts/pve1/snapshot", headers=headers)
                assert started.json()["run"] == held.id  # deduped: it is really running
                hosts = client.get("/api/v1/hosts", headers=headers).json()
                assert hosts[0]["status"]["kind"] == "running"
                run = client.get(f"/api/v1/runs/{held.id}", headers=headers).json()
                assert run["status"] == "running"
            finally:
                process.send_signal(signal.SIGKILL)
                process.wait()
            killed = client.get(f"/api/v1/runs/{held.id}", headers=headers).json()
            assert killed["status"] == "failed" and "interrupted" in killed["error"]
            hosts = client.get("/api/v1/hosts", headers=headers).json()
            assert hosts[0]["status"]["kind"] == "failing"
        started = client.post("/api/v1/hosts/pve1/snapshot", headers=headers)
        assert started.json()["run"] != held.id
        assert app.state.pvegit.launcher.wait_idle(120)
        assert store.run(started.json()["run"]).status == "changed"


class MovableClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_run_past_its_deadline_fails_and_its_host_is_stale(
    cli, home: Home, store: Store, node: Node, ssh_host: Host
) -> None:  # type: ignore[no-untyped-def]
    assert take_snapshot(home, store, ssh_host).status == "changed"
    node.write("/etc/pve/storage.cfg", node.read("/etc/pve/storage.cfg") + "\n# edited\n")
    headers = operator_headers(cli)
    (home.root / "pvegit.toml").write_text("[server]\nrun_timeout = 600\n")
    clock = MovableClock(time.time())
    moved = Store(home.state_path, clock=clock)
    app = create_app(home, store=moved)
    try:
        # The held tar is let go first, so the run started below can end.
        with TestClient(app) as client, node.held_tar() as wait_started:
            process = snapshot_process(home)  # alive and holding the host, a hung run
            try:
                wait_started(30)
                [held] = moved.running_runs("pve1")
                assert held.deadline is not None
                assert held.deadline > clock.now + 600  # the time limit and its grace
                hosts = client.get("/api/v1/hosts", headers=headers).json()
                assert hosts[0]["status"]["kind"] == "running"
                clock.now = held.deadline + 1
                hosts = client.get("/api/v1/hosts", headers=headers).json()
                assert hosts[0]["status"]["kind"] == "stale"
                assert "overdue" in hosts[0]["status"]["reason"]
                assert f"pvegit process {process.pid}" in hosts[0]["status"]["reason"]
                run = client.get(f"/api/v1/runs/{held.id}", headers=headers).json()
                assert run["status"] == "failed" and run["failure"] == OVERDUE
                metrics = client.get("/metrics", headers=headers).text
                assert 'pvegit_host_stale{host="pve1"} 1.0' in metrics
                assert "pvegit_hosts_stale 1.0" in metrics
                # A new request starts a new run, which waits for the host's lock.
                started = client.post("/api/v1/hosts/pve1/snapshot", headers=headers)
                assert started.json()["run"] != held.id
            except BaseException:
                process.kill()
                raise
        # Its tar let go, the held process finished; then the new run ran.
        assert process.wait(120) == 0
        assert moved.run(held.id).status == "changed"  # what really happened wins
        assert moved.run(started.json()["run"]).status == "unchanged"
    finally:
        moved.close()
