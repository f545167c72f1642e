"""A deleted, empty or blank state.db: refused, never silently empty; rebuild-state.

Every command here is a real ``pvegit`` process (each closes state.db on exit),
against a home whose repositories hold history.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from diskfaults import History, make_history, process_cli, pvegit, same_pvegit

from pvegit.config.home import Home
from pvegit.state.store import Store
from testbed.nodes import Node

STATE_FILES = ("state.db", "state.db-wal", "state.db-shm")


def _delete_state(home: Home) -> None:
    for name in STATE_FILES:
        (home.root / name).unlink(missing_ok=True)


def _history(home: Home, tmp_path: Path) -> History:
    return make_history(process_cli(home), home, tmp_path)


def test_every_command_and_serve_refuse_a_missing_state(home: Home, tmp_path: Path) -> None:
    _history(home, tmp_path)
    _delete_state(home)
    for arguments in (
        ("runs",),
        ("log", "pve1"),
        ("snapshot", "pve1"),
        ("host", "list"),
        ("init",),
        ("user", "list"),
        ("token", "list"),
        ("verify", "--no-node"),
        ("repair", "pve1"),
    ):
        refused = pvegit(home, *arguments)
        assert refused.returncode == 1, arguments
        assert "state.db is missing, but repos/ holds the history of 1 host(s) (pve1)" in (
            refused.stderr
        )
        assert "put back a copy of state.db" in refused.stderr
        assert "pvegit rebuild-state" in refused.stderr and "Traceback" not in refused.stderr
        assert not home.state_path.exists(), arguments  # no empty state made
    serve = subprocess.run(
        [
            sys.executable,
            "-m",
            "pvegit",
            "--home",
            str(home.root),
            "serve",
            "--listen",
            "127.0.0.1:1",
        ],
        capture_output=True,
        text=True,
        timeout=60,  # it must stop at once, not serve
        cwd=tmp_path,
        env=same_pvegit(),
        check=False,
    )
    assert serve.returncode == 1 and "pvegit rebuild-state" in serve.stderr
    assert not home.state_path.exists()


def test_a_blank_state_is_refused_too(home: Home, tmp_path: Path) -> None:
    # what pvegit used to leave: a new, empty state.db next to the old history
    _history(home, tmp_path)
    _delete_state(home)
    Store(home.state_path).close()
    refused = pvegit(home, "host", "list")
    assert refused.returncode == 1
    assert "holds no host, run or audit entry" in refused.stderr
    rebuilt = pvegit(home, "rebuild-state")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "holds no host, run or audit entry" in rebuilt.stdout
    assert "pve1: host back" in rebuilt.stdout


def test_a_fresh_home_just_works(home: Home, tmp_path: Path) -> None:
    fresh = Home(tmp_path / "fresh")
    first = pvegit(fresh, "init")
    assert first.returncode == 0 and first.stdout.startswith("initialized: ")
    assert pvegit(fresh, "host", "list").returncode == 0
    nothing = pvegit(fresh, "rebuild-state")
    assert nothing.returncode == 0 and "nothing to rebuild" in nothing.stdout


def test_rebuild_state_brings_back_hosts_and_runs_but_not_trust(
    home: Home, store: Store, node: Node, tmp_path: Path
) -> None:
    from testbed.nodes import register_node

    register_node(store, home, node, "pve-ssh", categories=("cluster", "network"))
    store.close()  # from here on, every step is a process of its own
    edited = pvegit(
        home,
        "host",
        "edit",
        "pve-ssh",
        "--schedule",
        "daily at 02:30",
        "--include",
        "/etc/fstab",
        "--exclude",
        "/etc/pve/firewall/*",
    )
    assert edited.returncode == 0, edited.stderr
    local = _history(home, tmp_path)
    for _ in range(2):
        run = pvegit(home, "snapshot", "pve-ssh")
        assert run.returncode == 0, run.stderr
        node.write("/etc/pve/storage.cfg", node.read("/etc/pve/storage.cfg") + "\n# edited\n")
    before_hosts = json.loads(pvegit(home, "host", "list", "--json").stdout)
    before_runs = json.loads(pvegit(home, "runs", "--json", "-n", "100").stdout)
    ssh_commits = subprocess.run(
        ["git", "--git-dir", str(home.repo_path("pve-ssh")), "log", "--format=%H"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    pinned = pvegit(home, "host", "trust", "pve-ssh", "--fingerprint", node.fingerprint)
    assert pinned.returncode == 0, pinned.stderr
    assert "ssh-" in home.known_hosts_path.read_text()  # plain ssh trusts the node
    _delete_state(home)

    rebuilt = pvegit(home, "rebuild-state")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "state.db: " in rebuilt.stdout and "is missing" in rebuilt.stdout
    assert "pvegit host trust pve-ssh" in rebuilt.stdout
    assert "pvegit host trust pve1" not in rebuilt.stdout  # a local host needs no key
    assert "web users" in rebuilt.stdout and "API tokens" in rebuilt.stdout

    hosts = {
        host["name"]: host for host in json.loads(pvegit(home, "host", "list", "--json").stdout)
    }
    for host in before_hosts:
        back = hosts[host["name"]]
        for key in ("address", "port", "user", "categories", "includes", "excludes", "schedule"):
            assert back[key] == host[key], (host["name"], key)
    assert hosts["pve-ssh"]["host_key_pinned"] is False  # trust is a decision, taken again
    # ... for plain ssh with pvegit's known_hosts too
    assert "ssh-" not in home.known_hosts_path.read_text()
    runs = json.loads(pvegit(home, "runs", "--json", "-n", "100").stdout)
    changed = {
        (run["id"], run["host"], run["commit"], run["trigger"])
        for run in before_runs
        if run["commit"]
    }
    assert {(run["id"], run["host"], run["commit"], run["trigger"]) for run in runs} == changed
    assert {run["commit"] for run in runs if run["host"] == "pve-ssh"} == set(ssh_commits)
    assert pvegit(home, "log", "pve1").stdout.count("\n") == len(local.commits)
    assert pvegit(home, "verify", "--no-node").returncode == 0

    untrusted = pvegit(home, "snapshot", "pve-ssh")
    assert untrusted.returncode == 1 and "trust" in untrusted.stderr
    trusted = pvegit(home, "host", "trust", "pve-ssh", "--fingerprint", node.fingerprint)
    assert trusted.returncode == 0, trusted.stderr
    again = pvegit(home, "snapshot", "pve-ssh")
    assert again.returncode == 0 and "changed" in again.stdout, again.stderr  # the last edit
    audit = pvegit(home, "runs", "--json")
    assert audit.returncode == 0


def test_rebuild_state_without_stored_settings_finds_the_address(
    home: Home, tmp_path: Path
) -> None:
    history = _history(home, tmp_path)
    history.git("config", "--remove-section", "pvegit")  # a repository from before they were kept
    _delete_state(home)
    rebuilt = pvegit(home, "rebuild-state")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "its newest snapshot's etc/hosts and etc/hostname" in rebuilt.stdout
    host = json.loads(pvegit(home, "host", "show", "pve1", "--json").stdout)
    hosts_file = (history.node.root / "etc/hosts").read_text()
    assert f"{host['address']} pve1.lab.example.org pve1" in hosts_file
    assert pvegit(home, "verify", "--no-node").returncode == 0


def test_rebuild_state_never_takes_local_from_a_node(home: Home, tmp_path: Path) -> None:
    history = _history(home, tmp_path)
    history.git("config", "--remove-section", "pvegit")
    (history.node.root / "etc/hosts").write_text("local:/ pve1\n127.0.1.1 pve1\n")
    history.node.edit_something()
    assert pvegit(home, "snapshot", "pve1").returncode == 0
    history.git("config", "--remove-section", "pvegit")
    _delete_state(home)
    assert pvegit(home, "rebuild-state").returncode == 0
    host = json.loads(pvegit(home, "host", "show", "pve1", "--json").stdout)
    assert host["address"] == "pve1"  # neither 'local:/' nor the loopback address
