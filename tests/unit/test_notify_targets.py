"""Unit tests for notification targets (service/notify_targets.py): a real store in
tmp_path and a real webhook receiver on loopback (testbed/webhook.py).

The web page is tested in tests/test_notify.py and tests/test_redaction.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pvegit.config.file import Config, Target
from pvegit.errors import ConfigError, NotFound
from pvegit.service.notify_targets import (
    add_target,
    list_targets,
    remove_target,
    send_test_notification,
)
from pvegit.state.store import Store
from testbed.webhook import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    instance = Receiver()
    yield instance
    instance.close()


def _webhook(name: str, url: str) -> dict[str, object]:
    return {"name": name, "type": "webhook", "url": url}


def test_a_target_is_listed_after_the_files_and_can_be_removed(store: Store) -> None:
    configured = Config(targets=(Target("file", "webhook", url="https://example.org/hook"),))
    added = add_target(store, _webhook("made", "https://user:pw@example.org/x"), actor="tester")
    assert (added.name, added.kind) == ("made", "webhook")
    [event] = store.audit_events(action="notification target added")
    assert event.actor == "tester" and event.detail == {"target": "made", "kind": "webhook"}
    listed = list_targets(configured, store)
    assert [(item.target.name, item.made_in_web) for item in listed] == [
        ("file", False),
        ("made", True),
    ]
    assert "pw" not in listed[1].location
    remove_target(store, "made", actor="tester")
    assert store.audit_events(action="notification target removed")[0].detail == {"target": "made"}
    assert [item.target.name for item in list_targets(configured, store)] == ["file"]
    with pytest.raises(NotFound):
        remove_target(store, "made", actor="t")


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        (_webhook("two words", "https://example.org"), "name the target"),
        (_webhook("x", "ftp://example.org"), "must be an http:// or https:// URL"),
        ({"name": "x", "type": "pager"}, "must be 'webhook' or 'email'"),
        ({**_webhook("x", "https://example.org"), "port": 25}, "unknown key"),
    ],
)
def test_a_target_refused_leaves_no_trace(
    store: Store, settings: dict[str, object], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        add_target(store, settings, actor="t")
    assert store.notify_targets() == [] and store.audit_events() == []


def test_a_name_is_taken_once(store: Store) -> None:
    add_target(store, _webhook("hook", "https://example.org"), actor="t")
    with pytest.raises(ConfigError, match="exists already"):
        add_target(store, _webhook("hook", "https://example.org/2"), actor="t")


def test_a_test_reaches_every_target_and_is_audited_once(store: Store, receiver: Receiver) -> None:
    configured = Config(targets=(Target("file", "webhook", url=receiver.url),))
    add_target(store, _webhook("made", receiver.url), actor="t")
    results = send_test_notification(configured, store, actor="tester")
    assert [(result.target.name, result.problem) for result in results] == [
        ("file", None),
        ("made", None),
    ]
    assert [body["event"] for body in receiver.wait_for(lambda b: len(b) == 2)] == ["test"] * 2
    [event] = store.audit_events(action="test notification")
    assert event.actor == "tester" and event.detail == {"targets": 2}


def test_a_failing_target_is_reported_not_raised(store: Store) -> None:
    failing = Receiver(status=500)
    try:
        configured = Config(targets=(Target("down", "webhook", url=failing.url),))
        [result] = send_test_notification(configured, store, actor="t")
    finally:
        failing.close()
    assert result.target.name == "down" and result.problem and "500" in result.problem


def test_no_target_no_test(store: Store) -> None:
    with pytest.raises(ConfigError, match="no notification targets"):
        send_test_notification(Config(), store, actor="t")
    assert store.audit_events() == []
