"""Roles in the web UI (what each role is shown), the users page, and local hosts,
which only root at the command line may make, repoint or restore onto."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from test_web import PASSWORD, login, password_hash

from pvegit.actions.snapshot import take_snapshot
from pvegit.config.file import Config
from pvegit.config.home import Home
from pvegit.demo.node import DemoNode
from pvegit.state.credentials import hash_password
from pvegit.state.store import Host, Store
from web.app import create_app


@pytest.fixture
def app_store(home: Home) -> Iterator[Store]:
    store = Store(home.state_path)
    store.add_user("admin", password_hash())  # the first user: an admin
    yield store
    store.close()


@pytest.fixture
def client(home: Home, app_store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(home, store=app_store), follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def demo_host(home: Home, app_store: Store, tmp_path: Path) -> Host:
    """A local host as the CLI makes one (pvegit demo), with two snapshots."""
    node = DemoNode(tmp_path / "node", "pve1")
    node.create()
    host = app_store.add_host(
        Host("pve1", f"local:{node.root}", categories=("cluster", "network", "system"))
    )
    take_snapshot(home, app_store, host)
    node.edit_something()
    assert take_snapshot(home, app_store, host).status == "changed"
    return app_store.host("pve1")  # as stored after its snapshots (they record its access)


@pytest.fixture
def remote_host(app_store: Store) -> Host:
    """A host reached over SSH (never contacted here)."""
    return app_store.add_host(Host("pve9", "192.0.2.9", categories=("cluster",)))


def _as(home: Home, store: Store, name: str, role: str | None) -> TestClient:
    if role is not None:
        store.add_user(name, password_hash(), role)
    client = TestClient(create_app(home, Config(concurrency=1), store=store))
    client.follow_redirects = False
    login(client, name)
    return client


def test_pages_show_only_the_buttons_the_role_can_use(
    home: Home,
    app_store: Store,
    demo_host: Host,
    remote_host: Host,
) -> None:
    admin = _as(home, app_store, "admin", None)
    operator = _as(home, app_store, "olivia", "operator")
    viewer = _as(home, app_store, "victor", "viewer")
    buttons = {
        "back up": "Back up now",
        "test": "Test connection",
        "restore": "/hosts/pve9/restore",
        "edit": "/hosts/pve9/edit",
    }
    expected = {
        "victor": set(),
        "olivia": {"back up", "test", "restore"},
        "admin": {"back up", "test", "restore", "edit"},
    }
    for name, client in (("admin", admin), ("olivia", operator), ("victor", viewer)):
        page = client.get("/hosts/pve9").text
        shown = {button for button, text in buttons.items() if text in page}
        assert shown == expected[name], name
        dashboard = client.get("/").text
        assert ("+ Add host" in dashboard) == (name == "admin"), name
        assert ('href="/notifications"' in dashboard) == (name == "admin"), name
        assert ('href="/audit"' in dashboard) == (name == "admin"), name
        assert "Log out everywhere" in dashboard
    # A local host (the pvegit machine) never offers a restore, whatever the role.
    for client in (admin, operator):
        local = client.get("/hosts/pve1").text
        assert "/hosts/pve1/restore" not in local and "Back up now" in local
        commit = client.get("/hosts/pve1/commits/HEAD").text
        assert "restore these files" not in commit


def test_the_users_page_adds_changes_logs_out_and_removes(
    client: TestClient, app_store: Store
) -> None:
    token = login(client)
    assert "admin" in client.get("/users").text
    short = client.post(
        "/users", data={"csrf_token": token, "name": "bob", "password": "x", "role": "viewer"}
    )
    assert short.status_code == 400 and "at least 10 characters" in short.text
    bad_role = client.post(
        "/users",
        data={"csrf_token": token, "name": "bob", "password": PASSWORD, "role": "root"},
    )
    assert bad_role.status_code == 400 and "unknown role" in bad_role.text
    added = client.post(
        "/users",
        data={"csrf_token": token, "name": "bob", "password": PASSWORD, "role": "operator"},
    )
    assert added.status_code == 303
    assert app_store.user("bob").role == "operator"  # type: ignore[union-attr]
    changed = client.post("/users/bob/role", data={"csrf_token": token, "role": "admin"})
    assert changed.status_code == 303 and app_store.user("bob").role == "admin"  # type: ignore[union-attr]
    epoch = app_store.user("bob").sessions_epoch  # type: ignore[union-attr]
    ended = client.post("/users/bob/logout", data={"csrf_token": token})
    assert ended.status_code == 303
    assert app_store.user("bob").sessions_epoch == epoch + 1  # type: ignore[union-attr]
    assert client.post("/users/bob/remove", data={"csrf_token": token}).status_code == 303
    assert app_store.user("bob") is None
    assert client.post("/users/bob/remove", data={"csrf_token": token}).status_code == 404
    actions = [(event.action, event.detail) for event in app_store.audit_events()]
    assert ("user added", {"role": "operator", "user": "bob"}) in actions
    assert ("user role changed", {"previous": "operator", "role": "admin", "user": "bob"}) in (
        actions
    )
    assert ("logged out everywhere", {"user": "bob"}) in actions
    assert ("user removed", {"user": "bob"}) in actions


def test_the_last_admin_can_be_neither_demoted_nor_removed(
    client: TestClient, app_store: Store
) -> None:
    token = login(client)
    demoted = client.post("/users/admin/role", data={"csrf_token": token, "role": "viewer"})
    assert demoted.status_code == 400 and "last admin" in demoted.text
    removed = client.post("/users/admin/remove", data={"csrf_token": token})
    assert removed.status_code == 400 and "last admin" in removed.text
    assert app_store.user("admin").role == "admin"  # type: ignore[union-attr]
    app_store.add_user("second", hash_password(PASSWORD), "admin")
    assert (
        client.post("/users/second/role", data={"csrf_token": token, "role": "viewer"}).status_code
        == 303
    )
    assert client.post("/users/admin/remove", data={"csrf_token": token}).status_code == 400


def test_a_token_made_in_the_ui_has_the_chosen_role(client: TestClient, app_store: Store) -> None:
    token = login(client)
    made = client.post("/tokens", data={"csrf_token": token, "name": "ci", "role": "operator"})
    assert made.status_code == 200 and "operator" in made.text
    assert [item.role for item in app_store.tokens()] == ["operator"]
    wrong = client.post("/tokens", data={"csrf_token": token, "name": "x", "role": "god"})
    assert wrong.status_code == 400 and "unknown role" in wrong.text


def test_existing_users_become_admins_and_existing_tokens_keep_working(home: Home) -> None:
    """A state.db from before roles: its users could do everything, its tokens also clone."""
    connection = sqlite3.connect(home.state_path)
    connection.executescript(
        "CREATE TABLE users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL,"
        " created_at REAL NOT NULL, updated_at REAL NOT NULL);"
        "CREATE TABLE tokens (name TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE,"
        " created_at REAL NOT NULL, created_by TEXT, revoked_at REAL, last_used REAL);"
        "INSERT INTO users VALUES ('alice', 'scrypt$x', 1, 1), ('bob', 'scrypt$y', 1, 1);"
        "INSERT INTO tokens VALUES ('ci', 'abc', 1, NULL, NULL, NULL);"
    )
    connection.commit()
    connection.close()
    store = Store(home.state_path)
    assert [(user.name, user.role) for user in store.users()] == [
        ("alice", "admin"),
        ("bob", "admin"),
    ]
    assert [token.role for token in store.tokens()] == ["admin"]
    store.close()


# -- local hosts -------------------------------------------------------------------


@pytest.mark.parametrize("address", ["local", "local:/", "local:/var/lib/pvegit", " local:/mnt "])
def test_the_web_form_never_makes_a_local_host(
    client: TestClient, app_store: Store, address: str
) -> None:
    token = login(client)
    response = client.post(
        "/hosts",
        data={"csrf_token": token, "name": "self", "address": address, "categories": "network"},
    )
    assert response.status_code == 400 and "only root can add one" in response.text
    assert [host.name for host in app_store.hosts()] == []


def test_the_web_cannot_turn_a_host_into_a_local_one(
    client: TestClient, app_store: Store, remote_host: Host
) -> None:
    token = login(client)
    response = client.post(
        "/hosts/pve9/edit",
        data={
            "csrf_token": token,
            "address": "local:/",
            "port": "22",
            "user": "root",
            "categories": "cluster",
        },
    )
    assert response.status_code == 400 and "only root can add one" in response.text
    assert app_store.host("pve9").address == "192.0.2.9"


@pytest.mark.parametrize(
    "change",
    [
        {"address": "192.0.2.50"},
        {"includes": "/var/lib/pvegit"},
        {"categories": ["cluster", "network", "system", "secrets"]},
        {"user": "nobody"},
        {"port": "2222"},
    ],
)
def test_a_local_host_keeps_where_and_what_it_reads(
    client: TestClient, app_store: Store, demo_host: Host, change: dict[str, object]
) -> None:
    token = login(client)
    form = client.get("/hosts/pve1/edit").text
    assert "set by root on the command line" in form and "disabled" in form
    data: dict[str, object] = {"csrf_token": token, "schedule": "", **change}
    response = client.post("/hosts/pve1/edit", data=data)
    assert response.status_code == 400, change
    assert "can only be changed by root" in response.text
    assert app_store.host("pve1") == demo_host


def test_a_local_host_takes_a_schedule_and_excludes_from_the_web(
    client: TestClient, app_store: Store, demo_host: Host
) -> None:
    token = login(client)
    response = client.post(
        "/hosts/pve1/edit",
        data={"csrf_token": token, "schedule": "every 6 hours", "excludes": "/etc/hosts"},
    )
    assert response.status_code == 303, response.text
    host = app_store.host("pve1")
    assert host.schedule == "every 6 hours" and host.excludes == ("etc/hosts",)
    assert (host.address, host.categories, host.includes) == (
        demo_host.address,
        demo_host.categories,
        demo_host.includes,
    )


def test_no_restore_onto_a_local_host_from_the_web(
    client: TestClient, demo_host: Host, home: Home
) -> None:
    token = login(client)
    target = Path(demo_host.address.removeprefix("local:")) / "etc/hosts"
    before = target.read_bytes()
    form = client.get("/hosts/pve1/restore")
    assert form.status_code == 403 and "pvegit restore pve1" in form.text
    for url in ("/hosts/pve1/restore/preview", "/hosts/pve1/restore"):
        response = client.post(
            url,
            data={"csrf_token": token, "commit": "HEAD~1", "paths": "/etc/hosts", "confirm": "yes"},
        )
        assert response.status_code == 403 and "writes files as root" in response.text, url
    assert target.read_bytes() == before


def test_the_demo_keeps_working_for_browsing_and_backing_up(
    client: TestClient, app_store: Store, demo_host: Host
) -> None:
    token = login(client)
    assert client.get("/hosts/pve1/tree/HEAD/etc/pve/storage.cfg").status_code == 200
    started = client.post("/hosts/pve1/snapshot", data={"csrf_token": token})
    assert started.status_code == 303
    run_id = int(started.headers["location"].rsplit("/", 1)[1])
    assert client.app.state.pvegit.launcher.wait_idle(timeout=120)  # type: ignore[attr-defined]
    assert app_store.run(run_id).status == "unchanged"
