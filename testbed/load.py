"""The load drill (tests/test_load.py short, bench/load.py long).

A real `pvegit serve` over a fleet of simulated nodes with some history; N
web users (each its own session) browse dashboards, host pages, timelines,
commits, comparisons, trees and file histories as fast as the server lets
them, bounded by time and by a request budget, while snapshots of 20 hosts
are started through the API. Reports page times (p50/p95/p99, per page), any
error, and how long each run took against its time limit.
"""

from __future__ import annotations

import asyncio
import random
import re
import statistics
import time
from dataclasses import dataclass, field

import httpx2

from pvegit.config.home import Home
from pvegit.state.store import Store
from testbed.appserver import pvegit_process
from testbed.nodes import Node, register_node

RUN_TIMEOUT = 120  # the run time limit prepare_fleet sets


def prepare_fleet(
    home: Home, store: Store, nodes: list[Node], *, per_node: int, password: str
) -> tuple[list[str], str]:
    """Hosts on ``nodes`` with two commits each, an admin, an API token, a 120 s run
    limit, and a change waiting on every node; returns (host names, token)."""
    hosts = []
    for node in nodes:
        for number in range(per_node):
            name = f"{node.name}-{number}"
            register_node(store, home, node, name, categories=("cluster", "network"))
            hosts.append(name)
    for mark in ("one", "two", "three"):
        if mark != "one":
            done = pvegit_process(home, "snapshot", "--all", timeout=300)
            if done.returncode != 0:
                raise RuntimeError(f"snapshot --all failed: {done.stdout}{done.stderr}")
        for node in nodes:
            node.write("/etc/pve/storage.cfg", node.read("/etc/pve/storage.cfg") + f"# {mark}\n")
    pvegit_process(home, "user", "add", "admin", "--password-stdin", stdin=password + "\n")
    token = pvegit_process(home, "token", "add", "load", "--role", "operator").stdout.split()[-1]
    (home.root / "pvegit.toml").write_text(f"[server]\nrun_timeout = {RUN_TIMEOUT}\n")
    return hosts, token


def process_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def pages_for(hosts: list[str]) -> list[tuple[str, str]]:
    """(kind, url) of what users look at, over every host."""
    pages = [("dashboard", "/"), ("hosts", "/hosts"), ("runs", "/runs")]
    for host in hosts:
        pages += [
            ("host timeline", f"/hosts/{host}"),
            ("commit diff", f"/hosts/{host}/commits/HEAD"),
            ("compare", f"/hosts/{host}/compare/HEAD~1...HEAD"),
            ("tree", f"/hosts/{host}/tree/HEAD/etc/pve"),
            ("file history", f"/hosts/{host}/history/etc/pve/storage.cfg"),
        ]
    return pages


@dataclass
class LoadReport:
    users: int
    seconds: float = 0.0
    timings: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    reconnects: int = 0  # idle keep-alive connections closed by the server, sent again
    runs: list[dict[str, object]] = field(default_factory=list)
    rss_start: int = 0
    rss_end: int = 0
    alone: dict[str, list[float]] = field(default_factory=dict)  # one user, nothing running

    @property
    def requests(self) -> int:
        return sum(len(times) for times in self.timings.values())

    def percentile(self, share: float, kind: str | None = None, *, alone: bool = False) -> float:
        timings = self.alone if alone else self.timings
        times = sorted(
            timings.get(kind, []) if kind else [t for ts in timings.values() for t in ts]
        )
        if not times:
            return 0.0
        return times[min(len(times) - 1, int(share * len(times)))]

    def summary(self) -> str:
        durations = [float(run["duration"] or 0) for run in self.runs]  # type: ignore[arg-type]
        lines = [
            f"{self.users} users, {self.requests} pages in {self.seconds:.1f} s "
            f"({self.requests / max(self.seconds, 1e-9):.0f}/s), {len(self.errors)} errors, "
            f"{self.reconnects} reconnects; "
            f"page time p50 {self.percentile(0.5) * 1000:.0f} ms, "
            f"p95 {self.percentile(0.95) * 1000:.0f} ms, p99 {self.percentile(0.99) * 1000:.0f} ms",
        ]
        lines.append(
            f"baseline, one user alone: p50 {self.percentile(0.5, alone=True) * 1000:.0f} ms, "
            f"p95 {self.percentile(0.95, alone=True) * 1000:.0f} ms; p95 under load / alone = "
            f"{self.percentile(0.95) / max(self.percentile(0.95, alone=True), 1e-9):.1f}x"
        )
        for kind in sorted(self.timings):
            lines.append(
                f"  {kind:<13} n={len(self.timings[kind]):>5}  "
                f"p50 {self.percentile(0.5, kind) * 1000:6.0f} ms  "
                f"p95 {self.percentile(0.95, kind) * 1000:6.0f} ms"
            )
        if durations:
            statuses = sorted({str(run["status"]) for run in self.runs})
            lines.append(
                f"{len(self.runs)} snapshots during the load: {', '.join(statuses)}; duration "
                f"median {statistics.median(durations):.2f} s, max {max(durations):.2f} s"
            )
        lines.append(f"serve RSS {self.rss_start / 2**20:.1f} -> {self.rss_end / 2**20:.1f} MiB")
        return "\n".join(lines)


async def _login(client: httpx2.AsyncClient, password: str, report: LoadReport) -> None:
    page = await client.get("/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "no CSRF token on the login page"
    answer = await client.post(
        "/login", data={"username": "admin", "password": password, "csrf_token": match.group(1)}
    )
    if answer.status_code != 303:
        report.errors.append(f"login: {answer.status_code}")


async def _browse(
    client: httpx2.AsyncClient,
    pages: list[tuple[str, str]],
    rng: random.Random,
    deadline: float,
    budget: list[int],
    report: LoadReport,
) -> None:
    while time.monotonic() < deadline and budget[0] > 0:
        budget[0] -= 1
        kind, url = rng.choice(pages)
        began = time.perf_counter()
        try:
            try:
                response = await client.get(url)
            except (httpx2.ReadError, httpx2.RemoteProtocolError):
                # The server closed an idle keep-alive connection as the request went
                # out: a browser sends it again on a new connection, so do we.
                report.reconnects += 1
                response = await client.get(url)
        except httpx2.HTTPError as err:
            report.errors.append(f"{url}: {type(err).__name__}: {err}")
            continue
        report.timings.setdefault(kind, []).append(time.perf_counter() - began)
        if response.status_code != 200:
            report.errors.append(f"{url}: HTTP {response.status_code}")


async def _snapshots(base: str, token: str, hosts: list[str], report: LoadReport) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(base_url=base, timeout=120, headers=headers) as client:
        ids = []
        for host in hosts:
            answer = await client.post(f"/api/v1/hosts/{host}/snapshot")
            if answer.status_code != 202:
                report.errors.append(f"snapshot {host}: HTTP {answer.status_code}")
                continue
            ids.append(answer.json()["run"])
        for run_id in ids:
            while True:  # the run's record says when it is over
                run = (await client.get(f"/api/v1/runs/{run_id}")).json()
                if run["status"] not in ("running", "queued"):
                    report.runs.append(run)
                    break
                await asyncio.sleep(0.2)  # poll interval of a client, not a synchronisation


def run_load(
    base: str,
    *,
    password: str,
    token: str,
    hosts: list[str],
    snapshot_hosts: list[str],
    users: int,
    seconds: float,
    max_requests: int,
    seed: int,
    server_pid: int,
) -> LoadReport:
    report = LoadReport(users)
    report.rss_start = process_rss(server_pid)
    pages = pages_for(hosts)
    budget = [max_requests]
    rng = random.Random(seed)

    async def everything() -> float:
        clients = [httpx2.AsyncClient(base_url=base, timeout=120) for _ in range(users)]
        try:
            # Logging in (scrypt, on purpose slow) is not part of the browsing figures.
            await asyncio.gather(*(_login(client, password, report) for client in clients))
            # The baseline in the same run: one user, every page twice, nothing else going on.
            alone = LoadReport(1)
            for kind, url in pages + pages:
                await _browse(clients[0], [(kind, url)], rng, time.monotonic() + 60, [1], alone)
            report.alone = alone.timings
            report.errors += alone.errors
            started = time.perf_counter()
            deadline = time.monotonic() + seconds
            browsing = [
                _browse(client, pages, random.Random(seed + n), deadline, budget, report)
                for n, client in enumerate(clients)
            ]
            await asyncio.gather(_snapshots(base, token, snapshot_hosts, report), *browsing)
            return time.perf_counter() - started
        finally:
            for client in clients:
                await client.aclose()

    report.seconds = asyncio.run(everything())
    report.rss_end = process_rss(server_pid)
    return report
