"""The web UI through Starlette's TestClient: every page, every error path."""

from __future__ import annotations

import functools
import html
import http.client
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from pvegit.actions.snapshot import SnapshotOptions, take_snapshot
from pvegit.config.file import Config
from pvegit.config.home import Home
from pvegit.demo.node import DemoNode
from pvegit.state.credentials import hash_password, hash_token, new_token
from pvegit.state.store import Host, Store
from testbed.appserver import pvegit_process, running
from testbed.nodes import Node, TestBed
from web.app import ROUTES, create_app
from web.security import LoginThrottle

PASSWORD = "correct horse battery"


@functools.cache
def password_hash() -> str:
    """PASSWORD's scrypt hash, made once for the fixtures' users (a hash costs ~0.3 s
    of CPU; every login still checks it with scrypt)."""
    return hash_password(PASSWORD)


def token_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


@pytest.fixture
def app_store(home: Home) -> Iterator[Store]:
    store = Store(home.state_path)
    store.add_user("admin", password_hash())
    yield store
    store.close()


@pytest.fixture
def client(home: Home, app_store: Store) -> Iterator[TestClient]:
    app = create_app(home, Config(concurrency=2), store=app_store)
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


def login(client: TestClient, user: str = "admin", password: str = PASSWORD) -> str:
    """Log in; return a CSRF token of the new session."""
    page = client.get("/login")
    response = client.post(
        "/login",
        data={
            "username": user,
            "password": password,
            "csrf_token": token_of(page.text),
            "next": "/",
        },
    )
    assert response.status_code == 303, response.text
    return token_of(client.get("/").text)


@pytest.fixture
def demo_host(home: Home, app_store: Store, tmp_path: Path) -> Host:
    node = DemoNode(tmp_path / "node", "pve1")
    node.create()
    host = app_store.add_host(
        Host("pve1", f"local:{node.root}", categories=("cluster", "network", "system"))
    )
    assert take_snapshot(home, app_store, host).status == "changed"
    for _ in range(3):
        node.edit_something()
        assert take_snapshot(home, app_store, host).status == "changed"
    return host


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path).replace("{id:int}", "1")


def all_routes() -> list[tuple[str, str]]:
    found = []
    for route in ROUTES:
        if isinstance(route, Mount):
            continue
        assert isinstance(route, Route)
        for method in sorted(route.methods or []):
            if method != "HEAD":
                found.append((method, route.path))
    return found


@pytest.mark.parametrize(("method", "path"), all_routes())
def test_every_route_needs_a_login(client: TestClient, method: str, path: str) -> None:
    url = re.sub(r"\{id:int\}", "1", path)
    url = re.sub(r"\{[^}]+\}", "x", url)
    response = client.request(method, url)
    if path == "/login":
        assert response.status_code in (200, 403)  # the form, or a POST without its token
        return
    if path.endswith("/events") or path.startswith(("/api/", "/git/")) or path == "/metrics":
        assert response.status_code == 401
        return
    assert response.status_code == 303, f"{method} {path} answered {response.status_code}"
    assert response.headers["location"].startswith("/login")


# The role each route needs: the specification the guards are checked against.
# A new route fails test_every_route_has_its_role until it is added here.
VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"
ROUTE_ROLES: dict[tuple[str, str], str] = {
    ("POST", "/logout"): VIEWER,
    ("POST", "/logout/everywhere"): VIEWER,
    ("GET", "/"): VIEWER,
    ("GET", "/hosts"): VIEWER,
    ("POST", "/hosts"): ADMIN,
    ("GET", "/hosts/new"): ADMIN,
    ("GET", "/hosts/{name}"): VIEWER,
    ("GET", "/hosts/{name}/edit"): ADMIN,
    ("POST", "/hosts/{name}/edit"): ADMIN,
    ("POST", "/hosts/{name}/remove"): ADMIN,
    ("POST", "/hosts/{name}/test"): OPERATOR,
    ("POST", "/hosts/{name}/trust"): ADMIN,
    ("POST", "/hosts/{name}/harden"): ADMIN,
    ("POST", "/hosts/{name}/snapshot"): OPERATOR,
    ("POST", "/hosts/{name}/verify"): OPERATOR,
    ("GET", "/hosts/{name}/commits/{commit}"): VIEWER,
    ("GET", "/hosts/{name}/compare/{spec}"): VIEWER,
    ("GET", "/hosts/{name}/tree/{commit}"): VIEWER,
    ("GET", "/hosts/{name}/tree/{commit}/{path:path}"): VIEWER,
    ("GET", "/hosts/{name}/history/{path:path}"): VIEWER,
    ("POST", "/hosts/{name}/reveal"): ADMIN,
    ("GET", "/hosts/{name}/restore"): OPERATOR,
    ("POST", "/hosts/{name}/restore/preview"): OPERATOR,
    ("POST", "/hosts/{name}/restore"): ADMIN,
    ("GET", "/runs"): VIEWER,
    ("GET", "/runs/{id:int}"): VIEWER,
    ("GET", "/runs/{id:int}/events"): VIEWER,
    ("GET", "/audit"): ADMIN,
    ("GET", "/tokens"): ADMIN,
    ("POST", "/tokens"): ADMIN,
    ("POST", "/tokens/{token}/revoke"): ADMIN,
    ("GET", "/users"): ADMIN,
    ("POST", "/users"): ADMIN,
    ("POST", "/users/{user}/role"): ADMIN,
    ("POST", "/users/{user}/logout"): ADMIN,
    ("POST", "/users/{user}/remove"): ADMIN,
    ("GET", "/notifications"): ADMIN,
    ("POST", "/notifications"): ADMIN,
    ("POST", "/notifications/test"): ADMIN,
    ("POST", "/notifications/{target}/remove"): ADMIN,
    ("GET", "/api/v1/hosts"): VIEWER,
    ("POST", "/api/v1/hosts/{name}/snapshot"): OPERATOR,
    ("GET", "/api/v1/hosts/{name}/commits"): VIEWER,
    ("GET", "/api/v1/hosts/{name}/diff"): VIEWER,
    ("GET", "/api/v1/runs"): VIEWER,
    ("GET", "/api/v1/runs/{id:int}"): VIEWER,
    ("GET", "/metrics"): VIEWER,
    ("GET", "/git/{host}.git/{path:path}"): ADMIN,
    ("POST", "/git/{host}.git/{path:path}"): ADMIN,
}
ROLE_ORDER = (VIEWER, OPERATOR, ADMIN)


def test_every_route_has_its_role() -> None:
    declared = {}
    for route in ROUTES:
        if isinstance(route, Route):
            for method in route.methods or ():
                if method != "HEAD" and route.path != "/login":
                    declared[(method, route.path)] = getattr(route.endpoint, "role", None)
    assert set(declared) == set(ROUTE_ROLES), set(declared) ^ set(ROUTE_ROLES)
    for key, role in ROUTE_ROLES.items():
        assert declared[key] == role, key


@pytest.fixture
def role_clients(home: Home, app_store: Store, demo_host: Host) -> Iterator[dict[str, TestClient]]:
    """One signed-in client per role (the admin is the first user), sharing one app."""
    app_store.add_user("olivia", password_hash(), OPERATOR)
    app_store.add_user("victor", password_hash(), VIEWER)
    app = create_app(home, Config(concurrency=2), store=app_store)
    with TestClient(app, follow_redirects=False) as admin:
        clients = {ADMIN: admin, OPERATOR: TestClient(app, follow_redirects=False)}
        clients[VIEWER] = TestClient(app, follow_redirects=False)
        for role, name in ((ADMIN, "admin"), (OPERATOR, "olivia"), (VIEWER, "victor")):
            login(clients[role], name)
        yield clients


def _sample_url(path: str) -> str:
    values = {
        "name": "pve1",
        "commit": "HEAD",
        "spec": "HEAD~1...HEAD",
        "path": "etc/hosts",
        "id": "1",
        "token": "nope",
        "target": "nope",
        "user": "nobody",
        "host": "pve1",
    }
    return re.sub(r"\{([a-z]+)(?::[a-z]+)?\}", lambda match: values[match.group(1)], path)


def _refused_for_role(response: httpx2.Response) -> bool:
    if response.status_code != 403:
        return False
    if response.headers.get("content-type", "").startswith("application/json"):
        return "role" in response.json()["error"]
    return "role" in response.text and "security token" not in response.text


WEB_ROUTES = [key for key in ROUTE_ROLES if not key[1].startswith(("/api/", "/git/", "/metrics"))]


def test_every_page_and_action_checks_the_role(role_clients: dict[str, TestClient]) -> None:
    """Every web route x every role. Too low a role: the 403 page. High enough: past the
    role check (a POST without its CSRF token then stops at that check: nothing changes)."""
    problems = []
    for method, path in WEB_ROUTES:
        needed = ROUTE_ROLES[(method, path)]
        url = _sample_url(path)
        for role, client in role_clients.items():
            response = client.get(url) if method == "GET" else client.post(url, data={})
            where = f"{role} {method} {url} -> {response.status_code}"
            if response.status_code == 303:
                problems.append(f"{where}: sent to the login page")
            elif ROLE_ORDER.index(role) < ROLE_ORDER.index(needed):
                if not _refused_for_role(response) or f"needs the {needed} role" not in (
                    response.text
                ):
                    problems.append(f"{where}: not refused for its role")
                elif "Forbidden" not in response.text:
                    problems.append(f"{where}: not the 403 page")
            elif _refused_for_role(response):
                problems.append(f"{where}: refused although the role suffices")
            elif method == "POST" and "security token" not in response.text:
                problems.append(f"{where}: did not stop at the CSRF check")
    assert not problems, "\n".join(problems)


API_ROUTES = [key for key in ROUTE_ROLES if key[1].startswith(("/api/", "/metrics"))]


def test_the_tokens_page_shows_a_new_token_once(client: TestClient, app_store: Store) -> None:
    token = login(client)
    bad = client.post("/tokens", data={"csrf_token": token, "name": "two words"})
    assert bad.status_code == 400 and "name the token with letters" in bad.text
    made = client.post("/tokens", data={"csrf_token": token, "name": "prom", "role": "operator"})
    assert made.status_code == 200 and "Token prom created" in made.text
    [secret] = re.findall(r"pvegit_[A-Za-z0-9_-]{40,}", made.text)
    active = app_store.active_token(hash_token(secret))
    assert active is not None and active.role == "operator"
    assert secret not in client.get("/tokens").text
    revoke = "/tokens/prom/revoke"
    assert client.post(revoke, data={"csrf_token": token}).status_code == 303
    assert client.post(revoke, data={"csrf_token": token}).status_code == 404
    assert [event.action for event in app_store.audit_events(limit=2)] == [
        "token revoked",
        "token created",
    ]


def test_every_api_endpoint_checks_the_token_role(
    client: TestClient, app_store: Store, demo_host: Host
) -> None:
    tokens = {}
    for role in ROLE_ORDER:
        tokens[role] = new_token()
        app_store.add_token(f"{role}-token", hash_token(tokens[role]), None, role)
    problems = []
    for method, path in API_ROUTES:
        needed = ROUTE_ROLES[(method, path)]
        url = _sample_url(path).replace("/hosts/pve1/", "/hosts/nope/")  # no run is started
        for role, token in tokens.items():
            response = client.request(method, url, headers={"Authorization": f"Bearer {token}"})
            where = f"{role} {method} {url} -> {response.status_code}"
            if ROLE_ORDER.index(role) < ROLE_ORDER.index(needed):
                if response.status_code != 403 or f"the {needed} role" not in response.text:
                    problems.append(f"{where}: not refused for its role")
            elif response.status_code in (401, 403):
                problems.append(f"{where}: refused although the role suffices")
    assert not problems, "\n".join(problems)


def test_git_needs_the_admin_role(role_clients: dict[str, TestClient]) -> None:
    import base64

    names = {ADMIN: "admin", OPERATOR: "olivia", VIEWER: "victor"}
    for role, client in role_clients.items():
        basic = base64.b64encode(f"{names[role]}:{PASSWORD}".encode()).decode()
        response = client.get(
            "/git/pve1.git/info/refs", headers={"Authorization": f"Basic {basic}"}
        )
        assert response.status_code == (200 if role == ADMIN else 403), role


def test_static_files_are_public(client: TestClient) -> None:
    assert client.get("/static/style.css").status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [r for r in all_routes() if r[0] == "POST" and not r[1].startswith(("/api/", "/git/"))],
)
def test_every_post_needs_a_csrf_token(
    client: TestClient, demo_host: Host, method: str, path: str
) -> None:
    login(client)
    url = path.replace("{name}", "pve1").replace("{token}", "x")
    response = client.post(url, data={"fingerprint": "x", "path": "etc/hosts", "commit": "HEAD"})
    assert response.status_code == 403, f"POST {path} without a token: {response.status_code}"
    wrong = client.post(url, data={"csrf_token": "forged"})
    assert wrong.status_code == 403


def test_login_wrong_password_throttle_and_audit(client: TestClient, app_store: Store) -> None:
    page = client.get("/login")
    token = token_of(page.text)
    assert 'name="username"' in page.text and 'name="password"' in page.text
    for _ in range(5):
        wrong = client.post(
            "/login", data={"username": "admin", "password": "nope", "csrf_token": token}
        )
        assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
    throttled = client.post(
        "/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token}
    )
    assert throttled.status_code == 429 and "Too many failed attempts" in throttled.text
    actions = [event.action for event in app_store.audit_events()]
    assert actions.count("login failed") == 5


def test_throttle_backs_off_and_forgets_on_success() -> None:
    throttle = LoginThrottle(free=2, base=10, ceiling=100)
    throttle.failed("user:a", now=0)
    assert throttle.wait_seconds("user:a", now=0) == 0
    throttle.failed("user:a", now=1)
    assert throttle.wait_seconds("user:a", now=1) == 10
    throttle.failed("user:a", now=20)
    assert throttle.wait_seconds("user:a", now=20) == 20
    throttle.succeeded("user:a")
    assert throttle.wait_seconds("user:a", now=21) == 0


def test_login_redirects_only_to_local_paths(client: TestClient) -> None:
    page = client.get("/login?next=https://evil.example/")
    assert 'value="/"' in page.text
    response = client.post(
        "/login",
        data={
            "username": "admin",
            "password": PASSWORD,
            "csrf_token": token_of(page.text),
            "next": "//evil.example/x",
        },
    )
    assert response.headers["location"] == "/"
    back = client.get("/login?next=/runs")
    assert 'value="/runs"' in back.text


def test_session_cookie_flags(home: Home, app_store: Store) -> None:
    app = create_app(home, Config(behind_tls_proxy=True), store=app_store)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as secure:
        page = secure.get("/login")
        response = secure.post(
            "/login",
            data={"username": "admin", "password": PASSWORD, "csrf_token": token_of(page.text)},
        )
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "secure" in cookie


def test_expired_or_forged_session_means_login(
    client: TestClient, home: Home, app_store: Store
) -> None:
    import base64
    import time

    import itsdangerous

    login(client)
    assert client.get("/").status_code == 200
    secret = (home.root / "web_secret").read_text().strip()

    class OldSigner(itsdangerous.TimestampSigner):
        def get_timestamp(self) -> int:
            return 1_000_000_000  # 2001: long past any max_age

    now = time.time()
    account = app_store.user("admin")
    assert account
    session = {
        "user": "admin",
        "incarnation": account.incarnation,
        "epoch": 0,
        "issued": now,
        "seen": now,
    }
    payload = base64.b64encode(json.dumps(session).encode())
    fresh = itsdangerous.TimestampSigner(secret).sign(payload).decode()
    client.cookies.clear()
    client.cookies.set("pvegit_session", fresh)
    assert client.get("/").status_code == 200  # the same cookie, signed now, is accepted
    client.cookies.clear()
    client.cookies.set("pvegit_session", OldSigner(secret).sign(payload).decode())
    assert client.get("/").status_code == 303
    client.cookies.clear()
    client.cookies.set("pvegit_session", "forged.value.here")
    assert client.get("/").status_code == 303


def test_removed_user_loses_the_session(client: TestClient, app_store: Store) -> None:
    login(client)
    app_store.add_user("other-admin", hash_password(PASSWORD), "admin")
    app_store.remove_user("admin")
    assert client.get("/hosts").headers["location"].startswith("/login")


def test_logout(client: TestClient) -> None:
    token = login(client)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/").status_code == 303


def test_pages_render(client: TestClient, demo_host: Host, home: Home) -> None:
    login(client)
    dashboard = client.get("/")
    assert dashboard.status_code == 200
    for text in ("OK", "Failing", "Stale", "Never backed up", "pve1", "Recent changes", "MB"):
        assert text in dashboard.text
    host_page = client.get("/hosts/pve1")
    assert host_page.status_code == 200 and "Timeline" in host_page.text
    assert "4 snapshots with changes" in host_page.text
    commit_id = re.findall(r"/hosts/pve1/commits/([0-9a-f]{40})", host_page.text)[0]
    for url in (
        "/hosts",
        "/hosts/new",
        "/hosts/pve1/edit",
        "/runs",
        "/runs?host=pve1&status=changed",
        "/runs/1",
        "/audit",
        "/audit?host=pve1",
        f"/hosts/pve1/commits/{commit_id}",
        f"/hosts/pve1/commits/{commit_id}?view=split",
        "/hosts/pve1/compare/HEAD~3...HEAD",
        f"/hosts/pve1/tree/{commit_id}",
        f"/hosts/pve1/tree/{commit_id}/etc/pve",
        f"/hosts/pve1/tree/{commit_id}/etc/pve/storage.cfg",
        "/hosts/pve1/history/etc/pve",
        "/hosts/pve1/history/etc/pve/storage.cfg",
        "/hosts/pve1/tree/HEAD/etc/pve/local",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
    commit = client.get(f"/hosts/pve1/commits/{commit_id}").text
    assert "+" in commit and "modified" in commit
    tree = client.get(f"/hosts/pve1/tree/{commit_id}/etc/pve").text
    assert "symbolic link" in tree and "qemu-server" in tree
    history = client.get("/hosts/pve1/history/etc/pve/storage.cfg").text
    assert "first snapshot" in history


@pytest.mark.parametrize(
    "url",
    [
        "/hosts/nope",
        "/hosts/pve1/commits/deadbeef",
        "/hosts/pve1/commits/zzzz",
        "/hosts/pve1/tree/HEAD/etc/nope",
        "/hosts/pve1/tree/HEAD/../../etc/passwd",
        "/hosts/pve1/tree/HEAD/etc/%2e%2e/%2e%2e/etc/passwd",
        "/hosts/pve1/history/..%2F..%2Fetc",
        "/hosts/pve1/compare/HEAD",
        "/hosts/pve1/compare/HEAD...nope",
        "/runs/999999",
        "/hosts/..%2Fpve1",
    ],
)
def test_unknown_things_are_a_404_page(client: TestClient, demo_host: Host, url: str) -> None:
    login(client)
    response = client.get(url)
    assert response.status_code == 404, url
    assert "Not found" in response.text and "Traceback" not in response.text


VALID = {"name": "pve1", "commit": "HEAD", "spec": "HEAD~1...HEAD", "path": "etc/pve/storage.cfg"}
TRAVERSALS = ("..", "%2e%2e", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "../../../etc/passwd")


def traversal_cases() -> list[tuple[str, str]]:
    """Every path parameter of every page, with each traversal in it (the rest valid)."""
    cases = []
    for method, path in all_routes():
        if method != "GET" or path.startswith("/git/"):
            continue  # POSTs need CSRF first (tested above); git paths: test_gitserve.py
        params = re.findall(r"\{([a-z_]+)(?::[a-z]+)?\}", path)
        for param in params:
            for payload in TRAVERSALS:
                url = path
                for other in params:
                    value = payload if other == param else VALID.get(other, "1")
                    url = re.sub(r"\{" + other + r"(?::[a-z]+)?\}", value, url)
                cases.append((path, url))
    return cases


def test_traversal_in_every_path_parameter_is_a_404(
    home: Home, app_store: Store, demo_host: Host
) -> None:
    """Sent as-is over a socket (http.client does not resolve dot segments; browsers do)."""
    cases = traversal_cases()
    assert len(cases) > 30
    app = create_app(home, Config(concurrency=2), store=app_store)
    with running(app) as server, httpx2.Client(base_url=f"http://{server}") as browser:
        page = browser.get("/login")
        browser.post(
            "/login",
            data={"username": "admin", "password": PASSWORD, "csrf_token": token_of(page.text)},
        )
        cookie = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
        token = new_token()
        app_store.add_token("traversal", hash_token(token), None)
        headers = {"Cookie": cookie, "Authorization": f"Bearer {token}"}
        assert browser.get("/hosts/pve1").status_code == 200
        host, port = server.split(":")
        for route, url in cases:
            connection = http.client.HTTPConnection(host, int(port), timeout=30)
            connection.request("GET", url, headers=headers)
            response = connection.getresponse()
            body = response.read().decode("utf-8", "replace")
            connection.close()
            assert response.status == 404, f"{route}: {url} -> {response.status}"
            assert "root:x:0:0" not in body and "Traceback" not in body


def test_host_form_validation_and_crud(client: TestClient, app_store: Store) -> None:
    token = login(client)
    bad = client.post(
        "/hosts",
        data={
            "csrf_token": token,
            "name": "../x",
            "address": "a b",
            "port": "99999",
            "user": "Root!",
            "categories": "nope",
            "includes": "/etc/$(reboot)",
            "schedule": "sometimes",
        },
    )
    assert bad.status_code == 400
    for message in (
        "not allowed",
        "not a host name",
        "out of range",
        "not a valid login",
        "unknown category",
        "characters",
        "not understood",
    ):
        assert message in bad.text, message
    assert 'value="../x"' in bad.text  # the form comes back as typed
    good = client.post(
        "/hosts",
        data={
            "csrf_token": token,
            "name": "pve9",
            "address": "192.0.2.9",
            "port": "22",
            "user": "root",
            "categories": ["cluster", "network"],
            "excludes": "/etc/pve/nodes/*/qemu-server/9*.conf",
        },
    )
    assert good.status_code == 303 and good.headers["location"] == "/hosts/pve9"
    host = app_store.host("pve9")
    assert host.categories == ("cluster", "network")
    assert host.excludes == ("etc/pve/nodes/*/qemu-server/9*.conf",)
    duplicate = client.post(
        "/hosts",
        data={
            "csrf_token": token,
            "name": "pve9",
            "address": "192.0.2.9",
            "port": "22",
            "user": "root",
            "categories": "cluster",
        },
    )
    assert duplicate.status_code == 400 and "exists already" in duplicate.text
    app_store.update_host("pve9", host_key_type="ssh-ed25519", host_key="AAAA")
    edited = client.post(
        "/hosts/pve9/edit",
        data={
            "csrf_token": token,
            "address": "192.0.2.10",
            "port": "2222",
            "user": "pvebackup",
            "categories": "cluster",
            "schedule": "daily at 3:15",
        },
    )
    assert edited.status_code == 303
    host = app_store.host("pve9")
    assert (host.address, host.port, host.user, host.schedule) == (
        "192.0.2.10",
        2222,
        "pvebackup",
        "daily at 03:15",
    )
    assert host.host_key is None  # a new address must be trusted again
    assert client.post("/hosts/pve9/remove", data={"csrf_token": token}).status_code == 303
    assert client.get("/hosts/pve9").status_code == 404
    actions = [event.action for event in app_store.audit_events()]
    for action in ("host added", "host edited", "host removed", "login"):
        assert action in actions


def test_names_and_contents_are_escaped(
    client: TestClient, home: Home, app_store: Store, tmp_path: Path
) -> None:
    root = tmp_path / "node"
    DemoNode(root, "pve1").create()
    evil = root / "etc/network/interfaces.d/<script>alert(1)<\\script>"
    evil.write_text("<img src=x onerror=alert(2)>\n")
    host = app_store.add_host(Host("pve1", f"local:{root}", categories=("network",)))
    take_snapshot(home, app_store, host)
    evil.write_text("<b>bold</b>\n")
    take_snapshot(home, app_store, host)
    login(client)
    commit = client.get("/hosts/pve1/commits/HEAD").text
    assert "<script>" not in commit
    assert "&lt;script&gt;alert(1)&lt;" in commit
    assert "<b>bold</b>" not in commit and "&lt;b&gt;bold&lt;/b&gt;" in commit
    assert "<img src=x" not in commit
    tree = client.get("/hosts/pve1/tree/HEAD/etc/network/interfaces.d").text
    assert "<script>" not in tree and "&lt;script&gt;alert(1)" in tree


def test_hostile_actor_host_name_and_raw_names_render_inert(
    client: TestClient, home: Home, app_store: Store, tmp_path: Path
) -> None:
    root = tmp_path / "node"
    DemoNode(root, "pve1").create()
    odd = root / "etc/network/interfaces.d"
    (odd / os.fsdecode(b"latin1-\xe9.cfg")).write_text("not UTF-8\n")
    (odd / "new\nline.cfg").write_text("newline\n")
    host = app_store.add_host(Host("pve1", f"local:{root}", categories=("network",)))
    take_snapshot(home, app_store, host)
    (odd / "new\nline.cfg").write_text("changed\n")
    evil = '<script>alert("actor")</script>'
    run = take_snapshot(home, app_store, host, SnapshotOptions(actor=evil, trigger="<i>x</i>"))
    assert run.status == "changed"
    token = login(client)
    pages = [
        "/",
        "/hosts/pve1",
        "/hosts/pve1/commits/HEAD",
        f"/runs/{run.id}",
        "/runs",
        "/hosts/pve1/tree/HEAD/etc/network/interfaces.d",
        "/hosts/pve1/history/etc/network/interfaces.d",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert "<script>alert" not in response.text and "<i>x</i>" not in response.text, url
    assert "&lt;script&gt;alert(&#34;actor&#34;)" in client.get("/hosts/pve1/commits/HEAD").text
    tree = client.get("/hosts/pve1/tree/HEAD/etc/network/interfaces.d").text
    links = re.findall(r'href="(/hosts/pve1/(?:tree|history)/[^"]*(?:latin1|line)[^"]*)"', tree)
    assert links, "the odd names are not linked"
    for link in links:
        assert client.get(html.unescape(link)).status_code == 200, link
    # A host name with markup never gets in: the form says why, escaped.
    form = client.post(
        "/hosts", data={"csrf_token": token, "name": "<b>pve</b>", "address": "10.0.0.1"}
    )
    assert form.status_code == 400
    assert "<b>pve</b>" not in form.text and "&lt;b&gt;pve&lt;/b&gt;" in form.text


def test_a_made_up_name_cannot_forge_a_line_in_the_audit_log(
    client: TestClient, home: Home, app_store: Store
) -> None:
    """The review's case: without a login, a user name (git's Basic auth, the login
    form) or a URL's host name with newlines in it wrote a made-up entry into
    `pvegit audit`. Names that are not valid are recorded quoted; the CLI and the
    page print each field on one line."""
    import base64

    forged = "2030-01-01 09.00    admin        restore              pve1           completed"
    name = f"x\n{forged}\nmallory"

    def basic(user: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:pw".encode()).decode()}

    assert client.get("/git/pve1.git/info/refs", headers=basic(name)).status_code == 401
    by_host = client.get(
        "/git/pve1%0A" + forged.replace(" ", "%20") + ".git/HEAD", headers=basic("admin")
    )
    assert by_host.status_code == 401
    page = client.get("/login")
    failed = client.post(
        "/login", data={"username": name, "password": "pw", "csrf_token": token_of(page.text)}
    )
    assert failed.status_code == 401
    # An entry as an older pvegit wrote it: the raw name, newline and markup included.
    app_store.audit(f"y\n{forged}\n<b>bold</b>", "login failed", None, address="10.0.0.9")
    events = app_store.audit_events()
    assert len(events) == 4
    git_user, git_host, form_user = events[3].actor, events[2].host, events[1].actor
    assert git_user == form_user and "\n" not in git_user
    # What was tried stays readable: quoted as JSON, cut after 64 characters.
    assert json.loads(git_user.removesuffix("...")) == name[:64] and git_user.endswith("...")
    assert events[2].actor == "admin"
    assert json.loads(git_host.removesuffix("...")) == ("pve1\n" + forged)[:64]
    # `pvegit audit` (a real process, as root runs it): one line an entry.
    printed = pvegit_process(home, "audit")
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    assert len(lines) == 1 + len(events), printed.stdout
    assert not any(line.startswith(("2030", "mallory", "<b>")) for line in lines), printed.stdout
    assert "y\\x0a2030-01-01" in lines[1]
    as_json = pvegit_process(home, "audit", "--json")
    assert [event["actor"] for event in json.loads(as_json.stdout)] == [
        event.actor for event in events
    ]
    # The web page: one row an entry, the newline shown, the markup inert.
    login(client)
    audit_page = client.get("/audit").text
    body = audit_page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert body.count("<tr>") == len(events) + 1  # the new login too
    assert "y\\x0a2030-01-01" in body and "<b>bold" not in body and "&lt;b&gt;bold" in body
    assert "\n" not in re.sub(r"\n\s*<", "<", body.strip())  # no newline inside a cell


def test_secrets_are_summarised_and_revealing_is_audited(
    client: TestClient, home: Home, app_store: Store, tmp_path: Path
) -> None:
    root = tmp_path / "node"
    node = DemoNode(root, "pve1")
    node.create()
    host = app_store.add_host(Host("pve1", f"local:{root}", categories=("cluster", "secrets")))
    take_snapshot(home, app_store, host)
    (root / "etc/pve/priv/storage/pbs-main.pw").write_text("n3w-s3cr3t-password\n")
    take_snapshot(home, app_store, host)
    token = login(client)
    commit = client.get("/hosts/pve1/commits/HEAD").text
    assert "secret" in commit and "s3cr3t" not in commit
    assert "changed (20 → 20 bytes)" in commit
    file_page = client.get("/hosts/pve1/tree/HEAD/etc/pve/priv/storage/pbs-main.pw").text
    assert "s3cr3t" not in file_page and "not shown inline" in file_page
    revealed = client.post(
        "/hosts/pve1/reveal",
        data={"csrf_token": token, "commit": "HEAD", "path": "etc/pve/priv/storage/pbs-main.pw"},
    )
    assert revealed.status_code == 200 and "n3w-s3cr3t-password" in revealed.text
    event = app_store.audit_events(action="secret shown")[0]
    assert event.actor == "admin" and event.detail["path"] == "/etc/pve/priv/storage/pbs-main.pw"


def test_back_up_now_runs_and_streams_progress(
    client: TestClient, demo_host: Host, app_store: Store
) -> None:
    token = login(client)
    response = client.post("/hosts/pve1/snapshot", data={"csrf_token": token})
    assert response.status_code == 303
    run_url = response.headers["location"]
    run_id = int(run_url.rsplit("/", 1)[1])
    with client.stream("GET", f"{run_url}/events") as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        states = [
            json.loads(line[len("data: ") :])
            for line in events.iter_lines()
            if line.startswith("data: {") and line != "data: {}"
        ]
    assert states[-1]["status"] == "unchanged"
    assert states[-1]["percent"] == 100
    page = client.get(run_url).text
    assert "Unchanged" in page and f"run {run_id}" in page
    assert app_store.run(run_id).trigger == "web" and app_store.run(run_id).actor == "admin"
    assert "backup triggered" in [event.action for event in app_store.audit_events()]


def test_test_connection_of_a_local_host(client: TestClient, demo_host: Host) -> None:
    token = login(client)
    page = client.post("/hosts/pve1/test", data={"csrf_token": token})
    assert page.status_code == 200
    assert "reached locally" in page.text and "pmxcfs: /etc/pve is served" in page.text


def test_oversized_forms_are_refused(client: TestClient) -> None:
    token = login(client)
    response = client.post("/hosts", data={"csrf_token": token, "includes": "x" * 100_000})
    assert response.status_code == 413


def test_commit_index_is_rebuildable(
    client: TestClient, demo_host: Host, app_store: Store, home: Home
) -> None:
    from pvegit.git.repo import HostRepository
    from pvegit.state.index import commit_count, rebuild_index, timeline

    before = timeline(app_store, "pve1")
    with app_store.transaction() as connection:
        connection.execute("DELETE FROM commit_index")
        connection.execute("DELETE FROM path_index")
    login(client)
    assert "4 snapshots with changes" in client.get("/hosts/pve1").text  # synced on view
    with HostRepository(home.repo_path("pve1")) as repository:
        assert rebuild_index(app_store, repository, "pve1") == 4
    assert timeline(app_store, "pve1") == before and commit_count(app_store, "pve1") == 4


def test_user_commands(cli, monkeypatch: pytest.MonkeyPatch, home: Home) -> None:  # type: ignore[no-untyped-def]
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli("user", "add", "alice", "--password-stdin").code == 1
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    added = cli("user", "add", "alice", "--password-stdin")
    assert added.code == 0, added.err
    assert cli("user", "list").out.split() == ["alice", "admin"]  # the first user is an admin
    store = Store(home.state_path)
    stored = store.password_hash("alice") or ""
    assert stored.startswith("scrypt$") and "long enough" not in stored
    monkeypatch.setattr("sys.stdin", io.StringIO("another long password\n"))
    assert cli("user", "passwd", "alice", "--password-stdin").code == 0
    assert store.password_hash("alice") != stored
    last = cli("user", "remove", "alice")
    assert last.code == 1 and "last admin" in last.err
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert cli("user", "add", "bob", "--password-stdin").code == 0
    assert cli("user", "list").out.split() == ["alice", "admin", "bob", "viewer"]
    assert "last admin" in cli("user", "role", "alice", "viewer").err
    assert cli("user", "role", "bob", "admin").code == 0
    assert cli("user", "remove", "alice").code == 0
    assert cli("user", "remove", "alice").code == 1
    assert cli("user", "list").out.split() == ["bob", "admin"]
    store.close()


def test_test_connection_warns_loudly_about_a_changed_key(
    client: TestClient,
    app_store: Store,
    home: Home,
    testbed,  # type: ignore[no-untyped-def]
) -> None:
    from testbed.nodes import register_node

    node = testbed.start("pve1")
    impostor = testbed.start("pve1")
    register_node(app_store, home, node, "pve1", categories=("network",))
    app_store.update_host("pve1", address=impostor.address, port=impostor.port)
    app_store.update_host(
        "pve1", host_key_type="ssh-ed25519", host_key=node.public_host_key.read_text().split()[1]
    )
    token = login(client)
    page = client.post("/hosts/pve1/test", data={"csrf_token": token})
    assert page.status_code == 200
    assert "HOST KEY CHANGED" in page.text and impostor.fingerprint in page.text
    assert f"Trust {impostor.fingerprint}" in page.text and "button danger" in page.text
    assert app_store.host("pve1").host_key == node.public_host_key.read_text().split()[1]
    node.stop()
    impostor.stop()


def _openssh_accepts(
    home: Home, node: Node, command: str = "true"
) -> subprocess.CompletedProcess[str]:
    """Log in to ``node`` with OpenSSH itself, trusting nothing but the home's known_hosts."""
    return subprocess.run(
        [
            "ssh",
            "-F",
            "/dev/null",
            "-o",
            f"UserKnownHostsFile={home.known_hosts_path}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-i",
            str(home.private_key_path),
            "-p",
            str(node.port),
            f"root@{node.address}",
            command,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_key_trusted_in_the_web_is_in_known_hosts_for_openssh(
    client: TestClient, app_store: Store, home: Home, testbed: TestBed
) -> None:
    node = testbed.start("pve1")
    node.authorize(home.public_key())
    app_store.add_host(Host("pve1", node.address, node.port, categories=("network",)))
    token = login(client)
    tested = client.post("/hosts/pve1/test", data={"csrf_token": token})
    assert f"Trust {node.fingerprint}" in tested.text
    trusted = client.post(
        "/hosts/pve1/trust", data={"csrf_token": token, "fingerprint": node.fingerprint}
    )
    assert trusted.status_code == 303, trusted.text
    accepted = _openssh_accepts(home, node, "echo reached")
    assert accepted.returncode == 0 and "reached" in accepted.stdout, accepted.stderr
    entry = f"[{node.address}]:{node.port} "

    def edit(port: int) -> None:
        form = {"address": node.address, "port": str(port), "user": "root"}
        response = client.post(
            "/hosts/pve1/edit", data={"csrf_token": token, "categories": "network", **form}
        )
        assert response.status_code == 303, response.text

    edit(node.port + 1)  # another port is another machine: its key is checked again
    assert app_store.host("pve1").host_key is None
    assert entry not in home.known_hosts_path.read_text()
    edit(node.port)
    client.post("/hosts/pve1/trust", data={"csrf_token": token, "fingerprint": node.fingerprint})
    assert entry in home.known_hosts_path.read_text()
    assert client.post("/hosts/pve1/remove", data={"csrf_token": token}).status_code == 303
    assert entry not in home.known_hosts_path.read_text()
    assert _openssh_accepts(home, node).returncode != 0
    node.stop()


def test_verify_from_the_host_page_and_the_weekly_round(
    client: TestClient,
    demo_host: Host,
    app_store: Store,
    cli,  # type: ignore[no-untyped-def]
) -> None:
    import time

    from pvegit.service.housekeeping import verify_one_due

    token = login(client)
    page = client.post("/hosts/pve1/verify", data={"csrf_token": token})
    assert page.status_code == 200 and "The history is intact" in page.text
    assert "files match the node" in page.text
    api_token = cli("token", "add", "prom").out.split()[-1]
    metrics = client.get("/metrics", headers={"Authorization": f"Bearer {api_token}"}).text
    assert 'pvegit_host_verify_ok{host="pve1"} 1.0' in metrics
    first = app_store.verifications()["pve1"].at
    context = client.app.state.pvegit  # type: ignore[attr-defined]
    verify_one_due(
        context.home, context.store, context.notifier, now=time.time()
    )  # verified moments ago: nothing due
    assert app_store.verifications()["pve1"].at == first
    verify_one_due(
        context.home, context.store, context.notifier, now=time.time() + 8 * 86400
    )  # a week later: due again
    assert app_store.verifications()["pve1"].at > first
