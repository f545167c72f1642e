"""git clone over HTTP from `pvegit serve` against a local `git clone file://`.

A host with 10,000 commits (as in web_speed.py), served by a real uvicorn;
each clone is repeated and the medians compared: the target is within 3x of
the local clone.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from web_speed import PASSWORD, build_long_history

from pvegit.config.home import Home
from pvegit.state.credentials import hash_password
from pvegit.state.store import Store
from testbed.appserver import running
from web.app import create_app


def timed_clone(url: str, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        target = Path(tempfile.mkdtemp(prefix="pvegit-clone-"))
        began = time.perf_counter()
        subprocess.run(
            ["git", "clone", "-q", url, str(target / "c")],
            check=True,
            env={"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin"},
        )
        times.append(time.perf_counter() - began)
        shutil.rmtree(target)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--reuse", type=Path, metavar="HOME", help="a home an earlier run of this benchmark built"
    )
    arguments = parser.parse_args()
    home = Home(arguments.reuse or Path(tempfile.mkdtemp(prefix="pvegit-clone-home-")))
    home.initialize()
    store = Store(home.state_path)
    if arguments.reuse is None:
        store.add_user("admin", hash_password(PASSWORD))
        build_long_history(home, store, arguments.commits)
    with running(create_app(home, store=store)) as address:
        packs = len(list((home.repo_path("big") / "objects/pack").glob("*.pack")))
        size = sum(p.stat().st_size for p in home.repo_path("big").rglob("*") if p.is_file())
        print(f"repository: {arguments.commits} commits, {packs} packs, {size / 1e6:.1f} MB")
        local = timed_clone(f"file://{home.repo_path('big')}", arguments.repeat)
        password = PASSWORD.replace(" ", "%20")
        remote = timed_clone(f"http://admin:{password}@{address}/git/big.git", arguments.repeat)
        print(f"git clone file://  median {statistics.median(local):.2f} s")
        print(
            f"git clone http://  median {statistics.median(remote):.2f} s "
            f"({statistics.median(remote) / statistics.median(local):.2f}x; target 3x)"
        )


if __name__ == "__main__":
    main()
