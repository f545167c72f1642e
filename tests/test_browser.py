"""End to end in a real headless Chromium (Debian's), against a real sshd node.

Log in, add a simulated node, trust its key, back it up (live progress), see
the commit, change something on the node, back up again, open the diff.
Screenshots of the main pages go to tests/output/screenshots/ for review.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pvegit.config.file import Config
from pvegit.config.home import Home
from pvegit.state.credentials import hash_password
from pvegit.state.store import Store
from testbed.appserver import running
from testbed.nodes import Node
from web.app import create_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).parent / "output" / "screenshots"
PASSWORD = "correct horse battery"


@pytest.fixture
def server(home: Home) -> Iterator[str]:
    """The web app under uvicorn on a free loopback port; yields its base URL."""
    store = Store(home.state_path)
    store.add_user("admin", hash_password(PASSWORD))
    with running(create_app(home, Config(concurrency=2), store=store)) as address:
        yield f"http://{address}"
    store.close()


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    if not os.path.exists(CHROMIUM):
        if os.environ.get("PVEGIT_REQUIRE_SSHD"):
            pytest.fail("chromium is missing (apt-get install chromium)")
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield instance
        instance.close()


# A snapshot on a loaded 2-core machine (Chromium, the node, serve and its run) can take
# longer than a click: the run page may wait up to two minutes.
RUN_TIMEOUT_MS = 120_000


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_add_trust_back_up_change_and_diff(server: str, browser, node: Node, home: Home) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1360, "height": 900})
    page.set_default_timeout(30_000)
    page.goto(server + "/")
    expect(page).to_have_url(server + "/login?next=/")
    shot(page, "01-login")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    # Add the node through the form.
    page.get_by_role("link", name="+ Add host").first.click()
    page.get_by_label("Name", exact=True).fill("pve1")
    page.get_by_label("Address", exact=True).fill(node.address)
    page.get_by_label("SSH port").fill(str(node.port))
    page.get_by_role("button", name="Add host").click()
    expect(page.get_by_role("heading", name="pve1")).to_be_visible()
    expect(page.get_by_text("not trusted yet")).to_be_visible()

    # pvegit's key on the node, as the hosts page tells the admin to do.
    node.authorize(home.public_key())

    # Test the connection: the fingerprint is shown; trust it.
    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_text(node.fingerprint).first).to_be_visible()
    shot(page, "02-trust")
    page.get_by_role("button", name=f"Trust {node.fingerprint}").click()
    expect(page.get_by_role("heading", name="pve1")).to_be_visible()

    # Back up now: the run page follows the progress live, then shows the result.
    page.get_by_role("button", name="Back up now").click()
    expect(page.get_by_text("Changed", exact=True)).to_be_visible(timeout=RUN_TIMEOUT_MS)
    shot(page, "03-run")
    page.locator("dl.facts a.mono").click()
    expect(page.get_by_role("heading", name="pve1: first snapshot")).to_be_visible()

    # Change something on the node, back up again, open the diff.
    node.write(
        "/etc/pve/storage.cfg", node.read("/etc/pve/storage.cfg") + "\ndir: e2e\n\tpath /e2e\n"
    )
    page.goto(server + "/hosts/pve1")
    page.get_by_role("button", name="Back up now").click()
    expect(page.get_by_text("Changed", exact=True)).to_be_visible(timeout=RUN_TIMEOUT_MS)
    page.locator("dl.facts a.mono").click()
    expect(page.get_by_role("heading", name="pve1: 1 file changed: storage.cfg")).to_be_visible()
    expect(page.locator("tr.add", has_text="dir: e2e")).to_be_visible()
    shot(page, "04-commit")
    page.get_by_role("link", name="Split").click()
    expect(page.locator("td.add", has_text="dir: e2e")).to_be_visible()
    shot(page, "05-commit-split")

    page.goto(server + "/hosts/pve1")
    expect(page.locator("ol.timeline li")).to_have_count(2)
    shot(page, "06-host")
    page.goto(server + "/")
    expect(page.locator(".stat-ok .value")).to_have_text("1")
    shot(page, "07-dashboard")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "08-dashboard-phone")
    page.goto(server + "/runs")
    shot(page, "09-runs")
    page.goto(server + "/audit")
    expect(page.get_by_role("cell", name="host key trusted")).to_be_visible()

    # Restore: pick revision and file, preview, confirm.
    page.set_viewport_size({"width": 1360, "height": 900})
    page.goto(server + "/hosts/pve1")
    page.get_by_role("link", name="Restore…").click()
    page.get_by_label("Revision", exact=True).fill("HEAD~1")
    page.get_by_label("Paths (one per line, as on the node)").fill("/etc/pve/storage.cfg")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("td.mono", has_text="/etc/pve/storage.cfg")).to_be_visible()
    expect(page.locator(".marker", has_text="change")).to_be_visible()
    shot(page, "10-restore-preview")
    page.get_by_role("button", name="Restore 1 file on pve1").click()
    expect(page.get_by_text("Restored and verified")).to_be_visible()
    shot(page, "11-restore-done")
    assert "dir: e2e" not in node.read("/etc/pve/storage.cfg")
