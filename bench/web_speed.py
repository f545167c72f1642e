"""Web UI speed with a long history, and memory of `pvegit serve` with 100 hosts.

1. A host whose repository has 10,000 commits: the host page, a commit page
   and a file-history page, each requested 20 times in process (Starlette's
   TestClient, so the figure is server time); medians against the 100 ms
   target, and against the dashboard of an empty home measured in the same run.
2. `pvegit serve` (a real uvicorn process) with 100 hosts: its RSS after
   start and after every page of every host was requested once.
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

from pvegit.actions.snapshot import take_snapshot
from pvegit.config.home import Home
from pvegit.demo.node import DemoNode
from pvegit.git.repo import FILE_MODE, HostRepository, prepare_tree
from pvegit.state.credentials import hash_password
from pvegit.state.index import sync_index
from pvegit.state.store import Host, Store

PASSWORD = "correct horse battery"
CATEGORIES = ("cluster", "network", "storage", "system")


def build_long_history(home: Home, store: Store, commits: int) -> tuple[str, str]:
    """A host 'big' with ``commits`` commits; returns (a commit in the middle, a busy path)."""
    node = DemoNode(Path(tempfile.mkdtemp(prefix="pvegit-web-node-")), "pve1")
    node.create()
    host = store.add_host(Host("big", f"local:{node.root}", categories=CATEGORIES))
    take_snapshot(home, store, host)
    busy = "etc/pve/storage.cfg"
    middle = ""
    with HostRepository(home.repo_path("big")) as repository:
        head = repository.head()
        assert head is not None
        files = {
            entry.path: (entry.mode, repository.read_blob(entry.blob_id))
            for entry in repository.iter_files(head)
        }
        configs = sorted(path for path in files if path.endswith(".conf") and "qemu" in path)
        started = time.perf_counter()
        for number in range(commits - 1):
            # Every 20th commit touches storage.cfg, the others a VM config.
            path = busy if number % 20 == 0 else configs[number % len(configs)]
            files[path] = (FILE_MODE, files[path][1] + f"#edit {number}\n".encode())
            commit_id = repository.commit_tree(
                prepare_tree(files),
                message=f"big: 1 file changed: {path.rsplit('/', 1)[1]}\n\nTrigger: bench\n",
                author="pvegit <pvegit@bench>",
                parent=head,
                timestamp=1_700_000_000 + number * 600,
            )
            assert commit_id is not None
            head = commit_id
            if number == commits // 2:
                middle = commit_id
        print(f"wrote {commits} commits in {time.perf_counter() - started:.0f} s", flush=True)
        started = time.perf_counter()
        sync_index(store, repository, "big")
        print(f"indexed them in {time.perf_counter() - started:.1f} s\n", flush=True)
    return middle, busy


def page_timings(
    home: Home, store: Store, middle: str, busy: str, repeat: int, commits: int
) -> None:
    from starlette.testclient import TestClient

    from web.app import create_app

    app = create_app(home, store=store)
    with TestClient(app) as client:
        login = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert token
        client.post(
            "/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token.group(1)}
        )

        def measure(url: str) -> list[float]:
            times = []
            for _ in range(repeat):
                began = time.perf_counter()
                response = client.get(url)
                times.append(time.perf_counter() - began)
                assert response.status_code == 200, (url, response.status_code)
            return times

        baseline = statistics.median(measure("/static/style.css"))
        rows = [
            (f"host page /hosts/big ({commits:,} commits)", "/hosts/big"),
            ("host page, an older timeline page", f"/hosts/big?before={commits // 2}"),
            ("commit page (middle of history)", f"/hosts/big/commits/{middle}"),
            ("commit page, side by side", f"/hosts/big/commits/{middle}?view=split"),
            (f"file history /{busy} ({commits // 20} changes)", f"/hosts/big/history/{busy}"),
            ("file view at that commit", f"/hosts/big/tree/{middle}/{busy}"),
            ("dashboard", "/"),
        ]
        print(f"{'page':<46} {'median':>9} {'max':>9}   target 100 ms")
        print(f"{'(static file through the same stack)':<46} {baseline * 1000:7.1f}ms")
        for label, url in rows:
            times = measure(url)
            middle_time = statistics.median(times)
            verdict = "ok" if middle_time < 0.1 else "OVER"
            print(f"{label:<46} {middle_time * 1000:7.1f}ms {max(times) * 1000:7.1f}ms   {verdict}")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def serve_memory(hosts: int) -> None:
    home = Home(Path(tempfile.mkdtemp(prefix="pvegit-web-fleet-")))
    home.initialize()
    store = Store(home.state_path)
    store.add_user("admin", hash_password(PASSWORD))
    node = DemoNode(Path(tempfile.mkdtemp(prefix="pvegit-web-node-")), "pve1")
    node.create()
    started = time.perf_counter()
    for number in range(hosts):
        host = store.add_host(Host(f"pve{number:03d}", f"local:{node.root}", categories=CATEGORIES))
        take_snapshot(home, store, host)
        node.edit_something()
        take_snapshot(home, store, host)
    print(f"\n{hosts} hosts with 2 snapshots each, made in {time.perf_counter() - started:.0f} s")
    store.close()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pvegit",
            "--home",
            str(home.root),
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        server.stdout.readline()  # "pvegit web UI on ..." is printed before uvicorn binds
        base = f"http://127.0.0.1:{port}"
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        deadline = time.monotonic() + 30
        while True:
            try:
                login = opener.open(base + "/login").read().decode()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
        at_start = rss_kib(server.pid)
        token = re.search(r'name="csrf_token" value="([^"]+)"', login)
        assert token
        data = urllib.parse.urlencode(
            {"username": "admin", "password": PASSWORD, "csrf_token": token.group(1)}
        ).encode()
        opener.open(base + "/login", data=data).read()
        began = time.perf_counter()
        opener.open(base + "/").read()
        requests = 1
        for number in range(hosts):
            for url in (
                f"/hosts/pve{number:03d}",
                f"/hosts/pve{number:03d}/commits/HEAD",
                f"/hosts/pve{number:03d}/tree/HEAD/etc/pve",
            ):
                opener.open(base + url).read()
                requests += 1
        for _ in range(3):
            opener.open(base + "/").read()
            requests += 1
        seconds = time.perf_counter() - began
        after = rss_kib(server.pid)
        print(
            f"pvegit serve RSS: {at_start / 1024:.1f} MB after start, {after / 1024:.1f} MB "
            f"after {requests} pages over {hosts} hosts ({seconds:.1f} s); target 200 MB"
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=20)
    arguments = parser.parse_args()
    home = Home(Path(tempfile.mkdtemp(prefix="pvegit-web-home-")))
    home.initialize()
    store = Store(home.state_path)
    store.add_user("admin", hash_password(PASSWORD))
    middle, busy = build_long_history(home, store, arguments.commits)
    page_timings(home, store, middle, busy, arguments.repeat, arguments.commits)
    serve_memory(arguments.hosts)


if __name__ == "__main__":
    main()
