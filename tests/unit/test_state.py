"""The state database's tables (pvegit/state/): fast, one real SQLite file each, no node.

Hosts, a run's life and the run log's questions, users keeping an admin,
tokens, notification targets, verifications and alerts, the audit log, and
a state.db written by the first release opened (and upgraded) as it is.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from pvegit.errors import ConfigError, NotFound, StateDamaged
from pvegit.state.store import Host, RunStatus, Store

START = 1_700_000_000.0


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(tmp_path: Path, clock: Clock) -> Iterator[Store]:
    store = Store(tmp_path / "state.db", clock=clock)
    yield store
    store.close()


# -- hosts -------------------------------------------------------------------


def test_hosts_are_added_edited_and_removed(state: Store, clock: Clock) -> None:
    added = state.add_host(Host("pve1", "10.0.0.1", categories=("cluster",), includes=("/x",)))
    assert (added.created_at, added.updated_at, added.categories) == (START, START, ("cluster",))
    with pytest.raises(ConfigError, match="exists already"):
        state.add_host(Host("pve1", "10.0.0.2"))
    with pytest.raises(ConfigError, match="not allowed"):
        state.add_host(Host("../etc", "10.0.0.2"))
    clock.now += 10
    edited = state.update_host("pve1", port=2222, excludes=["/y"])
    assert (edited.port, edited.excludes, edited.includes) == (2222, ("/y",), ("/x",))
    assert edited.updated_at == START + 10 and edited.created_at == START
    with pytest.raises(ConfigError, match="cannot change created_at"):
        state.update_host("pve1", created_at=0.0)
    with pytest.raises(NotFound):
        state.update_host("pve9", port=22)
    state.add_host(Host("alpha", "local"))
    assert [host.name for host in state.hosts()] == ["alpha", "pve1"]
    assert state.host("alpha").is_local
    state.remove_host("alpha")
    with pytest.raises(NotFound):
        state.host("alpha")
    with pytest.raises(NotFound):
        state.remove_host("alpha")
    assert edited.to_json()["host_key_pinned"] is False


# -- runs --------------------------------------------------------------------


def test_a_run_is_started_moved_on_and_finished(state: Store, clock: Clock) -> None:
    run_id = state.start_run("pve1", "cli", "alice")
    run = state.run(run_id)
    assert run.status is RunStatus.RUNNING and run.is_running and run.stage == "queued"
    assert run.pid is not None and run.boot_id is not None
    state.update_progress(run_id, "collect", 3, 10)
    state.set_deadline(run_id, 60)
    run = state.run(run_id)
    assert (run.stage, run.progress_done, run.progress_total, run.deadline) == (
        "collect",
        3,
        10,
        START + 60,
    )
    assert [item.id for item in state.running_runs("pve1")] == [run_id]
    clock.now += 5
    with pytest.raises(ValueError):
        state.finish_run(run_id, status=RunStatus.RUNNING)
    done = state.finish_run(
        run_id, status=RunStatus.CHANGED, files=4, bytes_total=99, changed_files=1, commit_id="c1"
    )
    assert done.status is RunStatus.CHANGED and done.succeeded and not done.is_failure
    assert (done.duration, done.stage, done.commit_id) == (5.0, "done", "c1")
    assert state.running_runs() == []
    as_json = done.to_json()
    assert as_json["status"] == "changed" and json.dumps(as_json["status"]) == '"changed"'
    with pytest.raises(NotFound):
        state.run(run_id + 1)


def test_settle_run_records_failed_or_changed_only_while_running(state: Store) -> None:
    lost = state.start_run("pve1", "cron")
    landed = state.start_run("pve1", "cron")
    assert state.settle_run(lost, error="interrupted", failure="transient")
    assert not state.settle_run(lost, error="again", failure="transient")  # no longer running
    assert state.settle_run(landed, error=None, failure=None, commit_id="c2", warnings=["w"])
    assert state.run(lost).status is RunStatus.FAILED and state.run(lost).error == "interrupted"
    settled = state.run(landed)
    assert (settled.status, settled.commit_id, settled.warnings) == (
        RunStatus.CHANGED,
        "c2",
        ("w",),
    )


def test_the_run_log_answers_per_host_and_status(state: Store, clock: Clock) -> None:
    outcomes = [
        ("pve1", RunStatus.CHANGED, "a"),
        ("pve1", RunStatus.FAILED, None),
        ("pve2", RunStatus.UNCHANGED, None),
        ("pve1", RunStatus.PARTIAL, "b"),
        ("pve2", RunStatus.REFUSED, None),
    ]
    ids = []
    for host, status, commit_id in outcomes:
        clock.now += 1
        run_id = state.start_run(host, "cron")
        state.finish_run(run_id, status=status, commit_id=commit_id)
        ids.append(run_id)
    running = state.start_run("pve1", "cli")
    assert [run.id for run in state.runs()] == [running, *reversed(ids)]
    assert [run.id for run in state.runs("pve1", status=RunStatus.FAILED)] == [ids[1]]
    assert [run.id for run in state.runs(before=ids[2], limit=1)] == [ids[1]]
    assert {host: run.id for host, run in state.latest_runs().items()} == {
        "pve1": running,
        "pve2": ids[4],
    }
    assert {host: run.id for host, run in state.latest_successes().items()} == {
        "pve1": ids[3],
        "pve2": ids[2],
    }
    last = state.last_success("pve1")
    assert last is not None and last.id == ids[3] and state.last_success("pve3") is None
    assert [run.id for run in state.recent_runs(2)["pve1"]] == [running, ids[3]]
    assert state.run_counts() == {status: 1 for status in RunStatus}
    assert state.run_commits("pve1") == ["b", "a"]
    assert state.newest_run_with_commit("pve1", "a") == ids[0]
    assert state.newest_run_with_commit("pve1", "zz") is None
    extent = state.run_log_extent("pve1")
    assert extent.commit_ids == {"a", "b"} and extent.running_ids == {running}
    assert extent.oldest_start == START + 1
    # Pruning keeps what is running, whatever its age.
    assert state.prune_runs(older_than=START + 100) == 5
    assert [run.id for run in state.runs()] == [running]


def test_run_status_parses_only_its_own_words() -> None:
    assert RunStatus.parse("partial") is RunStatus.PARTIAL
    assert RunStatus.parse("PARTIAL") is None and RunStatus.parse(None) is None
    assert RunStatus.parse("") is None
    assert [status for status in RunStatus if status.succeeded] == [
        RunStatus.CHANGED,
        RunStatus.UNCHANGED,
        RunStatus.PARTIAL,
    ]
    assert f"{RunStatus.FAILED}" == "failed" and RunStatus.FAILED == "failed"


def test_a_run_made_with_a_status_word_holds_the_member(state: Store) -> None:
    run = replace(state.run(state.start_run("pve1", "cli")), status="refused")  # type: ignore[arg-type]
    assert run.status is RunStatus.REFUSED and run.is_failure
    with pytest.raises(ValueError):
        replace(run, status="exploded")  # type: ignore[arg-type]


# -- users and sessions ------------------------------------------------------


def test_the_first_user_is_an_admin_and_the_last_admin_stays(state: Store) -> None:
    with pytest.raises(ConfigError, match="first user must be an admin"):
        state.add_user("alice", "h1", "viewer")
    assert state.add_user("alice", "h1") == "admin"
    assert state.add_user("bob", "h2") == "viewer"
    with pytest.raises(ConfigError, match="exists already"):
        state.add_user("bob", "h3")
    with pytest.raises(ConfigError, match="last admin"):
        state.set_role("alice", "viewer")
    with pytest.raises(ConfigError, match="last admin"):
        state.remove_user("alice")
    assert state.set_role("bob", "admin") == "viewer"
    assert state.set_role("alice", "operator") == "admin"
    with pytest.raises(ConfigError, match="cannot remove 'bob': it is the last admin"):
        state.remove_user("bob")
    state.remove_user("alice")
    assert [(user.name, user.role) for user in state.users()] == [("bob", "admin")]


def test_sessions_end_with_a_password_a_lower_role_or_on_request(state: Store) -> None:
    state.add_user("alice", "h1")
    state.add_user("bob", "h2", "operator")
    bob = state.user("bob")
    assert bob is not None and len(bob.incarnation) == 32
    state.set_role("bob", "admin")  # a higher role keeps the sessions
    assert _epoch(state, "bob") == 0
    state.set_role("bob", "viewer")
    state.set_password("bob", "h3")
    state.end_sessions("bob")
    assert _epoch(state, "bob") == 3 and state.password_hash("bob") == "h3"
    state.remove_user("bob")
    state.add_user("bob", "h4")
    again = state.user("bob")
    assert again is not None and again.incarnation != bob.incarnation
    for change in (state.end_sessions, lambda name: state.set_password(name, "x")):
        with pytest.raises(NotFound):
            change("nobody")
    assert state.user("nobody") is None and state.password_hash("nobody") is None


def _epoch(state: Store, name: str) -> int:
    user = state.user(name)
    assert user is not None
    return user.sessions_epoch


# -- tokens, notification targets, verifications, alerts ---------------------


def test_tokens_are_listed_used_and_revoked(state: Store, clock: Clock) -> None:
    state.add_token("prometheus", "hash1", "cli:root")
    state.add_token("ci", "hash2", None, "operator")
    with pytest.raises(ConfigError, match="exists already"):
        state.add_token("ci", "hash3", None)
    with pytest.raises(ConfigError):
        state.add_token("bad", "hash4", None, "superuser")
    clock.now += 3
    token = state.active_token("hash2")
    assert token is not None and (token.name, token.role) == ("ci", "operator")
    state.revoke_token("prometheus")
    with pytest.raises(NotFound):
        state.revoke_token("prometheus")
    assert state.active_token("hash1") is None
    ci, prometheus = state.tokens()
    assert (ci.name, ci.last_used, ci.active, ci.created_by) == ("ci", START + 3, True, None)
    assert (prometheus.role, prometheus.revoked_at) == ("viewer", START + 3)
    assert not prometheus.active


def test_notify_targets_verifications_and_alerts(state: Store, clock: Clock) -> None:
    settings = {"name": "ops", "url": "https://example.invalid/hook", "format": "json"}
    state.add_notify_target("ops", settings)
    with pytest.raises(ConfigError):
        state.add_notify_target("ops", settings)
    (target,) = state.notify_targets()
    assert (target.name, dict(target.settings), target.created_at) == ("ops", settings, START)
    state.remove_notify_target("ops")
    with pytest.raises(NotFound):
        state.remove_notify_target("ops")
    state.record_verification("pve1", ["a problem"])
    clock.now += 1
    state.record_verification("pve2", [])
    found = state.verifications()
    assert (found["pve1"].ok, found["pve1"].problems, found["pve1"].at) == (
        False,
        ("a problem",),
        START,
    )
    assert found["pve2"].ok and found["pve2"].at == START + 1
    assert state.alert_state("pve1") is None
    state.set_alert_state("pve1", "failing")
    state.set_alert_state("pve1", "stale")
    assert state.alert_state("pve1") == "stale"
    state.set_alert_state("pve1", None)
    assert state.alert_state("pve1") is None


# -- audit -------------------------------------------------------------------


def test_audit_entries_are_written_finished_and_filtered(state: Store) -> None:
    first = state.audit("cli:root", "host added", "pve1", address="10.0.0.1")
    started = state.start_audit("admin", "restore", "pve1", revision="abc")
    state.start_audit("admin", "restore", "pve2")
    state.update_audit(started, before="def")
    assert [event.id for event in state.started_audits("restore")] == [started, started + 1]
    state.update_audit(started, "completed", files=2)
    with pytest.raises(ConfigError):
        state.update_audit(started, "done")
    with pytest.raises(NotFound):
        state.update_audit(999, "failed")
    assert state.interrupt_audits("restore", "pve2") == 1
    assert state.started_audits("restore") == []
    restore, interrupted = (
        state.audit_events(host="pve1", action="restore")[0],
        state.audit_events(host="pve2")[0],
    )
    assert dict(restore.detail) == {"revision": "abc", "before": "def", "files": 2}
    assert (restore.state, interrupted.state) == ("completed", "interrupted")
    assert [event.id for event in state.audit_events(limit=2)] == [started + 1, started]
    oldest = state.audit_events(action="host added")[0]
    assert oldest.id == first and oldest.state is None
    assert oldest.to_json() == {
        "id": first,
        "at": oldest.at,
        "actor": "cli:root",
        "action": "host added",
        "host": "pve1",
        "detail": {"address": "10.0.0.1"},
        "state": None,
    }
    assert state.audit_actions() == ["host added", "restore"]
    assert oldest.with_state("running").state == "running" and oldest.state is None


# -- the database itself -----------------------------------------------------

# The tables as the first release wrote them: no run failure kind or owner,
# no roles, sessions or incarnations, no audit state.
FIRST_RELEASE = """
CREATE TABLE hosts (name TEXT PRIMARY KEY, address TEXT NOT NULL, port INTEGER NOT NULL
    DEFAULT 22, user TEXT NOT NULL DEFAULT 'root', identity TEXT, categories TEXT NOT NULL,
    includes TEXT NOT NULL DEFAULT '[]', excludes TEXT NOT NULL DEFAULT '[]', schedule TEXT,
    host_key_type TEXT, host_key TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, host TEXT NOT NULL,
    trigger TEXT NOT NULL, actor TEXT, status TEXT NOT NULL, stage TEXT,
    progress_done INTEGER NOT NULL DEFAULT 0, progress_total INTEGER NOT NULL DEFAULT 0,
    started_at REAL NOT NULL, finished_at REAL, duration REAL,
    files INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0,
    changed_files INTEGER NOT NULL DEFAULT 0, commit_id TEXT,
    warnings TEXT NOT NULL DEFAULT '[]', error TEXT, pid INTEGER);
CREATE TABLE users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE tokens (name TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL, created_by TEXT, revoked_at REAL, last_used REAL);
CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL,
    actor TEXT NOT NULL, action TEXT NOT NULL, host TEXT, detail TEXT NOT NULL DEFAULT '{}');
INSERT INTO hosts VALUES ('pve1', '10.0.0.1', 22, 'root', NULL, '["cluster"]', '[]', '[]',
    NULL, NULL, NULL, 1.0, 1.0);
INSERT INTO runs (host, trigger, status, stage, started_at, finished_at, commit_id, pid)
    VALUES ('pve1', 'cron', 'changed', 'done', 1.0, 2.0, 'c0', 42);
INSERT INTO users VALUES ('old', 'hash', 1.0, 1.0);
INSERT INTO tokens VALUES ('old', 'tokenhash', 1.0, NULL, NULL, NULL);
INSERT INTO audit (at, actor, action, host) VALUES (1.0, 'old', 'host added', 'pve1');
"""


def test_a_first_release_state_db_is_upgraded_and_keeps_its_records(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as connection:
        connection.executescript(FIRST_RELEASE)
    connection.close()
    for _ in range(2):  # the second opening finds nothing left to upgrade
        store = Store(path)
        try:
            (run,) = store.runs()
            assert (run.status, run.commit_id, run.failure, run.boot_id) == (
                RunStatus.CHANGED,
                "c0",
                None,
                None,
            )
            user = store.user("old")
            assert user is not None and user.role == "admin" and len(user.incarnation) == 32
            assert [token.role for token in store.tokens()] == ["admin"]
            (event,) = store.audit_events()
            assert event.state is None and dict(event.detail) == {}
            assert store.host("pve1").categories == ("cluster",)
            # The commit index's tables are there too (made by its own mixin).
            assert store.query("SELECT COUNT(*) AS n FROM commit_index")[0]["n"] == 0
            incarnation = user.incarnation
        finally:
            store.close()
    reopened = Store(path)
    try:
        again = reopened.user("old")
        assert again is not None and again.incarnation == incarnation
        assert reopened.records_anything() and reopened.quick_check() == ["ok"]
    finally:
        reopened.close()


def test_a_fresh_store_records_nothing_and_a_damaged_file_is_named(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    try:
        assert not store.records_anything()
        assert (tmp_path / "state.db").stat().st_mode & 0o777 == 0o600
        before = store.change_marker()
        store.add_host(Host("pve1", "10.0.0.1"))
        assert store.change_marker() != before and store.records_anything()
    finally:
        store.close()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not SQLite" * 300)
    with pytest.raises(StateDamaged, match="rebuild-state"):
        Store(garbage)
