"""git clone over HTTP from pvegit serve, with the real git client."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from test_sessions import Clock

from pvegit.actions.snapshot import take_snapshot
from pvegit.config.file import Config
from pvegit.config.home import Home
from pvegit.demo.node import DemoNode
from pvegit.state.credentials import hash_password, hash_token, new_token
from pvegit.state.store import AuditEvent, Host, Store
from testbed.appserver import running, start_serve
from web import gitserve
from web.app import create_app

PASSWORD = "correct horse battery"


@pytest.fixture
def server(home: Home, tmp_path: Path) -> Iterator[str]:
    store = Store(home.state_path)
    store.add_user("admin", hash_password(PASSWORD))
    node = DemoNode(tmp_path / "node", "pve1")
    node.create()
    host = store.add_host(Host("pve1", f"local:{node.root}", categories=("cluster", "network")))
    take_snapshot(home, store, host)
    node.edit_something()
    take_snapshot(home, store, host)
    with running(create_app(home, store=store)) as address:
        yield address
    store.close()


def git(*arguments: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false"}
    return subprocess.run(
        ["git", *arguments], cwd=cwd, capture_output=True, text=True, env=environment, timeout=120
    )


def test_clone_with_a_password_or_a_token_and_never_push(
    server: str,
    home: Home,
    tmp_path: Path,
    cli,  # type: ignore[no-untyped-def]
) -> None:
    clone = tmp_path / "clone"
    result = git(
        "clone", f"http://admin:{PASSWORD.replace(' ', '%20')}@{server}/git/pve1.git", str(clone)
    )
    assert result.returncode == 0, result.stderr
    local = git("--git-dir", str(home.repo_path("pve1")), "log", "--format=%H").stdout
    assert git("log", "--format=%H", cwd=clone).stdout == local
    assert (clone / "etc/pve/storage.cfg").exists()
    assert git("fsck", "--strict", cwd=clone).returncode == 0
    token = cli("token", "add", "cloner", "--role", "admin").out.split()[-1]
    by_token = git("clone", f"http://x:{token}@{server}/git/pve1.git", str(tmp_path / "t"))
    assert by_token.returncode == 0, by_token.stderr
    (clone / "etc/hosts").write_text("tampered\n")
    git("-c", "user.name=x", "-c", "user.email=x@y", "commit", "-qam", "tamper", cwd=clone)
    push = git("push", "origin", "main", cwd=clone)
    assert push.returncode != 0
    assert git("--git-dir", str(home.repo_path("pve1")), "log", "--format=%H").stdout == local


def test_no_or_wrong_credentials_and_bad_paths(server: str, tmp_path: Path) -> None:
    import urllib.error
    import urllib.request

    for url in (
        f"http://{server}/git/pve1.git/info/refs",
        f"http://nobody:wrong@{server}/git/pve1.git/info/refs",
    ):
        result = git("clone", url.rsplit("/info/refs", 1)[0], str(tmp_path / "x"))
        assert result.returncode != 0
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"http://{server}/git/pve1.git/HEAD")
    assert error.value.code == 401
    error.value.close()
    import base64

    header = {"Authorization": "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()}
    for path in ("config", "../state.db", "objects/../../state.db", "hooks/pre-receive"):
        request = urllib.request.Request(f"http://{server}/git/pve1.git/{path}", headers=header)
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(request)
        assert error.value.code == 404, path
        error.value.close()
    request = urllib.request.Request(f"http://{server}/git/ghost.git/HEAD", headers=header)
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request)
    assert error.value.code == 404
    error.value.close()


# -- who may clone, throttling, audit --------------------------------------------


@pytest.fixture
def hub(home: Home, tmp_path: Path) -> Iterator[tuple[str, Store]]:
    """An app serving pve1 with its admin (the first user); yields (address, store)."""
    store = Store(home.state_path)
    store.add_user("admin", hash_password(PASSWORD))
    node = DemoNode(tmp_path / "node", "pve1")
    node.create()
    host = store.add_host(Host("pve1", f"local:{node.root}", categories=("network",)))
    take_snapshot(home, store, host)
    with running(create_app(home, store=store)) as address:
        yield address, store
    store.close()


def _url(address: str, user: str, password: str) -> str:
    return f"http://{user}:{password.replace(' ', '%20')}@{address}/git/pve1.git"


def _actions(store: Store, action: str) -> list[AuditEvent]:
    return [event for event in store.audit_events(limit=1000) if event.action == action]


def test_wrong_passwords_are_throttled_like_logins_and_audited(
    hub: tuple[str, Store], tmp_path: Path
) -> None:
    address, store = hub
    for attempt in range(5):
        wrong = git("clone", _url(address, "admin", f"wrong {attempt}"), str(tmp_path / "w"))
        assert wrong.returncode != 0
    failures = _actions(store, "git login failed")
    assert len(failures) == 5 and {event.actor for event in failures} == {"admin"}
    assert all(event.host == "pve1" and event.detail["address"] for event in failures)
    # The right password now waits too: the same limiter as /login, per user and address.
    right = git("clone", _url(address, "admin", PASSWORD), str(tmp_path / "r"))
    assert right.returncode != 0 and "429" in right.stderr
    import httpx2

    with httpx2.Client(base_url=f"http://{address}") as browser:
        page = browser.get("/login").text
        csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        form = {"username": "admin", "password": PASSWORD, "csrf_token": csrf}
        assert browser.post("/login", data=form).status_code == 429
    # Another user name from the same address is held back as well (the address counts).
    other = git("clone", _url(address, "deputy", PASSWORD), str(tmp_path / "d"))
    assert other.returncode != 0 and "429" in other.stderr


def test_a_new_password_a_removed_user_and_a_revoked_token_are_refused_at_once(
    hub: tuple[str, Store], tmp_path: Path
) -> None:
    """No cache lets old credentials in: every request is checked against state.db."""
    address, store = hub
    assert git("clone", _url(address, "admin", PASSWORD), str(tmp_path / "p1")).returncode == 0
    store.set_password("admin", hash_password("a different password"))
    assert git("clone", _url(address, "admin", PASSWORD), str(tmp_path / "p2")).returncode != 0
    clone = git("clone", _url(address, "admin", "a different password"), str(tmp_path / "p3"))
    assert clone.returncode == 0
    store.add_user("deputy", hash_password(PASSWORD), "admin")
    assert git("clone", _url(address, "deputy", PASSWORD), str(tmp_path / "u1")).returncode == 0
    store.remove_user("deputy")
    assert git("clone", _url(address, "deputy", PASSWORD), str(tmp_path / "u2")).returncode != 0
    token = new_token()
    store.add_token("cloner", hash_token(token), None, "admin")
    assert git("clone", _url(address, "x", token), str(tmp_path / "t1")).returncode == 0
    store.revoke_token("cloner")
    assert git("clone", _url(address, "x", token), str(tmp_path / "t2")).returncode != 0


def test_every_clone_and_fetch_is_audited_once_and_only_admins_clone(
    hub: tuple[str, Store], tmp_path: Path
) -> None:
    address, store = hub
    clone = tmp_path / "clone"
    assert git("clone", _url(address, "admin", PASSWORD), str(clone)).returncode == 0
    assert git("fetch", cwd=clone).returncode == 0
    fetches = _actions(store, "git fetch")
    assert len(fetches) == 2, fetches
    assert {(event.actor, event.host) for event in fetches} == {("admin", "pve1")}
    store.add_user("victor", hash_password(PASSWORD), "viewer")
    refused = git("clone", _url(address, "victor", PASSWORD), str(tmp_path / "v"))
    assert refused.returncode != 0 and "403" in refused.stderr
    [refusal] = _actions(store, "git access refused")
    assert refusal.actor == "victor" and refusal.detail["role"] == "viewer"
    assert len(_actions(store, "git fetch")) == 2


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _fetched(store: Store, address: str) -> list[AuditEvent]:
    return [event for event in _actions(store, "git fetch") if event.detail["address"] == address]


def test_a_read_without_ref_discovery_is_audited_once_a_window(home: Home, tmp_path: Path) -> None:
    """The review's case: a commit id from the web UI, posted to upload-pack straight
    away, or the dumb protocol's files fetched by name, without any info/refs."""
    store = Store(home.state_path)
    store.add_user("admin", hash_password(PASSWORD))
    node = DemoNode(tmp_path / "node", "pve1")
    node.create()
    take_snapshot(
        home, store, store.add_host(Host("pve1", f"local:{node.root}", categories=("network",)))
    )
    clock = Clock()
    app = create_app(home, Config(concurrency=1), store=store, clock=clock)
    repository = home.repo_path("pve1")
    commit = git("--git-dir", str(repository), "rev-parse", "main").stdout.strip()
    wants = f"0032want {commit}\n00000009done\n".encode()
    smart = TestClient(app, client=("10.0.0.1", 4000))
    answer = smart.post(
        "/git/pve1.git/git-upload-pack",
        headers={
            **_basic("admin", PASSWORD),
            "Content-Type": "application/x-git-upload-pack-request",
        },
        content=wants,
    )
    assert answer.status_code == 200 and b"PACK" in answer.content
    [entry] = _fetched(store, "10.0.0.1")
    assert (entry.actor, entry.host) == ("admin", "pve1")
    assert entry.detail == {
        "address": "10.0.0.1",
        "protocol": "smart",
        "request": "git-upload-pack",
    }
    # The dumb protocol's files, each by name: HEAD, every object and pack file.
    dumb = TestClient(app, client=("10.0.0.2", 4000))
    objects = sorted(
        str(path.relative_to(repository))
        for path in (repository / "objects").rglob("*")
        if path.is_file() and gitserve._ALLOWED.match(str(path.relative_to(repository)))
    )
    files = ["HEAD", *objects]
    assert len(files) > 2
    for name in files:
        response = dumb.get(f"/git/pve1.git/{name}", headers=_basic("admin", PASSWORD))
        assert response.status_code == 200, name
    # One clone's many requests: one entry (the first file's).
    [entry] = _fetched(store, "10.0.0.2")
    assert entry.detail["request"] == "HEAD" and entry.detail["protocol"] == "dumb"
    # Still reading a minute later: a second entry; a ref discovery always makes one.
    clock.now += 59
    dumb.get(f"/git/pve1.git/{files[-1]}", headers=_basic("admin", PASSWORD))
    assert len(_fetched(store, "10.0.0.2")) == 1
    clock.now += 1
    dumb.get(f"/git/pve1.git/{files[-1]}", headers=_basic("admin", PASSWORD))
    assert len(_fetched(store, "10.0.0.2")) == 2
    assert dumb.get("/git/pve1.git/info/refs", headers=_basic("admin", PASSWORD)).status_code == 200
    newest = _fetched(store, "10.0.0.2")[0]  # newest first
    assert newest.detail["request"] == "info/refs"
    # Nothing read, nothing recorded: a path git never asks for, a host that does not exist.
    for path in ("/git/pve1.git/config", "/git/ghost.git/HEAD"):
        assert dumb.get(path, headers=_basic("admin", PASSWORD)).status_code == 404
    assert len(_fetched(store, "10.0.0.2")) == 3
    store.close()


def test_a_dumb_clone_by_the_real_git_client_is_one_audit_entry(
    hub: tuple[str, Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without git on the pvegit machine: the dumb protocol, dozens of requests, one entry."""
    address, store = hub
    monkeypatch.setattr(gitserve, "_BACKEND", None)
    clone = git("clone", _url(address, "admin", PASSWORD), str(tmp_path / "dumb"))
    assert clone.returncode == 0, clone.stderr
    assert git("fsck", "--strict", cwd=tmp_path / "dumb").returncode == 0
    [entry] = _actions(store, "git fetch")
    assert entry.detail["protocol"] == "dumb" and entry.detail["request"] == "info/refs"


def test_a_token_never_clears_another_users_failures(home: Home) -> None:
    """The review's case: a viewer token sent as ``admin:<token>`` between guesses at
    admin's password, each round from a new address, kept admin's count below the limit."""
    store = Store(home.state_path)
    store.add_user("admin", hash_password(PASSWORD))
    token = new_token()
    store.add_token("ci", hash_token(token), None, "viewer")
    app = create_app(home, Config(concurrency=1), store=store)

    def attempt(address: str, user: str, password: str) -> int:
        client = TestClient(app, client=(address, 4000))
        return client.get("/git/ghost.git/info/refs", headers=_basic(user, password)).status_code

    # Admin's own password clears admin's count ...
    assert [attempt("10.0.0.1", "admin", f"guess {number}") for number in range(4)] == [401] * 4
    assert attempt("10.0.1.1", "admin", PASSWORD) == 404  # let in; there is no ghost.git
    # ... a token does not, whatever name comes with it.
    statuses, by_token = [], []
    for round_number in range(3):
        guesser = f"10.0.2.{round_number}"
        statuses += [attempt(guesser, "admin", f"guess {round_number} {n}") for n in range(4)]
        by_token.append(attempt(f"10.0.3.{round_number}", "admin", token))
    assert by_token == [403, 429, 429]  # let in as the viewer it is (and refused), then held
    assert statuses == [401] * 5 + [429] * 7
    store.close()


# -- the request body --------------------------------------------------------------


def _post_chunked(address: str, path: str, total: int, authorization: str) -> int | None:
    """POST ``total`` bytes as a chunked body (sent by a thread while the answer is read);
    the status the server answered, None if it answered nothing."""
    host, port = address.split(":")
    connection = socket.create_connection((host, int(port)), timeout=120)
    connection.sendall(
        f"POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: {authorization}\r\n"
        "Content-Type: application/x-git-upload-pack-request\r\n"
        "Transfer-Encoding: chunked\r\n\r\n".encode()
    )
    chunk = b"0032want " + b"0" * 40 + b"\n"
    block = chunk * (65536 // len(chunk))
    frame = f"{len(block):x}\r\n".encode() + block + b"\r\n"

    def send() -> None:
        sent = 0
        try:
            while sent < total:
                connection.sendall(frame)
                sent += len(block)
            connection.sendall(b"0\r\n\r\n")
        except OSError:  # the server stopped reading and closed: what a cap does
            pass

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    answer = b""
    try:
        while b"\r\n" not in answer:
            data = connection.recv(4096)
            if not data:
                break
            answer += data
    except ConnectionResetError:
        pass
    sender.join(timeout=120)
    connection.close()
    return int(answer.split()[1]) if answer.startswith(b"HTTP/1.1 ") else None


def _peak_memory(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_an_upload_pack_body_is_streamed_with_a_cap(home: Home, tmp_path: Path) -> None:
    """A real `pvegit serve`: a body over the cap is refused with 413, and a 400 MB one
    never sits in its memory."""
    store = Store(home.state_path)
    store.add_user("admin", hash_password(PASSWORD))
    node = DemoNode(tmp_path / "node", "pve1")
    node.create()
    take_snapshot(
        home, store, store.add_host(Host("pve1", f"local:{node.root}", categories=("network",)))
    )
    store.close()
    server, base = start_serve(home, tmp_path / "serve.log", "--no-scheduler")
    address = base.removeprefix("http://")
    basic = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    path = "/git/pve1.git/git-upload-pack"
    try:
        clone = git("clone", _url(address, "admin", PASSWORD), str(tmp_path / "before"))
        assert clone.returncode == 0, clone.stderr
        declared = socket.create_connection(tuple(address.split(":")), timeout=60)  # type: ignore[arg-type]
        declared.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: {basic}\r\n"
            f"Content-Length: {400 * 1024 * 1024}\r\n\r\n".encode()
        )
        assert declared.recv(4096).startswith(b"HTTP/1.1 413 ")
        declared.close()
        assert _post_chunked(address, path, 11 * 1024 * 1024, basic) == 413
        before = _peak_memory(server.pid)
        status = _post_chunked(address, path, 400 * 1024 * 1024, basic)
        grown = _peak_memory(server.pid) - before
        assert status == 413
        assert grown < 64 * 1024 * 1024, f"serve grew by {grown / 2**20:.0f} MiB"
        after = git("clone", _url(address, "admin", PASSWORD), str(tmp_path / "after"))
        assert after.returncode == 0, after.stderr
    finally:
        server.terminate()
        server.wait(timeout=30)
