"""pvegit's credentials stay out of repositories, pages, answers and logs; its files are private."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import httpx2
from starlette.testclient import TestClient

from pvegit.config.home import Home
from pvegit.demo.node import DemoNode
from pvegit.state.credentials import hash_password
from pvegit.state.store import Store
from testbed.appserver import pvegit_process, start_serve
from web.app import create_app

PASSWORD = "correct horse battery"


def test_credentials_never_leak_and_files_are_private(home: Home, tmp_path: Path) -> None:
    node = DemoNode(tmp_path / "node", "pve1")
    node.create()
    outputs = [
        pvegit_process(
            home,
            "host",
            "add",
            "pve1",
            "--address",
            f"local:{node.root}",
            "--category",
            "cluster",
            "--category",
            "secrets",
        ),
        pvegit_process(home, "user", "add", "admin", "--password-stdin", stdin=PASSWORD + "\n"),
        pvegit_process(home, "snapshot", "pve1"),
        pvegit_process(home, "log", "pve1"),
        pvegit_process(home, "runs", "--json"),
        pvegit_process(home, "host", "show", "pve1", "--json"),
    ]
    token_output = pvegit_process(home, "token", "add", "ci")
    token = token_output.stdout.split()[-1]
    private_key = home.private_key_path.read_text()
    key_body = "".join(private_key.splitlines()[1:-1])[:40]
    secrets = {"private key": key_body, "password": PASSWORD, "token": token}

    store = Store(home.state_path)
    store.add_user("viewer", hash_password(PASSWORD))
    pages = []
    with TestClient(create_app(home, store=store)) as client:
        login = client.get("/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)  # type: ignore[union-attr]
        client.post("/login", data={"username": "viewer", "password": PASSWORD, "csrf_token": csrf})
        for url in (
            "/",
            "/hosts",
            "/hosts/pve1",
            "/hosts/pve1/commits/HEAD",
            "/runs",
            "/audit",
            "/tokens",
            "/notifications",
            "/hosts/pve1/edit",
        ):
            pages.append(client.get(url).text)
        headers = {"Authorization": f"Bearer {token}"}
        for url in ("/api/v1/hosts", "/api/v1/runs", "/api/v1/hosts/pve1/diff"):
            pages.append(client.get(url, headers=headers).text)
        pages.append(client.get("/api/v1/hosts", headers={"Authorization": "Bearer nope"}).text)
    store.close()
    objects = subprocess.run(
        [
            "git",
            "--git-dir",
            str(home.repo_path("pve1")),
            "cat-file",
            "--batch-all-objects",
            "--batch",
        ],
        capture_output=True,
        check=True,
    ).stdout.decode("utf-8", "replace")
    places = {
        "command output": "".join(result.stdout + result.stderr for result in outputs),
        "web pages and API answers": "".join(pages),
        "the repository": objects,
        "the state database": home.state_path.read_bytes().decode("latin-1"),
    }
    for place, text in places.items():
        for name, secret in secrets.items():
            assert secret not in text, f"the {name} appears in {place}"

    loose = []
    for path in home.root.rglob("*"):
        mode = stat.S_IMODE(os.lstat(path).st_mode)
        if not path.is_symlink() and mode & 0o077:
            loose.append(f"{path.relative_to(home.root)} {mode:o}")
    allowed = {"ssh/id_ed25519.pub"}  # a public key, readable on purpose
    assert [item for item in loose if item.split()[0] not in allowed] == []


def test_serve_logs_carry_no_credentials(home: Home, tmp_path: Path) -> None:
    """A real `pvegit serve`: logins (good and bad), API calls (good and bad tokens), a
    snapshot, a clone over HTTP; then its whole log is searched for the credentials."""
    node = DemoNode(tmp_path / "node", "pve1")
    node.create()
    pvegit_process(home, "host", "add", "pve1", "--address", f"local:{node.root}")
    pvegit_process(home, "user", "add", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    token = pvegit_process(home, "token", "add", "ci", "--role", "operator").stdout.split()[-1]
    key_body = "".join(home.private_key_path.read_text().splitlines()[1:-1])[:40]
    log = tmp_path / "serve.log"
    server, base = start_serve(home, log, "--no-scheduler")
    address = base.removeprefix("http://")
    try:
        with httpx2.Client(base_url=base, timeout=60) as client:
            for password in ("wrong " + PASSWORD, PASSWORD):
                page = client.get("/login").text
                csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
                client.post(
                    "/login", data={"username": "admin", "password": password, "csrf_token": csrf}
                )
            assert client.get("/hosts/pve1").status_code == 200
        bearer = {"Authorization": f"Bearer {token}"}
        started = httpx2.post(f"{base}/api/v1/hosts/pve1/snapshot", headers=bearer, timeout=60)
        assert started.status_code in (200, 202), started.text
        run_id = started.json()["run"]
        status = "running"
        while status == "running":  # the run's own record says when it is done
            status = httpx2.get(f"{base}/api/v1/runs/{run_id}", headers=bearer).json()["status"]
        assert status == "changed", status
        wrong = httpx2.get(f"{base}/api/v1/hosts", headers={"Authorization": "Bearer x" + token})
        assert wrong.status_code == 401
        with_password = f"http://admin:{PASSWORD.replace(' ', '%20')}@{address}"
        clone = subprocess.run(
            ["git", "clone", "-q", f"{with_password}/git/pve1.git", str(tmp_path / "clone")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert clone.returncode == 0, clone.stderr
    finally:
        server.terminate()
        server.wait(60)
    text = log.read_text(errors="replace")
    assert "run finished host=pve1" in text  # the log is there and has content
    for name, secret in {"private key": key_body, "password": PASSWORD, "token": token}.items():
        assert secret not in text, f"the {name} appears in the serve log"
