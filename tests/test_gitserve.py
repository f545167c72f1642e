"""git clone over HTTP from pvegit serve, with the real git client."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from appserver import running

from pvegit.demo import DemoNode
from pvegit.home import Home
from pvegit.snapshot import take_snapshot
from pvegit.store import Host, Store
from web.app import create_app
from web.security import hash_password

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
    token = cli("token", "add", "cloner").out.split()[-1]
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
