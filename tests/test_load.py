"""Load and soak, short versions (bench/load.py and bench/soak.py print the full figures)."""

from __future__ import annotations

import os
from pathlib import Path

from pvegit.config.home import Home
from pvegit.state.store import Store
from testbed.appserver import start_serve
from testbed.faults import seed_from
from testbed.load import RUN_TIMEOUT, prepare_fleet, run_load
from testbed.nodes import TestBed
from testbed.soak import soak

PASSWORD = "load test password"


def test_fifty_users_browse_while_twenty_snapshots_run(
    testbed: TestBed, home: Home, store: Store, tmp_path: Path
) -> None:
    nodes = [testbed.start(f"load{number}", node_name="pve1") for number in range(5)]
    try:
        hosts, token = prepare_fleet(home, store, nodes, per_node=4, password=PASSWORD)
        server, base = start_serve(home, tmp_path / "serve.log", "--no-scheduler", "--jobs", "4")
        try:
            report = run_load(
                base,
                password=PASSWORD,
                token=token,
                hosts=hosts,
                snapshot_hosts=hosts,
                users=50,
                seconds=float(os.environ.get("PVEGIT_LOAD_SECONDS", "5")),
                max_requests=5000,
                seed=seed_from(os.environ.get("PVEGIT_LOAD_SEED")),
                server_pid=server.pid,
            )
        finally:
            server.terminate()
            server.wait(60)
    finally:
        for node in nodes:
            node.stop()
    print(report.summary())
    assert report.errors == [], report.errors[:20]
    assert report.requests >= 50, report.summary()
    assert len(report.runs) == 20, report.summary()
    assert {run["status"] for run in report.runs} == {"changed"}, report.runs
    assert all(float(run["duration"]) < RUN_TIMEOUT for run in report.runs), report.summary()  # type: ignore[arg-type]


def test_soak_of_scheduled_runs_keeps_every_change(testbed: TestBed, home: Home) -> None:
    nodes = [testbed.start(f"soak{number}", node_name="pve1") for number in range(5)]
    seed = seed_from(os.environ.get("PVEGIT_SOAK_SEED"))
    print(f"soak: seed {seed}")
    try:
        report = soak(home, nodes, per_node=2, rounds=10, seed=seed)
    finally:
        for node in nodes:
            node.stop()
    print(report.summary())
    assert report.problems == [], f"{report.summary()}\n" + "\n".join(report.problems[:20])
    assert report.runs == 100
    assert report.rss_end - report.rss_warm < 64 * 2**20, report.summary()
