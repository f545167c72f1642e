"""Power loss, not only a killed process: what a cut leaves, and getting back from it.

A run commits in a pvegit process that is then killed (SIGKILL: no clean close,
state.db's last transactions stay in its WAL, as after a power cut); then one
of the files that run wrote is cut short or zeroed, as a disk that lost its
last writes leaves it. Each case checks what pvegit says, what ``verify`` and
``repair`` (or ``rebuild-state``) do, and that the older history is intact
(the real ``git fsck`` and ``git log``). A last test traces a real commit's
system calls to show the order of the syncs that make those cuts unlikely.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from diskfaults import (
    DAMAGES,
    History,
    make_history,
    newest_pack,
    process_cli,
    pvegit,
    same_pvegit,
    truncate_half,
    zero,
)

from pvegit.config.home import Home
from pvegit.demo.node import DemoNode
from pvegit.state.store import Store

_COMMIT_AND_STAY = """
import sys
from pathlib import Path
from pvegit.config.home import Home
from pvegit.actions.snapshot import take_snapshot
from pvegit.state.store import Store

home = Home(Path(sys.argv[1]))
store = Store(home.state_path)
run = take_snapshot(home, store, store.host("pve1"))
print(run.status, run.commit_id, flush=True)
sys.stdin.read()  # until killed: the connection is never closed, the WAL never checkpointed
"""


def commit_then_cut(home: Home) -> str:
    """A run that commits in its own process, which is then killed; returns its commit."""
    with subprocess.Popen(
        [sys.executable, "-c", _COMMIT_AND_STAY, str(home.root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=home.root.parent,
        env=same_pvegit(),
    ) as process:
        assert process.stdout is not None
        status, commit_id = process.stdout.readline().split()  # the run has finished
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert status == "changed"
    assert (home.root / "state.db-wal").stat().st_size > 0  # its records live in the WAL
    return commit_id


@dataclass
class CutTemplate:
    """The files a cut leaves, made once: a home and its host's node tree, as they were."""

    home: Path  # the pvegit home right after the cut (state.db's records in its WAL)
    node: Path  # where host pve1's ``local:`` address points (each test starts it anew)
    pristine_node: Path  # the node tree as it was at the cut
    commits: list[str]  # the three older commits, newest first
    newest: str  # the cut run's commit


@pytest.fixture(scope="module")
def cut_template(tmp_path_factory: pytest.TempPathFactory) -> CutTemplate:
    """Three commits, then a fourth by a process killed right after its run.

    Every step is a process of its own: no connection to state.db stays open in
    this one (its shared memory would outlive the "power cut"). Made once per
    module (each run costs a Python start): ``cut`` gives each test a copy.
    """
    base = tmp_path_factory.mktemp("powercut")
    home = Home(base / "pvegit-home")
    home.initialize()
    history = make_history(process_cli(home), home, base)
    history.node.edit_something()
    newest = commit_then_cut(home)
    assert history.log() == [newest, *history.commits]
    pristine = base / "node-at-the-cut"
    subprocess.run(["cp", "-a", str(history.node.root), str(pristine)], check=True)
    return CutTemplate(home.root, history.node.root, pristine, history.commits, newest)


@pytest.fixture
def cut(home: Home, cut_template: CutTemplate) -> tuple[History, str]:
    """This test's copy of the cut (``cut_template``): the home's files byte for byte
    (the killed process's WAL and shared memory too) in ``home``, and the node's tree
    back as it was at the cut (host pve1 points at it; tests of one module run one
    after another in a process)."""
    shutil.rmtree(home.root)
    subprocess.run(["cp", "-a", str(cut_template.home), str(home.root)], check=True)
    shutil.rmtree(cut_template.node)
    subprocess.run(
        ["cp", "-a", str(cut_template.pristine_node), str(cut_template.node)], check=True
    )
    history = History(home, DemoNode(cut_template.node, "pve1"), list(cut_template.commits))
    assert history.log() == [cut_template.newest, *history.commits]
    return history, cut_template.newest


def _older_history_intact(history: History) -> None:
    assert history.fsck() == ""
    log = history.log()
    assert log[-3:] == history.commits, "an older commit is gone"


@pytest.mark.parametrize("kind", ["empty", "zeroed", "truncated"])
def test_the_ref_cut(cut: tuple[History, str], kind: str) -> None:
    history, newest = cut
    DAMAGES[kind](history.repository / "refs/heads/main")
    log = pvegit(history.home, "log", "pve1")
    assert log.returncode == 1 and "refs/heads/main" in log.stderr
    assert "pvegit repair pve1" in log.stderr and "Traceback" not in log.stderr
    verify = pvegit(history.home, "verify", "--no-node")
    assert verify.returncode == 1 and "refs/heads/main" in verify.stderr
    repair = pvegit(history.home, "repair", "pve1")
    assert repair.returncode == 0, repair.stderr
    # the run log's newest commit: the cut run's own, whose record was in the WAL
    assert f"main now points at {newest[:10]}" in repair.stdout
    assert history.log() == [newest, *history.commits]
    _older_history_intact(history)
    assert pvegit(history.home, "verify", "--no-node").returncode == 0


@pytest.mark.parametrize("kind", ["zeroed", "truncated"])
def test_the_newest_pack_cut(cut: tuple[History, str], kind: str) -> None:
    history, newest = cut
    pack = newest_pack(history.repository)
    DAMAGES[kind](pack)
    log = pvegit(history.home, "log", "pve1")
    assert log.returncode == 1 and pack.name in log.stderr and "pvegit repair" in log.stderr
    verify = pvegit(history.home, "verify", "--no-node")
    assert verify.returncode == 1 and pack.name in verify.stderr
    repair = pvegit(history.home, "repair", "pve1")
    assert repair.returncode == 0, repair.stderr
    assert f"main now points at {history.commits[0][:10]}" in repair.stdout
    assert f"lost (their objects are gone): {newest[:10]}" in repair.stdout
    assert any((history.repository / "damaged").rglob(pack.name))  # kept, not deleted
    assert history.log() == history.commits
    _older_history_intact(history)
    assert pvegit(history.home, "verify", "--no-node").returncode == 0
    # the node still has the change the lost commit held: the next snapshot records it
    again = pvegit(history.home, "snapshot", "pve1")
    assert again.returncode == 0 and "changed" in again.stdout, again.stderr
    assert history.log()[1:] == history.commits
    assert history.fsck() == ""


@pytest.mark.parametrize("kind", ["empty", "zeroed", "truncated"])
def test_the_newest_index_cut(cut: tuple[History, str], kind: str) -> None:
    history, newest = cut
    index = newest_pack(history.repository).with_suffix(".idx")
    DAMAGES[kind](index)
    log = pvegit(history.home, "log", "pve1")
    assert log.returncode == 1 and index.name in log.stderr
    repair = pvegit(history.home, "repair", "pve1")
    assert repair.returncode == 0, repair.stderr
    assert "rebuilt the index of" in repair.stdout and "from its intact pack" in repair.stdout
    assert history.log() == [newest, *history.commits]  # nothing lost at all
    _older_history_intact(history)
    assert pvegit(history.home, "verify", "--no-node").returncode == 0


def _state_files(home: Home) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in home.root.glob("state.db*")}


@pytest.mark.parametrize("kind", ["empty", "zeroed", "truncated"])
def test_state_db_cut(cut: tuple[History, str], kind: str) -> None:
    history, newest = cut
    home = history.home
    DAMAGES[kind](home.state_path)
    damaged = _state_files(home)
    for arguments in (("runs",), ("log", "pve1"), ("snapshot", "pve1"), ("init",)):
        refused = pvegit(home, *arguments)
        assert refused.returncode == 1, arguments
        assert "pvegit rebuild-state" in refused.stderr and "Traceback" not in refused.stderr
        assert _state_files(home) == damaged  # never overwritten, nothing created
    rebuilt = pvegit(home, "rebuild-state")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "pve1: host back (settings from the [pvegit] section" in rebuilt.stdout
    assert "4 run(s)" in rebuilt.stdout
    kept = {
        re.sub(r"\.damaged-[0-9.-]+?(?=(-wal|-shm)?$)", "", path.name): path.read_bytes()
        for path in home.root.glob("state.db.damaged-*")
    }
    assert kept == damaged  # moved aside as it was, its WAL with it
    runs = pvegit(home, "runs", "pve1", "--json")
    assert runs.returncode == 0
    assert newest in runs.stdout and all(commit in runs.stdout for commit in history.commits)
    _older_history_intact(history)
    assert history.log()[0] == newest
    assert pvegit(home, "verify", "--no-node").returncode == 0
    history.node.edit_something()
    assert "changed" in pvegit(home, "snapshot", "pve1").stdout


def _run_of(home: Home, run_id: int) -> dict[str, object] | None:
    runs = json.loads(pvegit(home, "runs", "pve1", "--json").stdout)
    return next((run for run in runs if run["id"] == run_id), None)


def test_state_wal_zeroed(cut: tuple[History, str]) -> None:
    history, newest = cut
    home = history.home
    zero(home.root / "state.db-wal")
    # SQLite drops WAL frames that fail their checksums without a word: all of
    # the cut process's records are gone. pvegit finds the commit without its run.
    assert _run_of(home, 4) is None
    verify = pvegit(home, "verify", "--no-node")
    assert verify.returncode == 1
    assert f"newest {newest[:10]}, run 4" in verify.stderr and "pvegit repair pve1" in verify.stderr
    repair = pvegit(home, "repair", "pve1")
    assert repair.returncode == 0 and "recorded 1 run(s) the run log lacked" in repair.stdout
    run = _run_of(home, 4)
    assert run is not None and run["status"] == "changed" and run["commit"] == newest
    _older_history_intact(history)
    assert pvegit(home, "verify", "--no-node").returncode == 0
    history.node.edit_something()
    assert "changed" in pvegit(home, "snapshot", "pve1").stdout


def test_state_wal_truncated(cut: tuple[History, str]) -> None:
    history, newest = cut
    home = history.home
    truncate_half(home.root / "state.db-wal")
    # The run's start survived, its finish (the last write) did not: it reads as
    # still running, like a run whose process was killed after its commit, and
    # the first look at it (here `pvegit runs`) settles it with its commit
    # (found by its Run-Id trailer).
    store = Store(home.state_path)
    try:
        recorded = store.run(4)
    finally:
        store.close()
    assert recorded.status == "running" and recorded.commit_id is None
    run = _run_of(home, 4)
    assert run is not None and run["status"] == "changed" and run["commit"] == newest
    _older_history_intact(history)
    history.node.edit_something()
    assert "changed" in pvegit(home, "snapshot", "pve1").stdout
    assert pvegit(home, "verify", "--no-node").returncode == 0


# -- the order of the syncs -------------------------------------------------------

_SYSCALL = re.compile(r"^\d+\s+(\w+)\((.*)\)\s+=\s+(-?\d+)")


def _trace(home: Home, arguments: list[str], output: Path) -> list[tuple[str, list[str]]]:
    """(system call, its path arguments) of a real pvegit run, in order (strace -f -y)."""
    subprocess.run(
        [
            "strace",
            "-f",
            "-y",
            "-qq",
            "-s",
            "4096",
            "-e",
            "trace=fsync,fdatasync,rename,renameat,renameat2",
            "-o",
            str(output),
            sys.executable,
            "-m",
            "pvegit",
            "--home",
            str(home.root),
            *arguments,
        ],
        check=True,
        capture_output=True,
        cwd=home.root.parent,
        env=same_pvegit(),
    )
    calls = []
    for line in output.read_text().splitlines():
        match = _SYSCALL.match(line)
        if match and match.group(3) == "0":
            paths = re.findall(r'<([^>]+)>|"([^"]*)"', match.group(2))
            calls.append((match.group(1), [a or b for a, b in paths]))
    return calls


def _first(
    calls: list[tuple[str, list[str]]],
    test: Callable[[str, list[str]], bool],
    after: int = -1,
) -> int:
    """The position of the first call after ``after`` that passes ``test``."""
    for position, (name, paths) in enumerate(calls):
        if position > after and paths and test(name, paths):
            return position
    raise AssertionError(f"no such call after position {after} in {calls}")


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_a_commit_syncs_data_before_what_points_to_it(home: Home, tmp_path: Path) -> None:
    history = make_history(process_cli(home), home, tmp_path, snapshots=1)
    history.node.edit_something()
    calls = _trace(home, ["snapshot", "pve1"], tmp_path / "trace")
    pack_dir = str(history.repository / "objects" / "pack")
    heads = str(history.repository / "refs" / "heads")
    syncs = ("fsync", "fdatasync")

    def renamed_to(suffix: str) -> Callable[[str, list[str]], bool]:
        return lambda name, paths: name.startswith("rename") and paths[-1].endswith(suffix)

    def synced(test: Callable[[str], bool]) -> Callable[[str, list[str]], bool]:
        return lambda name, paths: name in syncs and test(paths[0])

    pack_in = _first(calls, renamed_to(".pack"))
    pack_synced = _first(calls, synced(lambda path: Path(path).name.startswith("tmp")))
    index_in = _first(calls, renamed_to(".idx"))
    index_synced = _first(calls, synced(lambda path: path.endswith(".idx.lock")))
    directory_synced = _first(calls, synced(lambda path: path == pack_dir), after=index_in)
    ref_in = _first(calls, renamed_to("refs/heads/main"))
    ref_synced = _first(calls, synced(lambda path: path.endswith("refs/heads/main.lock")))
    heads_synced = _first(calls, synced(lambda path: path == heads), after=ref_in)
    wal_synced = _first(calls, synced(lambda path: path.endswith("state.db-wal")), after=ref_in)
    assert pack_synced < pack_in < index_in, "the pack is on disk before it is named"
    assert index_synced < index_in, "the index is on disk before it is named"
    assert directory_synced < ref_in, "both names are on disk before main moves"
    assert ref_synced < ref_in < heads_synced, "main's new value and its name are on disk"
    assert wal_synced > heads_synced, "the run's record is synced after the commit it names"
