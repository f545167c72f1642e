"""The JSON API, API tokens, /metrics and `pvegit snapshot --remote`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from pvegit.actions.snapshot import take_snapshot
from pvegit.config.file import Config
from pvegit.config.home import Home
from pvegit.demo.node import DemoNode
from pvegit.state.store import Host, Store
from testbed.appserver import running
from web.app import create_app


@pytest.fixture
def api_store(home: Home, tmp_path: Path) -> Iterator[Store]:
    store = Store(home.state_path)
    node = DemoNode(tmp_path / "node", "pve1")
    node.create()
    host = store.add_host(Host("pve1", f"local:{node.root}", categories=("cluster", "secrets")))
    take_snapshot(home, store, host)
    node.edit_something()
    (node.root / "etc/pve/priv/token.cfg").write_text("backup@pve!ci new-secret-value\n")
    take_snapshot(home, store, host)
    yield store
    store.close()


def make_token(cli) -> str:  # type: ignore[no-untyped-def]
    result = cli("token", "add", "ci", "--role", "operator")
    assert result.code == 0, result.err
    return result.out.split()[-1]


@pytest.fixture
def client(home: Home, api_store: Store) -> Iterator[TestClient]:
    app = create_app(home, Config(metrics_allow=("10.9.9.9",)), store=api_store)
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


def test_token_cli_prints_the_token_once_and_keeps_only_a_hash(
    cli, api_store: Store, home: Home
) -> None:
    token = make_token(cli)
    assert token.startswith("pvegit_") and len(token) > 40
    assert token.encode() not in home.state_path.read_bytes()
    assert "ci" in cli("token", "list").out and "active" in cli("token", "list").out
    assert cli("token", "add", "ci").code == 1  # names are unique


@pytest.mark.parametrize("name", ["two words", "line\nbreak", "../etc", "x" * 65])
def test_token_cli_refuses_a_name_the_web_refuses(cli, name: str) -> None:  # type: ignore[no-untyped-def]
    """Only the web checked a token's name (it goes into URLs and the audit log)."""
    result = cli("token", "add", name)
    assert result.code == 1 and "name the token with letters, digits" in result.err
    assert "no tokens yet" in cli("token", "list").out


def test_requests_without_a_valid_token_learn_nothing(cli, client: TestClient) -> None:  # type: ignore[no-untyped-def]
    token = make_token(cli)
    for header in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {token}"}):
        for url in (
            "/api/v1/hosts",
            "/api/v1/hosts/pve1/commits",
            "/api/v1/hosts/nope/commits",
            "/api/v1/runs/1",
            "/metrics",
        ):
            response = client.get(url, headers=header)
            assert response.status_code == 401, url
            assert "API token" in response.json()["error"]
    assert cli("token", "revoke", "ci").code == 0
    revoked = client.get("/api/v1/hosts", headers={"Authorization": f"Bearer {token}"})
    assert revoked.status_code == 401


def test_api_endpoints(cli, client: TestClient, api_store: Store) -> None:  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {make_token(cli)}"}
    hosts = client.get("/api/v1/hosts", headers=headers).json()
    assert hosts[0]["name"] == "pve1" and hosts[0]["status"]["kind"] == "ok"
    assert hosts[0]["last_change"]["subject"].startswith("pve1: 2 files changed")
    commits = client.get("/api/v1/hosts/pve1/commits?limit=1", headers=headers).json()
    assert commits["total"] == 2 and len(commits["commits"]) == 1
    diff = client.get("/api/v1/hosts/pve1/diff", headers=headers).json()
    kinds = {item["path"]: item for item in diff["files"]}
    secret = kinds["/etc/pve/priv/token.cfg"]
    assert secret["kind"] == "secret" and secret["diff"] is None
    assert "new-secret-value" not in json.dumps(diff)
    first = commits["commits"][0]["parent"]
    ranged = client.get(f"/api/v1/hosts/pve1/diff?a={first}&b=HEAD", headers=headers).json()
    assert ranged["a"] == first
    missing = client.get("/api/v1/hosts/nope/commits", headers=headers)
    assert missing.status_code == 404 and "no host 'nope'" in missing.json()["error"]
    bad = client.get("/api/v1/hosts/pve1/diff?a=zzz", headers=headers)
    assert bad.status_code == 400 and "is not a revision" in bad.json()["error"]
    started = client.post("/api/v1/hosts/pve1/snapshot", headers=headers)
    assert started.status_code == 202
    run_id = started.json()["run"]
    deadline = time.monotonic() + 30
    while (run := client.get(f"/api/v1/runs/{run_id}", headers=headers).json())[
        "status"
    ] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert run["status"] == "unchanged" and run["trigger"] == "api" and run["actor"] == "token:ci"
    assert run["progress"]["percent"] == 100
    listed = client.get("/api/v1/runs?host=pve1&status=unchanged", headers=headers).json()
    assert [item["id"] for item in listed] == [run_id]
    assert client.get("/api/v1/runs?status=bogus", headers=headers).status_code == 400


def test_session_cookies_do_not_open_the_api(
    client: TestClient, home: Home, api_store: Store
) -> None:
    from test_web import login

    from pvegit.state.credentials import hash_password

    api_store.add_user("admin", hash_password("correct horse battery"))
    login(client)
    assert client.post("/api/v1/hosts/pve1/snapshot").status_code == 401


def test_metrics(cli, client: TestClient) -> None:  # type: ignore[no-untyped-def]
    token = make_token(cli)
    body = client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).text
    assert 'pvegit_host_last_run_status{host="pve1",status="changed"} 1.0' in body
    assert 'pvegit_runs_total{status="changed"} 2.0' in body
    assert "pvegit_host_last_success_timestamp_seconds" in body
    assert 'pvegit_host_stale{host="pve1"} 0.0' in body
    assert "pvegit_repository_size_bytes" in body
    assert "pvegit_hosts_stale 0.0" in body


def test_metrics_open_to_listed_addresses(home: Home, api_store: Store) -> None:
    app = create_app(home, Config(metrics_allow=("testclient",)), store=api_store)
    with TestClient(app) as allowed:
        assert allowed.get("/metrics").status_code == 200


def test_remote_snapshot(cli, home: Home, api_store: Store) -> None:  # type: ignore[no-untyped-def]
    token = make_token(cli)
    with running(create_app(home, store=api_store)) as address:
        url = f"http://{address}"
        result = cli("snapshot", "--remote", url, "--token", token, "pve1")
        assert result.code == 0, result.err
        assert result.out.startswith("pve1: unchanged")
        wrong = cli("snapshot", "--remote", url, "--token", "nope", "pve1")
        assert wrong.code == 1 and "HTTP 401" in wrong.err
        missing = cli("snapshot", "--remote", url, "--token", token, "ghost")
        assert missing.code == 1 and "no host 'ghost'" in missing.err
