"""Credentials beyond pvegit's own, on a real node with `secrets` off: secret files stay on
the node (also through /etc/pve/local), and the password lines of the files a rebuild
needs are masked on every face (CLI, web pages, API, notifications); showing them is
the audited reveal step."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from conftest import Result
from starlette.testclient import TestClient
from test_web import login, token_of

from pvegit.actions.snapshot import take_snapshot
from pvegit.config.file import Config, Target
from pvegit.config.home import Home
from pvegit.git.repo import HostRepository
from pvegit.service.events import events_for_run
from pvegit.service.notify import send
from pvegit.state.credentials import hash_password
from pvegit.state.store import Store
from testbed.nodes import Node, register_node
from testbed.webhook import Receiver
from web.app import create_app

PASSWORD = "correct horse battery"

# Secret files: never collected without `secrets`.
SECRET_FILES = {
    "/etc/iscsi/nodes/iqn.2024-01.org.example:store/10.0.0.5,3260,1/default": (
        "node.name = iqn.2024-01.org.example:store\n"
        "node.session.auth.authmethod = CHAP\n"
        "node.session.auth.username = pve\n"
        "node.session.auth.password = {IscsiNodeRecord}\n"
    ),
    "/etc/iscsi/send_targets/10.0.0.5,3260/st_config": (
        "discovery.sendtargets.address = 10.0.0.5\n"
        "discovery.sendtargets.auth.password = {IscsiSendTargets}\n"
    ),
    "/etc/postfix/sasl/sasl_passwd": "[smtp.example.org]:587 pve@example.org:{PostfixSaslDir}\n",
    "/etc/chrony/chrony.keys": "1 SHA256 HEX:{ChronyKeys}\n",
    "/etc/ppp/chap-secrets": '"pve" * "{PppChapSecret}" *\n',
    "/etc/ppp/pap-secrets": '"pve" * "{PppPapSecret}" *\n',
}
# Files a rebuild needs: collected, their password lines masked wherever shown.
MASKED_FILES = {
    "/etc/iscsi/iscsid.conf": (
        "node.startup = automatic\n"
        "node.session.auth.authmethod = CHAP\n"
        "node.session.auth.username = pve\n"
        "node.session.auth.password = {IscsidChap}\n"
        "discovery.sendtargets.auth.password_in = {IscsidDiscovery}\n"
    ),
    "/etc/frr/frr.conf": (
        "frr defaults datacenter\n"
        "hostname pve1\n"
        "password {FrrVty}\n"
        "enable password {FrrEnable}\n"
        "!\n"
        "router bgp 65001\n"
        " neighbor 10.0.0.2 remote-as 65002\n"
        " neighbor 10.0.0.2 password {FrrNeighbor}\n"
        "!\n"
    ),
    "/etc/network/interfaces.d/wlan0": (
        "auto wlan0\niface wlan0 inet dhcp\n\twpa-ssid lab\n\twpa-psk {WifiPsk}\n"
    ),
    "/etc/apt/apt.conf.d/80proxy": (
        'Acquire::http::Proxy "http://proxyuser:{AptProxy}@proxy.example.org:3142";\n'
    ),
    "/etc/ppp/peers/provider": "user pve\npassword {PppPeer}\nnoauth\n",
}


def _fill(template: str, version: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda match: f"{match.group(1)}-{version}-pw", template)


def _passwords(version: str) -> list[str]:
    found = []
    for template in (*SECRET_FILES.values(), *MASKED_FILES.values()):
        found += [f"{name}-{version}-pw" for name in re.findall(r"\{(\w+)\}", template)]
    return found


def _write_all(node: Node, version: str) -> None:
    for path, template in (*SECRET_FILES.items(), *MASKED_FILES.items()):
        node.sh(f"mkdir -p '{path.rsplit('/', 1)[0]}'")
        node.write(path, _fill(template, version))


@dataclass
class Scene:
    home: Home
    store: Store
    node: Node
    client: TestClient
    faces: dict[str, str]  # what each face showed, by name
    exits: dict[str, int]  # and its exit code or HTTP status


@pytest.fixture
def scene(cli, home: Home, store: Store, node: Node) -> Iterator[Scene]:  # type: ignore[no-untyped-def]
    """pve1 with the default categories plus /etc/ppp, two snapshots: every password
    changed between them; then every face asked about the change."""
    register_node(store, home, node)
    host = store.update_host("pve1", includes=("/etc/ppp",))
    _write_all(node, "old")
    assert take_snapshot(home, store, host).status == "changed"
    _write_all(node, "new")
    run = take_snapshot(home, store, host)
    assert run.status == "changed", run.error
    faces: dict[str, str] = {}
    exits: dict[str, int] = {}
    for arguments in (
        ("diff", "pve1"),
        ("diff", "pve1", "--stat"),
        ("diff", "pve1", "HEAD~1", "HEAD", "--path", "/etc/frr"),
        ("show", "pve1", "HEAD"),
        *(("show", "pve1", f"HEAD:{path}") for path in MASKED_FILES),
        *(("show", "pve1", f"HEAD~1:{path}") for path in MASKED_FILES),
    ):
        result: Result = cli(*arguments)
        faces["pvegit " + " ".join(arguments)] = result.out + result.err
        exits["pvegit " + " ".join(arguments)] = result.code
    receiver = Receiver()
    try:
        for event in events_for_run(home, store, run, retries=0):
            send(Target("hook", "webhook", url=receiver.url), event)
        receiver.wait_for(lambda bodies: len(bodies) >= 1)
        faces["the changed notification"] = str(receiver.bodies)
    finally:
        receiver.close()
    store.add_user("admin", hash_password(PASSWORD))
    store.add_user("viewer", hash_password(PASSWORD))
    token = store_token(store)
    app = create_app(home, Config(concurrency=2), store=store)
    with TestClient(app, follow_redirects=False) as client:
        login(client, "viewer", PASSWORD)
        for url in (
            "/hosts/pve1/commits/HEAD",
            "/hosts/pve1/commits/HEAD?view=split",
            "/hosts/pve1/compare/HEAD~1...HEAD",
            *(f"/hosts/pve1/tree/HEAD{path}" for path in MASKED_FILES),
            *(f"/hosts/pve1/tree/HEAD~1{path}" for path in MASKED_FILES),
        ):
            page = client.get(url)
            faces[f"the page {url}"] = page.text
            exits[f"the page {url}"] = page.status_code
        answer = client.get("/api/v1/hosts/pve1/diff", headers={"Authorization": f"Bearer {token}"})
        faces["the API diff"] = answer.text
        exits["the API diff"] = answer.status_code
        yield Scene(home, store, node, client, faces, exits)


def store_token(store: Store) -> str:
    from pvegit.state.credentials import hash_token, new_token

    token = new_token()
    store.add_token("ci", hash_token(token), None, role="viewer")
    return token


def test_no_password_on_any_face_with_secrets_off(scene: Scene) -> None:
    passwords = _passwords("old") + _passwords("new")
    for face, text in scene.faces.items():
        for password in passwords:
            assert password not in text, f"{password} appears in {face}"
    for face, code in scene.exits.items():
        assert code in (0, 200), (face, code, scene.faces[face][-300:])
    # The faces do show the change: the lines are there, masked, on both sides.
    diff = scene.faces["pvegit diff pve1"]
    assert "-password ********\n+password ********\n" in diff
    assert "- neighbor 10.0.0.2 password ********\n+ neighbor 10.0.0.2 password ********" in diff
    assert "+node.session.auth.password = ********" in diff
    assert "+\twpa-psk ********" in diff
    assert '+Acquire::http::Proxy "http://proxyuser:********@proxy.example.org:3142";' in diff
    assert "--reveal shows them" in diff
    assert "password ********" in scene.faces["pvegit show pve1 HEAD:/etc/ppp/peers/provider"]
    assert "enable password ********" in scene.faces["the page /hosts/pve1/commits/HEAD"]
    assert "2 masked" in scene.faces["the page /hosts/pve1/tree/HEAD/etc/iscsi/iscsid.conf"]
    masked = {
        entry["path"]: entry["masked"]
        for entry in json.loads(scene.faces["the API diff"])["files"]
        if entry["kind"] == "text"
    }
    assert masked["/etc/frr/frr.conf"] == 6 and masked["/etc/iscsi/iscsid.conf"] == 4
    assert "password ********" in scene.faces["the changed notification"]


def test_secret_files_stay_on_the_node_and_needed_files_are_kept_whole(scene: Scene) -> None:
    with HostRepository(scene.home.repo_path("pve1")) as repository:
        files = set(repository.file_ids(repository.resolve("HEAD")))
        for path in SECRET_FILES:
            assert path.lstrip("/") not in files, path
        for path, template in MASKED_FILES.items():
            # Committed as it is: a restore writes the real file back.
            data = repository.read_file(repository.resolve("HEAD"), path.lstrip("/"))[1]
            assert data.decode() == _fill(template, "new"), path
    repository_path = str(scene.home.repo_path("pve1"))
    objects = subprocess.run(
        ["git", "--git-dir", repository_path, "cat-file", "--batch-all-objects", "--batch"],
        capture_output=True,
        check=True,
    ).stdout.decode("utf-8", "replace")
    for version in ("old", "new"):
        for template in SECRET_FILES.values():
            for name in re.findall(r"\{(\w+)\}", template):
                assert f"{name}-{version}-pw" not in objects, name


def test_revealing_masked_lines_is_audited_and_admin_only(cli, scene: Scene) -> None:  # type: ignore[no-untyped-def]
    client = scene.client
    viewer_token = token_of(client.get("/").text)
    page = scene.faces["the page /hosts/pve1/tree/HEAD/etc/frr/frr.conf"]
    assert "Only an admin can show it." in page and "/reveal" not in page
    refused = client.post(
        "/hosts/pve1/reveal",
        data={"csrf_token": viewer_token, "commit": "HEAD", "path": "etc/frr/frr.conf"},
    )
    assert refused.status_code == 403
    assert scene.store.audit_events(action="secret shown") == []

    client.post("/logout", data={"csrf_token": viewer_token})
    token = login(client, "admin", PASSWORD)
    page = client.get("/hosts/pve1/tree/HEAD/etc/frr/frr.conf").text
    assert "/hosts/pve1/reveal" in page and "FrrVty-new-pw" not in page
    commit = client.get("/hosts/pve1/commits/HEAD").text
    assert 'name="path" value="etc/frr/frr.conf"' in commit
    shown = client.post(
        "/hosts/pve1/reveal",
        data={"csrf_token": token, "commit": "HEAD", "path": "etc/frr/frr.conf"},
    )
    assert shown.status_code == 200
    assert "password FrrVty-new-pw" in shown.text and "FrrNeighbor-new-pw" in shown.text
    event = scene.store.audit_events(action="secret shown")[0]
    assert event.actor == "admin"
    assert event.detail["path"] == "/etc/frr/frr.conf"
    assert event.detail["what"] == "masked lines"

    shown_cli = cli("show", "pve1", "HEAD:/etc/iscsi/iscsid.conf", "--reveal")
    assert shown_cli.code == 0 and "IscsidChap-new-pw" in shown_cli.out
    event = scene.store.audit_events(action="secret shown")[0]
    assert event.detail == {
        "commit": event.detail["commit"],
        "path": "/etc/iscsi/iscsid.conf",
        "via": "cli",
    }
    diff_cli = cli("diff", "pve1", "--reveal", "--path", "/etc/network")
    assert (
        "+\twpa-psk WifiPsk-new-pw" in diff_cli.out and "-\twpa-psk WifiPsk-old-pw" in diff_cli.out
    )
    event = scene.store.audit_events(action="secret shown")[0]
    assert event.detail["paths"] == ["/etc/network/interfaces.d/wlan0"]
    # A file with nothing to hide is shown without an audit entry.
    before = len(scene.store.audit_events(action="secret shown"))
    assert cli("show", "pve1", "HEAD:/etc/hostname", "--reveal").out == "pve1\n"
    assert len(scene.store.audit_events(action="secret shown")) == before


def test_an_include_through_pve_local_is_classified_where_it_leads(  # type: ignore[no-untyped-def]
    cli, home: Home, store: Store, node: Node
) -> None:
    """/etc/pve/local/pve-ssl.key is nodes/<node>/pve-ssl.key: left on the node without
    `secrets`, and with it never shown as an ordinary file."""
    key_body = node.read("/etc/pve/local/pve-ssl.key").splitlines()[1]
    register_node(store, home, node, categories=("network",))
    host = store.update_host("pve1", includes=("/etc/pve/local/*",))
    run = take_snapshot(home, store, host)
    assert run.status == "changed", (run.error, run.warnings)
    with HostRepository(home.repo_path("pve1")) as repository:
        files = set(repository.file_ids(repository.resolve("HEAD")))
    assert "etc/pve/local/pve-ssl.pem" in files  # the include itself works
    assert "etc/pve/local/pve-ssl.key" not in files
    assert "etc/pve/local/lrm_status" not in files  # runtime state, through the link too

    host = store.update_host("pve1", categories=("network", "secrets"))
    assert take_snapshot(home, store, host).status == "changed"
    with HostRepository(home.repo_path("pve1")) as repository:
        head = repository.resolve("HEAD")
        assert key_body in repository.read_file(head, "etc/pve/local/pve-ssl.key")[1].decode()
    refused = cli("show", "pve1", "HEAD:/etc/pve/local/pve-ssl.key")
    assert refused.code == 1 and "secret file" in refused.err and key_body not in refused.out
    diff = cli("diff", "pve1")
    assert "Secret files a/etc/pve/local/pve-ssl.key" in diff.out and key_body not in diff.out
    store.add_user("admin", hash_password(PASSWORD))
    app = create_app(home, Config(concurrency=2), store=store)
    with TestClient(app, follow_redirects=False) as client:
        login(client, "admin", PASSWORD)
        for url in (
            "/hosts/pve1/commits/HEAD",
            "/hosts/pve1/tree/HEAD/etc/pve/local/pve-ssl.key",
        ):
            page = client.get(url).text
            assert "secret" in page and key_body not in page, url


def test_a_password_line_in_a_binary_file_is_masked_too(  # type: ignore[no-untyped-def]
    cli, home: Home, store: Store, node: Node
) -> None:
    """A NUL byte makes frr.conf binary, not free of passwords: `pvegit show` writes it
    masked (the NUL and every other byte as they are) and says --reveal, which is
    audited; the diff, the pages and the API show no binary file's bytes."""
    host = register_node(store, home, node)
    node.sh("mkdir -p /etc/frr")
    node.write("/etc/frr/frr.conf", b"! frr\n")
    assert take_snapshot(home, store, host).status == "changed"
    data = b"! frr\x00\xff\nrouter bgp 65000\n neighbor 10.0.0.2 password S3cretBGP\n"
    node.write("/etc/frr/frr.conf", data)
    assert take_snapshot(home, store, host).status == "changed"

    def show(*options: str) -> subprocess.CompletedProcess[bytes]:
        """`pvegit show` into a pipe: the bytes as they are written."""
        command = [sys.executable, "-m", "pvegit", "--home", str(home.root), "show", "pve1"]
        return subprocess.run(
            [*command, "HEAD:/etc/frr/frr.conf", *options], capture_output=True, check=True
        )

    shown = show()
    assert shown.stdout == data.replace(b"S3cretBGP", b"********")
    assert b"--reveal shows them" in shown.stderr
    assert store.audit_events(action="secret shown") == []
    diff = cli("diff", "pve1")
    assert "Binary files a/etc/frr/frr.conf and b/etc/frr/frr.conf differ" in diff.out
    assert "S3cretBGP" not in diff.out + diff.err

    assert show("--reveal").stdout == data
    (event,) = store.audit_events(action="secret shown")
    assert event.detail["path"] == "/etc/frr/frr.conf" and event.detail["via"] == "cli"

    store.add_user("admin", hash_password(PASSWORD))
    token = store_token(store)
    app = create_app(home, Config(concurrency=2), store=store)
    with TestClient(app, follow_redirects=False) as client:
        login(client, "admin", PASSWORD)
        for url in ("/hosts/pve1/tree/HEAD/etc/frr/frr.conf", "/hosts/pve1/commits/HEAD"):
            page = client.get(url)
            assert page.status_code == 200 and "S3cretBGP" not in page.text, url
        page = client.get("/hosts/pve1/tree/HEAD/etc/frr/frr.conf").text
        assert "Binary file, not shown." in page and "/hosts/pve1/reveal" not in page
        answer = client.get("/api/v1/hosts/pve1/diff", headers={"Authorization": f"Bearer {token}"})
        (entry,) = [item for item in answer.json()["files"] if item["path"] == "/etc/frr/frr.conf"]
        assert entry["kind"] == "binary" and entry["diff"] is None
