"""Repository growth: 1,000 snapshots with one small change each.

Compares the repository's size on disk after packing with the same 1,000
snapshots kept as tar.gz files (what a backup script writes). Uses the local
transport on a demo node tree, so it needs no root.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import tempfile
import time
from pathlib import Path

from pvegit.actions.snapshot import SnapshotOptions, take_snapshot
from pvegit.config.home import Home
from pvegit.config.selection import resolve_selection
from pvegit.demo.node import DemoNode
from pvegit.git.maintenance import MaintenanceRepository
from pvegit.node.collector import tar_script
from pvegit.state.runlog import named_commits
from pvegit.state.store import Host, Store

CATEGORIES = ("cluster", "network", "storage", "system")


def size_of(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--snapshots", type=int, default=1000)
    arguments = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pvegit-growth-"))
    node = DemoNode(work / "node", "pve1")
    node.create()
    home = Home(work / "home")
    home.initialize()
    store = Store(home.state_path)
    host = store.add_host(Host("pve1", f"local:{node.root}", categories=CATEGORIES))
    selection = resolve_selection(CATEGORIES)
    tarballs = work / "tarballs"
    tarballs.mkdir()
    script = tar_script(str(node.root), selection, live=False)
    configs = sorted((node.root / "etc/pve/nodes").glob("*/qemu-server/*.conf"))

    began = time.perf_counter()
    snapshot_seconds = 0.0
    for number in range(arguments.snapshots):
        config = configs[number % len(configs)]
        with config.open("a") as handle:  # one small change: a VM's description grows
            handle.write(f"#edit {number}\n")
        started = time.perf_counter()
        run = take_snapshot(home, store, host, SnapshotOptions(trigger="bench"))
        snapshot_seconds += time.perf_counter() - started
        if run.status != "changed":
            raise SystemExit(f"bench: run {number} was {run.status}: {run.error}")
        # The same tar pvegit runs, gzipped to a file: a backup script's approach.
        with (tarballs / f"{number:04d}.tar.gz").open("wb") as output:
            subprocess.run(
                f"/bin/sh -c {shlex.quote(script)} | gzip -6",
                shell=True,
                check=True,
                stdout=output,
                stderr=subprocess.DEVNULL,
            )
    total = time.perf_counter() - began
    loose = size_of(home.repo_path("pve1"))
    with MaintenanceRepository(home.repo_path("pve1")) as repository:
        started = time.perf_counter()
        repository.compact(named_commits(store, "pve1"))
        pack_seconds = time.perf_counter() - started
    packed = size_of(home.repo_path("pve1"))
    tar_total = size_of(tarballs)
    one_tar = tar_total / arguments.snapshots
    git_copy = work / "gc.git"
    subprocess.run(
        ["git", "clone", "-q", "--bare", "--no-local", str(home.repo_path("pve1")), str(git_copy)],
        check=True,
    )
    subprocess.run(["git", "--git-dir", str(git_copy), "gc", "-q", "--aggressive"], check=True)
    git_gc = size_of(git_copy)
    fsck = subprocess.run(
        ["git", "--git-dir", str(home.repo_path("pve1")), "fsck", "--strict"],
        capture_output=True,
        text=True,
    )

    n = arguments.snapshots
    print(
        f"{n} snapshots of a {len(list((node.root).rglob('*')))}-entry node, one small "
        f"change each: {snapshot_seconds / n * 1000:.1f} ms per snapshot "
        f"(bench total {total:.0f} s)\n"
    )
    print(
        f"{'pvegit repository, as written (one pack per commit, folded every 64)':<72}"
        f"{loose / 1e6:8.2f} MB"
    )
    print(
        f"{f'pvegit repository after `pvegit gc` (delta-compressed, {pack_seconds:.1f} s)':<72}"
        f"{packed / 1e6:8.2f} MB"
    )
    print(f"{'same history after git gc --aggressive (reference)':<72}{git_gc / 1e6:8.2f} MB")
    print(
        f"{f'{n} x tar.gz of the same paths (one is {one_tar / 1e3:.0f} kB)':<72}"
        f"{tar_total / 1e6:8.2f} MB"
    )
    print(
        f"\nratio tar.gz / pvegit packed: {tar_total / packed:.1f}x; "
        f"git fsck --strict: {'clean' if fsck.returncode == 0 and not fsck.stdout else fsck.stdout}"
    )


if __name__ == "__main__":
    main()
