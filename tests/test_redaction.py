"""Credentials in mirror and webhook URLs never reach a log line, a notification, a
page, the terminal or the audit log: they are shown redacted."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path

import httpx2

from pvegit.config.home import Home
from pvegit.demo.node import DemoNode
from testbed.appserver import pvegit_process, start_serve
from testbed.webhook import Receiver

PASSWORD = "correct horse battery"


def test_redact_url_and_text() -> None:
    from pvegit.content.redact import redact_text, redact_url

    assert (
        redact_url("https://bot:tk_9f8e7d6c@ntfy.example.org/pve?auth=tk_9f8e7d6c&x=1")
        == "https://***@ntfy.example.org/pve?auth=***&x=***"
    )
    assert redact_url("ssh://git@git.example.org/pve/pve1.git") == (
        "ssh://***@git.example.org/pve/pve1.git"
    )
    assert redact_url("https://hooks.example.org/x") == "https://hooks.example.org/x"
    url = "https://ci-bot:p%40ss-w0rd-42@git.example.org/pve/pve1.git"
    # What libraries make of a URL: quoted, decoded, cut into host and port.
    for message in (
        f"HTTP 401 for {url}/info/refs",
        "nonnumeric port: 'p@ss-w0rd-42@git.example.org'",
        "could not authenticate as ci-bot with p%40ss-w0rd-42",
        "unexpected http resp 403 for https://ci-bot:other@git.example.org/x?token=abcdef",
    ):
        shown = redact_text(message, url)
        assert "w0rd" not in shown and "ci-bot" not in shown and "abcdef" not in shown, shown


def _secrets_config(mirror_port: int, good: Receiver, bad: Receiver) -> tuple[str, list[str]]:
    secrets = [
        "m1rror-pass-5531",
        "m1rror-query-7720",
        "h00k-pass-2291",
        "h00k-query-8812",
        "fa1l-pass-4410",
        "fa1l-query-9903",
    ]
    good_url = good.url.replace("http://", f"http://hook-user:{secrets[2]}@")
    bad_url = bad.url.replace("http://", f"http://fail-user:{secrets[4]}@")
    config = f"""
[server]
mirror = "http://mirror-user:{secrets[0]}@127.0.0.1:{mirror_port}/{{host}}.git?token={secrets[1]}"

[[notify]]
name = "good"
type = "webhook"
url = "{good_url}?token={secrets[3]}"

[[notify]]
name = "bad"
type = "webhook"
url = "{bad_url}?auth={secrets[5]}"
"""
    return config, secrets


def _wait_for_line(log: Path, marker: str, timeout: float = 60) -> str:
    """The serve log once it holds ``marker`` (written by the server, not timed by us)."""
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_text(errors="replace")
        if marker in text or time.monotonic() > deadline:
            assert marker in text, f"no {marker!r} in the log:\n{text}"
            return text
        time.sleep(0.05)  # polling a file another process writes; the marker is the event


def test_url_credentials_never_leak_from_a_real_serve(home: Home, tmp_path: Path) -> None:
    good, bad, mirror = Receiver(), Receiver(status=500), Receiver(status=401)
    mirror_port = int(mirror.url.rsplit(":", 1)[1].split("/")[0])
    config, secrets = _secrets_config(mirror_port, good, bad)
    (home.root / "pvegit.toml").write_text(config)
    node = DemoNode(tmp_path / "node", "pve1")
    node.create()
    pvegit_process(home, "host", "add", "pve1", "--address", f"local:{node.root}")
    pvegit_process(home, "user", "add", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    log = tmp_path / "serve.log"
    server, base = start_serve(home, log, "--no-scheduler")
    shown: list[str] = []
    web_secret = "w3b-made-pass-6604"
    try:
        with httpx2.Client(base_url=base, timeout=60) as browser:
            page = browser.get("/login").text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
            assert csrf
            browser.post(
                "/login",
                data={"username": "admin", "password": PASSWORD, "csrf_token": csrf.group(1)},
            )
            token_field = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/").text)
            assert token_field
            form_token = token_field.group(1)
            started = browser.post("/hosts/pve1/snapshot", data={"csrf_token": form_token})
            assert started.status_code == 303, started.text
            bodies = good.wait_for(
                lambda got: any(body.get("title") == "pve1: mirror push failed" for body in got)
            )
            failure = next(body for body in bodies if body["title"] == "pve1: mirror push failed")
            assert "http://***@127.0.0.1" in failure["message"], failure  # shown, but redacted
            assert good.headers[0]["Authorization"].startswith("Basic ")  # user-info is used
            bad.wait_for(lambda got: len(got) >= 1)
            _wait_for_line(log, "notification failed target=bad")
            added = browser.post(
                "/notifications",
                data={
                    "csrf_token": form_token,
                    "name": "made-here",
                    "type": "webhook",
                    "format": "ntfy",
                    "url": f"https://web-user:{web_secret}@127.0.0.1:1/pve",
                    "events": "failed",
                },
            )
            assert added.status_code == 303, added.text
            bad_form = browser.post(
                "/notifications",
                data={
                    "csrf_token": form_token,
                    "name": "made-here",  # taken: the form comes back
                    "type": "webhook",
                    "url": f"https://web-user:{web_secret}@127.0.0.1:1/pve",
                    "token": web_secret,
                },
            )
            assert bad_form.status_code == 400
            shown.append(bad_form.text)
            tested = browser.post("/notifications/test", data={"csrf_token": form_token})
            assert "answered HTTP 500" in tested.text
            shown.append(tested.text)
            for url in ("/notifications", "/audit", "/runs", "/", "/hosts/pve1", "/runs/1"):
                shown.append(browser.get(url).text)
            listing = browser.get("/notifications").text
            assert f"http://***@127.0.0.1:{good.url.split(':')[2].split('/')[0]}" in listing
    finally:
        server.terminate()
        server.wait(timeout=60)
        for receiver in (good, bad, mirror):
            receiver.close()
    pushed = pvegit_process(home, "mirror")
    assert pushed.returncode != 0 and "***" in pushed.stdout + pushed.stderr
    tested = pvegit_process(home, "notify", "test")
    connection = sqlite3.connect(home.state_path)
    audit = json.dumps(connection.execute("SELECT * FROM audit").fetchall())
    connection.close()
    places = {
        "serve log": log.read_text(errors="replace"),
        "notification bodies": json.dumps(good.bodies + bad.bodies),
        "pages": "\n".join(shown),
        "audit rows": audit,
        "pvegit mirror": pushed.stdout + pushed.stderr,
        "pvegit notify test": tested.stdout + tested.stderr,
    }
    assert "mirror push failed host=pve1" in places["serve log"]
    for place, text in places.items():
        for secret in [*secrets, web_secret]:
            assert secret not in text, f"{secret} in the {place}"
        assert "hook-user:" not in text and "mirror-user:" not in text, place
