"""Notifications: formats, delivery with retries, events from runs, configuration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pvegit.actions.snapshot import take_snapshot
from pvegit.config.file import Config, Target, load_config, parse_config
from pvegit.config.home import Home
from pvegit.demo.node import DemoNode
from pvegit.errors import ConfigError
from pvegit.service.events import events_for_run, stale_event
from pvegit.service.notify import Event, Notifier, send
from pvegit.state.store import Host, Store
from testbed.webhook import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    instance = Receiver()
    yield instance
    instance.close()


EVENT = Event("failed", "pve1", "pve1: backup failed", "Run 7: host unreachable", 7)


@pytest.mark.parametrize(
    ("format_name", "check"),
    [
        (
            "generic",
            lambda body, headers: (
                body["event"] == "failed"
                and body["host"] == "pve1"
                and body["text"].startswith("pve1: backup failed")
            ),
        ),
        (
            "slack",
            lambda body, headers: (
                body == {"text": "*pve1: backup failed*\nRun 7: host unreachable"}
            ),
        ),
        (
            "gotify",
            lambda body, headers: (
                body["title"] == "pve1: backup failed"
                and headers.get("X-Gotify-Key") == "secret-token"
            ),
        ),
        (
            "ntfy",
            lambda body, headers: (
                body["raw"] == "Run 7: host unreachable"
                and headers["Title"] == "pve1: backup failed"
            ),
        ),
    ],
)
def test_webhook_formats(receiver: Receiver, format_name: str, check) -> None:  # type: ignore[no-untyped-def]
    target = Target("t", "webhook", url=receiver.url, format=format_name, token="secret-token")
    send(target, EVENT)
    bodies = receiver.wait_for(lambda bodies: len(bodies) == 1)
    assert check(bodies[0], receiver.headers[0])


def test_failing_target_is_retried_and_never_blocks() -> None:
    calls: list[str] = []

    def deliver(target: Target, event: Event) -> None:
        calls.append(event.kind)
        if len(calls) < 3:
            raise OSError("connection refused")

    import threading

    done = threading.Event()
    notifier = Notifier(
        [Target("t", "webhook", url="http://x")],
        retry_delays=(0.01, 0.01, 0.01),
        deliver=lambda target, event: (deliver(target, event), done.set()),
    )
    notifier.emit(EVENT)  # returns at once
    assert done.wait(10)
    assert calls == ["failed", "failed", "failed"]
    notifier.close()


def test_unreachable_webhook_is_a_clear_error() -> None:
    import socket

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    from pvegit.errors import PvegitError

    with pytest.raises(PvegitError, match="notification target 't'"):
        send(Target("t", "webhook", url=f"http://127.0.0.1:{port}/"), EVENT)


def test_events_from_runs(home: Home, store: Store, tmp_path: Path) -> None:
    node = DemoNode(tmp_path / "node", "pve1")
    node.create()
    host = store.add_host(Host("pve1", f"local:{node.root}", categories=("cluster", "secrets")))
    first = take_snapshot(home, store, host)
    kinds = [event.kind for event in events_for_run(home, store, first, retries=3)]
    assert kinds == ["changed"]
    (node.root / "etc/pve/storage.cfg").write_text("dir: only\n\tpath /x\n")
    (node.root / "etc/pve/priv/token.cfg").write_text("changed-secret\n")
    changed = events_for_run(home, store, take_snapshot(home, store, host), retries=3)
    message = changed[0].message
    assert "modified: /etc/pve/storage.cfg" in message and "+dir: only" in message
    assert "/etc/pve/priv/token.cfg (secret, content not sent)" in message
    assert "changed-secret" not in message
    # Most guest configs gone at once: held (refused), a permanent failure, reported once.
    nodes = node.root / "etc/pve/nodes"
    nodes.rename(node.root / "nodes-away")
    failed = take_snapshot(home, store, host)
    assert failed.status == "refused"
    assert [event.kind for event in events_for_run(home, store, failed, retries=3)] == ["failed"]
    again = take_snapshot(home, store, host)
    assert events_for_run(home, store, again, retries=3) == []
    (node.root / "nodes-away").rename(nodes)
    recovered = events_for_run(home, store, take_snapshot(home, store, host), retries=3)
    assert [event.kind for event in recovered] == ["recovered"]
    assert stale_event(store, "pve1", "no backup for 3 d").kind == "stale"  # type: ignore[union-attr]
    assert stale_event(store, "pve1", "no backup for 3 d") is None  # once


def test_transient_failures_are_reported_after_the_retries(home: Home, store: Store) -> None:
    host = store.add_host(
        Host(
            "gone",
            "127.0.0.1",
            1,
            categories=("network",),
            host_key_type="ssh-ed25519",
            host_key="AAAA",
        )
    )
    kinds = []
    for _ in range(4):
        run = take_snapshot(home, store, host)
        assert run.failure == "transient"
        kinds.append([event.kind for event in events_for_run(home, store, run, retries=3)])
    assert kinds == [[], [], [], ["failed"]]


def test_config_file_is_checked_key_by_key(tmp_path: Path) -> None:
    path = tmp_path / "pvegit.toml"
    path.write_text("""
[server]
listen = "127.0.0.1:9090"
timezone = "Europe/Vienna"
default_schedule = "daily at 3:00"
concurrency = 8
retry_delays = [10, 20]
metrics_allow = ["10.0.0.5"]

[[notify]]
type = "webhook"
name = "ops"
url = "https://hooks.example.org/x"
format = "slack"
events = ["failed", "stale"]

[[notify]]
type = "email"
host = "smtp.example.org"
from = "pvegit@example.org"
to = "admin@example.org"
""")
    config = load_config(tmp_path, path)
    assert config.listen == "127.0.0.1:9090" and config.default_schedule == "daily at 03:00"
    assert config.concurrency == 8 and config.retry_delays == (10, 20)
    assert config.targets[0].events == ("failed", "stale")
    assert config.targets[1].recipients == ("admin@example.org",) and config.targets[1].port == 587
    for text, message in (
        ("[server]\nconcurrency = 0", "server.concurrency: must be a whole number from 1 to 64"),
        ("[server]\ntimezone = 'Mars/Olympus'", "server.timezone: unknown time zone"),
        ("[server]\ndefault_schedule = 'sometimes'", "server.default_schedule"),
        ("[server]\nlisten = 'nowhere'", "server.listen"),
        ("[server]\ncolour = 'blue'", "server.colour: unknown key"),
        ("[[notify]]\ntype = 'pigeon'", "notify[0].type"),
        ("[[notify]]\ntype = 'webhook'\nurl = 'ftp://x'", "notify[0].url"),
        ("[[notify]]\ntype = 'webhook'\nurl = 'http://x'\nevents = ['boom']", "notify[0].events"),
        ("[server\n", "not valid TOML"),
    ):
        path.write_text(text)
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            load_config(tmp_path, path)
    assert parse_config({}) == Config()


def test_notify_test_command(cli, home: Home, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    (home.root / "pvegit.toml").write_text(
        f'[[notify]]\ntype = "webhook"\nname = "hook"\nurl = "{receiver.url}"\n'
    )
    result = cli("notify", "test")
    assert result.code == 0 and "hook: sent" in result.out
    assert receiver.wait_for(lambda bodies: len(bodies) == 1)[0]["event"] == "test"


def test_notify_test_command_counts_the_targets_made_in_the_web_ui(  # type: ignore[no-untyped-def]
    cli, home: Home, receiver: Receiver
) -> None:
    """The CLI's audit entry counted only pvegit.toml's targets (the web counted all)."""
    (home.root / "pvegit.toml").write_text(
        f'[[notify]]\ntype = "webhook"\nname = "hook"\nurl = "{receiver.url}"\n'
    )
    store = Store(home.state_path)
    made = {"name": "made", "type": "webhook", "url": receiver.url}
    store.add_notify_target("made", made)
    result = cli("notify", "test")
    assert result.code == 0 and "hook: sent" in result.out and "made: sent" in result.out
    [entry] = store.audit_events(action="test notification")
    assert entry.detail == {"targets": 2}
    store.close()


def test_a_test_notification_without_targets_is_refused_by_both_faces(  # type: ignore[no-untyped-def]
    cli, home: Home
) -> None:
    """The web sent nothing to nobody and audited it as a test; now it says why not, as
    the CLI does."""
    from starlette.testclient import TestClient
    from test_web import login

    from pvegit.state.credentials import hash_password
    from web.app import create_app

    result = cli("notify", "test")
    assert result.code == 1 and "no notification targets" in result.err
    store = Store(home.state_path)
    store.add_user("admin", hash_password("correct horse battery"))
    with TestClient(create_app(home, store=store), follow_redirects=False) as client:
        token = login(client)
        page = client.post("/notifications/test", data={"csrf_token": token})
        assert page.status_code == 400 and "no notification targets" in page.text
    assert store.audit_events(action="test notification") == []
    store.close()


def test_targets_made_in_the_web_ui(home: Home, receiver: Receiver) -> None:
    from starlette.testclient import TestClient
    from test_web import login

    from pvegit.state.credentials import hash_password
    from web.app import create_app

    store = Store(home.state_path)
    store.add_user("admin", hash_password("correct horse battery"))
    with TestClient(create_app(home, store=store), follow_redirects=False) as client:
        token = login(client)
        bad = client.post(
            "/notifications",
            data={"csrf_token": token, "name": "x", "type": "webhook", "url": "ftp://nope"},
        )
        assert bad.status_code == 400 and "must be an http:// or https:// URL" in bad.text
        added = client.post(
            "/notifications",
            data={
                "csrf_token": token,
                "name": "hook",
                "type": "webhook",
                "url": receiver.url,
                "format": "generic",
                "events": ["failed", "changed"],
            },
        )
        assert added.status_code == 303
        page = client.post("/notifications/test", data={"csrf_token": token})
        assert "hook: sent" in page.text
        assert receiver.wait_for(lambda bodies: len(bodies) == 1)[0]["event"] == "test"
        remove = "/notifications/hook/remove"
        assert client.post(remove, data={"csrf_token": token}).status_code == 303
        assert store.notify_targets() == []
        assert client.post(remove, data={"csrf_token": token}).status_code == 404
    store.close()


def test_serve_refuses_a_bad_config(cli, home: Home) -> None:  # type: ignore[no-untyped-def]
    (home.root / "pvegit.toml").write_text("[server]\nconcurrency = 'many'\n")
    result = cli("serve")
    assert result.code == 1
    assert "pvegit.toml: server.concurrency: must be a whole number" in result.err


def test_email_target_sends_a_message() -> None:
    from testbed.smtp import SmtpReceiver

    server = SmtpReceiver()
    try:
        target = Target(
            "mail",
            "email",
            host="127.0.0.1",
            port=server.port,
            security="none",
            sender="pvegit@example.org",
            recipients=("admin@example.org",),
        )
        send(target, EVENT)
        message = server.wait_for_messages(1)[0]
        assert message["from"] == "pvegit@example.org" and message["to"] == ["admin@example.org"]
        data = str(message["data"])
        assert "Subject: [pvegit] pve1: backup failed" in data and "host unreachable" in data
    finally:
        server.close()
