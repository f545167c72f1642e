"""pvegit serve as a service: the scheduler makes commits nobody triggered,
a webhook receiver hears about changes and failures, /metrics shows them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from pvegit.config.file import Config, Target
from pvegit.config.home import Home
from pvegit.state.store import Host, Store
from testbed.nodes import Node, TestBed, register_node
from testbed.webhook import Receiver
from web.app import create_app


class FakeClock:
    """The scheduler's clock: moved by the test, so an hour passes at once."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    instance = Receiver()
    yield instance
    instance.close()


def events(bodies: list[dict[str, object]], kind: str, host: str) -> list[dict[str, object]]:
    return [body for body in bodies if body.get("event") == kind and body.get("host") == host]


def test_scheduled_runs_commit_alert_and_show_in_metrics(
    home: Home,
    store: Store,
    testbed: TestBed,
    receiver: Receiver,
    cli,  # type: ignore[no-untyped-def]
) -> None:
    first: Node = testbed.start("pve1")
    second: Node = testbed.start("pve2")
    for node in (first, second):
        register_node(store, home, node, node.name, categories=("cluster", "network"))
        store.update_host(node.name, schedule="hourly")
    config = Config(
        concurrency=2,
        jitter=0,
        retry_delays=(60,),
        targets=(Target("hook", "webhook", url=receiver.url),),
    )
    clock = FakeClock()
    app = create_app(home, store=store, config=config, run_scheduler=True, clock=clock)
    token = cli("token", "add", "prometheus").out.split()[-1]
    with TestClient(app) as client:
        # Nobody triggers anything: the scheduler catches up on both hosts at start.
        bodies = receiver.wait_for(
            lambda got: all(events(got, "changed", name) for name in ("pve1", "pve2"))
        )
        assert len(events(bodies, "changed", "pve1")) == 1
        runs = store.runs(limit=10)
        assert {run.trigger for run in runs} == {"schedule"} and len(runs) == 2
        # An hour later: pve1 changed, pve2's pmxcfs is down.
        first.write("/etc/pve/storage.cfg", first.read("/etc/pve/storage.cfg") + "\ndir: hourly\n")
        second.stop_pmxcfs()
        second.sh(f"echo '{home.public_key()}' > /root/.ssh/authorized_keys2")
        clock.offset += 3601
        bodies = receiver.wait_for(
            lambda got: len(events(got, "changed", "pve1")) == 2 and events(got, "failed", "pve2")
        )
        change = events(bodies, "changed", "pve1")[-1]
        assert "+dir: hourly" in str(change["message"]) and change["commit"]
        failure = events(bodies, "failed", "pve2")[0]
        assert "pmxcfs" in str(failure["message"])
        metrics = client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).text
        assert 'pvegit_host_last_run_status{host="pve2",status="refused"} 1.0' in metrics
        assert 'pvegit_host_last_run_status{host="pve1",status="changed"} 1.0' in metrics
        assert 'pvegit_runs_total{status="changed"} 3.0' in metrics
        # No run overlapped another of the same host, and none ran twice for one slot.
        runs = store.runs(limit=20)
        assert len([run for run in runs if run.host == "pve1"]) == 2
        assert all(run.status != "running" for run in runs)
    print(json.dumps([body["title"] for body in receiver.bodies]))
    first.stop()
    second.stop()


def test_commits_are_pushed_to_the_mirror(home: Home, store: Store, tmp_path, cli) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    from pvegit.actions.snapshot import take_snapshot
    from pvegit.demo.node import DemoNode

    node = DemoNode(tmp_path / "node", "pve1")
    node.create()
    store.add_host(Host("pve1", f"local:{node.root}", categories=("cluster",)))
    mirror = f"file://{tmp_path}/mirror/{{host}}.git"
    config = Config(mirror=mirror)
    app = create_app(home, store=store, config=config)
    with TestClient(app):
        launcher = app.state.pvegit.launcher
        run_id = launcher.launch(store.host("pve1"), trigger="test", actor=None)
        launcher.shutdown()  # waits for the run and its push
    assert store.run(run_id).status == "changed"
    pushed = subprocess.run(
        ["git", "--git-dir", str(tmp_path / "mirror/pve1.git"), "rev-parse", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert pushed == store.run(run_id).commit_id
    node.edit_something()
    take_snapshot(home, store, store.host("pve1"))
    (home.root / "pvegit.toml").write_text(f'[server]\nmirror = "{mirror}"\n')
    result = cli("mirror")
    assert result.code == 0 and "pve1: pushed to" in result.out
    (home.root / "pvegit.toml").write_text('[server]\nmirror = "ssh://nowhere/x.git"\n')
    assert "{host}" in cli("mirror").err
