"""A snapshot from the command line (cron, the systemd timer) goes through the engine's
launcher like a run of ``pvegit serve``: it notifies, pushes the mirror, and says on
stderr what did not get out."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pvegit.config.home import Home
from pvegit.demo.node import DemoNode
from pvegit.state.store import Host, Store
from testbed.webhook import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    instance = Receiver()
    yield instance
    instance.close()


@pytest.fixture
def node(store: Store, tmp_path: Path) -> DemoNode:
    demo = DemoNode(tmp_path / "node", "pve1")
    demo.create()
    store.add_host(Host("pve1", f"local:{demo.root}", categories=("cluster", "secrets")))
    return demo


def configure(home: Home, hook: str, mirror: str = "") -> None:
    server = f'[server]\nmirror = "{mirror}"\n\n' if mirror else ""
    (home.root / "pvegit.toml").write_text(
        f'{server}[[notify]]\ntype = "webhook"\nname = "hook"\nurl = "{hook}"\n'
    )


def mirrored_head(path: Path) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(path), "rev-parse", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def kinds(receiver: Receiver) -> list[str]:
    return [str(body["event"]) for body in receiver.bodies]


def test_a_cli_snapshot_that_changes_notifies_and_pushes_the_mirror(
    home: Home,
    store: Store,
    node: DemoNode,
    receiver: Receiver,
    tmp_path: Path,
    cli,  # type: ignore[no-untyped-def]
) -> None:
    configure(home, receiver.url, f"file://{tmp_path}/mirror/{{host}}.git")
    first = cli("snapshot", "pve1")
    assert first.code == 0, first.err
    # Delivered before the command ended: no waiting here.
    assert kinds(receiver) == ["changed"]
    run = store.runs("pve1", limit=1)[0]
    assert receiver.bodies[0]["run"] == run.id and receiver.bodies[0]["commit"] == run.commit_id
    assert mirrored_head(tmp_path / "mirror/pve1.git") == run.commit_id
    # The timer's form, --all: the change and its diff, the mirror follows.
    node.edit_something()
    second = cli("snapshot", "--all")
    assert second.code == 0, second.err
    assert kinds(receiver) == ["changed", "changed"]
    newest = store.runs("pve1", limit=1)[0]
    assert newest.commit_id and newest.commit_id != run.commit_id
    assert mirrored_head(tmp_path / "mirror/pve1.git") == newest.commit_id
    assert "modified: /" in str(receiver.bodies[1]["message"])
    # Nothing changed: nothing to tell, nothing to push.
    assert cli("snapshot", "pve1").code == 0
    assert kinds(receiver) == ["changed", "changed"]


def test_a_failing_cli_snapshot_sends_failed_once_then_recovered(
    home: Home,
    store: Store,
    node: DemoNode,
    receiver: Receiver,
    cli,  # type: ignore[no-untyped-def]
) -> None:
    configure(home, receiver.url)
    assert cli("snapshot", "pve1").code == 0
    # Most guest configs gone at once: held (refused), a permanent failure.
    nodes = node.root / "etc/pve/nodes"
    nodes.rename(node.root / "nodes-away")
    held = cli("snapshot", "pve1")
    assert held.code == 1 and "REFUSED" in held.err
    assert kinds(receiver) == ["changed", "failed"]
    assert "backup failed" in str(receiver.bodies[1]["title"])
    assert cli("snapshot", "pve1").code == 1  # the same streak: told once, as in serve
    assert kinds(receiver) == ["changed", "failed"]
    (node.root / "nodes-away").rename(nodes)
    assert cli("snapshot", "pve1").code == 0
    assert kinds(receiver) == ["changed", "failed", "recovered"]


def test_a_target_or_mirror_that_fails_is_reported_by_the_cli(
    home: Home,
    store: Store,
    node: DemoNode,
    tmp_path: Path,
    cli,  # type: ignore[no-untyped-def]
) -> None:
    refusing = Receiver(status=500)
    try:
        configure(home, refusing.url, "http://127.0.0.1:1/{host}.git")
        result = cli("snapshot", "pve1")
    finally:
        refusing.close()
    assert result.code == 0  # the snapshot itself worked: exit codes are the run's
    assert "pve1: changed" in result.out
    assert "pve1: mirror push of pve1 to http://127.0.0.1:1/pve1.git failed" in result.err
    assert "not delivered to 'hook'" in result.err and "HTTP 500" in result.err
    # It was tried (and retried) before the command gave up on it.
    assert {body["event"] for body in refusing.bodies} == {"changed", "failed"}


def test_a_rescue_snapshot_notifies_and_pushes_the_mirror_like_any_other(
    home: Home,
    receiver: Receiver,
    tmp_path: Path,
    cli,  # type: ignore[no-untyped-def]
) -> None:
    from testbed.nodes import make_config_db

    root = tmp_path / "disk"
    DemoNode(root, "pve1").create()
    make_config_db(root / "etc/pve", root / "var/lib/pve-cluster/config.db")
    configure(home, receiver.url, f"file://{tmp_path}/mirror/{{host}}.git")
    rescued = cli("rescue", str(root))
    assert rescued.code == 0, rescued.err
    assert kinds(receiver) == ["changed"]
    assert mirrored_head(tmp_path / "mirror/pve1.git") == rescued_head(home)


def rescued_head(home: Home) -> str:
    return mirrored_head(home.repo_path("pve1"))
