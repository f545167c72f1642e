"""Web sessions end when they should: a new password, a lower role, "log out
everywhere", and the idle and absolute lifetimes from pvegit.toml."""

from __future__ import annotations

import base64
import json
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import itsdangerous
import pytest
from starlette.testclient import TestClient
from test_web import PASSWORD, login

from pvegit.config.file import Config, parse_config
from pvegit.config.home import Home
from pvegit.errors import ConfigError
from pvegit.state.credentials import hash_password
from pvegit.state.store import Store
from testbed.appserver import pvegit_process, start_serve
from web.app import create_app


class Clock:
    """The app's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sessions_store(home: Home) -> Iterator[Store]:
    store = Store(home.state_path)
    store.add_user("admin", hash_password(PASSWORD))
    store.add_user("olivia", hash_password(PASSWORD), "operator")
    yield store
    store.close()


def _client(home: Home, store: Store, **settings: int) -> TestClient:
    app = create_app(home, Config(concurrency=1, **settings), store=store)
    return TestClient(app, follow_redirects=False)


def _signed_in(client: TestClient) -> bool:
    return client.get("/runs").status_code == 200


def test_a_new_password_ends_every_session_at_once(
    home: Home,
    sessions_store: Store,
    cli,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io

    laptop, phone = _client(home, sessions_store), _client(home, sessions_store)
    login(laptop, "olivia")
    login(phone, "olivia")
    monkeypatch.setattr("sys.stdin", io.StringIO("a brand new password\n"))
    assert cli("user", "passwd", "olivia", "--password-stdin").code == 0
    assert not _signed_in(laptop) and not _signed_in(phone)
    login(laptop, "olivia", "a brand new password")
    assert _signed_in(laptop)


def test_a_lower_role_ends_the_sessions_a_higher_one_applies_at_once(
    home: Home, sessions_store: Store
) -> None:
    client = _client(home, sessions_store)
    login(client, "olivia")
    assert client.get("/users").status_code == 403
    sessions_store.set_role("olivia", "admin")
    assert client.get("/users").status_code == 200  # the same session, the new role
    sessions_store.set_role("olivia", "viewer")
    assert not _signed_in(client)
    login(client, "olivia")
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text)
    assert (
        token
        and client.post("/hosts/x/snapshot", data={"csrf_token": token.group(1)}).status_code == 403
    )


def test_log_out_everywhere_for_oneself_an_admin_and_the_cli(
    home: Home,
    sessions_store: Store,
    cli,  # type: ignore[no-untyped-def]
) -> None:
    laptop, phone = _client(home, sessions_store), _client(home, sessions_store)
    token = login(laptop, "olivia")
    login(phone, "olivia")
    ended = laptop.post("/logout/everywhere", data={"csrf_token": token})
    assert ended.status_code == 303 and ended.headers["location"] == "/login"
    assert not _signed_in(laptop) and not _signed_in(phone)
    # An admin for someone else.
    admin = _client(home, sessions_store)
    admin_token = login(admin)
    login(phone, "olivia")
    assert admin.post("/users/olivia/logout", data={"csrf_token": admin_token}).status_code == 303
    assert not _signed_in(phone) and _signed_in(admin)
    # Root at the command line.
    login(phone, "olivia")
    assert cli("user", "logout", "olivia").code == 0
    assert not _signed_in(phone) and _signed_in(admin)
    actions = [event.action for event in sessions_store.audit_events()]
    assert actions.count("logged out everywhere") == 3


def test_idle_and_absolute_lifetimes(home: Home, sessions_store: Store) -> None:
    clock = Clock()
    app = create_app(
        home,
        Config(concurrency=1, session_idle_minutes=10, session_max_hours=1),
        store=sessions_store,
        clock=clock,
    )
    client = TestClient(app, follow_redirects=False)
    login(client)
    clock.now += 599
    assert _signed_in(client)  # used within the idle time: it goes on
    clock.now += 601
    assert not _signed_in(client)  # idle too long
    login(client)
    for _ in range(6):  # busy all along, one request every 9 minutes ...
        clock.now += 540
        assert _signed_in(client)
    clock.now += 540
    assert not _signed_in(client)  # ... until an hour after its login


def test_lifetimes_come_from_pvegit_toml() -> None:
    config = parse_config({"server": {"session_idle_minutes": 15, "session_max_hours": 8}})
    assert (config.session_idle_seconds, config.session_max_seconds) == (900, 8 * 3600)
    defaults = parse_config({})
    assert (defaults.session_idle_seconds, defaults.session_max_seconds) == (3600, 12 * 3600)
    for server, message in (
        ({"session_idle_minutes": 0}, "server.session_idle_minutes: must be a whole number"),
        ({"session_max_hours": "8"}, "server.session_max_hours: must be a whole number"),
        (
            {"session_idle_minutes": 600, "session_max_hours": 2},
            "longer than session_max_hours",
        ),
    ):
        with pytest.raises(ConfigError, match=message):
            parse_config({"server": server})


def test_a_cookie_from_before_user_passwd_is_refused_by_a_real_server(
    home: Home, tmp_path: Path
) -> None:
    """The reported case, with real processes: pvegit serve, a browser session, then
    `pvegit user passwd` in another process."""
    added = pvegit_process(home, "user", "add", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    server, base = start_serve(home, tmp_path / "serve.log", "--no-scheduler")
    try:
        with httpx2.Client(base_url=base, timeout=60, follow_redirects=False) as browser:
            page = browser.get("/login").text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
            assert csrf
            browser.post(
                "/login",
                data={"username": "admin", "password": PASSWORD, "csrf_token": csrf.group(1)},
            )
            assert browser.get("/runs").status_code == 200
            changed = pvegit_process(
                home, "user", "passwd", "admin", "--password-stdin", stdin="another password!\n"
            )
            assert changed.returncode == 0, changed.stderr
            answer = browser.get("/runs")
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_cookie_of_a_removed_user_never_fits_the_name_added_again(
    home: Home, sessions_store: Store
) -> None:
    """The review's case: bob's cookie (stolen, or an old laptop), bob removed, then a
    new 'bob' made an admin: the old cookie stays dead."""
    sessions_store.add_user("bob", hash_password("bobs old password1"), "viewer")
    thief = _client(home, sessions_store)
    login(thief, "bob", "bobs old password1")
    stolen = dict(thief.cookies)
    assert _signed_in(thief)
    old = sessions_store.user("bob")
    sessions_store.remove_user("bob")
    sessions_store.add_user("bob", hash_password("a brand new password9"), "admin")
    replay = _client(home, sessions_store)
    replay.cookies.update(stolen)
    answer = replay.get("/users")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    new = sessions_store.user("bob")
    assert old and new and old.sessions_epoch == new.sessions_epoch  # the epoch alone: equal
    assert old.incarnation != new.incarnation
    # The new bob logs in as usual.
    fresh = _client(home, sessions_store)
    login(fresh, "bob", "a brand new password9")
    assert fresh.get("/users").status_code == 200


def test_users_from_before_incarnations_get_one_each_and_log_in_again(home: Home) -> None:
    """A state.db from before roles, epochs and incarnations: each user gets a random
    incarnation of its own when pvegit opens it; a cookie without one is refused."""
    connection = sqlite3.connect(home.state_path)
    connection.executescript(
        "CREATE TABLE users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL,"
        " created_at REAL NOT NULL, updated_at REAL NOT NULL);"
    )
    connection.executemany(
        "INSERT INTO users VALUES (?, ?, 1, 1)",
        [("admin", hash_password(PASSWORD)), ("bob", hash_password(PASSWORD))],
    )
    connection.commit()
    connection.close()
    store = Store(home.state_path)
    incarnations = {user.name: user.incarnation for user in store.users()}
    assert set(incarnations) == {"admin", "bob"}
    assert all(len(value) == 32 for value in incarnations.values())
    assert incarnations["admin"] != incarnations["bob"]
    store.close()
    store = Store(home.state_path)  # opened again: kept, not made anew
    assert {user.name: user.incarnation for user in store.users()} == incarnations
    client = _client(home, store)
    login(client, "bob")
    assert _signed_in(client)
    # A cookie as pvegit made them before (no incarnation), signed with the real key.
    now = time.time()
    before = {"user": "bob", "epoch": 0, "issued": now, "seen": now}
    secret = (home.root / "web_secret").read_text().strip()
    payload = base64.b64encode(json.dumps(before).encode())
    client.cookies.clear()
    client.cookies.set(
        "pvegit_session", itsdangerous.TimestampSigner(secret).sign(payload).decode()
    )
    assert not _signed_in(client)
    store.close()
